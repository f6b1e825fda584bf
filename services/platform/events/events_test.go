package events_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/logtest"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const (
	stream = "MAILPLANE"
	prefix = "mailplane"
)

type fixture struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	logs *logtest.Buffer
	log  *slog.Logger
}

// setup gives a test its own database, with a table "applied" for handlers
// to write their effects to, and its own NATS server.
func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(t, "eventstest", fstest.MapFS{})
	if _, err := pool.Exec(ctx, "CREATE TABLE applied (consumer text NOT NULL, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "eventstest", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &fixture{pool: pool, js: js, logs: logs, log: log}
}

// run runs c on the test's database until the test ends, then checks that
// Run returns.
func (f *fixture) run(t *testing.T, c *events.Consumer) {
	t.Helper()
	c.Pool = f.pool
	f.runWithoutDatabase(t, c)
}

// runWithoutDatabase is run for a consumer with no database.
func (f *fixture) runWithoutDatabase(t *testing.T, c *events.Consumer) {
	t.Helper()
	c.JS, c.Log = f.js, f.log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("consumer %s: Run = %v", c.Durable, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("consumer %s: Run did not return after its context was cancelled", c.Durable)
		}
	})
}

// publish publishes n as an event with the given id, as the outbox relay does.
func (f *fixture) publish(t *testing.T, subject string, id uuid.UUID, n int64) *jetstream.PubAck {
	t.Helper()
	payload, err := proto.Marshal(wrapperspb.Int64(n))
	if err != nil {
		t.Fatal(err)
	}
	ack, err := f.js.Publish(context.Background(), prefix+"."+subject, payload, jetstream.WithMsgID(id.String()))
	if err != nil {
		t.Fatalf("publish %s: %v", subject, err)
	}
	return ack
}

// record is the handler every consumer in these tests runs: it writes the
// event's number to "applied" in the event's transaction.
func record(durable string, calls *atomic.Int32) events.Handler {
	return func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
		calls.Add(1)
		var v wrapperspb.Int64Value
		if err := proto.Unmarshal(m.Data(), &v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO applied (consumer, n) VALUES ($1, $2)", durable, v.Value)
		return err
	}
}

type applied struct {
	Consumer string
	N        int
}

func (f *fixture) applied(t *testing.T) []applied {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), "SELECT consumer, n FROM applied ORDER BY consumer, n")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[applied])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

type appliedEvent struct {
	Consumer string
	EventID  uuid.UUID
}

