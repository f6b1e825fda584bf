package pg_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// groupFixture is a Group whose rounds are all held up by a lock the test
// owns, so that the writes sent meanwhile are known to wait for one round.
type groupFixture struct {
	t       *testing.T
	pool    *pgxpool.Pool
	g       *pg.Group
	metrics *metrictest.Reader
	release func()
	holders sync.WaitGroup
}

func newGroupFixture(t *testing.T) *groupFixture {
	t.Helper()
	ctx := context.Background()
	pool := groupedPool(t)
	lock, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(42)`); err != nil {
		t.Fatal(err)
	}
	metrics := metrictest.New()
	f := &groupFixture{t: t, pool: pool, g: pg.NewGroup(pool, "test", metrics.Meter), metrics: metrics}
	var once sync.Once
	f.release = func() {
		once.Do(func() {
			lock.Exec(ctx, `SELECT pg_advisory_unlock(42)`)
			lock.Release()
			f.holders.Wait()
		})
	}
	t.Cleanup(f.release)
	// Every round the group may run waits on the lock, one after the other.
	for i := range pg.GroupSenders {
		f.holders.Go(func() {
			err := f.g.Send(ctx, func(b *pgx.Batch) error {
				b.Queue(`SELECT pg_advisory_lock_shared(42), pg_advisory_unlock_shared(42)`)
				return nil
			})
			if err != nil {
				t.Errorf("holder: %v", err)
			}
		})
		f.waitFor(fmt.Sprintf("%d rounds blocked", i+1), func() bool {
			var n int
			err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
			return err == nil && n == i+1
		})
	}
	return f
}

// groupedPool is a pool on a fresh database with the table the writes fill.
func groupedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := connect(t, pgtest.NewDatabase(t), "grouped")
	_, err := pool.Exec(context.Background(), `CREATE SCHEMA grouped; CREATE TABLE grouped.rows (id int PRIMARY KEY, tx bigint NOT NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func (f *groupFixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			f.t.Fatalf("waited 10s for %s", what)
		}
	}
}

// result is what one write saw: its transaction and its error.
type result struct {
	tx  int64
	err error
}

// insert sends writes inserting the rows ids through the group at once,
// waits until all of them wait for the same round, lets the rounds go and
// returns what each write saw. fail, when set, is the error the callback of
// the write of that id returns.
func (f *groupFixture) insert(ids []int, fail map[int]error) []result {
	f.t.Helper()
	out := make([]result, len(ids))
	before := f.g.Waiting()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			out[i].err = f.g.Send(context.Background(), func(b *pgx.Batch) error {
				b.Queue(`INSERT INTO grouped.rows (id, tx) VALUES ($1, txid_current()) RETURNING tx`, id).
					QueryRow(func(r pgx.Row) error {
						if err := r.Scan(&out[i].tx); err != nil {
							return err
						}
						return fail[id]
					})
				return nil
			})
		})
	}
	f.waitFor(fmt.Sprintf("%d writes waiting", len(ids)), func() bool { return f.g.Waiting() == before+len(ids) })
	f.release()
	wg.Wait()
	return out
}

func (f *groupFixture) rows() map[int]int64 {
	f.t.Helper()
	rows, _ := f.pool.Query(context.Background(), `SELECT id, tx FROM grouped.rows`)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var v [2]int64
		return v, r.Scan(&v[0], &v[1])
	})
	if err != nil {
		f.t.Fatal(err)
	}
	m := map[int]int64{}
	for _, v := range got {
		m[int(v[0])] = v[1]
	}
	return m
}

