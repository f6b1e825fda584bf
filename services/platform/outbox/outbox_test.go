package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func uniqueName(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "T" + hex.EncodeToString(b)
}

// TestRelaySurvivesBrokerOutage writes events while NATS is down and checks
// that, once it is back, every event is in the stream exactly once.
func TestRelaySurvivesBrokerOutage(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, "outboxtest", fstest.MapFS{})
	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)

	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stream, prefix := uniqueName(t), "p"+uniqueName(t)
	if err := events.EnsureStream(ctx, js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}

	ns.Stop()
	const n = 50
	for i := range n {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			return outbox.Write(ctx, tx, "test.thing.created", wrapperspb.Int64(int64(i)))
		})
		if err != nil {
			t.Fatalf("write event %d: %v", i, err)
		}
	}
	// One event goes out twice, as after a crash between publish and delete:
	// the stream must keep one copy.
	var firstID string
	if err := pool.QueryRow(ctx, "SELECT id::text FROM outbox ORDER BY seq LIMIT 1").Scan(&firstID); err != nil {
		t.Fatal(err)
	}

	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	metrics := metrictest.New()
	relay := &outbox.Relay{Pool: pool, JS: js, Prefix: prefix, Log: log, Interval: 20 * time.Millisecond, Service: "outboxtest", Meter: metrics.Meter}
	go func() { done <- relay.Run(relayCtx, 5*time.Second) }()

	// Let the relay fail against the dead broker for a while.
	waitFor(t, 2*time.Second, func() bool { return false }, "")
	if got := outboxLen(t, pool); got != n {
		t.Fatalf("outbox holds %d events during the outage, want %d", got, n)
	}

	ns.Restart()
	waitFor(t, 30*time.Second, func() bool { return outboxLen(t, pool) == 0 }, "outbox to drain")
	if _, err := js.Publish(ctx, prefix+".test.thing.created", []byte("dup"), jetstream.WithMsgID(firstID)); err != nil {
		t.Fatalf("republish: %v", err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}

	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	st, err := info.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.State.Msgs != n {
		t.Fatalf("stream holds %d messages, want %d", st.State.Msgs, n)
	}
	// Every payload 0..n-1 once.
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		var v wrapperspb.Int64Value
		if err := proto.Unmarshal(m.Data(), &v); err != nil {
			t.Fatalf("payload: %v", err)
		}
		if seen[v.Value] {
			t.Errorf("event %d delivered twice", v.Value)
		}
		seen[v.Value] = true
		if got := m.Headers().Get(outbox.TypeHeader); got != "google.protobuf.Int64Value" {
			t.Errorf("%s = %q", outbox.TypeHeader, got)
		}
	}
	if len(seen) != n {
		t.Fatalf("got %d distinct events, want %d", len(seen), n)
	}
	if got := metrics.Sum(t, "mailplane.outbox.published"); got != n {
		t.Errorf("published: %d, want %d", got, n)
	}
	if got := metrics.Count(t, "mailplane.outbox.delay"); got != n {
		t.Errorf("delay recorded %d times, want %d", got, n)
	}
}

func outboxLen(t *testing.T, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor polls cond until it holds or d passes; with an empty what it
// just waits d.
func waitFor(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if what != "" {
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestQueueStoresEventsInOrder queues two events with a change, in one
// batch: both are stored in the change's transaction, in order, with their
// own ids and types; a batch that fails stores neither.
func TestQueueStoresEventsInOrder(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, "outboxtest", fstest.MapFS{})
	if _, err := pool.Exec(ctx, "CREATE TABLE things (n int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	send := func(n int) error {
		b := &pgx.Batch{}
		b.Queue("INSERT INTO things (n) VALUES ($1)", n)
		err := outbox.Queue(ctx, b,
			outbox.Event{Subject: "test.thing.created", Msg: wrapperspb.Int64(int64(n))},
			outbox.Event{Subject: "test.audit.recorded", Msg: wrapperspb.String("made")})
		if err != nil {
			return err
		}
		return pool.SendBatch(ctx, b).Close()
	}
	if err := send(1); err != nil {
		t.Fatal(err)
	}
	if err := send(1); err == nil {
		t.Fatal("a duplicate thing was accepted")
	}

	rows, _ := pool.Query(ctx, "SELECT id::text, subject, headers->>'"+outbox.TypeHeader+"' FROM outbox ORDER BY seq")
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, Subject, Type string }])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID == got[1].ID ||
		got[0].Subject != "test.thing.created" || got[0].Type != "google.protobuf.Int64Value" ||
		got[1].Subject != "test.audit.recorded" || got[1].Type != "google.protobuf.StringValue" {
		t.Errorf("outbox holds %+v", got)
	}
}

