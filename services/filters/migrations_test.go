package filters_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/pressly/goose/v3"
)

func TestMigrationsReversible(t *testing.T) {
	pgtest.CheckMigrationsReversible(t, filters.Schema, filters.Migrations)
}

// TestAddressMirrorMigration: migration 00009 keeps every user's filters
// right (now one of their rights by name) up and down.
func TestAddressMirrorMigration(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, filters.Schema, filters.Migrations)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, filters.Migrations,
		goose.WithTableName(filters.Schema+".migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	addr, with, without := uuid.New(), uuid.New(), uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO addresses (id, organization_id, mail_service_id, login) VALUES ($1, $1, $1, 'a@example.test')`, addr); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO address_users (address_id, user_id, filters) VALUES ($1, $2, true), ($1, $3, false)`, addr, with, without); err != nil {
		t.Fatal(err)
	}
	right := func(user uuid.UUID) bool {
		t.Helper()
		var b bool
		if err := pool.QueryRow(ctx, `SELECT filters FROM address_users WHERE user_id = $1`, user).Scan(&b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := p.UpTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	var rights []string
	if err := pool.QueryRow(ctx, `SELECT rights FROM address_users WHERE user_id = $1`, with).Scan(&rights); err != nil || !slices.Equal(rights, []string{"filters"}) {
		t.Fatalf("rights %v (%v), want [filters]", rights, err)
	}
	if !right(with) || right(without) {
		t.Fatalf("after 00009: filters %v and %v, want true and false", right(with), right(without))
	}
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	if !right(with) || right(without) {
		t.Fatalf("after 00009 down: filters %v and %v, want true and false", right(with), right(without))
	}
}

// TestReinstallMigration: migration 00010 queues every address for the
// reinstall sweep, one already pending with a newer version (an install
// running now cannot clear it) and one refused before for another try.
func TestReinstallMigration(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, filters.Schema, filters.Migrations)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, filters.Migrations,
		goose.WithTableName(filters.Schema+".migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	installed, pending, refused := uuid.New(), uuid.New(), uuid.New()
	for _, id := range []uuid.UUID{installed, pending, refused} {
		if _, err := pool.Exec(ctx, `INSERT INTO addresses (id, organization_id, mail_service_id, login) VALUES ($1, $1, $1, $2)`, id, id.String()+"@example.test"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO pending_installs (address_id, version, failed_time, failure) VALUES ($1, 3, NULL, ''), ($2, 5, now(), 'refused')`, pending, refused); err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[uuid.UUID]int64{installed: 1, pending: 4, refused: 6} {
		var version int64
		var failed bool
		err := pool.QueryRow(ctx, `SELECT version, failed_time IS NOT NULL FROM pending_installs WHERE address_id = $1`, id).Scan(&version, &failed)
		if err != nil || version != want || failed {
			t.Errorf("address %s: version %d, failed %v (%v); want version %d, not failed", id, version, failed, err, want)
		}
	}
}
