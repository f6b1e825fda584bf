package jobs_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/riverqueue/river"
)

const schema = "jobs_test"

type countArgs struct {
	Key string `json:"key"`
}

func (countArgs) Kind() string { return "count" }

// countWorker counts its runs and fails the first fail of them.
type countWorker struct {
	river.WorkerDefaults[countArgs]
	runs atomic.Int32
	fail int32
}

func (w *countWorker) Work(ctx context.Context, job *river.Job[countArgs]) error {
	if w.runs.Add(1) <= w.fail {
		return errors.New("not yet")
	}
	return nil
}

func (w *countWorker) NextRetry(job *river.Job[countArgs]) time.Time {
	return jobs.Backoff(job.Attempt, 10*time.Millisecond, time.Second)
}

func newPool(t *testing.T) *pgxpool.Pool {
	return pgtest.NewPool(t, schema, fstest.MapFS{})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jobState(t *testing.T, pool *pgxpool.Pool, id int64) (state string, attempt int, errs int) {
	t.Helper()
	err := pool.QueryRow(context.Background(), "SELECT state, attempt, coalesce(array_length(errors, 1), 0) FROM river_job WHERE id = $1", id).
		Scan(&state, &attempt, &errs)
	if err != nil {
		t.Fatal(err)
	}
	return state, attempt, errs
}

// TestInsertTx: a job is the transaction's: rolled back with it, worked
// once it commits, retried after a failure.
func TestInsertTx(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	w := &countWorker{fail: 1}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	client := jobs.StartForTest(t, pool, jobs.Config{Schema: schema, Workers: workers})

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.InsertTx(ctx, tx, countArgs{Key: "rolled back"}, nil); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)

	var id int64
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		res, err := client.InsertTx(ctx, tx, countArgs{Key: "committed"}, nil)
		if err == nil {
			id = res.Job.ID
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to complete", func() bool { s, _, _ := jobState(t, pool, id); return s == "completed" })
	if _, attempt, errs := jobState(t, pool, id); attempt != 2 || errs != 1 {
		t.Errorf("attempt %d with %d errors, want 2 with 1", attempt, errs)
	}
	var n int
	pool.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&n)
	if n != 1 || w.runs.Load() != 2 {
		t.Errorf("%d jobs, %d runs; want 1 job (the rolled back one never existed), 2 runs", n, w.runs.Load())
	}
}

