package pg

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Group commits the writes of concurrent callers together: the statements of
// every write waiting when a round starts go to PostgreSQL in one batch and
// one transaction (group commit). Under load that halves what a small write
// costs the database, whose round trips, commit and per-transaction work are
// then paid once per round; a write that finds nobody waiting goes alone, in
// one round trip, as it would without the Group.
//
// Each write still succeeds or fails on its own: when a combined round
// fails, nothing of it is committed and every write in it is sent again
// alone, so only the write at fault sees its error.
type Group struct {
	pool    *pgxpool.Pool
	senders int // rounds in flight at most

	// writes counts the writes of each round; failed, the combined rounds
	// that failed and were sent again write by write (double work, which a
	// steady rate of conflicts would cause).
	writes metric.Int64Histogram
	failed metric.Int64Counter
	attrs  metric.MeasurementOption

	mu      sync.Mutex
	waiting []*write
	rounds  int // rounds in flight
}

type write struct {
	ctx   context.Context
	queue func(*pgx.Batch) error
	done  chan error
}

const (
	// groupSenders is how many rounds may be in flight. Fewer rounds make
	// bigger ones: on two cores, bench-address measured 3,800 creates/s with
	// two, 3,300 with four and 3,100 with eight. Two, not one, so that one
	// slow round does not hold up every write.
	groupSenders = 2
	// groupMax bounds a round's transaction, and so the locks it holds.
	groupMax = 100
	// roundTimeout bounds a combined round, which no single caller owns;
	// its callers wait for it even when they give up meanwhile.
	roundTimeout = 10 * time.Second
)

// errAlone tells a write that its round failed and it must be sent alone.
var errAlone = errors.New("pg: send alone")

// NewGroup returns a Group sending through pool, reporting as name (e.g.
// "mailboxes.addresses") through meter (nil: the process's).
func NewGroup(pool *pgxpool.Pool, name string, meter metric.Meter) *Group {
	if meter == nil {
		meter = otel.Meter("github.com/mailplane/mailplane/services/platform/pg")
	}
	g := &Group{pool: pool, senders: groupSenders, attrs: metric.WithAttributes(attribute.String("group", name))}
	// An instrument that cannot be made is a no-op: metrics never stop writes.
	g.writes, _ = meter.Int64Histogram("mailplane.pg.group.writes", metric.WithUnit("{write}"),
		metric.WithDescription("Writes committed together in one round of a group commit."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 100))
	g.failed, _ = meter.Int64Counter("mailplane.pg.group.failed", metric.WithUnit("{round}"),
		metric.WithDescription("Combined rounds that failed; their writes were sent again one by one."))
	return g
}

// Send runs one write: queue puts its statements, with callbacks for their
// results (pgx.QueuedQuery.QueryRow and the like), in b. Send returns when
// they are committed, or with the first error of a statement or callback.
//
// queue may be called twice, again after a failed round, so it must set its
// results afresh each time. As with pool.SendBatch, a write's statements are
// one transaction that a failing statement undoes; a callback's error does
// not undo statements that succeeded, so a write that can fail must fail in
// SQL (a constraint, a statement that errors) rather than only in Go.
func (g *Group) Send(ctx context.Context, queue func(b *pgx.Batch) error) error {
	w := &write{ctx: ctx, queue: queue, done: make(chan error, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, w)
	lead := g.rounds < g.senders
	if lead {
		g.rounds++
	}
	g.mu.Unlock()
	if lead {
		g.round()
	}
	var err error
	select {
	case err = <-w.done:
	case <-ctx.Done():
		if g.withdraw(w) {
			return ctx.Err()
		}
		// A round has it: say what became of it, not that it was dropped.
		err = <-w.done
	}
	if errors.Is(err, errAlone) {
		return g.alone(ctx, queue)
	}
	return err
}

// withdraw takes w out of the writes waiting for a round, and reports
// whether it was still there.
func (g *Group) withdraw(w *write) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.waiting, w)
	if i < 0 {
		return false
	}
	g.waiting = slices.Delete(g.waiting, i, i+1)
	return true
}

// round sends the writes waiting now, then hands on to another round if more
// arrived meanwhile, so a caller who led one gets its answer without waiting
// for the others.
func (g *Group) round() {
	defer func() {
		g.mu.Lock()
		more := len(g.waiting) > 0
		if !more {
			g.rounds--
		}
		g.mu.Unlock()
		if more {
			go g.round()
		}
	}()
	g.mu.Lock()
	n := min(len(g.waiting), groupMax)
	ws := slices.Clone(g.waiting[:n])
	g.waiting = slices.Delete(g.waiting, 0, n)
	g.mu.Unlock()

	switch len(ws) {
	case 0:
	case 1:
		err := protect(func() error { return g.alone(ws[0].ctx, ws[0].queue) })
		g.writes.Record(context.Background(), 1, g.attrs) // before the answer, which may end a test
		ws[0].done <- err
	default:
		g.together(ws)
	}
}

// protect runs f, making a panic its error: a bug in one write's code must
// not leave the others without an answer, nor stop the rounds.
func protect(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pg: panic in a write: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// alone sends one write in PostgreSQL's implicit transaction: one round trip.
func (g *Group) alone(ctx context.Context, queue func(*pgx.Batch) error) error {
	b := &pgx.Batch{}
	if err := queue(b); err != nil {
		return err
	}
	c, err := g.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Released even when a callback panics (the pool then closes it), which
	// pool.SendBatch would not do.
	defer c.Release()
	return c.SendBatch(ctx, b).Close()
}

// together sends ws in one transaction and tells each how it went.
func (g *Group) together(ws []*write) {
	ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	var sent []*write
	for _, w := range ws {
		if err := w.ctx.Err(); err != nil {
			w.done <- err
			continue
		}
		// Each write queues into a batch of its own first, so a queue that
		// fails half-way leaves nothing behind in the round.
		own := &pgx.Batch{}
		if err := protect(func() error { return w.queue(own) }); err != nil {
			w.done <- err
			continue
		}
		b.QueuedQueries = append(b.QueuedQueries, own.QueuedQueries...)
		sent = append(sent, w)
	}
	if len(sent) == 0 {
		return
	}
	// Every write sent gets exactly one answer, whatever happens below:
	// errAlone unless the round is known to have committed, or may have.
	answer := errAlone
	defer func() {
		if answer == nil {
			g.writes.Record(context.Background(), int64(len(sent)), g.attrs)
		} else {
			g.failed.Add(context.Background(), 1, g.attrs)
		}
		for _, w := range sent {
			w.done <- answer
		}
	}()

	c, err := g.pool.Acquire(ctx)
	if err != nil {
		return
	}
	defer c.Release() // a connection left inside a transaction is closed, not reused
	// Statements and callbacks run first, and COMMIT only once all of them
	// succeeded: a callback's error must undo the round like a statement's.
	// A callback that panics is sent again alone, in its caller's goroutine.
	if err := protect(func() error { return c.SendBatch(ctx, b).Close() }); err != nil {
		_, _ = c.Exec(ctx, "ROLLBACK")
		return
	}
	tag, err := c.Exec(ctx, "COMMIT")
	var pe *pgconn.PgError
	switch {
	case err == nil && tag.String() == "COMMIT":
		answer = nil
	case err == nil:
		// PostgreSQL answers ROLLBACK to a COMMIT of a failed transaction.
	case !errors.As(err, &pe):
		// The connection failed while COMMIT was on its way: the round may
		// or may not have committed, and sending its writes again could do
		// them twice.
		answer = fmt.Errorf("pg: commit of %d writes: outcome unknown: %w", len(sent), err)
	}
}
