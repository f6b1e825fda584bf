// Package events connects services to NATS JetStream: the stream every
// service publishes to (through its outbox) and durable consumers that apply
// each event at most once.
package events

import (
	"context"
	"errors"
	"fmt"
	"github.com/google/uuid"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
)

// Connect opens a connection to NATS that keeps reconnecting, and its
// JetStream context. Publishing waits at most 5 s for an acknowledgement.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to nats %s: %w", url, err)
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
// the event redelivered later.
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
	JS      jetstream.JetStream
	Pool    *pgxpool.Pool
	Stream  string
	Durable string
	// Subjects filter the stream (full subjects, prefix included).
	Subjects []string
	Handle   Handler
	Log      *slog.Logger
}

const recordApplied = `
INSERT INTO applied_events (consumer, event_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING`

// Run consumes until ctx is done.
func (c *Consumer) Run(ctx context.Context) error {
	cons, err := c.JS.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable:        c.Durable,
		FilterSubjects: c.Subjects,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxDeliver:     -1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Durable, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { c.apply(ctx, m) })
	if err != nil {
		return fmt.Errorf("consumer %s: %w", c.Durable, err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

func (c *Consumer) apply(ctx context.Context, m jetstream.Msg) {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	if _, err := uuid.Parse(id); err != nil {
		// Not from an outbox: it can never be recorded, so never applied.
		c.Log.Error("event without a valid id dropped", "consumer", c.Durable, "subject", m.Subject(), "eventId", id)
		_ = m.Term()
		return
	}
	ctx = otel.GetTextMapPropagator().Extract(ctx, natsHeader(m.Headers()))
	err := pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, recordApplied, c.Durable, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errAlreadyApplied
		}
		return c.Handle(ctx, tx, m)
	})
	switch {
	case err == nil || errors.Is(err, errAlreadyApplied):
		if err := m.Ack(); err != nil {
			c.Log.Warn("event ack failed", "consumer", c.Durable, "eventId", id, "error", err)
		}
	default:
		c.Log.ErrorContext(ctx, "event not applied; will be redelivered", "consumer", c.Durable, "subject", m.Subject(), "eventId", id, "error", err)
		_ = m.NakWithDelay(5 * time.Second)
	}
}

var errAlreadyApplied = errors.New("event already applied")

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
