package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/secret"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// zone is the DNS zone naming the services: each name has an A record per
// replica, as a headless Service has one per pod, and the gateway and the
// services dial it through gRPC's DNS resolver (round robin over what it
// resolves), so that a replica restarting leaves the other to serve.
const zone = "rollout.test."

// stack is the processes of one run and what they share.
type stack struct {
	c      config
	dir    string
	dbName string
	// dbURL is the run's database, as the processes get it.
	dbURL  string
	pool   *pgxpool.Pool
	ns     *natsserver.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	prefix string
	dns    *dns.LocalServer
	// ports are each service's gRPC port, the same on every replica's
	// loopback address (127.0.0.1, 127.0.0.2).
	ports    map[string]int
	httpAddr string
	signing  string
	public   string
	secrets  string
	procs    []*proc
	gateway  *proc
}

// proc is one process of the stack, started again by restart.
type proc struct {
	name  string
	bin   string
	args  []string
	log   string
	ready func(context.Context) error
	cmd   *exec.Cmd
	exit  chan error
}

func startStack(ctx context.Context, c config, out io.Writer) (st *stack, err error) {
	id := randomHex(4)
	st = &stack{c: c, dir: c.Dir, stream: "ROLLOUT_" + strings.ToUpper(id), prefix: "rollout" + id, ports: map[string]int{}}
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	if st.dir == "" {
		if st.dir, err = os.MkdirTemp("", "rollout-"); err != nil {
			return st, err
		}
	} else if err = os.MkdirAll(st.dir, 0o755); err != nil {
		return st, err
	}
	if err := st.createDatabase(ctx, "mailplane_rollout_"+id); err != nil {
		return st, err
	}
	// The stack's own NATS (unless one is named) outlives every restart.
	if st.c.NATSURL == "" {
		if st.ns, err = startNATS(st.dir + "/nats"); err != nil {
			return st, err
		}
		st.c.NATSURL = st.ns.ClientURL()
	}
	if st.nc, err = nats.Connect(st.c.NATSURL); err != nil {
		return st, fmt.Errorf("connect to nats %s: %w", c.NATSURL, err)
	}
	if st.js, err = jetstream.New(st.nc); err != nil {
		return st, fmt.Errorf("jetstream: %w", err)
	}

	// Keys made as `mailplane keygen` makes them: serve refuses dev keys.
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return st, err
	}
	st.signing = base64.StdEncoding.EncodeToString(priv.Seed())
	st.public = base64.StdEncoding.EncodeToString(pub)
	st.secrets = secret.NewKey()

	if st.dns, err = dns.ListenLocal("127.0.0.1:0"); err != nil {
		return st, fmt.Errorf("dns server: %w", err)
	}
	records := "$ORIGIN " + zone + "\n@ 0 SOA ns hostmaster 1 3600 900 604800 0\n@ 0 NS ns\nns 0 A 127.0.0.1\n"
	for _, svc := range allServices {
		if st.ports[svc], err = freePort(c.Replicas); err != nil {
			return st, err
		}
		for r := 1; r <= c.Replicas; r++ {
			records += fmt.Sprintf("%s 0 A 127.0.0.%d\n", svc, r)
		}
	}
	if err := st.dns.SetZone(records); err != nil {
		return st, err
	}
	port, err := freePort(1)
	if err != nil {
		return st, err
	}
	st.httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	for _, svc := range allServices {
		for r := 1; r <= c.Replicas; r++ {
			st.procs = append(st.procs, st.serviceProc(svc, r))
		}
	}
	st.gateway = st.gatewayProc()
	// accounts first, all its replicas at once: the others ask it about
	// callers, and replicas of one service migrate under a lock.
	for _, group := range [][]*proc{st.procs[:c.Replicas], st.procs[c.Replicas:], {st.gateway}} {
		for _, p := range group {
			if err := p.start(); err != nil {
				return st, err
			}
		}
		for _, p := range group {
			if err := p.waitReady(ctx); err != nil {
				return st, err
			}
		}
	}
	fmt.Fprintf(out, "started %d services × %d replicas and the gateway at %s\n", len(allServices), c.Replicas, st.edgeURL())
	return st, nil
}

