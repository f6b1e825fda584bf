package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
)

// Periodic is work a service repeats: every Interval, and when a replica
// becomes River's leader (at start), on that replica alone. A run that
// fails is tried twice more with backoff; the next interval runs anyway.
type Periodic struct {
	// Name says what the work does, in logs and in the job's args:
	// "purge mail services".
	Name     string
	Interval time.Duration
	// Work does it and reports how many things it did.
	Work func(ctx context.Context) (int, error)
}

// periodicAttempts is how many times a periodic run is tried.
const periodicAttempts = 3

// job is p as River schedules it: at most one run per interval, even when
// the leader changes within it.
func (p Periodic) job() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(p.Interval), func() (river.JobArgs, *river.InsertOpts) {
		return periodicArgs{Name: p.Name}, &river.InsertOpts{
			MaxAttempts: periodicAttempts,
			// River counts periods in seconds at least.
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: max(p.Interval, time.Second)},
		}
	}, &river.PeriodicJobOpts{RunOnStart: true})
}

// periodicArgs names the Periodic a job runs.
type periodicArgs struct {
	Name string `json:"name"`
}

func (periodicArgs) Kind() string { return "periodic" }

type periodicWorker struct {
	river.WorkerDefaults[periodicArgs]
	byName map[string]Periodic
	log    *slog.Logger
}

func (w *periodicWorker) Work(ctx context.Context, job *river.Job[periodicArgs]) error {
	p, ok := w.byName[job.Args.Name]
	if !ok {
		// Work a newer release stopped doing.
		return river.JobCancel(fmt.Errorf("no periodic work %q", job.Args.Name))
	}
	n, err := p.Work(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	if n > 0 {
		w.log.InfoContext(ctx, p.Name, "count", n)
	}
	return nil
}

// minPeriodicTimeout is the least time a run gets, however short its
// interval: a run cut off half-way may leave work leased to it until the
// lease ends (mailboxes' claim checks: 10 minutes).
const minPeriodicTimeout = time.Minute

// Timeout lets a run take up to its interval (the next one is due then),
// and at least minPeriodicTimeout.
func (w *periodicWorker) Timeout(job *river.Job[periodicArgs]) time.Duration {
	if p, ok := w.byName[job.Args.Name]; ok {
		return max(p.Interval, minPeriodicTimeout)
	}
	return 0
}
