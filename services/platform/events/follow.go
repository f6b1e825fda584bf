package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follow hands every event of stream on subjects published since `since`
// to handle, in this process, until stop is called. Where a Consumer's
// durable consumer gives each event to one of the replicas sharing it,
// Follow gives each process every event: it is for what every replica
// keeps in memory (the sessions revoked), rebuilt at start by replaying the
// recent past. It uses an ordered consumer of its own, which nothing
// acknowledges or records and which resumes after a NATS outage where it
// stopped.
//
// Follow returns once the events stored when it started have been handled,
// so that a process knows them before it serves anything; or an error if
// ctx ends first. A handler's error is logged: the event is not redelivered.
func Follow(ctx context.Context, js jetstream.JetStream, stream string, subjects []string, since time.Time,
	handle func(jetstream.Msg) error, log *slog.Logger) (stop func(), err error) {
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &since,
	})
	if err != nil {
		return nil, fmt.Errorf("follow %v: %w", subjects, err)
	}
	caughtUp := make(chan struct{})
	var once sync.Once
	done := func() { once.Do(func() { close(caughtUp) }) }
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if err := handle(m); err != nil {
			log.Error("followed event not applied", "subject", m.Subject(), "error", err)
		}
		// The last event stored so far has no more pending behind it.
		if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
			done()
		}
	})
	if err != nil {
		return nil, fmt.Errorf("follow %v: %w", subjects, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		cc.Stop()
		return nil, fmt.Errorf("follow %v: %w", subjects, err)
	}
	if info.NumPending == 0 && info.Delivered.Consumer == 0 {
		done() // nothing to replay
	}
	select {
	case <-caughtUp:
		return cc.Stop, nil
	case <-ctx.Done():
		cc.Stop()
		return nil, fmt.Errorf("follow %v: replaying the events since %s: %w", subjects, since.Format(time.RFC3339), ctx.Err())
	}
}