func (f *fixture) appliedEvents(t *testing.T) []appliedEvent {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), "SELECT consumer, event_id FROM applied_events ORDER BY consumer, applied_at")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[appliedEvent])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// caughtUp reports whether durable has been delivered and has acknowledged
// every message of its stream.
func (f *fixture) caughtUp(t *testing.T, streamName, durable string) bool {
	t.Helper()
	c, err := f.js.Consumer(context.Background(), streamName, durable)
	if err != nil {
		return false // not created yet
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream > 0
}

// waitFor polls cond until it holds, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnsureStream(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// Every replica of every service calls it at start.
	for range 2 {
		if err := events.EnsureStream(ctx, f.js, stream, prefix, 1); err != nil {
			t.Fatalf("EnsureStream: %v", err)
		}
	}
	s, err := f.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	if diff := cmp.Diff([]string{"mailplane.>"}, cfg.Subjects); diff != "" {
		t.Errorf("stream subjects (-want +got):\n%s", diff)
	}
	if cfg.Duplicates < time.Minute {
		t.Errorf("duplicate window = %v; a relay retry after it would publish twice", cfg.Duplicates)
	}
	if cfg.Replicas != 1 {
		t.Errorf("replicas = %d, want 1", cfg.Replicas)
	}
	// More replicas than a lone server can hold fail at start, naming
	// the stream.
	err = events.EnsureStream(ctx, f.js, stream, prefix, 3)
	if err == nil || !strings.Contains(err.Error(), "ensure stream "+stream) {
		t.Errorf("EnsureStream(3 replicas) on a single server = %v, want an error naming the stream", err)
	}

	// A relay that publishes an event again (it crashed before deleting
	// it from the outbox) adds nothing to the stream.
	id := uuid.New()
	if ack := f.publish(t, "accounts.organization.created", id, 1); ack.Duplicate {
		t.Fatal("first publish reported as a duplicate")
	}
	if ack := f.publish(t, "accounts.organization.created", id, 1); !ack.Duplicate {
		t.Error("second publish with the same event id was stored again")
	}
	if err := events.EnsureStream(ctx, f.js, stream, prefix, 1); err != nil {
		t.Fatalf("EnsureStream on a stream with messages: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
}

// TestConsumerRedeliversFailedEvent makes the handler fail once, after it
// wrote its effect: the effect must be rolled back, the event redelivered
// and, in the end, applied exactly once.
func TestConsumerRedeliversFailedEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := events.EnsureStream(context.Background(), f.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	apply := record("directory", &calls)
	metrics := metrictest.New()
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.>"},
		Meter:    metrics.Meter,
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			if err := apply(ctx, tx, m); err != nil {
				return err
			}
			if calls.Load() == 1 {
				return context.DeadlineExceeded // as a slow query would
			}
			return nil
		},
	})

	id := uuid.New()
	f.publish(t, "accounts.organization.created", id, 7)
	// The consumer retries after a delay of 5 s.
	waitFor(t, 20*time.Second, "the event to be redelivered and applied", func() bool {
		return calls.Load() >= 2 && f.caughtUp(t, stream, "directory")
	})

	if diff := cmp.Diff([]applied{{"directory", 7}}, f.applied(t)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]appliedEvent{{"directory", id}}, f.appliedEvents(t)); diff != "" {
		t.Errorf("applied_events (-want +got):\n%s", diff)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2", got)
	}
	if !strings.Contains(f.logs.String(), id.String()) {
		t.Errorf("the failure is not logged with the event id:\n%s", f.logs)
	}
	waitFor(t, 10*time.Second, "the metrics to count the application", func() bool {
		return metrics.Sum(t, "mailplane.events.applied") == 1
	})
	if got := metrics.Sum(t, "mailplane.events.failed"); got != 1 {
		t.Errorf("failed: %d, want 1", got)
	}
}

// TestConsumerSkipsAppliedEvent delivers the same event twice, as when the
// relay publishes it again after the stream's duplicate window: the consumer
// must recognise it and not apply it again.
func TestConsumerSkipsAppliedEvent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	// The smallest duplicate window the server allows, so the test can
	// outlast it.
	_, err := f.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ".>"}, Duplicates: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.>"},
		Handle:   record("directory", &calls),
	})

	id := uuid.New()
	f.publish(t, "accounts.organization.created", id, 1)
	waitFor(t, 10*time.Second, "the first delivery to be applied", func() bool {
		return f.caughtUp(t, stream, "directory")
	})
	waitFor(t, 10*time.Second, "the stream to store the event again", func() bool {
		return !f.publish(t, "accounts.organization.created", id, 1).Duplicate
	})
	marker := uuid.New()
	f.publish(t, "accounts.organization.created", marker, 2)
	waitFor(t, 10*time.Second, "the consumer to process every message", func() bool {
		return f.caughtUp(t, stream, "directory")
	})

	s, err := f.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 3 {
		t.Fatalf("stream holds %d messages, want 3 (the event twice, then a marker)", got)
	}
	if diff := cmp.Diff([]applied{{"directory", 1}, {"directory", 2}}, f.applied(t)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]appliedEvent{{"directory", id}, {"directory", marker}}, f.appliedEvents(t)); diff != "" {
		t.Errorf("applied_events (-want +got):\n%s", diff)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("handler ran %d times, want 2: the repeated event reached it", got)
	}
}

