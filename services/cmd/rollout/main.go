// Command rollout checks that a rolling restart under load loses nothing
// (issue 15, point 6). It starts the stack as production runs it, each
// service as its own `mailplane serve <service>` processes (two replicas
// behind one DNS name, as a headless Service gives the gateway) and the
// gateway in front, on a fresh database and a stream of its own; it keeps a
// steady REST load on the edge (address creates with an Idempotency-Key,
// and reads), retrying only what a well-behaved client retries; it restarts
// every process in turn (SIGTERM, exit, start, ready); then it counts the
// requests lost and the events lost or duplicated, and exits 1 if any was.
//
//	rollout -bin bin/mailplane -database-url postgres://postgres@127.0.0.1:5432/postgres
//
// scripts/rolling-restart.sh builds the binary and runs it; docs/operations.md
// says what the counts mean.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var c config
	var services string
	flag.StringVar(&c.Bin, "bin", "bin/mailplane", "the mailplane binary to run")
	flag.StringVar(&c.DatabaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres", "PostgreSQL server URL; the run creates a database of its own on it (and drops it)")
	flag.StringVar(&c.NATSURL, "nats-url", "", "NATS server with JetStream (2.10 or later); the run uses a stream of its own (and deletes it); empty: a server in this process, its store in the log directory")
	flag.StringVar(&services, "restart", strings.Join(allServices, ","), "services to restart, in order, comma-separated (every one runs)")
	flag.BoolVar(&c.RestartGateway, "restart-gateway", true, "restart the gateway after the services")
	flag.IntVar(&c.Replicas, "replicas", 2, "processes per service (1 or 2), behind one DNS name")
	flag.Float64Var(&c.Rate, "rate", 20, "address creates per second, and as many reads")
	flag.DurationVar(&c.Warmup, "warmup", 5*time.Second, "load before the first restart")
	flag.DurationVar(&c.Pause, "pause", 5*time.Second, "load between one process ready and the next restart, and after the last")
	flag.StringVar(&c.Dir, "dir", "", "where the processes' logs go; empty: a new temporary directory")
	flag.IntVar(&c.PoolMaxConns, "pool-max-conns", 4, "PostgreSQL connections each process holds at most")
	flag.BoolVar(&c.Keep, "keep", false, "keep the database and the stream after the run")
	flag.Parse()
	c.Restart = splitList(services)
	r, err := run(ctx, c, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rollout:", err)
		os.Exit(2)
	}
	if !r.ok() {
		os.Exit(1)
	}
}

// allServices are the services the stack runs, in start order (accounts
// first: every other asks it about callers).
var allServices = []string{"accounts", "mailboxes", "dnssecurity", "lists", "filters", "imports"}

// config is one run's settings.
type config struct {
	Bin            string
	DatabaseURL    string
	NATSURL        string
	Restart        []string
	RestartGateway bool
	Replicas       int
	Rate           float64
	Warmup, Pause  time.Duration
	Dir            string
	Keep           bool
	PoolMaxConns   int
}

// run starts the stack, loads it, restarts its processes and reports.
func run(ctx context.Context, c config, out io.Writer) (*report, error) {
	if c.Replicas < 1 || c.Replicas > 2 {
		return nil, fmt.Errorf("replicas: want 1 or 2, got %d", c.Replicas)
	}
	for _, s := range c.Restart {
		if !slices.Contains(allServices, s) {
			return nil, fmt.Errorf("restart: unknown service %q", s)
		}
	}
	st, err := startStack(ctx, c, out)
	if err != nil {
		return nil, err
	}
	defer st.close()
	fmt.Fprintf(out, "stack ready (logs in %s); load: %.0f creates/s and %.0f reads/s\n", st.dir, c.Rate, c.Rate)

	l, err := newLoad(ctx, st.edgeURL())
	if err != nil {
		return nil, err
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loaded := make(chan struct{})
	go func() { defer close(loaded); l.run(loadCtx, c.Rate) }()

	start := time.Now()
	restarts, err := st.rollThrough(ctx, c, out)
	stopLoad()
	<-loaded
	if err != nil {
		return nil, err
	}
	r := &report{config: c, took: time.Since(start), restarts: restarts, load: l.counts()}
	fmt.Fprintln(out, "load stopped; waiting for the events to settle")
	if r.events, err = st.countEvents(ctx, l); err != nil {
		return nil, err
	}
	r.print(out)
	return r, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
