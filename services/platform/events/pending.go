package events

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/metric"
)

const (
	// defaultPendingEvery is how often a consumer reads its pending counts
	// from JetStream: the gauges are at most this old, and scrapes, however
	// many, cost JetStream nothing.
	defaultPendingEvery = 10 * time.Second
	// pendingTimeout bounds one read.
	pendingTimeout = 5 * time.Second
)

// pending is the last reading of a consumer's counts in JetStream; ok is
// false until one succeeds and after one fails, so that the gauges go
// stale rather than repeat an old value.
type pending struct {
	mu                   sync.Mutex
	ok                   bool
	unacked, redelivered int64
}

// observePending reports, as gauges, how many messages the durable
// consumer cons has not had acknowledged (waiting to be delivered, or
// delivered and not yet acknowledged) and how many of those were
// delivered more than once, read every PendingEvery until ctx is done.
// Every replica of a service runs the same durable consumer and reports
// the same counts: read them with max by (consumer). stop unregisters
// the gauges.
func (c *Consumer) observePending(ctx context.Context, cons jetstream.Consumer) (stop func()) {
	m := c.meter()
	unacked, err1 := m.Int64ObservableGauge("mailplane.events.pending", metric.WithUnit("{event}"),
		metric.WithDescription("Events of the durable consumer's subjects not yet acknowledged: waiting for delivery or being applied (JetStream's num_pending + num_ack_pending)."))
	redelivered, err2 := m.Int64ObservableGauge("mailplane.events.redelivered", metric.WithUnit("{event}"),
		metric.WithDescription("Events not yet acknowledged that were delivered more than once (JetStream's num_redelivered): events failing again and again."))
	var p pending
	reg, err3 := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.ok {
			o.ObserveInt64(unacked, p.unacked, c.m.attrs)
			o.ObserveInt64(redelivered, p.redelivered, c.m.attrs)
		}
		return nil
	}, unacked, redelivered)
	if err := firstError(err1, err2, err3); err != nil {
		// Metrics never stop the consumer.
		c.Log.Warn("no pending gauges", "consumer", c.Durable, "error", err)
		return func() {}
	}

	every := c.PendingEvery
	if every <= 0 {
		every = defaultPendingEvery
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			p.read(ctx, cons, c)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		reg.Unregister()
	}
}

// read asks JetStream for cons's counts.
func (p *pending) read(ctx context.Context, cons jetstream.Consumer, c *Consumer) {
	ctx, cancel := context.WithTimeout(ctx, pendingTimeout)
	defer cancel()
	info, err := cons.Info(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		if p.ok && ctx.Err() == nil {
			c.Log.Warn("consumer info unavailable; pending gauges stale", "consumer", c.Durable, "error", fmt.Errorf("consumer info: %w", err))
		}
		p.ok = false
		return
	}
	p.ok, p.unacked, p.redelivered = true, int64(info.NumPending)+int64(info.NumAckPending), int64(info.NumRedelivered)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
