package filters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Scripts are an address's Sieve scripts by name, as the mail store
// holds them.
type Scripts map[string]string

// Installer puts an address's scripts in the mail store (helper
// "install" writes the Dovecot one). It must be idempotent: a retry
// installs the same scripts again.
type Installer interface {
	Install(ctx context.Context, login string, scripts Scripts) error
}

// Compiler turns an address's rules and settings into its scripts (the
// rules package's compiler).
type Compiler interface {
	Compile(rules []*Rule, settings *Settings) (Scripts, error)
}

// installArgs is the job that installs an address's scripts.
type installArgs struct {
	Address uuid.UUID `json:"address"`
}

func (installArgs) Kind() string { return "install_scripts" }

// InsertOpts: a job per change, not one unique per address: River
// records a job's completion after its Work returns, and a change in
// that window would find the job "running" and queue none. Jobs of one
// address take turns (installAddress's lock), and those that find
// nothing pending are cheap.
func (installArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: installAttempts}
}

// installAttempts bounds the retries of one job: with the backoff's hour
// at most, a mail store down for about a day. The pending row stays
// after that, and the next change (or ReinstallPending) tries again.
const installAttempts = 30

const (
	// onConflictPending marks an address that is pending already again: a
	// new version, and a failure forgotten (the install job skips a
	// failed row), so that the change is installed; after a failure, the
	// wait starts again. Every way of marking ends with it.
	onConflictPending = `
ON CONFLICT (address_id) DO UPDATE SET version = pending_installs.version + 1, failed_time = NULL, failure = '',
    since = CASE WHEN pending_installs.failed_time IS NULL THEN pending_installs.since ELSE now() END`
	upsertPending = `
INSERT INTO pending_installs (address_id) VALUES ($1)` + onConflictPending
	selectPending = `
SELECT p.version, a.login FROM pending_installs p JOIN addresses a ON a.id = p.address_id
WHERE p.address_id = $1 AND p.failed_time IS NULL`
	deletePending = `DELETE FROM pending_installs WHERE address_id = $1 AND version = $2`
	// markFailed keeps a refused change from being tried again (the
	// sweep skips it) until the address changes.
	markFailed = `UPDATE pending_installs SET failed_time = now(), failure = $3 WHERE address_id = $1 AND version = $2`
	// lockInstall makes the install jobs of one address take turns.
	lockInstall = `SELECT pg_advisory_xact_lock(hashtextextended('filters.install/' || $1::text, 0))`
)

// markPending records in tx that a's scripts changed.
func markPending(ctx context.Context, tx pgx.Tx, a uuid.UUID) error {
	if _, err := tx.Exec(ctx, upsertPending, a); err != nil {
		return fmt.Errorf("mark scripts to install: %w", err)
	}
	return nil
}

// changed marks a's scripts to install and queues the job, in tx.
func (s *Server) changed(ctx context.Context, tx pgx.Tx, a uuid.UUID) error {
	if err := markPending(ctx, tx, a); err != nil {
		return err
	}
	if s.jobs == nil {
		return nil
	}
	if _, err := s.jobs.InsertTx(ctx, tx, installArgs{Address: a}, nil); err != nil {
		return fmt.Errorf("queue install: %w", err)
	}
	return nil
}

