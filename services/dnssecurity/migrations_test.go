package dnssecurity_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/dnssecurity"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, dnssecurity.Schema, dnssecurity.Migrations)
}
