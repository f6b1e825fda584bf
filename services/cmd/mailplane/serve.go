package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/dnssecurity"
	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/imports"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/service"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// services is every service the binary runs, in start order. Adding a
// service adds a line here and nothing else in cmd.
func services() []service.Service {
	return []service.Service{
		accounts.New(new(accounts.Config)),
		mailboxes.New(new(mailboxes.Config)),
		dnssecurity.New(new(dnssecurity.Config)),
		lists.New(new(lists.Config)),
		filters.New(new(filters.Config)),
		imports.New(new(imports.Config)),
	}
}

// settings are what a process running services needs: its own, and each
// service's (in services[i].Settings).
type settings struct {
	GRPCAddr         string
	MetricsAddr      string
	PprofAddr        string
	DatabaseURL      string
	NATS             events.NATS
	EventStream      string
	EventPrefix      string
	EventReplicas    int
	OTLPEndpoint     string
	TraceSampleRatio float64
	LogLevel         string
	TokenPublicKey   string
	AccessTokenTTL   time.Duration
	ShutdownTimeout  time.Duration
	DNSResolver      string
	// addrs are the services' <name>-addr settings.
	addrs      map[string]*string
	SecretKeys string

	services []service.Service
	// production is set by serve: keys from dev or from the repository
	// sign tokens that others can forge.
	production bool
}

func newSettings() *settings { return &settings{services: services()} }

func (s *settings) register(l *config.Loader) {
	l.String(&s.GRPCAddr, "grpc-addr", ":9090", "gRPC listen address")
	l.String(&s.MetricsAddr, "metrics-addr", ":9464", "Prometheus /metrics listen address; empty disables it")
	l.String(&s.PprofAddr, "pprof-addr", "", "loopback address serving /debug/pprof/ (no authentication), e.g. 127.0.0.1:6060; empty: off")
	l.String(&s.DatabaseURL, "database-url", "", "PostgreSQL URL, e.g. postgres://mailplane@db:5432/mailplane")
	s.NATS.Register(l)
	l.String(&s.EventStream, "event-stream", "MAILPLANE", "JetStream stream holding every service's events")
	l.String(&s.EventPrefix, "event-prefix", "mailplane", "first token of every event subject")
	l.Int(&s.EventReplicas, "event-stream-replicas", 1, "replicas of the event stream in a NATS cluster (1, 3 or 5)")
	l.String(&s.OTLPEndpoint, "otlp-endpoint", "", "OTLP/gRPC collector host:port for traces; empty: no export")
	l.Float(&s.TraceSampleRatio, "trace-sample-ratio", 1, "share of traces recorded (0 to 1) when otlp-endpoint is set, decided where a trace begins; the rest of the trace follows")
	l.String(&s.LogLevel, "log-level", "info", "debug, info, warn or error")
	l.String(&s.TokenPublicKey, "token-public-key", "", "base64 Ed25519 public key that verifies access tokens")
	l.Duration(&s.AccessTokenTTL, "access-token-ttl", 15*time.Minute, "lifetime of access tokens; every service also replays this much of the revoked sessions at start")
	l.Duration(&s.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "time to drain calls and events on shutdown")
	s.addrs = map[string]*string{}
	for _, svc := range s.services {
		s.addrs[svc.Name] = new(string)
		l.String(s.addrs[svc.Name], svc.Name+"-addr", "", "gRPC address of the "+svc.Name+" service, for the services that call it; empty: this process")
	}
	l.String(&s.SecretKeys, "secret-keys", "", "base64 AES-256 keys, comma-separated, encrypting the secrets services store (DKIM keys, TSIG secrets); the first encrypts, all decrypt; mailplane keygen makes one")
	l.String(&s.DNSResolver, "dns-resolver", "", "DNS resolver host:port asked about customers' domains (verification, security diagnostic); empty: /etc/resolv.conf's first")
	for _, svc := range s.services {
		if svc.Settings != nil {
			svc.Settings.Register(l)
		}
	}
}

