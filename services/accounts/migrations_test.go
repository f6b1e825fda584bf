package accounts_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, accounts.Schema, accounts.Migrations)
}