// TestConsumerAppliesWaitingEventsInBatches lets 300 events wait, one of
// them stored twice and one whose handler fails the first time, then starts
// the consumer: they are applied in fewer transactions than events, each
// exactly once, and the failure holds back only its own event.
func TestConsumerAppliesWaitingEventsInBatches(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ".>"}, Duplicates: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var want []applied
	var twice uuid.UUID
	for i := 1; i <= n; i++ {
		id := uuid.New()
		f.publish(t, "accounts.organization.created", id, int64(i))
		want = append(want, applied{"directory", i})
		if i == 10 {
			twice = id
		}
	}
	waitFor(t, 10*time.Second, "the stream to store an event again", func() bool {
		return !f.publish(t, "accounts.organization.created", twice, 10).Duplicate
	})

	var calls atomic.Int32
	var failed atomic.Bool
	var mu sync.Mutex
	txs := map[int64]bool{}
	apply := record("directory", &calls)
	metrics := metrictest.New()
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.>"},
		Meter:    metrics.Meter,
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var v wrapperspb.Int64Value
			if err := proto.Unmarshal(m.Data(), &v); err != nil {
				return err
			}
			if v.Value == 150 && failed.CompareAndSwap(false, true) {
				return context.DeadlineExceeded
			}
			var txid int64
			if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&txid); err != nil {
				return err
			}
			mu.Lock()
			txs[txid] = true
			mu.Unlock()
			return apply(ctx, tx, m)
		},
	})
	waitFor(t, 30*time.Second, "every event to be applied", func() bool {
		return len(f.applied(t)) >= n && f.caughtUp(t, stream, "directory")
	})

	if diff := cmp.Diff(want, f.applied(t)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	if got := len(f.appliedEvents(t)); got != n {
		t.Errorf("%d applied event ids, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(txs) >= n/2 {
		t.Errorf("%d events were applied in %d transactions: not batched", n, len(txs))
	}
	// The metrics count messages: the event stored twice is acknowledged
	// twice; the batch that failed was applied again at once, event by
	// event, so no event failed for good.
	waitFor(t, 10*time.Second, "the metrics to count every message", func() bool {
		return metrics.Sum(t, "mailplane.events.applied") == n+1
	})
	if got := metrics.Sum(t, "mailplane.events.failed"); got != 0 {
		t.Errorf("failed: %d, want 0", got)
	}
	if got := metrics.Count(t, "mailplane.events.lag"); got != n+1 {
		t.Errorf("lag recorded %d times, want %d", got, n+1)
	}
}

// TestConsumersApplyIndependently runs two durable consumers, as two
// services would: each applies the event once, and neither sees subjects
// outside its filter.
func TestConsumersApplyIndependently(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := events.EnsureStream(context.Background(), f.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	// As a process would, each checks its filters against what services
	// declare.
	catalog, err := events.NewCatalog(prefix, []string{"accounts.organization.created", "accounts.member.deleted"}, []string{"domains.domain.created"})
	if err != nil {
		t.Fatal(err)
	}
	var billingCalls, directoryCalls atomic.Int32
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "billing",
		Subjects: []string{"mailplane.accounts.organization.created"},
		Catalog:  catalog,
		Handle:   record("billing", &billingCalls),
	})
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.organization.>", "mailplane.accounts.member.>"},
		Catalog:  catalog,
		Handle:   record("directory", &directoryCalls),
	})

	other := uuid.New()
	f.publish(t, "domains.domain.created", other, 99) // neither subscribes
	memberDeleted := uuid.New()
	f.publish(t, "accounts.member.deleted", memberDeleted, 2) // directory only
	created := uuid.New()
	f.publish(t, "accounts.organization.created", created, 1) // both

	waitFor(t, 10*time.Second, "both consumers to catch up", func() bool {
		return f.caughtUp(t, stream, "billing") && f.caughtUp(t, stream, "directory")
	})
	want := []applied{{"billing", 1}, {"directory", 1}, {"directory", 2}}
	if diff := cmp.Diff(want, f.applied(t)); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	wantEvents := []appliedEvent{{"billing", created}, {"directory", memberDeleted}, {"directory", created}}
	if diff := cmp.Diff(wantEvents, f.appliedEvents(t)); diff != "" {
		t.Errorf("applied_events (-want +got):\n%s", diff)
	}
}

