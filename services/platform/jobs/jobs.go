// Package jobs runs a service's background work on River
// (github.com/riverqueue/river): jobs inserted in the transaction of the
// change that causes them, retried with backoff, discarded (dead letters)
// after their last attempt, unique where asked, rescued when the process
// working them died, and periodic work run by one replica.
//
// River's tables live in the service's own schema, beside its outbox: a
// service's jobs are its own data, migrated with it (pg.Migrate runs
// Migrate under the schema's migration lock), and one service's queue,
// upgrade or backlog never touches another's. Each schema has its own
// LISTEN/NOTIFY topics and its own leader.
//
// For an SRE, the jobs of a service are rows of <schema>.river_job: a job
// that used up its attempts is state 'discarded', kept for 7 days with
// every attempt's error in its errors column:
//
//	SELECT id, kind, args, attempt, errors[array_length(errors, 1)]->>'error' AS last_error, finalized_at
//	FROM accounts.river_job WHERE state = 'discarded' ORDER BY finalized_at DESC;
//
// and `UPDATE accounts.river_job SET state = 'available', max_attempts = attempt + 1,
// scheduled_at = now(), finalized_at = NULL WHERE id = …` runs one again
// (Client.JobRetry does the same in code).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/metric"
)

// Client inserts and works a service's jobs.
type Client = river.Client[pgx.Tx]

// Defaults of Config.
const (
	// defaultMaxWorkers is how many jobs a replica works at once.
	defaultMaxWorkers = 10
	// defaultRescueAfter is how long a job may be running before its worker
	// counts as dead and the job is run again; a kind whose Timeout is longer
	// waits for it. River's own default, an hour, is long for jobs a person
	// waits for.
	defaultRescueAfter = 2 * time.Minute
	// softStop is how long Run lets running jobs finish when it stops
	// before cancelling them; a cancelled job is retried at once, by another
	// replica or after the restart.
	softStop = 5 * time.Second
)

// Config says what a service's client does.
type Config struct {
	// Schema is the service's schema, which holds River's tables.
	Schema string
	// Workers work the service's job kinds; nil: the client only inserts.
	Workers *river.Workers
	// Periodic is work repeated on one replica at a time.
	Periodic []Periodic
	// MaxWorkers bounds the jobs worked at once in this process; 0: 10.
	MaxWorkers int
	// RescueAfter is how long a job may run before it is taken as
	// abandoned and run again; 0: 2 minutes. A kind whose worker's Timeout
	// is longer waits for it.
	RescueAfter time.Duration
	Log         *slog.Logger
	// Meter reports the client's metrics (ObserveQueue's gauges, attempts
	// by outcome) when it works jobs; nil: the process's.
	Meter metric.Meter

	// test shortens polls for tests (see StartForTest).
	test bool
}

// New returns a client of c.Schema's jobs through pool.
func New(pool *pgxpool.Pool, c Config) (*Client, error) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rc := &river.Config{
		Schema:               c.Schema,
		Logger:               log,
		RescueStuckJobsAfter: c.RescueAfter,
		SoftStopTimeout:      softStop,
		TestOnly:             c.test,
	}
	if rc.RescueStuckJobsAfter == 0 {
		rc.RescueStuckJobsAfter = defaultRescueAfter
	}
	workers := c.Workers
	if len(c.Periodic) > 0 {
		if workers == nil {
			workers = river.NewWorkers()
		}
		pw := &periodicWorker{byName: map[string]Periodic{}, log: log}
		for _, p := range c.Periodic {
			if p.Name == "" || p.Interval <= 0 || p.Work == nil {
				return nil, fmt.Errorf("jobs %s: periodic %q: want a name, a positive interval and work", c.Schema, p.Name)
			}
			if _, ok := pw.byName[p.Name]; ok {
				return nil, fmt.Errorf("jobs %s: periodic %q twice", c.Schema, p.Name)
			}
			pw.byName[p.Name] = p
			rc.PeriodicJobs = append(rc.PeriodicJobs, p.job())
		}
		if err := river.AddWorkerSafely(workers, pw); err != nil {
			return nil, fmt.Errorf("jobs %s: %w", c.Schema, err)
		}
	}
	if workers != nil {
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: orDefault(c.MaxWorkers, defaultMaxWorkers)}}
		rc.Middleware = []rivertype.Middleware{newOutcomes(c.meter(), c.Schema)}
	}
	if c.test {
		rc.FetchCooldown = 10 * time.Millisecond
		rc.FetchPollInterval = 50 * time.Millisecond
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("jobs %s: %w", c.Schema, err)
	}
	if workers != nil {
		// The client that works the jobs reports the queue, for as long
		// as its meter's provider lives (the process): one per service
		// and process, where an inserter would make duplicates.
		if _, err := ObserveQueue(c.meter(), pool, c.Schema); err != nil {
			log.Warn("jobs: no queue gauges", "schema", c.Schema, "error", err)
		}
	}
	return client, nil
}

func orDefault(n, def int) int {
	if n > 0 {
		return n
	}
	return def
}

// startRetry and startRetryLimit space Run's attempts to start while the
// database cannot be reached.
const (
	startRetry      = 500 * time.Millisecond
	startRetryLimit = 10 * time.Second
)

// Run works c's jobs until ctx is done, then stops: running jobs get a few
// seconds to finish before their contexts are cancelled. A database that
// cannot be reached at start is waited for.
func Run(ctx context.Context, c *Client) error {
	for attempt := 1; ; attempt++ {
		// Jobs keep ctx's values but not its cancellation, which would
		// cancel running jobs at once instead of letting them finish.
		err := c.Start(context.WithoutCancel(ctx))
		if err == nil {
			break
		}
		// A database that cannot be reached right now (down, failing
		// over, out of connections) is waited for, as the outbox relay
		// waits: returning would end a process that already serves, and
		// every replica started in the meantime with it (River logs each
		// failure, and a failed Start can be tried again).
		var ce *pgconn.ConnectError
		if !errors.As(err, &ce) {
			return fmt.Errorf("start jobs: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(Backoff(attempt, startRetry, startRetryLimit))):
		}
	}
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*softStop)
	defer cancel()
	if err := c.Stop(stop); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop jobs: %w", err)
	}
	return nil
}

// Migrate creates or updates River's tables in schema. The caller holds
// the schema's migration lock (pg.Migrate does).
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: log})
	if err != nil {
		return fmt.Errorf("migrate %s jobs: %w", schema, err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate %s jobs: %w", schema, err)
	}
	return nil
}

// Migrations are River's migrations, in the order Migrate applies them;
// they change only with River's version.
func Migrations() ([]rivermigrate.Migration, error) {
	m, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	return m.AllVersions(), nil
}

// Unique makes one job of its kind and args at a time: another insert
// while one is waiting, running or to be retried finds it instead
// (JobInsertResult.UniqueSkippedAsDuplicate), and one that completed, was
// cancelled or discarded does not stop a new one.
func Unique() *river.UniqueOpts {
	return &river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
		rivertype.JobStateRetryable, rivertype.JobStateScheduled,
	}}
}

// Backoff is when to retry after attempt failed: first after the first
// failure, twice as long after each next one, at most limit; for a
// worker's NextRetry.
func Backoff(attempt int, first, limit time.Duration) time.Time {
	d := first << min(attempt-1, 30)
	if d <= 0 || d > limit {
		d = limit
	}
	return time.Now().Add(d)
}
