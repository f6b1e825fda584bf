package accounts

import (
	"context"
	"runtime"
	"time"

	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/passwords"
)

// passwordWork bounds the password hashes (argon2id) running at once. Each
// holds 19 MiB and a CPU for some 25 ms: more at once than the process has
// CPUs only costs memory, and a burst of sign-ins must not get the process
// killed for it. Calls wait their turn, for a while.
type passwordWork struct {
	turns chan struct{}
	// wait is how long a call waits for a turn before it is refused.
	wait time.Duration
}

// newPasswordWork lets n hashes run at once; n <= 0 means one per CPU.
func newPasswordWork(n int) *passwordWork {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return &passwordWork{turns: make(chan struct{}, n), wait: 10 * time.Second}
}

var errPasswordWorkBusy = errs.E(errs.ResourceExhausted, "too many password checks at once; try again in a moment").WithReason("PASSWORD_CHECKS_BUSY")

// run runs f in its turn. A caller who gives up gets its context's error,
// one who waits too long gets errPasswordWorkBusy, and f does not run.
func (w *passwordWork) run(ctx context.Context, f func()) error {
	timer := time.NewTimer(w.wait)
	defer timer.Stop()
	select {
	case w.turns <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errPasswordWorkBusy
	}
	defer func() { <-w.turns }()
	f()
	return nil
}

// hash is hashPassword in its turn.
func (w *passwordWork) hash(ctx context.Context, password string) (hash string, err error) {
	if err := w.run(ctx, func() { hash, err = passwords.Hash(password) }); err != nil {
		return "", err
	}
	return hash, err
}

// check is checkPassword in its turn.
func (w *passwordWork) check(ctx context.Context, hash, password string) (ok bool, err error) {
	if err := w.run(ctx, func() { ok, err = passwords.Check(hash, password) }); err != nil {
		return false, err
	}
	return ok, err
}

// splitPasswordWork returns the turns of sign-in and signed-in people's
// password checks (n, or one per CPU when n <= 0) and, apart, those of
// unauthenticated routes that hash a new password (half as many, at least
// one). A flood of sign-ups or setup links thus waits for its own turns and
// never takes sign-in's; at worst one and a half times n hashes run at once.
func splitPasswordWork(n int) (signIn, anon *passwordWork) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return newPasswordWork(n), newPasswordWork(max(1, n/2))
}
