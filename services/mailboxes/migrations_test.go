package mailboxes_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, mailboxes.Schema, mailboxes.Migrations)
}
