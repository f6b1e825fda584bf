// Package pg connects a service to its PostgreSQL schema, migrates it, and
// runs transactions.
package pg

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/pressly/goose/v3"
)

// platformMigrations create the tables every service schema has: the outbox
// and the record of events a consumer applied.
//
//go:embed migrations/*.sql
var platformMigrations embed.FS

// defaultMaxConns is each service's pool size unless the database URL sets
// pool_max_conns.
const defaultMaxConns = 16

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Connect opens a pool whose connections work in schema: unqualified names in
// the service's SQL resolve there and nowhere else.
func Connect(ctx context.Context, url, schema string) (*pgxpool.Pool, error) {
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("schema name %q: want lower-case letters, digits and _", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default (4 on a small machine) caps a service at a few
		// hundred transactions a second; a URL's pool_max_conns still wins.
		cfg.MaxConns = defaultMaxConns
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "mailplane-" + schema
	cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
		registerUUID(c.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// Migrate creates schema if needed and applies the platform's migrations,
// then River's, whose job tables every service schema has (package jobs),
// then the service's (the *.sql files at the root of migrations), which so
// may queue jobs. An advisory lock held for the whole run lets several
// replicas start at once. Whatever it applies goes into Fingerprint too.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, migrations fs.FS, log *slog.Logger) error {
	// The lock lives on a connection of its own: goose takes its connections
	// from the pool, which may hold a single one.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	h := fnv.New64a()
	h.Write([]byte("mailplane-migrate:" + schema))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("migrate %s: lock: %w", schema, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("migrate %s: create schema: %w", schema, err)
	}
	platform, err := fs.Sub(platformMigrations, "migrations")
	if err != nil {
		return err
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	for _, m := range []struct {
		table string
		fsys  fs.FS
	}{
		{"platform_migrations", platform},
		{"migrations", migrations},
	} {
		p, err := goose.NewProvider(goose.DialectPostgres, db, m.fsys,
			goose.WithTableName(schema+"."+m.table),
			goose.WithDisableGlobalRegistry(true))
		if errors.Is(err, goose.ErrNoMigrations) {
			continue
		}
		if err != nil {
			return fmt.Errorf("migrate %s: %w", schema, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", schema, err)
		}
		for _, r := range results {
			log.Info("migration applied", "schema", schema, "migration", r.Source.Path, "duration", r.Duration)
		}
		if m.table == "platform_migrations" {
			if err := jobs.Migrate(ctx, pool, schema, log); err != nil {
				return err
			}
		}
	}
	return nil
}

// Fingerprint identifies what Migrate applies to schema from migrations: the
// schema's name, the platform's migrations, River's and the service's. Two
// databases migrated with the same fingerprint hold the same tables, so
// tests name the template databases they copy after it.
func Fingerprint(schema string, migrations fs.FS) (string, error) {
	h := sha256.New()
	// Lengths keep one migration's end from passing for the next's start.
	add := func(kind, name string, b []byte) {
		fmt.Fprintf(h, "%s %s %d\n", kind, name, len(b))
		h.Write(b)
	}
	add("schema", schema, nil)
	river, err := jobs.Migrations()
	if err != nil {
		return "", fmt.Errorf("fingerprint migrations of %s: %w", schema, err)
	}
	for _, m := range river {
		add("river", strconv.Itoa(m.Version), []byte(m.SQLUp))
	}
	for _, m := range []struct {
		kind string
		fsys fs.FS
	}{
		{"platform", platformMigrations},
		{"service", migrations},
	} {
		err := fs.WalkDir(m.fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(m.fsys, path)
			add(m.kind, path, b)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("fingerprint %s migrations of %s: %w", m.kind, schema, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// InTx runs fn in a transaction, committing when it returns nil.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// IsUniqueViolation reports whether err is a unique-constraint violation,
// optionally of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// IsForeignKeyViolation reports whether err is a foreign-key violation,
// optionally of the named constraint.
func IsForeignKeyViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503" && (constraint == "" || pe.ConstraintName == constraint)
}
