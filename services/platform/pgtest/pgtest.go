// Package pgtest gives each test its own PostgreSQL database on the server
// named by MAILPLANE_TEST_DATABASE_URL, so tests never share state.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/pressly/goose/v3"
)

// EnvURL names the variable holding the test server's URL.
const EnvURL = "MAILPLANE_TEST_DATABASE_URL"

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its URL. Without EnvURL the test is skipped, except under CI=true,
// where it fails: CI must never pass on zero database tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI needs the database tests", EnvURL)
		}
		t.Skipf("%s is not set", EnvURL)
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "mailplane_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// NewPool returns a pool on a fresh database with schema migrated.
func NewPool(t testing.TB, schema string, migrations fs.FS) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := pg.Connect(ctx, NewDatabase(t), schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pg.Migrate(ctx, pool, schema, migrations, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return pool
}

// CheckMigrationsReversible migrates schema on a fresh database, takes every
// migration of the service back down, then up again: each Down section
// must undo its Up, so that a release can be rolled back.
func CheckMigrationsReversible(t *testing.T, schema string, migrations fs.FS) {
	t.Helper()
	ctx := context.Background()
	pool := NewPool(t, schema, migrations)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithTableName(schema+".migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	down, err := p.DownTo(ctx, 0)
	if err != nil {
		t.Fatalf("down: %v", err)
	}
	up, err := p.Up(ctx)
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	if len(down) == 0 || len(up) != len(down) {
		t.Errorf("%d migrations down, %d up again", len(down), len(up))
	}
}
