package filters_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, filters.Schema, filters.Migrations)
}