// process is what the process tells the named services it runs.
func (s *settings) process(names []string) service.Process {
	pub, _ := auth.ParsePublicKey(s.TokenPublicKey)
	return service.Process{
		Serves:         func(name string) bool { return slices.Contains(names, name) },
		Production:     s.production,
		TokenPublicKey: pub,
		AccessTokenTTL: s.AccessTokenTTL,
		Addrs:          s.addrValues(),
		SecretKeys:     s.SecretKeys,
	}
}

// addrValues are the <name>-addr settings, by service name.
func (s *settings) addrValues() map[string]string {
	m := make(map[string]string, len(s.addrs))
	for name, a := range s.addrs {
		m[name] = *a
	}
	return m
}

// validate reports every bad setting of the process and of the named
// services.
func (s *settings) validate(names []string) error {
	var errs []error
	config.Check(&errs, s.DatabaseURL != "", "database-url", "required")
	errs = append(errs, s.NATS.Validate()...)
	config.Check(&errs, s.EventStream != "" && !strings.ContainsAny(s.EventStream, ". *>"), "event-stream", "want a name without spaces, dots, * or >")
	config.Check(&errs, s.EventPrefix != "" && !strings.ContainsAny(s.EventPrefix, " *>"), "event-prefix", "want a subject token without spaces, * or >")
	config.Check(&errs, s.EventReplicas >= 1 && s.EventReplicas <= 5, "event-stream-replicas", "want 1 to 5, got %d", s.EventReplicas)
	_, err := auth.ParsePublicKey(s.TokenPublicKey)
	config.Check(&errs, err == nil, "token-public-key", "%v", err)
	if err == nil && s.production {
		err := auth.ProductionPublicKey(s.TokenPublicKey)
		config.Check(&errs, err == nil, "token-public-key", "%v", err)
	}
	config.Check(&errs, s.AccessTokenTTL >= time.Minute && s.AccessTokenTTL <= 24*time.Hour, "access-token-ttl", "want between 1m and 24h, got %s", s.AccessTokenTTL)
	config.Check(&errs, s.TraceSampleRatio >= 0 && s.TraceSampleRatio <= 1, "trace-sample-ratio", "want 0 to 1, got %v", s.TraceSampleRatio)
	config.Check(&errs, s.ShutdownTimeout > 0, "shutdown-timeout", "want a positive duration")
	config.Check(&errs, s.PprofAddr == "" || isLoopback(s.PprofAddr), "pprof-addr",
		"profiles have no authentication: want a loopback address like 127.0.0.1:6060 (kubectl port-forward reaches it), got %q", s.PprofAddr)
	p := s.process(names)
	for _, svc := range s.served(names) {
		if svc.Settings != nil {
			errs = append(errs, svc.Settings.Validate()...)
		}
		if svc.Check != nil {
			errs = append(errs, svc.Check(p)...)
		}
	}
	return errors.Join(errs...)
}

// served returns the named services, in start order.
func (s *settings) served(names []string) []service.Service {
	var out []service.Service
	for _, svc := range s.services {
		if slices.Contains(names, svc.Name) {
			out = append(out, svc)
		}
	}
	return out
}

// settingsOf returns the settings of type T among services: dev wires its
// demo through them.
func settingsOf[T service.Settings](services []service.Service) T {
	for _, svc := range services {
		if c, ok := svc.Settings.(T); ok {
			return c
		}
	}
	panic(fmt.Sprintf("no service has settings of type %T", *new(T)))
}

