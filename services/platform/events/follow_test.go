package events_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// follower collects the numbers of the events it is handed.
type follower struct {
	mu   sync.Mutex
	seen []int64
}

func (f *follower) handle(m jetstream.Msg) error {
	var n wrapperspb.Int64Value
	if err := proto.Unmarshal(m.Data(), &n); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, n.GetValue())
	return nil
}

func (f *follower) got() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

func (fx *fixture) follow(t *testing.T, since time.Time) *follower {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := &follower{}
	stop, err := events.Follow(ctx, fx.js, stream, []string{prefix + ".accounts.session.revoked"}, since, f.handle, fx.log)
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	t.Cleanup(stop)
	return f
}

// TestFollow: every follower (every process) gets every event, a follower
// started later first replays what was published since the time it asks
// for, and Follow returns only once it has.
func TestFollow(t *testing.T) {
	fx := setup(t)
	ctx := context.Background()
	if err := events.EnsureStream(ctx, fx.js, stream, prefix, 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	empty := fx.follow(t, start.Add(-time.Minute)) // nothing stored yet: returns at once
	fx.publish(t, "accounts.session.revoked", uuid.New(), 1)
	fx.publish(t, "accounts.other.thing", uuid.New(), 99) // not followed
	fx.publish(t, "accounts.session.revoked", uuid.New(), 2)

	a, b := fx.follow(t, start.Add(-time.Minute)), fx.follow(t, start.Add(-time.Minute))
	for name, f := range map[string]*follower{"first": a, "second": b} {
		if got := f.got(); !slices.Equal(got, []int64{1, 2}) {
			t.Errorf("%s follower had %v when Follow returned, want the events stored before: [1 2]", name, got)
		}
	}
	if late := fx.follow(t, time.Now().Add(time.Hour)); len(late.got()) != 0 {
		t.Errorf("a follower from a later time replayed %v", late.got())
	}

	fx.publish(t, "accounts.session.revoked", uuid.New(), 3)
	for name, f := range map[string]*follower{"empty at start": empty, "first": a, "second": b} {
		want := []int64{1, 2, 3}
		waitFor(t, 5*time.Second, name+" follower to get every event", func() bool { return slices.Equal(f.got(), want) })
	}
}