// TestGroupCommitsWaitingWritesTogether: writes that arrive while every
// round is busy are committed in one transaction, and each caller gets its
// own statement's result.
func TestGroupCommitsWaitingWritesTogether(t *testing.T) {
	f := newGroupFixture(t)
	ids := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	res := f.insert(ids, nil)
	rows := f.rows()
	for i, id := range ids {
		if res[i].err != nil {
			t.Fatalf("write %d: %v", id, res[i].err)
		}
		if rows[id] != res[i].tx {
			t.Errorf("write %d: callback saw transaction %d, row holds %d", id, res[i].tx, rows[id])
		}
		if res[i].tx != res[0].tx {
			t.Errorf("write %d committed in transaction %d, write 1 in %d: want one transaction", id, res[i].tx, res[0].tx)
		}
	}
	// The rounds holding the lock were one write each, then one of ten.
	rounds, writes := f.metrics.Count(t, "mailplane.pg.group.writes"), f.metrics.Total(t, "mailplane.pg.group.writes")
	if rounds != pg.GroupSenders+1 || writes != float64(pg.GroupSenders+len(ids)) {
		t.Errorf("metrics: %d rounds of %v writes, want %d of %d", rounds, writes, pg.GroupSenders+1, pg.GroupSenders+len(ids))
	}
	if n := f.metrics.Sum(t, "mailplane.pg.group.failed"); n != 0 {
		t.Errorf("%d failed rounds, want none", n)
	}
}

// TestGroupIsolatesAFailingWrite: one write of a round breaks a constraint;
// it alone gets the error and writes nothing, the others are committed.
func TestGroupIsolatesAFailingWrite(t *testing.T) {
	f := newGroupFixture(t)
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO grouped.rows VALUES (5, 0)`); err != nil {
		t.Fatal(err)
	}
	ids := []int{1, 2, 3, 4, 5, 6}
	res := f.insert(ids, nil)
	rows := f.rows()
	for i, id := range ids {
		switch {
		case id == 5:
			if !pg.IsUniqueViolation(res[i].err, "rows_pkey") {
				t.Errorf("write 5: got %v, want the primary key's violation", res[i].err)
			}
			if rows[5] != 0 {
				t.Errorf("row 5 was overwritten: tx %d", rows[5])
			}
		case res[i].err != nil:
			t.Errorf("write %d: %v; want committed", id, res[i].err)
		case rows[id] != res[i].tx:
			t.Errorf("write %d: row holds tx %d, callback saw %d", id, rows[id], res[i].tx)
		}
	}
	if n := f.metrics.Sum(t, "mailplane.pg.group.failed"); n != 1 {
		t.Errorf("%d failed rounds, want 1", n)
	}
}

// TestGroupRollsBackOnACallbackError: a callback's error undoes its round,
// not only its statement; the other writes are then committed without it.
func TestGroupRollsBackOnACallbackError(t *testing.T) {
	f := newGroupFixture(t)
	refused := errors.New("refused by the caller")
	ids := []int{1, 2, 3, 4}
	res := f.insert(ids, map[int]error{3: refused})
	rows := f.rows()
	for i, id := range ids {
		if id == 3 {
			if !errors.Is(res[i].err, refused) {
				t.Errorf("write 3: got %v, want the callback's error", res[i].err)
			}
			continue
		}
		if res[i].err != nil || rows[id] != res[i].tx {
			t.Errorf("write %d: err %v, row tx %d, callback tx %d; want committed", id, res[i].err, rows[id], res[i].tx)
		}
	}
}

// TestGroupDropsACancelledWrite: a caller who gives up before its round
// starts gets its context's error at once, and its write never happens.
func TestGroupDropsACancelledWrite(t *testing.T) {
	f := newGroupFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.g.Send(ctx, func(b *pgx.Batch) error {
			b.Queue(`INSERT INTO grouped.rows VALUES (99, txid_current())`)
			return nil
		})
	}()
	f.waitFor("the write waiting", func() bool { return f.g.Waiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	res := f.insert([]int{1, 2}, nil)
	if res[0].err != nil || res[1].err != nil {
		t.Fatalf("writes after the cancelled one: %v, %v", res[0].err, res[1].err)
	}
	if _, ok := f.rows()[99]; ok {
		t.Error("the cancelled write was committed")
	}
}

// TestGroupSendsALoneWriteAlone: with nobody else waiting a write goes in
// its own implicit transaction and behaves as pool.SendBatch.
func TestGroupSendsALoneWriteAlone(t *testing.T) {
	ctx := context.Background()
	pool := groupedPool(t)
	g := pg.NewGroup(pool, "test", nil)
	var tx1, tx2 int64
	err := g.Send(ctx, func(b *pgx.Batch) error {
		b.Queue(`INSERT INTO grouped.rows VALUES (1, txid_current()) RETURNING tx`).QueryRow(func(r pgx.Row) error { return r.Scan(&tx1) })
		b.Queue(`INSERT INTO grouped.rows VALUES (2, txid_current()) RETURNING tx`).QueryRow(func(r pgx.Row) error { return r.Scan(&tx2) })
		return nil
	})
	if err != nil || tx1 == 0 || tx1 != tx2 {
		t.Fatalf("err %v, transactions %d and %d: want one", err, tx1, tx2)
	}
	err = g.Send(ctx, func(b *pgx.Batch) error {
		b.Queue(`INSERT INTO grouped.rows VALUES (3, 0)`)
		b.Queue(`INSERT INTO grouped.rows VALUES (1, 0)`)
		return nil
	})
	if !pg.IsUniqueViolation(err, "") {
		t.Fatalf("got %v, want a unique violation", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM grouped.rows WHERE id = 3`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("row 3 of the failed write: %d (%v); want none", n, err)
	}
}