// createDatabase creates the run's database and connects to it.
func (st *stack) createDatabase(ctx context.Context, name string) error {
	admin, err := pgx.Connect(ctx, st.c.DatabaseURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(st.c.DatabaseURL), err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	st.dbName = name
	u, err := url.Parse(st.c.DatabaseURL)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	st.dbURL = u.String()
	if st.pool, err = pgxpool.New(ctx, st.dbURL); err != nil {
		return fmt.Errorf("connect to the run's database: %w", err)
	}
	// Thirteen processes share one PostgreSQL (and a test machine's
	// max_connections with others): small pools, as many as the load needs.
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(st.c.PoolMaxConns))
	u.RawQuery = q.Encode()
	st.dbURL = u.String()
	if err != nil {
		return fmt.Errorf("connect to the run's database: %w", err)
	}
	return nil
}

// addr is the gRPC target the other processes dial for svc: its DNS name
// through the stack's DNS server, every replica's address.
func (st *stack) addr(svc string) string {
	return fmt.Sprintf("dns://%s/%s.%s:%d", st.dns.Addr(), svc, strings.TrimSuffix(zone, "."), st.ports[svc])
}

// common are the settings every service process gets.
func (st *stack) common() []string {
	return []string{
		"--database-url", st.dbURL,
		"--nats-url", st.c.NATSURL,
		"--event-stream", st.stream,
		"--event-prefix", st.prefix,
		"--token-public-key", st.public,
		"--secret-keys", st.secrets,
		"--dns-resolver", st.dns.Addr(),
		"--metrics-addr=",
		// Mail-facing ports are per process and nothing here talks to
		// them: off.
		"--socketmap-addr=", "--policy-addr=", "--milter-addr=", "--lmtp-addr=", "--report-addr=",
	}
}

func (st *stack) serviceProc(svc string, replica int) *proc {
	own := net.JoinHostPort(fmt.Sprintf("127.0.0.%d", replica), strconv.Itoa(st.ports[svc]))
	args := append([]string{"serve", svc, "--grpc-addr", own}, st.common()...)
	for _, other := range allServices {
		if other != svc {
			args = append(args, "--"+other+"-addr", st.addr(other))
		}
	}
	if svc == "accounts" {
		args = append(args, "--token-signing-key", st.signing)
	}
	name := fmt.Sprintf("%s#%d", svc, replica)
	return &proc{name: name, bin: st.c.Bin, args: args, log: st.logPath(name), ready: func(ctx context.Context) error { return grpcReady(ctx, own, svc) }}
}

func (st *stack) gatewayProc() *proc {
	args := []string{"gateway", "--http-addr", st.httpAddr, "--metrics-addr="}
	for _, svc := range allServices {
		args = append(args, "--"+svc+"-addr", st.addr(svc))
	}
	return &proc{name: "gateway", bin: st.c.Bin, args: args, log: st.logPath("gateway"), ready: func(ctx context.Context) error { return httpReady(ctx, st.edgeURL()+"/readyz") }}
}

func (st *stack) logPath(name string) string {
	return st.dir + "/" + strings.ReplaceAll(name, "#", "-") + ".log"
}

func (st *stack) edgeURL() string { return "http://" + st.httpAddr }

// start runs the process, its output appended to its log.
func (p *proc) start() error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = cleanEnv()
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.exit = make(chan error, 1)
	go func(cmd *exec.Cmd, exit chan error) { exit <- cmd.Wait() }(p.cmd, p.exit)
	return nil
}

// cleanEnv is the environment without MAILPLANE_* variables: every setting
// of a process is on its command line.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAILPLANE_") {
			env = append(env, kv)
		}
	}
	return env
}

// readyTimeout bounds how long a process may take to be ready.
const readyTimeout = 90 * time.Second

// waitReady polls p's readiness until it passes; a process that exits
// meanwhile fails it.
func (p *proc) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := p.ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case e := <-p.exit:
			p.exit <- e
			return fmt.Errorf("%s exited before it was ready (%v); see %s", p.name, e, p.log)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w; see %s", p.name, err, p.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// stopTimeout (its drain budget is 20 s, twice: calls, then the outbox).