// TestTraceContextFollowsEvent writes an event inside a traced request and
// checks that the consumer's handler continues the same trace, through the
// outbox, the relay and JetStream.
func TestTraceContextFollowsEvent(t *testing.T) {
	old := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(old) })

	f := setup(t)
	ctx := context.Background()
	if err := events.EnsureStream(ctx, f.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		subject, eventType string
		span               trace.SpanContext
		event              *accountsv1.OrganizationCreated
	}
	got := make(chan delivery, 1)
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.>"},
		Handle: func(ctx context.Context, _ pgx.Tx, m jetstream.Msg) error {
			var e accountsv1.OrganizationCreated
			if err := proto.Unmarshal(m.Data(), &e); err != nil {
				return err
			}
			got <- delivery{m.Subject(), m.Headers().Get(outbox.TypeHeader), trace.SpanContextFromContext(ctx), &e}
			return nil
		},
	})
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	relay := &outbox.Relay{Pool: f.pool, JS: f.js, Prefix: prefix, Log: f.log, Interval: 20 * time.Millisecond}
	go func() { relayDone <- relay.Run(relayCtx, 5*time.Second) }()
	t.Cleanup(func() {
		stopRelay()
		if err := <-relayDone; err != nil {
			t.Errorf("relay: %v", err)
		}
	})

	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	reqCtx, span := tp.Tracer("eventstest").Start(ctx, "SignUp")
	sent := &accountsv1.OrganizationCreated{
		Organization: &accountsv1.Organization{Name: "organizations/acme", DisplayName: "Acme"},
		Owner:        "users/u_1",
	}
	err := pg.InTx(reqCtx, f.pool, func(tx pgx.Tx) error {
		return outbox.Write(reqCtx, tx, "accounts.organization.created", sent)
	})
	span.End()
	if err != nil {
		t.Fatal(err)
	}

	var d delivery
	select {
	case d = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the event did not reach the consumer")
	}
	if d.subject != "mailplane.accounts.organization.created" {
		t.Errorf("subject = %q", d.subject)
	}
	if d.eventType != "mailplane.accounts.v1.OrganizationCreated" {
		t.Errorf("%s = %q", outbox.TypeHeader, d.eventType)
	}
	if diff := cmp.Diff(sent, d.event, protocmp.Transform()); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
	want := span.SpanContext()
	if !d.span.IsValid() || d.span.TraceID() != want.TraceID() {
		t.Errorf("handler trace id = %v, want %v (the request's)", d.span.TraceID(), want.TraceID())
	}
	if d.span.SpanID() != want.SpanID() || !d.span.IsRemote() {
		t.Errorf("handler parent span = %v (remote %v), want the request's span %v", d.span.SpanID(), d.span.IsRemote(), want.SpanID())
	}
}

