package imports_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/imports"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, imports.Schema, imports.Migrations)
}
