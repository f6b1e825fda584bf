package accounts

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/errs"
)

// TestPasswordWorkBounds: of ten hashes asked for at once, two run at a
// time, and every one runs.
func TestPasswordWorkBounds(t *testing.T) {
	w := newPasswordWork(2)
	var inFlight, most, done atomic.Int32
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			err := w.run(context.Background(), func() {
				n := inFlight.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				<-release
				inFlight.Add(-1)
				done.Add(1)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	for inFlight.Load() < 2 {
		runtime.Gosched()
	}
	// Give the eight others every chance to get in, if they could.
	time.Sleep(50 * time.Millisecond)
	for range 10 {
		release <- struct{}{}
	}
	wg.Wait()
	if most.Load() != 2 || done.Load() != 10 {
		t.Errorf("%d ran at most at once and %d ran; want 2 and 10", most.Load(), done.Load())
	}
}

// TestPasswordWorkGivesUp: a caller who gives up while every turn is taken
// is told to come back, and its hash never runs.
func TestPasswordWorkGivesUp(t *testing.T) {
	w := newPasswordWork(1)
	w <- struct{}{} // a hash that does not end
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := w.run(ctx, func() { ran = true })
	if !errs.Is(err, errs.ResourceExhausted) || ran {
		t.Fatalf("got %v (ran: %v), want ResourceExhausted without running", err, ran)
	}
	if _, err := w.hash(ctx, "a password"); !errs.Is(err, errs.ResourceExhausted) {
		t.Errorf("hash: got %v, want ResourceExhausted", err)
	}
}

func TestPasswordWorkDefault(t *testing.T) {
	if got, want := cap(newPasswordWork(0)), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("%d hashes at once, want one per CPU (%d)", got, want)
	}
}
