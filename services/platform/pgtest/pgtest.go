// Package pgtest gives each test its own PostgreSQL database on the server
// named by MAILPLANE_TEST_DATABASE_URL, so tests never share state.
//
// A test that needs migrated schemas gets a copy of a template database
// (CREATE DATABASE ... TEMPLATE), which is migrated once per set of schemas
// and migrations and kept on the server for later runs: copying a small
// database costs a fraction of migrating one.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
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

// Schema is a schema and its service's migrations, as pg.Migrate takes them.
type Schema struct {
	Name       string
	Migrations fs.FS
}

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its URL. Without EnvURL the test is skipped, except under CI=true,
// where it fails: CI must never pass on zero database tests.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return newDatabase(t, serverURL(t), "")
}

// NewMigratedDatabase creates a database for t holding schemas, migrated,
// dropped when t ends, and returns its URL. It is a copy of a template
// database; the first test to need the template makes it.
func NewMigratedDatabase(t testing.TB, schemas ...Schema) string {
	t.Helper()
	server := serverURL(t)
	tmpl, err := template(context.Background(), server, schemas)
	if err != nil {
		t.Fatal(err)
	}
	return newDatabase(t, server, tmpl)
}

// NewPool returns a pool on a fresh database with schema migrated.
func NewPool(t testing.TB, schema string, migrations fs.FS) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(context.Background(), NewMigratedDatabase(t, Schema{schema, migrations}), schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// serverURL is EnvURL's value; without it t skips, or fails under CI=true.
func serverURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvURL)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI needs the database tests", EnvURL)
		}
		t.Skipf("%s is not set", EnvURL)
	}
	return server
}

// newDatabase creates a database for t, a copy of tmpl unless tmpl is
// empty, drops it when t ends, and returns its URL.
func newDatabase(t testing.TB, server, tmpl string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("connect to test server: %v", err)
	}
	defer admin.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "mailplane_test_" + hex.EncodeToString(b)
	create := "CREATE DATABASE " + name
	if tmpl != "" {
		create += " TEMPLATE " + tmpl
	}
	if _, err := admin.Exec(ctx, create); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, server)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := databaseURL(server, name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// databaseURL is server's URL with the database name instead of its own.
func databaseURL(server, name string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("%s: %w", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// template returns the name of a database holding schemas migrated, making
// it unless an earlier test, or test binary, did. Its name comes from the
// schemas' fingerprints, so a changed migration makes a new template and a
// stale one is never copied.
func template(ctx context.Context, server string, schemas []Schema) (string, error) {
	name, err := templateName(schemas)
	if err != nil {
		return "", err
	}
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		return "", fmt.Errorf("connect to test server: %w", err)
	}
	defer admin.Close(ctx)
	// Test binaries run in parallel: one makes the template while the
	// others wait for it here.
	lock := fnv.New64a()
	lock.Write([]byte(name))
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lock.Sum64())); err != nil {
		return "", fmt.Errorf("lock template %s: %w", name, err)
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", int64(lock.Sum64()))
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for template %s: %w", name, err)
	}
	if exists {
		return name, nil
	}

	// The template is migrated under another name and renamed when done,
	// so a run that dies half way leaves no template half made.
	building := name + "_building"
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop unfinished template %s: %w", building, err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return "", fmt.Errorf("create template %s: %w", building, err)
	}
	u, err := databaseURL(server, building)
	if err != nil {
		return "", err
	}
	for _, s := range schemas {
		if err := migrate(ctx, u, s); err != nil {
			return "", fmt.Errorf("template %s: %w", name, err)
		}
	}
	// CREATE DATABASE ... TEMPLATE fails while anyone is connected to the
	// template: migrate closed its connections, and from now on nobody may
	// open one.
	for _, sql := range []string{
		"ALTER DATABASE " + building + " WITH ALLOW_CONNECTIONS false",
		"ALTER DATABASE " + building + " RENAME TO " + name,
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			return "", fmt.Errorf("template %s: %w", name, err)
		}
	}
	return name, nil
}

// templateName names the template of schemas after their fingerprints.
func templateName(schemas []Schema) (string, error) {
	h := sha256.New()
	for _, s := range schemas {
		f, err := pg.Fingerprint(s.Name, s.Migrations)
		if err != nil {
			return "", err
		}
		fmt.Fprintln(h, f)
	}
	return "mailplane_tmpl_" + hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// migrate migrates s in the database at url, closing its connections
// before it returns.
func migrate(ctx context.Context, url string, s Schema) error {
	pool, err := pg.Connect(ctx, url, s.Name)
	if err != nil {
		return err
	}
	defer pool.Close()
	return pg.Migrate(ctx, pool, s.Name, s.Migrations, slog.New(slog.DiscardHandler))
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
