// Package events connects services to NATS JetStream: the stream every
// service publishes to (through its outbox) and durable consumers that apply
// each event at most once.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Connect opens a connection to NATS that keeps reconnecting, and its
// JetStream context. Publishing waits at most 5 s for an acknowledgement.
func Connect(c NATS, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(c.URL, append(c.options(),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", redacted(nc.ConnectedUrl())) }),
	)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", redacted(c.URL), err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// EnsureStream creates or updates the stream that holds every subject under
// prefix, with replicas copies in a NATS cluster. The duplicate window is what
// makes a relay's retry harmless.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name, prefix string, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{prefix + ".>"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
		Replicas:   replicas,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", name, err)
	}
	return nil
}

// Handler applies one event inside tx. Returning an error rolls back and has
// the event redelivered later. tx may hold other events of a batch, and a
// batch that fails is applied again event by event: a handler acts through
// tx only, so that running it again after a rollback changes nothing twice.
// A Consumer without a Pool passes a nil tx (see Consumer.Pool).
type Handler func(ctx context.Context, tx pgx.Tx, msg jetstream.Msg) error

// Subscription is what a service consumes: a durable consumer name, the
// subjects it reads (relative to the deployment's prefix, e.g.
// "*.audit.recorded") and the handler that applies each event.
type Subscription struct {
	Durable  string
	Subjects []string
	Handle   Handler
}

// Consumer is a durable JetStream consumer whose handler runs in a database
// transaction that also records the event id, so an event redelivered after a
// crash or a lost ack is recognised and skipped.
type Consumer struct {
	JS jetstream.JetStream
	// Pool may be nil for a handler that works outside any database and
	// whose effect is the same done twice (removing a directory): events
	// are then not recorded, and the handler gets a nil tx.
	Pool    *pgxpool.Pool
	Stream  string
	Durable string
	// Subjects filter the stream (full subjects, prefix included).
	Subjects []string
	// Catalog, when set, has Run refuse Subjects that match no subject a
	// service declares. Processes always set it; tests may consume
	// subjects of their own.
	Catalog *Catalog
	Handle  Handler
	Log     *slog.Logger
	// Meter reports the consumer's metrics; nil: the process's.
	Meter metric.Meter
	// PendingEvery is how often the consumer reads its pending counts
	// from JetStream for its gauges; 0: 10 s.
	PendingEvery time.Duration
	// Tracer starts the spans of the events handled; nil: the process's.
	Tracer trace.Tracer

	m consumerMetrics
}

// consumerMetrics are what SREs watch of a consumer: events applied, events
// that failed and wait for redelivery, events dropped for good, and how
// long after their publication events were applied (the consumer's lag).
type consumerMetrics struct {
	applied, failed, dropped metric.Int64Counter
	lag                      metric.Float64Histogram
	attrs                    metric.MeasurementOption
}

// meter is Meter, or the process's.
func (c *Consumer) meter() metric.Meter {
	if c.Meter != nil {
		return c.Meter
	}
	return otel.Meter("github.com/mailplane/mailplane/services/platform/events")
}

func (c *Consumer) setUpMetrics() {
	m := c.meter()
	// An instrument that cannot be made is a no-op: metrics never stop the
	// consumer.
	c.m.applied, _ = m.Int64Counter("mailplane.events.applied", metric.WithUnit("{event}"),
		metric.WithDescription("Events applied (or recognised as applied before) and acknowledged."))
	c.m.failed, _ = m.Int64Counter("mailplane.events.failed", metric.WithUnit("{event}"),
		metric.WithDescription("Events whose handler failed; JetStream delivers them again."))
	c.m.dropped, _ = m.Int64Counter("mailplane.events.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Events without a valid id, never applied."))
	c.m.lag, _ = m.Float64Histogram("mailplane.events.lag", metric.WithUnit("s"),
		metric.WithDescription("Time from an event's publication to its application."),
		metric.WithExplicitBucketBoundaries(telemetry.DelayBuckets()...))
	c.m.attrs = metric.WithAttributes(attribute.String("consumer", c.Durable))
}

// recordApplied records event ids and returns those that were not applied
// before.
const recordApplied = `
INSERT INTO applied_events (consumer, event_id) SELECT $1, unnest($2::uuid[])
ON CONFLICT DO NOTHING
RETURNING event_id`

const (
	// maxBatch is how many waiting events one transaction applies at most.
	maxBatch = 100
	// drainTimeout bounds how long a stopping consumer applies what it
	// was already given.
	drainTimeout = 10 * time.Second
)

