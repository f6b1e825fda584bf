package accounts

import (
	"context"
	"runtime"
	"time"

	"github.com/mailplane/mailplane/services/platform/errs"
)

// passwordWork bounds the password hashes (argon2id) running at once. Each
// holds 19 MiB and a CPU for some 25 ms: more at once than the process has
// CPUs only costs memory, and a burst of sign-ins must not get the process
// killed for it. Calls wait their turn, for at most passwordWait.
type passwordWork chan struct{}

// passwordWait is how long a call waits for a turn before it is refused.
const passwordWait = 10 * time.Second

// newPasswordWork lets n hashes run at once; n <= 0 means one per CPU.
func newPasswordWork(n int) passwordWork {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return make(passwordWork, n)
}

var errPasswordWorkBusy = errs.E(errs.ResourceExhausted, "too many password checks at once; try again in a moment").WithReason("PASSWORD_CHECKS_BUSY")

// run runs f in its turn. A caller who gives up, or waits passwordWait,
// gets an error and f does not run.
func (w passwordWork) run(ctx context.Context, f func()) error {
	ctx, cancel := context.WithTimeout(ctx, passwordWait)
	defer cancel()
	select {
	case w <- struct{}{}:
	case <-ctx.Done():
		return errPasswordWorkBusy
	}
	defer func() { <-w }()
	f()
	return nil
}

// hash is hashPassword in its turn.
func (w passwordWork) hash(ctx context.Context, password string) (hash string, err error) {
	if err := w.run(ctx, func() { hash, err = hashPassword(password) }); err != nil {
		return "", err
	}
	return hash, err
}

// check is checkPassword in its turn.
func (w passwordWork) check(ctx context.Context, hash, password string) (ok bool, err error) {
	if err := w.run(ctx, func() { ok, err = checkPassword(hash, password) }); err != nil {
		return false, err
	}
	return ok, err
}