// TestGroupAnswersACallerWhoGaveUpTooLate: a caller who gives up once its
// write is in a round that goes on to commit is told it committed, not that
// it was dropped.
func TestGroupAnswersACallerWhoGaveUpTooLate(t *testing.T) {
	f := newGroupFixture(t)
	ctx := context.Background()
	lock, err := f.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(43)`); err != nil {
		t.Fatal(err)
	}
	giveUp, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan error, 2)
	for id, wctx := range map[int]context.Context{1: giveUp, 2: ctx} {
		go func() {
			results <- f.g.Send(wctx, func(b *pgx.Batch) error {
				// The round waits on lock 43 until the test lets it go.
				b.Queue(`SELECT pg_advisory_lock_shared(43), pg_advisory_unlock_shared(43)`)
				b.Queue(`INSERT INTO grouped.rows VALUES ($1, txid_current())`, id)
				return nil
			})
		}()
	}
	f.waitFor("both writes waiting", func() bool { return f.g.Waiting() == 2 })
	f.release()
	f.waitFor("their round waiting on lock 43", func() bool {
		var n int
		err := f.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n == 1
	})
	cancel()
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(43)`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("a write of the committed round answered %v", err)
		}
	}
	if rows := f.rows(); len(rows) != 2 {
		t.Errorf("rows %v, want 1 and 2", rows)
	}
}

// TestGroupSurvivesAPanic: a callback that panics in a round panics in its
// own caller only; the others of the round are committed and the group
// goes on taking writes.
func TestGroupSurvivesAPanic(t *testing.T) {
	f := newGroupFixture(t)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		f.g.Send(context.Background(), func(b *pgx.Batch) error {
			b.Queue(`INSERT INTO grouped.rows VALUES (99, txid_current()) RETURNING tx`).
				QueryRow(func(pgx.Row) error { panic("a bug in a callback") })
			return nil
		})
	}()
	f.waitFor("the panicking write waiting", func() bool { return f.g.Waiting() == 1 })
	res := f.insert([]int{1, 2, 3}, nil)
	if p := <-panicked; p != "a bug in a callback" {
		t.Errorf("the panicking caller got %v, want its panic", p)
	}
	for i, r := range res {
		if r.err != nil {
			t.Errorf("write %d: %v", i+1, r.err)
		}
	}
	// Every round in flight has ended: one more write goes through.
	err := f.g.Send(context.Background(), func(b *pgx.Batch) error {
		b.Queue(`INSERT INTO grouped.rows VALUES (4, txid_current())`)
		return nil
	})
	if err != nil {
		t.Fatalf("a write after the panic: %v", err)
	}
}
