// Package outbox makes events as durable as the changes they describe: Write
// stores an event in the caller's transaction, and a Relay publishes stored
// events to NATS JetStream with the event id as Nats-Msg-Id, so a crash
// between commit and publish loses nothing and a retry duplicates nothing.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TypeHeader carries the full protobuf name of an event's payload.
const TypeHeader = "Mailplane-Event-Type"

const insertEvent = `INSERT INTO outbox (id, subject, payload, headers) VALUES ($1, $2, $3, $4)`

// insertEvents stores several events in one statement, in order.
const insertEvents = `
INSERT INTO outbox (id, subject, payload, headers)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::jsonb[])`

// Write stores msg as an event on subject (relative to the deployment's
// subject prefix, e.g. "accounts.organization.created") in tx. The current
// trace context travels with it.
func Write(ctx context.Context, tx pgx.Tx, subject string, msg proto.Message) error {
	id, payload, headers, err := encode(ctx, subject, msg)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertEvent, id, subject, payload, headers); err != nil {
		return fmt.Errorf("outbox: write %s: %w", subject, err)
	}
	return nil
}

// Event is an event to store: its subject, relative to the deployment's
// subject prefix, and its message.
type Event struct {
	Subject string
	Msg     proto.Message
}

// Queue is Write for a batch: events are stored, in one statement, when the
// batch is sent with the change, saving round trips on hot paths.
func Queue(ctx context.Context, b *pgx.Batch, events ...Event) error {
	ids := make([]uuid.UUID, len(events))
	subjects := make([]string, len(events))
	payloads := make([][]byte, len(events))
	headers := make([][]byte, len(events))
	for i, e := range events {
		var err error
		if ids[i], payloads[i], headers[i], err = encode(ctx, e.Subject, e.Msg); err != nil {
			return err
		}
		subjects[i] = e.Subject
	}
	b.Queue(insertEvents, ids, subjects, payloads, headers)
	return nil
}

// outboxColumns are those WriteMany copies.
var outboxColumns = []string{"id", "subject", "payload", "headers"}

// WriteMany is Write for many events, as a bulk change makes them: one COPY
// into the outbox in tx, in order. The events share ctx's trace context,
// so headers are encoded once per message type.
func WriteMany(ctx context.Context, tx pgx.Tx, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	headers := map[protoreflect.FullName][]byte{}
	rows := make([][]any, len(events))
	for i, e := range events {
		payload, err := proto.Marshal(e.Msg)
		if err != nil {
			return fmt.Errorf("outbox: marshal %s: %w", e.Subject, err)
		}
		typ := e.Msg.ProtoReflect().Descriptor().FullName()
		h, ok := headers[typ]
		if !ok {
			h = encodeHeaders(ctx, typ)
			headers[typ] = h
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("outbox: event id: %w", err)
		}
		rows[i] = []any{id, e.Subject, payload, h}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"outbox"}, outboxColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("outbox: write %d events: %w", len(events), err)
	}
	return nil
}

// encode gives an event its id, and encodes its message and headers.
func encode(ctx context.Context, subject string, msg proto.Message) (id uuid.UUID, payload, headers []byte, err error) {
	payload, err = proto.Marshal(msg)
	if err != nil {
		return id, nil, nil, fmt.Errorf("outbox: marshal %s: %w", subject, err)
	}
	headers = encodeHeaders(ctx, msg.ProtoReflect().Descriptor().FullName())
	id, err = uuid.NewV7()
	if err != nil {
		return id, nil, nil, fmt.Errorf("outbox: event id: %w", err)
	}
	return id, payload, headers, nil
}

// encodeHeaders are an event's headers: the payload's type and the trace
// context of ctx.
func encodeHeaders(ctx context.Context, typ protoreflect.FullName) []byte {
	h := propagation.MapCarrier{TypeHeader: string(typ)}
	otel.GetTextMapPropagator().Inject(ctx, h)
	headers, _ := json.Marshal(h)
	return headers
}

// Relay publishes a schema's outbox to JetStream.
type Relay struct {
	Pool *pgxpool.Pool
	JS   jetstream.JetStream
	// Prefix is prepended to every subject ("mailplane").
	Prefix string
	Log    *slog.Logger
	// Interval between polls of an empty outbox.
	Interval time.Duration
	// Batch is how many events one transaction publishes.
	Batch int
	// Service names the outbox in metrics ("accounts").
	Service string
	// Meter reports the relay's metrics; nil: the process's.
	Meter metric.Meter
	// Tracer starts the relay's publish spans; nil: the process's.
	Tracer trace.Tracer

	m relayMetrics
}

// relayMetrics are what SREs watch of a relay: how many events it
// published, how many the broker refused, and how long events waited in
// the outbox (the delay others see them with).
type relayMetrics struct {
	published, refused metric.Int64Counter
	delay              metric.Float64Histogram
	attrs              metric.MeasurementOption
}

// meter is Meter, or the process's.
func (r *Relay) meter() metric.Meter {
	if r.Meter != nil {
		return r.Meter
	}
	return otel.Meter("github.com/mailplane/mailplane/services/platform/outbox")
}

func (r *Relay) setUpMetrics() {
	m := r.meter()
	// An instrument that cannot be made is a no-op: metrics never stop the
	// relay.
	r.m.published, _ = m.Int64Counter("mailplane.outbox.published", metric.WithUnit("{event}"),
		metric.WithDescription("Events published to JetStream and removed from the outbox."))
	r.m.refused, _ = m.Int64Counter("mailplane.outbox.refused", metric.WithUnit("{event}"),
		metric.WithDescription("Publications JetStream did not acknowledge (an event retried is counted at each try); the events stay in the outbox."))
	r.m.delay, _ = m.Float64Histogram("mailplane.outbox.delay", metric.WithUnit("s"),
		metric.WithDescription("Time from an event's commit to its publication."),
		metric.WithExplicitBucketBoundaries(telemetry.DelayBuckets()...))
	r.m.attrs = metric.WithAttributes(attribute.String("service", r.Service))
}

