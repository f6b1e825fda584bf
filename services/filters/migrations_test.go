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