// TestDiscarded: a job that fails every attempt ends discarded, the dead
// letter an SRE finds with its errors.
func TestDiscarded(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &countWorker{fail: 100})
	client := jobs.StartForTest(t, pool, jobs.Config{Schema: schema, Workers: workers})
	res, err := client.Insert(ctx, countArgs{}, &river.InsertOpts{MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to be discarded", func() bool { s, _, _ := jobState(t, pool, res.Job.ID); return s == "discarded" })
	var last string
	pool.QueryRow(ctx, "SELECT errors[array_length(errors, 1)]->>'error' FROM river_job WHERE state = 'discarded'").Scan(&last)
	if _, attempt, errs := jobState(t, pool, res.Job.ID); attempt != 3 || errs != 3 || last != "not yet" {
		t.Errorf("attempt %d, %d errors, last %q; want 3, 3, \"not yet\"", attempt, errs, last)
	}
}

// TestRescued: a job whose worker died mid-way (its process stopped: the
// job stays running, nobody finishes it) is run again.
func TestRescued(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	w := &countWorker{}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)

	// The dead process: it inserted the job and started it an hour ago.
	dead, err := jobs.New(pool, jobs.Config{Schema: schema, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	res, err := dead.Insert(ctx, countArgs{Key: "orphan"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '1 hour',
		attempted_by = '{dead-process}' WHERE id = $1`, res.Job.ID); err != nil {
		t.Fatal(err)
	}

	jobs.StartForTest(t, pool, jobs.Config{Schema: schema, Workers: workers})
	waitFor(t, "the job to be rescued and completed", func() bool { s, _, _ := jobState(t, pool, res.Job.ID); return s == "completed" })
	var first string
	pool.QueryRow(ctx, "SELECT errors[1]->>'error' FROM river_job WHERE id = $1", res.Job.ID).Scan(&first)
	if _, attempt, _ := jobState(t, pool, res.Job.ID); attempt != 2 || w.runs.Load() != 1 || first != "Stuck job rescued by JobRescuer" {
		t.Errorf("attempt %d, %d runs, first error %q; want attempt 2, 1 run, rescued", attempt, w.runs.Load(), first)
	}
}

// TestUnique: a second insert of the same args while the first waits finds
// it; once the first completed, a new one is inserted.
func TestUnique(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &countWorker{})
	inserter, err := jobs.New(pool, jobs.Config{Schema: schema, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	opts := &river.InsertOpts{UniqueOpts: *jobs.Unique()}
	first, err := inserter.Insert(ctx, countArgs{Key: "a"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := inserter.Insert(ctx, countArgs{Key: "a"}, opts)
	if err != nil || !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
		t.Fatalf("second insert: %+v, %v; want the first job", again, err)
	}
	other, err := inserter.Insert(ctx, countArgs{Key: "b"}, opts)
	if err != nil || other.UniqueSkippedAsDuplicate {
		t.Fatalf("other args: %+v, %v; want a new job", other, err)
	}

	jobs.StartForTest(t, pool, jobs.Config{Schema: schema, Workers: workers})
	waitFor(t, "the job to complete", func() bool { s, _, _ := jobState(t, pool, first.Job.ID); return s == "completed" })
	after, err := inserter.Insert(ctx, countArgs{Key: "a"}, opts)
	if err != nil || after.UniqueSkippedAsDuplicate {
		t.Fatalf("insert after completion: %+v, %v; want a new job", after, err)
	}
}

// TestPeriodic: periodic work runs when a replica becomes the leader.
func TestPeriodic(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	var runs atomic.Int32
	p := jobs.Periodic{Name: "count things", Interval: time.Hour, Work: func(context.Context) (int, error) { return int(runs.Add(1)), nil }}
	jobs.StartForTest(t, pool, jobs.Config{Schema: schema, Periodic: []jobs.Periodic{p}})
	waitFor(t, "the periodic job to run", func() bool {
		var n int
		pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE kind = 'periodic' AND state = 'completed'").Scan(&n)
		return n == 1
	})
	if runs.Load() != 1 {
		t.Errorf("%d runs, want 1", runs.Load())
	}
	if _, err := jobs.New(pool, jobs.Config{Schema: schema, Periodic: []jobs.Periodic{p, p}}); err == nil {
		t.Error("the same periodic work twice: no error")
	}
}

type failArgs struct {
	Panic bool `json:"panic"`
}

func (failArgs) Kind() string { return "fail" }

// failWorker fails every attempt, with an error or a panic.
type failWorker struct {
	river.WorkerDefaults[failArgs]
}

func (failWorker) Work(ctx context.Context, job *river.Job[failArgs]) error {
	if job.Args.Panic {
		panic("broken")
	}
	return errors.New("broken")
}

// TestQueueMetrics checks what an SRE sees of a service's jobs: while no
// worker runs, the queue by state and the age of the oldest due job; once
// workers run, the queue emptied, attempts counted by kind and outcome (a
// panic is a failure), the dead letters left.
func TestQueueMetrics(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	metrics := metrictest.New()
	workers := river.NewWorkers()
	river.AddWorker(workers, &countWorker{})
	river.AddWorker(workers, failWorker{})
	client, err := jobs.New(pool, jobs.ForTest(jobs.Config{Schema: schema, Workers: workers, Meter: metrics.Meter}))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string, want map[string]float64, wantOldest func(float64) bool) {
		t.Helper()
		for state, n := range want {
			if got, ok := metrics.Value(t, "mailplane_jobs", "service", schema, "state", state); !ok || got != n {
				t.Errorf("%s: mailplane_jobs{state=%q} = %v (reported: %v), want %v", when, state, got, ok, n)
			}
		}
		if got, ok := metrics.Value(t, "mailplane_jobs_oldest_available_seconds", "service", schema); !ok || !wantOldest(got) {
			t.Errorf("%s: oldest available %vs (reported: %v)", when, got, ok)
		}
	}
	zero := func(s float64) bool { return s == 0 }
	check("no jobs", map[string]float64{"available": 0, "scheduled": 0, "retryable": 0, "running": 0, "discarded": 0}, zero)

	now := time.Now()
	_, err = client.InsertMany(ctx, []river.InsertManyParams{
		{Args: countArgs{Key: "due an hour ago"}},
		{Args: countArgs{Key: "due now"}},
		{Args: countArgs{Key: "due tomorrow"}, InsertOpts: &river.InsertOpts{ScheduledAt: now.Add(24 * time.Hour)}},
		{Args: failArgs{}, InsertOpts: &river.InsertOpts{MaxAttempts: 1}},
		{Args: failArgs{Panic: true}, InsertOpts: &river.InsertOpts{MaxAttempts: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// As a job waits when no worker takes it.
	if _, err := pool.Exec(ctx, "UPDATE river_job SET scheduled_at = now() - interval '1 hour' WHERE args->>'key' = 'due an hour ago'"); err != nil {
		t.Fatal(err)
	}
	check("workers stopped", map[string]float64{"available": 4, "scheduled": 1, "retryable": 0, "running": 0, "discarded": 0},
		func(s float64) bool { return s >= 3600 && s < 3600+60 })

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- jobs.Run(runCtx, client) }()
	waitFor(t, "the due jobs to be worked", func() bool {
		n, _ := metrics.Value(t, "mailplane_jobs", "service", schema, "state", "discarded")
		c, _ := metrics.Value(t, "mailplane_jobs_completed_total", "service", schema)
		return n == 2 && c == 2
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check("workers done", map[string]float64{"available": 0, "scheduled": 1, "retryable": 0, "running": 0, "discarded": 2}, zero)
	for _, c := range []struct {
		name, kind string
		want       float64
	}{
		{"mailplane_jobs_completed_total", "count", 2},
		{"mailplane_jobs_failed_total", "count", 0},
		{"mailplane_jobs_failed_total", "fail", 2},
	} {
		if got, _ := metrics.Value(t, c.name, "service", schema, "kind", c.kind); got != c.want {
			t.Errorf("%s{kind=%q} = %v, want %v", c.name, c.kind, got, c.want)
		}
	}
}

// TestRunWaitsForTheDatabase: a client whose database cannot be reached
// when it starts (down, failing over, out of connections) keeps trying and
// works its jobs once it can, rather than ending the process that runs it
// (scripts/rolling-restart.sh lost both mailboxes replicas so).
func TestRunWaitsForTheDatabase(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	w := &countWorker{}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)

	// The worker's pool reaches PostgreSQL through a port nothing listens
	// on yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	cfg := pool.Config().Copy()
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = "127.0.0.1", uint16(addr.Port), nil
	cut, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cut.Close)
	client, err := jobs.New(cut, jobs.ForTest(jobs.Config{Schema: schema, Workers: workers}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- jobs.Run(runCtx, client) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	res, err := client.Insert(ctx, countArgs{Key: "waiting"}, nil)
	if err == nil {
		t.Fatalf("inserted through an unreachable database: %v", res)
	}
	inserted, err := jobs.New(pool, jobs.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if res, err = inserted.Insert(ctx, countArgs{Key: "waiting"}, nil); err != nil {
		t.Fatal(err)
	}

	// The database comes back: the port forwards to PostgreSQL.
	proxy, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	go forward(proxy, target)
	waitFor(t, "the job to be worked", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("run ended while the database was down: %v", err)
		default:
		}
		s, _, _ := jobState(t, pool, res.Job.ID)
		return s == "completed"
	})
}

// forward copies each connection l accepts to and from target.
func forward(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer s.Close()
			go io.Copy(s, c)
			io.Copy(c, s)
		}()
	}
}
