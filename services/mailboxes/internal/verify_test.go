package mailboxes

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mailplane/mailplane/services/mailboxes/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/pressly/goose/v3"
)

// Mail services made before verification existed were live: the migration
// marks them verified, and mail keeps flowing.
func TestMigrationVerifiesExistingDomains(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, "mailboxes", migrations.FS)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithTableName("mailboxes.migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO mail_services (id, organization_id, domain, display_name) VALUES (gen_random_uuid(), gen_random_uuid(), 'live.example', 'Live')`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := pool.QueryRow(ctx, "SELECT state FROM mail_services WHERE domain = 'live.example'").Scan(&state); err != nil || state != stateVerified {
		t.Errorf("state after the migration: %q, %v", state, err)
	}
	if ok, err := NewLookups(pool).Domain(ctx, "live.example"); !ok || err != nil {
		t.Errorf("the domain is no longer served: %v, %v", ok, err)
	}
	// New ones are claims.
	if _, err := pool.Exec(ctx, `INSERT INTO mail_services (id, organization_id, domain, display_name) VALUES (gen_random_uuid(), gen_random_uuid(), 'new.example', 'New')`); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT state FROM mail_services WHERE domain = 'new.example'").Scan(&state); err != nil || state != statePending {
		t.Errorf("a new mail service's state: %q, %v", state, err)
	}
}