// Run consumes until ctx is done. Events that are already waiting when the
// consumer gets to them are applied together, in one transaction, so a busy
// stream costs one commit per batch rather than per event; an idle one is
// applied event by event as it arrives.
func (c *Consumer) Run(ctx context.Context) error {
	if c.Catalog != nil {
		if err := c.Catalog.Check(c.Subjects); err != nil {
			return fmt.Errorf("consumer %s: %w", c.Durable, err)
		}
	}
	c.setUpMetrics()
	if c.Tracer == nil {
		c.Tracer = otel.Tracer("github.com/mailplane/mailplane/services/platform/events")
	}
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable:        c.Durable,
		FilterSubjects: c.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting, as a process may be
		}
		return fmt.Errorf("consumer %s: %w", c.Durable, err)
	}
	defer c.observePending(ctx, cons)()
	msgs := make(chan jetstream.Msg, maxBatch)
	cc, err := cons.Consume(func(m jetstream.Msg) { msgs <- m })
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Durable, err)
	}
	// Messages still arrive while the consumer drains: they are applied,
	// not left to wait for their ack deadline, for up to drainTimeout
	// (then what is left fails and is redelivered to another consumer).
	applyCtx, stopApplying := context.WithCancel(context.WithoutCancel(ctx))
	defer stopApplying()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(drainTimeout, stopApplying) })
	defer stop()
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		c.applyAll(applyCtx, msgs)
	}()
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	close(msgs)
	<-applied
	return nil
}

// applyAll applies msgs until the channel is closed, taking each time what
// is waiting, up to maxBatch.
func (c *Consumer) applyAll(ctx context.Context, msgs <-chan jetstream.Msg) {
	batch := make([]jetstream.Msg, 0, maxBatch)
	for m := range msgs {
		batch = append(batch[:0], m)
	more:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		c.applyBatch(ctx, batch)
	}
}

// applyBatch applies batch in one transaction and acknowledges it. If any
// event of several fails, each is applied again on its own, so that only
// the failing one waits for redelivery.
func (c *Consumer) applyBatch(ctx context.Context, batch []jetstream.Msg) {
	ids := make([]uuid.UUID, 0, len(batch))
	valid := batch[:0:0]
	for _, m := range batch {
		id, err := uuid.Parse(m.Headers().Get(jetstream.MsgIDHeader))
		if err != nil {
			// Not from an outbox: it can never be recorded, so never applied.
			c.Log.Error("event without a valid id dropped", "consumer", c.Durable, "subject", m.Subject(), "eventId", m.Headers().Get(jetstream.MsgIDHeader))
			_ = m.Term()
			c.m.dropped.Add(ctx, 1, c.m.attrs)
			continue
		}
		ids, valid = append(ids, id), append(valid, m)
	}
	if len(valid) == 0 {
		return
	}
	var err error
	if c.Pool == nil {
		err = c.applyTx(ctx, nil, valid, ids)
	} else {
		err = pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error { return c.applyTx(ctx, tx, valid, ids) })
	}
	switch {
	case err == nil:
		for i, m := range valid {
			if err := m.Ack(); err != nil {
				c.Log.Warn("event ack failed", "consumer", c.Durable, "eventId", ids[i], "error", err)
			}
			if md, err := m.Metadata(); err == nil {
				c.m.lag.Record(ctx, time.Since(md.Timestamp).Seconds(), c.m.attrs)
			}
		}
		c.m.applied.Add(ctx, int64(len(valid)), c.m.attrs)
	case len(valid) > 1:
		c.Log.DebugContext(ctx, "event batch not applied; applying its events one by one", "consumer", c.Durable, "events", len(valid), "error", err)
		for _, m := range valid {
			c.applyBatch(ctx, []jetstream.Msg{m})
		}
	default:
		c.Log.ErrorContext(ctx, "event not applied; will be redelivered", "consumer", c.Durable, "subject", valid[0].Subject(), "eventId", ids[0], "error", err)
		_ = valid[0].NakWithDelay(5 * time.Second)
		c.m.failed.Add(ctx, 1, c.m.attrs)
	}
}

// applyTx records msgs (with their ids) as applied and applies those that
// were not before, in tx; with no tx, it applies them all.
func (c *Consumer) applyTx(ctx context.Context, tx pgx.Tx, msgs []jetstream.Msg, ids []uuid.UUID) error {
	fresh := ids
	if tx != nil {
		rows, _ := tx.Query(ctx, recordApplied, c.Durable, ids)
		var err error
		if fresh, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return err
		}
	}
	isFresh := make(map[uuid.UUID]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	for i, m := range msgs {
		if !isFresh[ids[i]] {
			continue // applied before: a redelivery
		}
		isFresh[ids[i]] = false // the same event twice in one batch
		if err := c.handle(ctx, tx, m, ids[i]); err != nil {
			return fmt.Errorf("event %s: %w", ids[i], err)
		}
	}
	return nil
}

// handle runs the handler in a span of its own, a child of the span that
// published m (its context is in m's headers).
func (c *Consumer) handle(ctx context.Context, tx pgx.Tx, m jetstream.Msg, id uuid.UUID) error {
	ctx = otel.GetTextMapPropagator().Extract(ctx, natsHeader(m.Headers()))
	ctx, span := c.Tracer.Start(ctx, "process "+m.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(m.Subject()),
			semconv.MessagingConsumerGroupName(c.Durable),
			semconv.MessagingMessageID(id.String()),
		))
	defer span.End()
	err := c.Handle(ctx, tx, m)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "handler failed")
	}
	return err
}

// natsHeader carries trace context in NATS headers, whose keys, unlike
// HTTP's, are case-sensitive.
type natsHeader nats.Header

func (h natsHeader) Get(k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h natsHeader) Set(k, v string) { h[k] = []string{v} }

func (h natsHeader) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