// TestWriteManyCopiesInOrder writes events of two types at once: they are
// stored in order, each with its id, payload and type, and only if the
// transaction commits.
func TestWriteManyCopiesInOrder(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, "outboxtest", fstest.MapFS{})
	var events []outbox.Event
	for i := range 1000 {
		events = append(events, outbox.Event{Subject: "test.thing.created", Msg: wrapperspb.Int64(int64(i))})
	}
	events = append(events, outbox.Event{Subject: "test.audit.recorded", Msg: wrapperspb.String("made")})

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.WriteMany(ctx, tx, events); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	if n := outboxLen(t, pool); n != 0 {
		t.Fatalf("%d events after a rollback", n)
	}
	if err := pg.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.WriteMany(ctx, tx, events) }); err != nil {
		t.Fatal(err)
	}

	rows, _ := pool.Query(ctx, "SELECT id::text, subject, payload, headers->>'"+outbox.TypeHeader+"' FROM outbox ORDER BY seq")
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		ID, Subject string
		Payload     []byte
		Type        string
	}])
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(events) {
		t.Fatalf("%d events stored, want %d", len(got), len(events))
	}
	ids := map[string]bool{}
	for i, g := range got {
		ids[g.ID] = true
		want, _ := proto.Marshal(events[i].Msg)
		wantType := string(events[i].Msg.ProtoReflect().Descriptor().FullName())
		if g.Subject != events[i].Subject || string(g.Payload) != string(want) || g.Type != wantType {
			t.Fatalf("event %d: %s %x %s, want %s %x %s", i, g.Subject, g.Payload, g.Type, events[i].Subject, want, wantType)
		}
	}
	if len(ids) != len(events) {
		t.Errorf("%d distinct ids for %d events", len(ids), len(events))
	}
}

// TestBacklogGauges checks what an SRE sees of an outbox whose relay is
// stopped: the events waiting, and the age of the oldest, growing; then,
// once a relay runs, an empty outbox, and no series once it stops.
func TestBacklogGauges(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t, "outboxtest", fstest.MapFS{})
	metrics := metrictest.New()
	gauges := func() (pending, oldest float64) {
		t.Helper()
		pending, okP := metrics.Value(t, "mailplane_outbox_pending", "service", "outboxtest")
		oldest, okO := metrics.Value(t, "mailplane_outbox_oldest_pending_seconds", "service", "outboxtest")
		if !okP || !okO {
			t.Fatalf("backlog gauges missing (pending %v, oldest %v)", okP, okO)
		}
		return pending, oldest
	}

	reg, err := outbox.ObserveBacklog(metrics.Meter, pool, "outboxtest")
	if err != nil {
		t.Fatal(err)
	}
	if p, o := gauges(); p != 0 || o != 0 {
		t.Fatalf("empty outbox: pending %v, oldest %v; want 0, 0", p, o)
	}
	for i := range 3 {
		err := pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			return outbox.Write(ctx, tx, "test.thing.created", wrapperspb.Int64(int64(i)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The first event has waited an hour, as behind a broker long down.
	if _, err := pool.Exec(ctx, "UPDATE outbox SET created_at = now() - interval '1 hour' WHERE seq = (SELECT min(seq) FROM outbox)"); err != nil {
		t.Fatal(err)
	}
	p, first := gauges()
	if p != 3 || first < 3600 || first > 3600+60 {
		t.Fatalf("3 events, the oldest an hour old: pending %v, oldest %vs", p, first)
	}
	waitFor(t, 10*time.Second, func() bool { _, o := gauges(); return o > first }, "the oldest event's age to grow")
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}

	ns := natstest.Start(t)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	prefix := "p" + uniqueName(t)
	if err := events.EnsureStream(ctx, js, uniqueName(t), prefix, 1); err != nil {
		t.Fatal(err)
	}
	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	relay := &outbox.Relay{Pool: pool, JS: js, Prefix: prefix, Log: slog.New(slog.DiscardHandler), Interval: 20 * time.Millisecond, Service: "outboxtest", Meter: metrics.Meter}
	go func() { done <- relay.Run(relayCtx, 5*time.Second) }()
	waitFor(t, 30*time.Second, func() bool {
		_, ok := metrics.Value(t, "mailplane_outbox_pending", "service", "outboxtest")
		return ok && outboxLen(t, pool) == 0
	}, "the relay to publish the events")
	if p, o := gauges(); p != 0 || o != 0 {
		t.Errorf("published outbox: pending %v, oldest %v; want 0, 0", p, o)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok := metrics.Value(t, "mailplane_outbox_pending"); ok {
		t.Error("a stopped relay still reports its outbox")
	}
}