const selectBatch = `
SELECT seq, id, subject, payload, headers, created_at FROM outbox
ORDER BY seq LIMIT $1
FOR UPDATE SKIP LOCKED`

const deleteSent = `DELETE FROM outbox WHERE seq = ANY($1)`

// Run publishes until ctx is done, then drains what is left for up to
// drainTimeout so a clean shutdown leaves nothing behind.
func (r *Relay) Run(ctx context.Context, drainTimeout time.Duration) error {
	r.setUpMetrics()
	if reg, err := ObserveBacklog(r.meter(), r.Pool, r.Service); err != nil {
		r.Log.Warn("outbox relay: no backlog gauges", "error", err)
	} else {
		defer reg.Unregister()
	}
	if r.Tracer == nil {
		r.Tracer = otel.Tracer("github.com/mailplane/mailplane/services/platform/outbox")
	}
	interval := r.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	backoff := interval
	for {
		n, err := r.publishBatch(ctx)
		switch {
		case ctx.Err() != nil:
			return r.drain(drainTimeout)
		case err != nil:
			r.Log.Warn("outbox relay: publish failed; will retry", "error", err, "retryIn", backoff)
			backoff = min(backoff*2, 10*time.Second)
		case n > 0:
			backoff = interval
			continue
		default:
			backoff = interval
		}
		select {
		case <-ctx.Done():
			return r.drain(drainTimeout)
		case <-time.After(backoff):
		}
	}
}

func (r *Relay) drain(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		n, err := r.publishBatch(ctx)
		if err != nil {
			return fmt.Errorf("outbox relay: drain: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// publishBatch publishes the oldest events in one transaction and deletes
// those the broker acknowledged. It returns how many it sent.
func (r *Relay) publishBatch(ctx context.Context) (int, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = 256
	}
	var sent, refused int
	var delays []float64
	err := pgx.BeginFunc(ctx, r.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, selectBatch, batch)
		if err != nil {
			return err
		}
		type event struct {
			Seq       int64
			ID        uuid.UUID
			Subject   string
			Payload   []byte
			Headers   map[string]string
			CreatedAt time.Time
		}
		events, err := pgx.CollectRows(rows, pgx.RowToStructByPos[event])
		if err != nil || len(events) == 0 {
			return err
		}
		futures := make([]jetstream.PubAckFuture, len(events))
		spans := make([]trace.Span, 0, len(events))
		defer func() {
			for _, s := range spans {
				s.End() // a no-op for those ended; ends those the batch left before their ack
			}
		}()
		for i, e := range events {
			m := nats.NewMsg(r.Prefix + "." + e.Subject)
			m.Data = e.Payload
			spans = append(spans, r.startPublish(ctx, m, e.ID, e.Headers))
			f, err := r.JS.PublishMsgAsync(m, jetstream.WithMsgID(e.ID.String()))
			if err != nil {
				endPublish(spans[i], err)
				return fmt.Errorf("publish %s: %w", e.Subject, err)
			}
			futures[i] = f
		}
		acked := make([]int64, 0, len(events))
		var errs []error
		for i, f := range futures {
			select {
			case <-f.Ok():
				acked = append(acked, events[i].Seq)
				delays = append(delays, time.Since(events[i].CreatedAt).Seconds())
				endPublish(spans[i], nil)
			case err := <-f.Err():
				errs = append(errs, fmt.Errorf("publish %s: %w", events[i].Subject, err))
				endPublish(spans[i], err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if _, err := tx.Exec(ctx, deleteSent, acked); err != nil {
			return err
		}
		sent, refused = len(acked), len(errs)
		if len(errs) > 0 {
			// Commit what was acknowledged; the rest stays for the retry.
			r.Log.Warn("outbox relay: some events not acknowledged", "error", errors.Join(errs...))
			if sent == 0 {
				return errors.Join(errs...)
			}
		}
		return nil
	})
	r.m.refused.Add(ctx, int64(refused), r.m.attrs)
	if err != nil {
		return 0, err
	}
	r.m.published.Add(ctx, int64(sent), r.m.attrs)
	for _, d := range delays {
		r.m.delay.Record(ctx, d, r.m.attrs)
	}
	return sent, nil
}

// startPublish starts the span of m's publication, as a child of the span
// that wrote the event (its context is in the stored headers), and sets
// m's headers: the stored ones, with the trace context of the publication,
// so that consumers' spans are its children.
func (r *Relay) startPublish(ctx context.Context, m *nats.Msg, id uuid.UUID, stored map[string]string) trace.Span {
	prop := otel.GetTextMapPropagator()
	h := propagation.MapCarrier(maps.Clone(stored))
	if h == nil {
		h = propagation.MapCarrier{}
	}
	ctx, span := r.Tracer.Start(prop.Extract(ctx, h), "publish "+m.Subject,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName("publish"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(m.Subject),
			semconv.MessagingMessageID(id.String()),
		))
	prop.Inject(ctx, h)
	for k, v := range h {
		m.Header.Set(k, v)
	}
	return span
}

// endPublish ends a publication's span, when JetStream answered.
func endPublish(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "not acknowledged")
	}
	span.End()
}
