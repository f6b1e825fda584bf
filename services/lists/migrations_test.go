package lists_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, lists.Schema, lists.Migrations)
}
