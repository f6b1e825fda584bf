package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// queueTimeout bounds the query behind the queue gauges: a slow database
// costs a scrape these gauges, never the whole scrape.
const queueTimeout = time.Second

// queueStates are the states the mailplane.jobs gauge reports, always all
// of them (0 included), so that a panel or an alert finds every series.
// Completed and cancelled jobs are history, not queue.
var queueStates = []string{"available", "scheduled", "retryable", "running", "discarded"}

// selectQueue counts a schema's jobs by state and measures how long the
// oldest available job has been due, in one pass over River's state
// indexes. %s is the schema's river_job table.
const selectQueue = `
SELECT count(*) FILTER (WHERE state = 'available'),
       count(*) FILTER (WHERE state = 'scheduled'),
       count(*) FILTER (WHERE state = 'retryable'),
       count(*) FILTER (WHERE state = 'running'),
       count(*) FILTER (WHERE state = 'discarded'),
       COALESCE(GREATEST(EXTRACT(EPOCH FROM now() - min(scheduled_at) FILTER (WHERE state = 'available')), 0), 0)::float8
FROM %s
WHERE state IN ('available', 'scheduled', 'retryable', 'running', 'discarded')`

// ObserveQueue reports, whenever m's metrics are collected (a scrape),
// schema's jobs by state and how long the oldest available job has waited
// for a worker: a queue whose workers are stuck, too few or not running.
// The jobs are rows of the schema, so every replica reports the same: read
// them with max by (service). New calls it for a client that works jobs.
func ObserveQueue(m metric.Meter, pool *pgxpool.Pool, schema string) (metric.Registration, error) {
	depth, err := m.Int64ObservableGauge("mailplane.jobs", metric.WithUnit("{job}"),
		metric.WithDescription("Jobs by state: available (due, waiting for a worker), scheduled (due later), retryable (failed, to be retried), running, discarded (dead letters, kept 7 days)."))
	if err != nil {
		return nil, fmt.Errorf("jobs gauge: %w", err)
	}
	oldest, err := m.Float64ObservableGauge("mailplane.jobs.oldest_available", metric.WithUnit("s"),
		metric.WithDescription("How long the oldest available job has been due without a worker taking it; 0 when none is available."))
	if err != nil {
		return nil, fmt.Errorf("jobs oldest available gauge: %w", err)
	}
	query := fmt.Sprintf(selectQueue, pgx.Identifier{schema, "river_job"}.Sanitize())
	service := attribute.String("service", schema)
	byState := make([]metric.ObserveOption, len(queueStates))
	for i, s := range queueStates {
		byState[i] = metric.WithAttributes(service, attribute.String("state", s))
	}
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, queueTimeout)
		defer cancel()
		counts := make([]int64, len(queueStates))
		var age float64
		dest := make([]any, 0, len(counts)+1)
		for i := range counts {
			dest = append(dest, &counts[i])
		}
		if err := pool.QueryRow(ctx, query).Scan(append(dest, &age)...); err != nil {
			// Nothing observed: the series go stale rather than lie.
			return fmt.Errorf("jobs queue of %s: %w", schema, err)
		}
		for i, n := range counts {
			o.ObserveInt64(depth, n, byState[i])
		}
		o.ObserveFloat64(oldest, age, metric.WithAttributes(service))
		return nil
	}, depth, oldest)
	if err != nil {
		return nil, fmt.Errorf("jobs gauges: %w", err)
	}
	return reg, nil
}

// meter is c's Meter, or the process's.
func (c Config) meter() metric.Meter {
	if c.Meter != nil {
		return c.Meter
	}
	return otel.Meter("github.com/mailplane/mailplane/services/platform/jobs")
}

// outcomes is the worker middleware counting how each attempt ended, by
// service and job kind.
type outcomes struct {
	river.MiddlewareDefaults
	completed, failed metric.Int64Counter
	service           attribute.KeyValue
}

func newOutcomes(m metric.Meter, schema string) *outcomes {
	o := &outcomes{service: attribute.String("service", schema)}
	// An instrument that cannot be made is a no-op: metrics never stop a job.
	o.completed, _ = m.Int64Counter("mailplane.jobs.completed", metric.WithUnit("{job}"),
		metric.WithDescription("Job attempts that succeeded, by kind."))
	o.failed, _ = m.Int64Counter("mailplane.jobs.failed", metric.WithUnit("{attempt}"),
		metric.WithDescription("Job attempts that failed (an error, a panic, a timeout, a cancellation), by kind; the job is retried unless it was its last attempt."))
	return o
}

// Work counts the attempt's end: a snooze (the job asked to wait) is
// neither a success nor a failure.
func (o *outcomes) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	attrs := metric.WithAttributes(o.service, attribute.String("kind", job.Kind))
	defer func() {
		if p := recover(); p != nil {
			o.failed.Add(ctx, 1, attrs)
			panic(p) // River recovers it and records the attempt's failure
		}
	}()
	err = doInner(ctx)
	var snooze *river.JobSnoozeError
	switch {
	case err == nil:
		o.completed.Add(ctx, 1, attrs)
	case errors.As(err, &snooze):
	default:
		o.failed.Add(ctx, 1, attrs)
	}
	return err
}