// ReinstallPending queues a job for every address whose scripts are
// still to install (periodic work): changes made by events, and those
// whose jobs gave up, are installed in the end.
func (s *Server) ReinstallPending(ctx context.Context) (int, error) {
	rows, err := s.pool.Query(ctx, `SELECT address_id FROM pending_installs WHERE failed_time IS NULL ORDER BY since LIMIT 10000`)
	if err != nil {
		return 0, fmt.Errorf("read pending installs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return 0, fmt.Errorf("read pending installs: %w", err)
	}
	for _, id := range ids {
		// Unique among the sweep's own: a Dovecot down for hours gets one
		// retrying job per address, not one more every sweep.
		opts := &river.InsertOpts{MaxAttempts: installAttempts, UniqueOpts: *jobs.Unique()}
		if _, err := s.jobs.Insert(ctx, installArgs{Address: id}, opts); err != nil {
			return 0, fmt.Errorf("queue install: %w", err)
		}
	}
	return len(ids), nil
}

type installWorker struct {
	river.WorkerDefaults[installArgs]
	s *Server
}

// NextRetry backs off from 10 s to an hour: a mail store that is down is
// tried again without hammering it.
func (w *installWorker) NextRetry(job *river.Job[installArgs]) time.Time {
	return jobs.Backoff(job.Attempt, 10*time.Second, time.Hour)
}

func (w *installWorker) Work(ctx context.Context, job *river.Job[installArgs]) error {
	return w.s.installAddress(ctx, job.Args.Address)
}

// installAddress compiles and installs a's scripts as they are now, and
// clears the pending mark unless a change came meanwhile (its own job
// installs it). The jobs of one address take turns, holding a lock on
// it for the install: otherwise an older state read first could be
// installed last.
//
// Scripts Dovecot refuses (*install.ScriptError) are our compiler's bug:
// the address is marked failed, logged and counted, and the job
// cancelled rather than retried for a day; its next change tries again.
func (s *Server) installAddress(ctx context.Context, a uuid.UUID) error {
	if s.install == nil || s.compile == nil {
		// Kept pending: installed once the process has an installer.
		return nil
	}
	var refused error
	installed := false
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockInstall, a); err != nil {
			return fmt.Errorf("lock install: %w", err)
		}
		var version int64
		var login string
		if err := tx.QueryRow(ctx, selectPending, a).Scan(&version, &login); err != nil {
			if err == pgx.ErrNoRows {
				return nil // installed already, refused, or the address is gone
			}
			return fmt.Errorf("read pending install: %w", err)
		}
		rules, settings, err := loadAll(ctx, tx, a)
		if err != nil {
			return err
		}
		scripts, err := s.compile.Compile(rules, settings)
		if err != nil {
			return fmt.Errorf("compile scripts of %s: %w", login, err)
		}
		err = s.install.Install(ctx, login, scripts)
		var se *install.ScriptError
		if errors.As(err, &se) {
			refused = fmt.Errorf("dovecot refused the scripts of %s: %w", login, err)
			if _, err := tx.Exec(ctx, markFailed, a, version, se.Error()); err != nil {
				return fmt.Errorf("mark install failed: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("install scripts of %s: %w", login, err)
		}
		if _, err := tx.Exec(ctx, deletePending, a, version); err != nil {
			return fmt.Errorf("clear pending install: %w", err)
		}
		installed = true
		return nil
	})
	switch {
	case err != nil:
		s.metrics.installs.Add(ctx, 1, outcomeRetry)
		return err
	case refused != nil:
		s.metrics.installs.Add(ctx, 1, outcomeRefused)
		s.log.ErrorContext(ctx, "scripts refused by dovecot: not retried until the address changes (a compiler bug)",
			"address", a.String(), "error", refused)
		return river.JobCancel(refused)
	}
	if installed {
		s.metrics.installs.Add(ctx, 1, outcomeInstalled)
	}
	return nil
}

// installMetrics count installs by outcome: installed, retry (Dovecot
// unreachable or failing: the job tries again) and refused (scripts
// Dovecot does not compile: alert on any).
type installMetrics struct {
	installs metric.Int64Counter
}

var (
	outcomeInstalled = metric.WithAttributes(attribute.String("outcome", "installed"))
	outcomeRetry     = metric.WithAttributes(attribute.String("outcome", "retry"))
	outcomeRefused   = metric.WithAttributes(attribute.String("outcome", "refused"))
)

// SetMeter sets where the install metrics go; nil: the process's meter.
func (s *Server) SetMeter(m metric.Meter) {
	if m == nil {
		m = otel.Meter("github.com/mailplane/mailplane/services/filters")
	}
	// An instrument that cannot be made is a no-op: metrics never stop
	// an install.
	s.metrics.installs, _ = m.Int64Counter("mailplane.filters.installs", metric.WithUnit("{install}"),
		metric.WithDescription("Installs of an address's scripts, by outcome: installed, retry, refused (Dovecot does not compile them: a compiler bug)."))
}