// splitServices separates the leading service names from the flags.
func splitServices(args []string) (names, flags []string, err error) {
	known := service.Names(services())
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if !slices.Contains(known, args[0]) {
			return nil, nil, fmt.Errorf("unknown service %q; known: %s", args[0], strings.Join(known, ", "))
		}
		names = append(names, args[0])
		args = args[1:]
	}
	return names, args, nil
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	names, flags, err := splitServices(args)
	if err != nil {
		return err
	}
	l := config.NewLoader("mailplane serve <service>...", getenv, stdout)
	s := newSettings()
	s.register(l)
	if err := l.Parse(flags); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(names) == 0 {
		return fmt.Errorf("name at least one service to serve: %s", strings.Join(service.Names(s.services), ", "))
	}
	s.production = true
	if err := s.validate(names); err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := telemetry.NewLogger(stdout, s.LogLevel)
	if err != nil {
		return err
	}
	return runServices(ctx, s, names, log, nil)
}

// runServices runs the named services on one gRPC server until ctx is done.
// ready, when set, is called once every port is bound and the server serves.
func runServices(ctx context.Context, s *settings, names []string, log *slog.Logger, ready func(grpcAddr string)) error {
	// Bind the ports first: a port that is taken stops the process here,
	// naming it, before it connects anywhere or says it serves.
	lis, err := config.Listen("grpc-addr", s.GRPCAddr)
	if err != nil {
		return err
	}
	defer lis.Close()
	metrics, err := listenHTTP("metrics", "metrics-addr", s.MetricsAddr)
	if err != nil {
		return err
	}
	defer metrics.close()
	profiles, err := listenHTTP("pprof", "pprof-addr", s.PprofAddr)
	if err != nil {
		return err
	}
	defer profiles.close()

	tel, err := telemetry.Setup(ctx, "mailplane-"+strings.Join(names, "-"), telemetry.Traces{Endpoint: s.OTLPEndpoint, SampleRatio: s.TraceSampleRatio})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))

	pub, err := auth.ParsePublicKey(s.TokenPublicKey)
	if err != nil {
		return fmt.Errorf("token-public-key: %w", err)
	}
	nc, js, err := events.Connect(s.NATS, "mailplane-"+strings.Join(names, "-"), log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := events.EnsureStream(ctx, js, s.EventStream, s.EventPrefix, s.EventReplicas); err != nil {
		return err
	}

	verifier := auth.NewVerifier(pub)
	stopRevocations, err := followRevocations(ctx, js, s, verifier, log)
	if err != nil {
		return err
	}
	defer stopRevocations()
	declared, err := eventCatalog(s.EventPrefix, s.services)
	if err != nil {
		return err
	}
	resolver, err := dns.NewResolver(s.DNSResolver, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dns-resolver: %w", err)
	}
	srv := grpcserver.New(log, verifier)
	var relays []*outbox.Relay
	var consumers []*events.Consumer
	var workers []func(context.Context) error
	probes := map[string]*pg.Probe{}
	for _, svc := range s.served(names) {
		pool, err := pg.Connect(ctx, s.DatabaseURL, svc.Name)
		if err != nil {
			return fmt.Errorf("%s: %w", svc.Name, err)
		}
		defer pool.Close()
		if err := pg.Migrate(ctx, pool, svc.Name, svc.Migrations, log); err != nil {
			return err
		}
		svcLog := log.With("service", svc.Name)
		parts, err := svc.Start(ctx, service.Env{Process: s.process(names), Pool: pool, GRPC: srv.Server, Addr: loopback(lis.Addr().String()), Log: svcLog, DNS: resolver})
		if err != nil {
			return fmt.Errorf("%s: %w", svc.Name, err)
		}
		workers = append(workers, parts.Workers...)
		for _, sub := range parts.Subscriptions {
			var subjects []string
			for _, subj := range sub.Subjects {
				subjects = append(subjects, s.EventPrefix+"."+subj)
			}
			consumers = append(consumers, &events.Consumer{JS: js, Pool: pool, Stream: s.EventStream,
				Durable: sub.Durable, Subjects: subjects, Catalog: declared, Handle: sub.Handle, Log: svcLog})
		}
		relays = append(relays, &outbox.Relay{Pool: pool, JS: js, Prefix: s.EventPrefix, Service: svc.Name, Log: svcLog})
		// Ready while the database answers (grpcserver.Watch); NATS being
		// down does not matter: writes wait in the outbox.
		probe := pg.NewProbe(pool)
		defer probe.Close()
		probes[svc.Name] = probe
		srv.Health.SetServingStatus(svc.Name, healthpb.HealthCheckResponse_SERVING)
	}

	log.Info("serving", "services", names, "grpcAddr", lis.Addr().String(), "metricsAddr", s.MetricsAddr, "pprofAddr", s.PprofAddr)
	if ready != nil {
		ready(lis.Addr().String())
	}

	// The relays outlive the gRPC server: a call drained at shutdown may
	// still write an event, and it should leave with this process.
	relayCtx, stopRelays := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRelays()
	// So do the workers: a service's workers own what its calls use (the
	// connection to accounts is closed when they return), and a call
	// drained at shutdown that then asked accounts failed (500) when they
	// stopped with the process's context (scripts/rolling-restart.sh).
	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer stopRelays()
		defer stopWorkers()
		return srv.Serve(gctx, lis, s.ShutdownTimeout)
	})
	for name, p := range probes {
		g.Go(func() error { srv.Watch(gctx, name, p.Check); return nil })
	}
	for _, r := range relays {
		g.Go(func() error { return r.Run(relayCtx, s.ShutdownTimeout) })
	}
	for _, c := range consumers {
		g.Go(func() error { return c.Run(gctx) })
	}
	for _, w := range workers {
		g.Go(func() error { return w(workCtx) })
	}
	metrics.serve(gctx, g, metricsHandler(tel), s.ShutdownTimeout)
	profiles.serve(gctx, g, pprofHandler(), s.ShutdownTimeout)
	err = g.Wait()
	log.Info("stopped", "services", names)
	return err
}

