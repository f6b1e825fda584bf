package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/oteltest"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TestEventSpans follows an event from the request that wrote it, through
// the relay's publication, to a consumer whose handler fails once: the
// trace holds a publish span, child of the request's, and a process span
// per attempt, children of the publication, the failed one with an error
// status; the handler runs in its attempt's span.
func TestEventSpans(t *testing.T) {
	old := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(old) })

	receiver := oteltest.Start(t)
	tp := receiver.TracerProvider(t, "eventstest")
	f := setup(t)
	ctx := context.Background()
	if err := events.EnsureStream(ctx, f.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	handled := make(chan trace.SpanContext, 2)
	f.run(t, &events.Consumer{
		Stream:   stream,
		Durable:  "directory",
		Subjects: []string{"mailplane.accounts.>"},
		Tracer:   tp.Tracer("events"),
		Handle: func(ctx context.Context, _ pgx.Tx, _ jetstream.Msg) error {
			handled <- trace.SpanContextFromContext(ctx)
			if calls.Add(1) == 1 {
				return errors.New("directory unavailable")
			}
			return nil
		},
	})
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	relay := &outbox.Relay{Pool: f.pool, JS: f.js, Prefix: prefix, Log: f.log, Interval: 20 * time.Millisecond, Tracer: tp.Tracer("outbox")}
	go func() { relayDone <- relay.Run(relayCtx, 5*time.Second) }()
	t.Cleanup(func() {
		stopRelay()
		if err := <-relayDone; err != nil {
			t.Errorf("relay: %v", err)
		}
	})

	reqCtx, span := tp.Tracer("eventstest").Start(ctx, "SignUp", trace.WithSpanKind(trace.SpanKindServer))
	err := pg.InTx(reqCtx, f.pool, func(tx pgx.Tx) error {
		return outbox.Write(reqCtx, tx, "accounts.organization.created", &accountsv1.OrganizationCreated{Owner: "users/u_1"})
	})
	span.End()
	if err != nil {
		t.Fatal(err)
	}

	req := receiver.WaitSpan(t, oteltest.Want{Name: "SignUp"})
	const subject = "mailplane.accounts.organization.created"
	pub := receiver.WaitChild(t, req, oteltest.Want{Name: "publish " + subject, Kind: trace.SpanKindProducer, Attrs: map[string]string{
		"messaging.system":           "nats",
		"messaging.operation.type":   "send",
		"messaging.destination.name": subject,
	}})
	eventID := pub.Attrs["messaging.message.id"]
	if eventID == "" {
		t.Errorf("publish span without messaging.message.id: %v", pub)
	}
	process := oteltest.Want{Name: "process " + subject, Kind: trace.SpanKindConsumer, Attrs: map[string]string{
		"messaging.system":              "nats",
		"messaging.operation.type":      "process",
		"messaging.destination.name":    subject,
		"messaging.consumer.group.name": "directory",
		"messaging.message.id":          eventID,
	}}
	failed := process
	failed.Status = codes.Error
	first := receiver.WaitChild(t, pub, failed)
	// The event comes again after the consumer's delay of 5 s.
	var second oteltest.Span
	receiver.Wait(t, "a second process span", func(spans []oteltest.Span) bool {
		for _, s := range oteltest.Children(spans, pub) {
			if process.Matches(s) && s.SpanID != first.SpanID {
				second = s
				return true
			}
		}
		return false
	})
	if second.Status == codes.Error {
		t.Errorf("the second attempt, which succeeded, has an error status: %v", second)
	}
	if len(first.Events) != 1 || first.Events[0] != "exception" {
		t.Errorf("the failed attempt's span records no exception: %v", first.Events)
	}
	for i, want := range []oteltest.Span{first, second} {
		got := <-handled
		if got.TraceID() != want.TraceID || got.SpanID() != want.SpanID {
			t.Errorf("attempt %d: handler ran in span %v/%v, want the process span %v/%v", i+1, got.TraceID(), got.SpanID(), want.TraceID, want.SpanID)
		}
	}
}