func (p *proc) stop() (time.Duration, error) {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0, nil
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("stop %s: %w", p.name, err)
	}
	select {
	case err := <-p.exit:
		p.exit <- err
		return time.Since(start), err
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		return time.Since(start), fmt.Errorf("%s did not exit within %s of SIGTERM: killed", p.name, stopTimeout)
	}
}

const stopTimeout = 60 * time.Second

// restart is one process's restart as the report shows it.
type restart struct {
	name        string
	stop, ready time.Duration
	exit        string
	stoppedAt   time.Duration // since the load started
	unavailable time.Duration // from SIGTERM to ready again
}

// rollThrough restarts every process c names, one after another, with
// c.Pause of load between them, after c.Warmup.
func (st *stack) rollThrough(ctx context.Context, c config, out io.Writer) ([]restart, error) {
	begin := time.Now()
	if err := st.sleepWatching(ctx, c.Warmup); err != nil {
		return nil, err
	}
	var order []*proc
	for _, svc := range c.Restart {
		for _, p := range st.procs {
			if strings.HasPrefix(p.name, svc+"#") {
				order = append(order, p)
			}
		}
	}
	if c.RestartGateway {
		order = append(order, st.gateway)
	}
	var done []restart
	for _, p := range order {
		r := restart{name: p.name, stoppedAt: time.Since(begin)}
		t0 := time.Now()
		took, err := p.stop()
		r.stop, r.exit = took, "0"
		if err != nil {
			r.exit = err.Error()
		}
		t1 := time.Now()
		if err := p.start(); err != nil {
			return done, err
		}
		if err := p.waitReady(ctx); err != nil {
			return done, err
		}
		r.ready, r.unavailable = time.Since(t1), time.Since(t0)
		fmt.Fprintf(out, "  restarted %-14s stop %5.1fs  ready %5.1fs  exit %s\n", p.name, r.stop.Seconds(), r.ready.Seconds(), r.exit)
		done = append(done, r)
		if err := st.sleepWatching(ctx, c.Pause); err != nil {
			return done, err
		}
	}
	return done, nil
}

// sleepWatching waits d, failing if a process exits meanwhile without
// being told to: a run whose stack fell over on its own measures nothing.
func (st *stack) sleepWatching(ctx context.Context, d time.Duration) error {
	end := time.After(d)
	for {
		for _, p := range append(st.procs, st.gateway) {
			select {
			case err := <-p.exit:
				p.exit <- err
				return fmt.Errorf("%s exited on its own (%v); see %s", p.name, err, p.log)
			default:
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// close stops every process and removes the run's database and stream,
// unless c.Keep.
func (st *stack) close() {
	for _, p := range append(st.procs, st.gateway) {
		if p != nil {
			p.stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if st.pool != nil {
		st.pool.Close()
	}
	if st.js != nil && !st.c.Keep {
		st.js.DeleteStream(ctx, st.stream)
	}
	if st.nc != nil {
		st.nc.Close()
	}
	if st.dbName != "" && !st.c.Keep {
		if admin, err := pgx.Connect(ctx, st.c.DatabaseURL); err == nil {
			admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{st.dbName}.Sanitize()+" WITH (FORCE)")
			admin.Close(ctx)
		}
	}
	if st.ns != nil {
		st.ns.Shutdown()
		st.ns.WaitForShutdown()
	}
	if st.dns != nil {
		st.dns.Close()
	}
}

// startNATS runs a NATS server with JetStream on a free loopback port,
// keeping its streams under dir.
func startNATS(dir string) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("nats server did not start")
	}
	return ns, nil
}

// grpcReady asks addr's health service whether svc is SERVING.
func grpcReady(ctx context.Context, addr, svc string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health %s", resp.GetStatus())
	}
	return nil
}

// httpReady asks for url and wants 200.
func httpReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// freePort returns a TCP port free on 127.0.0.1 up to 127.0.0.replicas.
func freePort(replicas int) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		free := true
		for r := 2; r <= replicas; r++ {
			o, err := net.Listen("tcp", net.JoinHostPort(fmt.Sprintf("127.0.0.%d", r), strconv.Itoa(port)))
			if err != nil {
				free = false
				break
			}
			o.Close()
		}
		l.Close()
		if free {
			return port, nil
		}
	}
	return 0, errors.New("no port free on every replica's loopback address")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact drops a URL's password.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(a URL)"
	}
	return u.Redacted()
}
