package accounts

import (
	"context"
	"errors"
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

// TestPasswordWorkGivesUp: while every turn is taken, a caller who gives up
// gets its own context's error, and one who waits too long is told to come
// back (RESOURCE_EXHAUSTED, HTTP 429); neither hash runs.
func TestPasswordWorkGivesUp(t *testing.T) {
	w := newPasswordWork(1)
	w.turns <- struct{}{} // a hash that does not end
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := w.run(ctx, func() { ran = true })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("got %v (ran: %v), want the caller's context.Canceled without running", err, ran)
	}
	if _, err := w.hash(ctx, "a password"); !errors.Is(err, context.Canceled) {
		t.Errorf("hash: got %v, want context.Canceled", err)
	}
	w.wait = time.Millisecond
	if ok, err := w.check(context.Background(), "", "a password"); !errs.Is(err, errs.ResourceExhausted) || ok {
		t.Errorf("check after waiting: got %v, %v; want ResourceExhausted", ok, err)
	}
}

func TestPasswordWorkDefault(t *testing.T) {
	if got, want := cap(newPasswordWork(0).turns), runtime.GOMAXPROCS(0); got != want {
		t.Errorf("%d hashes at once, want one per CPU (%d)", got, want)
	}
}