// followRevocations has v refuse the tokens of every session revoked
// anywhere, as soon as accounts publishes it. Each process follows the
// revocations itself (a durable consumer would give each to one replica
// only), after replaying those whose tokens may still live, so that it
// serves nothing before it knows them.
func followRevocations(ctx context.Context, js jetstream.JetStream, s *settings, v *auth.Verifier, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Every process reads access-token-ttl for this, not only accounts.
	since := time.Now().Add(-s.AccessTokenTTL - time.Minute)
	return events.Follow(ctx, js, s.EventStream, []string{s.EventPrefix + "." + auth.RevocationSubject}, since,
		func(m jetstream.Msg) error { return v.ApplyRevocation(m.Data()) }, log)
}

// httpListener is an HTTP port of the process besides the edge's: metrics,
// profiles. A nil one is switched off.
type httpListener struct {
	name string
	ln   net.Listener
}

// listenHTTP binds addr, the value of setting, for the HTTP server name;
// it returns nil when addr is empty.
func listenHTTP(name, setting, addr string) (*httpListener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := config.Listen(setting, addr)
	if err != nil {
		return nil, err
	}
	return &httpListener{name: name, ln: ln}, nil
}

func (hl *httpListener) close() {
	if hl != nil {
		hl.ln.Close()
	}
}

// serve serves h in g until ctx is done.
func (hl *httpListener) serve(ctx context.Context, g *errgroup.Group, h http.Handler, drain time.Duration) {
	if hl != nil {
		g.Go(func() error { return serveHTTP(ctx, hl, h, drain) })
	}
}

// metricsHandler serves /metrics for Prometheus, and nothing else: the
// port is reachable from the whole cluster.
func metricsHandler(tel *telemetry.Telemetry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", tel.MetricsHandler())
	return mux
}

// pprofHandler serves Go's profiles. They show the program's insides and
// cost CPU to take, so they are off unless pprof-addr is set, and then
// only on loopback.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// isLoopback reports whether addr's host is a loopback name or address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveHTTP serves h on hl until ctx is done.
func serveHTTP(ctx context.Context, hl *httpListener, h http.Handler, drain time.Duration) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(hl.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("%s server: %w", hl.name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	return hs.Shutdown(sctx)
}
