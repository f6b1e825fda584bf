package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// backlogTimeout bounds the query behind the backlog gauges: a slow
// database costs a scrape these gauges, never the whole scrape.
const backlogTimeout = time.Second

// selectBacklog counts the events waiting and measures the age of the
// oldest, by seq (the primary key) rather than by a scan for the least
// created_at; the database's clock on both sides.
const selectBacklog = `
SELECT count(*),
       COALESCE(EXTRACT(EPOCH FROM now() - (SELECT created_at FROM outbox ORDER BY seq LIMIT 1)), 0)::float8
FROM outbox`

// ObserveBacklog reports, whenever m's metrics are collected (a scrape),
// how many events service's outbox in pool holds and how long the oldest
// has waited: what a relay that is stuck, or a broker that refuses, leaves
// behind. The events wait in the database, so the gauges come from the
// database, whatever state the relay is in. Every replica reports the same
// table: read them with max by (service). Unregister the returned
// registration to stop.
func ObserveBacklog(m metric.Meter, pool *pgxpool.Pool, service string) (metric.Registration, error) {
	pending, err := m.Int64ObservableGauge("mailplane.outbox.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events committed to the outbox and not yet published."))
	if err != nil {
		return nil, fmt.Errorf("outbox pending gauge: %w", err)
	}
	oldest, err := m.Float64ObservableGauge("mailplane.outbox.oldest_pending", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest event not yet published; 0 when the outbox is empty."))
	if err != nil {
		return nil, fmt.Errorf("outbox oldest pending gauge: %w", err)
	}
	attrs := metric.WithAttributes(attribute.String("service", service))
	reg, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, backlogTimeout)
		defer cancel()
		var n int64
		var age float64
		if err := pool.QueryRow(ctx, selectBacklog).Scan(&n, &age); err != nil {
			// Nothing observed: the series go stale rather than lie.
			return fmt.Errorf("outbox backlog of %s: %w", service, err)
		}
		o.ObserveInt64(pending, n, attrs)
		o.ObserveFloat64(oldest, age, attrs)
		return nil
	}, pending, oldest)
	if err != nil {
		return nil, fmt.Errorf("outbox backlog gauges: %w", err)
	}
	return reg, nil
}
