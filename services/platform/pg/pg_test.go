package pg_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// serviceMigrations are a service's own migrations. The second inserts a
// row, so running it twice would show.
var serviceMigrations = fstest.MapFS{
	"00001_widgets.sql": {Data: []byte(`-- +goose Up
CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL UNIQUE);
-- +goose Down
DROP TABLE widgets;
`)},
	"00002_first_widget.sql": {Data: []byte(`-- +goose Up
INSERT INTO widgets (id, name) VALUES (1, 'first');
-- +goose Down
DELETE FROM widgets WHERE id = 1;
`)},
}

func connect(t *testing.T, url, schema string) *pgxpool.Pool {
	t.Helper()
	pool, err := pg.Connect(context.Background(), url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestMigrateConcurrently starts four replicas of a service at once on a
// fresh database: each migrates, and the migrations run once.
func TestMigrateConcurrently(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	const replicas = 4
	pools := make([]*pgxpool.Pool, replicas)
	for i := range pools {
		pools[i] = connect(t, url, "widgets")
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, pool := range pools {
		wg.Go(func() {
			<-start
			errs[i] = pg.Migrate(ctx, pool, "widgets", serviceMigrations, slog.New(slog.DiscardHandler))
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate: %v", i, err)
		}
	}

	pool := pools[0]
	rows, err := pool.Query(ctx, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'widgets' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// River's tables are in every service schema (package jobs).
	want := []string{"applied_events", "migrations", "outbox", "platform_migrations",
		"river_job", "river_leader", "river_migration", "river_notification", "river_queue", "widgets"}
	if diff := cmp.Diff(want, tables); diff != "" {
		t.Errorf("tables in schema widgets (-want +got):\n%s", diff)
	}

	var widgets int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&widgets); err != nil {
		t.Fatal(err)
	}
	if widgets != 1 {
		t.Errorf("widgets has %d rows, want 1: a migration ran more than once", widgets)
	}

	for table, want := range map[string][]int64{"platform_migrations": {1, 2}, "migrations": {1, 2}} {
		rows, err := pool.Query(ctx, "SELECT version_id FROM widgets."+table+" WHERE version_id > 0 AND is_applied ORDER BY version_id")
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("versions in %s (-want +got):\n%s", table, diff)
		}
	}
	var river, riverRows int
	pool.QueryRow(ctx, "SELECT count(DISTINCT version), count(*) FROM widgets.river_migration").Scan(&river, &riverRows)
	if river == 0 || river != riverRows {
		t.Errorf("river_migration: %d versions in %d rows, want each once", river, riverRows)
	}

	// Nothing lands in public.
	var public int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`).Scan(&public); err != nil {
		t.Fatal(err)
	}
	if public != 0 {
		t.Errorf("Migrate created %d tables in schema public", public)
	}

	// A restart migrates nothing more.
	if err := pg.Migrate(ctx, pool, "widgets", serviceMigrations, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&widgets); err != nil {
		t.Fatal(err)
	}
	if widgets != 1 {
		t.Errorf("after a restart widgets has %d rows, want 1", widgets)
	}
}

// TestMigrateSchemasApart migrates two services into one database: each gets
// its own tables.
func TestMigrateSchemasApart(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	a := connect(t, url, "svc_a")
	b := connect(t, url, "svc_b")
	if err := pg.Migrate(ctx, a, "svc_a", serviceMigrations, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, b, "svc_b", fstest.MapFS{}, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	schemasOf := func(table string) []string {
		rows, err := a.Query(ctx, `SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relname = $1 AND c.relkind = 'r' ORDER BY 1`, table)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for table, want := range map[string][]string{
		"outbox":         {"svc_a", "svc_b"},
		"applied_events": {"svc_a", "svc_b"},
		"widgets":        {"svc_a"},
	} {
		if diff := cmp.Diff(want, schemasOf(table)); diff != "" {
			t.Errorf("schemas holding %s (-want +got):\n%s", table, diff)
		}
	}
	// Unqualified names resolve in the pool's own schema only.
	var visible bool
	if err := b.QueryRow(ctx, "SELECT to_regclass('widgets') IS NOT NULL").Scan(&visible); err != nil {
		t.Fatal(err)
	}
	if visible {
		t.Error("svc_b sees svc_a's widgets table")
	}
	if _, err := a.Exec(ctx, "INSERT INTO outbox (id, subject, payload) VALUES (gen_random_uuid(), 's', '')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("svc_b's outbox holds %d events written to svc_a's", n)
	}
}

func TestConnectRejectsBadSchemaName(t *testing.T) {
	for _, schema := range []string{
		"",
		"Accounts",
		"mail-services",
		"1accounts",
		"accounts;drop schema public",
		`"accounts"`,
		"accounts.outbox",
		"accounts ",
		strings.Repeat("a", 64),
	} {
		t.Run(schema, func(t *testing.T) {
			// The name is checked before anything is dialled.
			pool, err := pg.Connect(context.Background(), "postgres://nowhere.invalid/db", schema)
			if err == nil {
				pool.Close()
				t.Fatalf("Connect(schema %q) succeeded", schema)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("schema name %q", schema)) {
				t.Errorf("Connect(schema %q) = %v, want an error naming the schema", schema, err)
			}
		})
	}
}

func TestConnect(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	longest := strings.Repeat("a", 63)
	for _, schema := range []string{"accounts", "_private", "mail_services2", longest} {
		t.Run(schema, func(t *testing.T) {
			pool := connect(t, url, schema)
			var searchPath, app string
			if err := pool.QueryRow(ctx, "SELECT current_setting('search_path'), current_setting('application_name')").Scan(&searchPath, &app); err != nil {
				t.Fatal(err)
			}
			wantApp := "mailplane-" + schema
			wantApp = wantApp[:min(len(wantApp), 63)] // PostgreSQL's limit
			if searchPath != schema || app != wantApp {
				t.Errorf("search_path, application_name = %q, %q; want %q, %q", searchPath, app, schema, wantApp)
			}
		})
	}

	if _, err := pg.Connect(ctx, "postgres://postgres@127.0.0.1:1/none?connect_timeout=2", "accounts"); err == nil {
		t.Error("Connect to a closed port succeeded")
	}
	if _, err := pg.Connect(ctx, "::not a url", "accounts"); err == nil || !strings.Contains(err.Error(), "parse database url") {
		t.Errorf("Connect(malformed url) = %v, want a parse error", err)
	}
}

func TestInTx(t *testing.T) {
	pool := pgtest.NewPool(t, "txtest", serviceMigrations)
	ctx := context.Background()
	errBoom := errors.New("boom")

	err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO widgets (id, name) VALUES (2, 'kept')"); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO widgets (id, name) VALUES (3, 'rolled back')"); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Errorf("InTx = %v, want the function's error", err)
	}
	rows, err := pool.Query(ctx, "SELECT name FROM widgets ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"first", "kept"}, names); diff != "" {
		t.Errorf("widgets (-want +got):\n%s", diff)
	}
}

func TestIsUniqueViolation(t *testing.T) {
	pool := pgtest.NewPool(t, "uniquetest", serviceMigrations)
	ctx := context.Background()
	exec := func(sql string) error {
		_, err := pool.Exec(ctx, sql)
		return err
	}
	dupName := exec("INSERT INTO widgets (id, name) VALUES (2, 'first')")
	dupID := exec("INSERT INTO widgets (id, name) VALUES (1, 'other')")
	notNull := exec("INSERT INTO widgets (id, name) VALUES (3, NULL)")

	tests := []struct {
		name       string
		err        error
		constraint string
		want       bool
	}{
		{"any constraint", dupName, "", true},
		{"the named constraint", dupName, "widgets_name_key", true},
		{"the primary key", dupID, "widgets_pkey", true},
		{"another constraint", dupName, "widgets_pkey", false},
		{"wrapped", fmt.Errorf("create widget: %w", dupName), "widgets_name_key", true},
		{"not-null violation", notNull, "", false},
		{"plain error", errors.New("duplicate key value violates unique constraint"), "", false},
		{"nil", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pg.IsUniqueViolation(tt.err, tt.constraint); got != tt.want {
				t.Errorf("IsUniqueViolation(%v, %q) = %v, want %v", tt.err, tt.constraint, got, tt.want)
			}
		})
	}
}

// TestMigrateWithOneConnection migrates through a pool of one connection, as
// a small deployment may configure (pool_max_conns=1): the advisory lock must
// not starve the migrations of their connection.
func TestMigrateWithOneConnection(t *testing.T) {
	pool := connect(t, pgtest.NewDatabase(t)+"?pool_max_conns=1", "widgets")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pg.Migrate(ctx, pool, "widgets", serviceMigrations, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM widgets").Scan(&n); err != nil || n != 1 {
		t.Fatalf("widgets: %d, %v; want 1 row", n, err)
	}
}