// TestConsumerWithoutDatabase: a consumer with no pool hands each event to
// its handler with no transaction and records nothing, so an event stored
// again after the duplicate window is applied again (its handler must not
// mind).
func TestConsumerWithoutDatabase(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, err := f.js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: stream, Subjects: []string{prefix + ".>"}, Duplicates: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int64
	f.runWithoutDatabase(t, &events.Consumer{
		Stream:   stream,
		Durable:  "janitor",
		Subjects: []string{"mailplane.accounts.>"},
		Handle: func(_ context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var v wrapperspb.Int64Value
			if err := proto.Unmarshal(m.Data(), &v); err != nil {
				return err
			}
			if tx != nil {
				t.Errorf("event %d: got a transaction", v.Value)
			}
			mu.Lock()
			defer mu.Unlock()
			got = append(got, v.Value)
			return nil
		},
	})
	id := uuid.New()
	f.publish(t, "accounts.organization.created", id, 1)
	f.publish(t, "accounts.organization.created", uuid.New(), 2)
	waitFor(t, 10*time.Second, "both events to be applied", func() bool { return f.caughtUp(t, stream, "janitor") })
	waitFor(t, 10*time.Second, "the stream to store the first event again", func() bool {
		return !f.publish(t, "accounts.organization.created", id, 1).Duplicate
	})
	waitFor(t, 10*time.Second, "the repeated event to be applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int64{1, 2, 1}, got); diff != "" {
		t.Errorf("events applied (-want +got):\n%s", diff)
	}
	if ids := f.appliedEvents(t); len(ids) != 0 {
		t.Errorf("applied_events holds %v; a consumer without a database records nothing", ids)
	}
}

// TestConsumerStoppedWhileStarting: a process stopped as it starts has
// its consumers return without an error.
func TestConsumerStoppedWhileStarting(t *testing.T) {
	f := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &events.Consumer{JS: f.js, Stream: stream, Durable: "people", Subjects: []string{"mailplane.accounts.member.deleted"}, Log: f.log}
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
}

// TestPendingGauges checks what an SRE sees of a consumer that is stuck
// (its handler hangs) or failing (an event fails at every try): the events
// not yet acknowledged, those delivered again, and both back to 0 once the
// consumer catches up.
func TestPendingGauges(t *testing.T) {
	t.Parallel()
	f := setup(t)
	if err := events.EnsureStream(context.Background(), f.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	metrics := metrictest.New()
	release := make(chan struct{})
	var failing atomic.Bool
	failing.Store(true)
	f.run(t, &events.Consumer{
		Stream:       stream,
		Durable:      "directory",
		Subjects:     []string{"mailplane.accounts.>"},
		Meter:        metrics.Meter,
		PendingEvery: 20 * time.Millisecond,
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var v wrapperspb.Int64Value
			if err := proto.Unmarshal(m.Data(), &v); err != nil {
				return err
			}
			if v.Value == 99 && failing.Load() {
				return context.DeadlineExceeded
			}
			if v.Value != 99 {
				<-release
			}
			return nil
		},
	})
	gauge := func(name string) float64 {
		v, _ := metrics.Value(t, name, "consumer", "directory")
		return v
	}
	waitFor(t, 10*time.Second, "the pending gauge of an idle consumer", func() bool {
		_, ok := metrics.Value(t, "mailplane_events_pending", "consumer", "directory")
		return ok
	})
	if p, r := gauge("mailplane_events_pending"), gauge("mailplane_events_redelivered"); p != 0 || r != 0 {
		t.Fatalf("idle consumer: pending %v, redelivered %v; want 0, 0", p, r)
	}

	for i := range 5 {
		f.publish(t, "accounts.organization.created", uuid.New(), int64(i))
	}
	waitFor(t, 10*time.Second, "5 events pending behind a hung handler", func() bool {
		return gauge("mailplane_events_pending") == 5
	})
	close(release)
	waitFor(t, 10*time.Second, "no event pending once the handler returns", func() bool {
		return gauge("mailplane_events_pending") == 0
	})

	f.publish(t, "accounts.organization.created", uuid.New(), 99)
	// The consumer delivers a failed event again after 5 s.
	waitFor(t, 20*time.Second, "the failing event to be counted as redelivered", func() bool {
		return gauge("mailplane_events_redelivered") >= 1 && gauge("mailplane_events_pending") == 1
	})
	failing.Store(false)
	waitFor(t, 20*time.Second, "the event to be applied at last", func() bool {
		return gauge("mailplane_events_pending") == 0 && gauge("mailplane_events_redelivered") == 0
	})
}
