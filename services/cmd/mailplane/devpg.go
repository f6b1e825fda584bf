package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// devPostgres is a private PostgreSQL cluster under the dev data directory,
// made and run with the machine's own PostgreSQL binaries.
type devPostgres struct {
	bin  string // directory holding initdb, pg_ctl, postgres
	dir  string // data directory
	port int
	// runAs is set when we are root: PostgreSQL refuses to run as root, so
	// the cluster belongs to the postgres system user.
	runAs string
}

const noPostgres = `no PostgreSQL server binaries found (initdb, pg_ctl).
Either install them (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql)
or point Mailplane at a running server: MAILPLANE_DATABASE_URL=postgres://user@host:5432/db make run`

// findPostgres locates initdb and pg_ctl: on PATH, or in Debian's versioned
// directories, newest first.
func findPostgres() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New(noPostgres)
}

func pgVersion(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func newDevPostgres(dataDir string, port int) (*devPostgres, error) {
	bin, err := findPostgres()
	if err != nil {
		return nil, err
	}
	// Absolute, because the server resolves its socket directory from its
	// own working directory.
	dir, err := filepath.Abs(filepath.Join(dataDir, "postgres"))
	if err != nil {
		return nil, err
	}
	p := &devPostgres{bin: bin, dir: dir, port: port}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, errors.New("running as root: PostgreSQL refuses root, and there is no postgres user to run it as; run as another user or set MAILPLANE_DATABASE_URL")
		}
		p.runAs = "postgres"
	}
	return p, nil
}

func (p *devPostgres) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.runAs != "" {
		return exec.CommandContext(ctx, "runuser", append([]string{"-u", p.runAs, "--", path}, args...)...)
	}
	return exec.CommandContext(ctx, path, args...)
}

func (p *devPostgres) run(ctx context.Context, name string, args ...string) error {
	cmd := p.command(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}

// Start creates the cluster on first use, starts it, and returns the URL of
// its "mailplane" database.
func (p *devPostgres) Start(ctx context.Context) (string, error) {
	if _, err := os.Stat(filepath.Join(p.dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(p.dir, 0o700); err != nil {
			return "", err
		}
		if p.runAs != "" {
			if err := p.chown(); err != nil {
				return "", err
			}
		}
		if err := p.run(ctx, "initdb", "-D", p.dir, "-U", "mailplane", "--auth=trust", "-E", "UTF8", "--no-instructions"); err != nil {
			return "", err
		}
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", p.port, p.dir)
	if err := p.run(ctx, "pg_ctl", "-D", p.dir, "-l", filepath.Join(p.dir, "server.log"), "-o", opts, "-w", "start"); err != nil {
		return "", fmt.Errorf("start dev PostgreSQL (port %d busy? see %s): %w", p.port, filepath.Join(p.dir, "server.log"), err)
	}
	base := fmt.Sprintf("postgres://mailplane@127.0.0.1:%d/", p.port)
	conn, err := pgx.Connect(ctx, base+"postgres")
	if err != nil {
		return "", fmt.Errorf("connect to dev PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'mailplane')").Scan(&exists); err != nil {
		return "", err
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE mailplane"); err != nil {
			return "", err
		}
	}
	return base + "mailplane", nil
}

// chown gives the cluster directory to the postgres user.
func (p *devPostgres) chown() error {
	u, err := user.Lookup(p.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(p.dir, uid, gid)
}

// Stop shuts the cluster down, letting it finish its checkpoint.
func (p *devPostgres) Stop() error {
	return p.run(context.Background(), "pg_ctl", "-D", p.dir, "-m", "fast", "-w", "stop")
}
