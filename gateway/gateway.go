// Package gateway is Mailplane's REST edge. It serves the gRPC APIs as JSON
// over HTTP through grpc-gateway, and adds what a browser frontend and an SRE
// expect of it: request ids, CORS, errors with Retry-After, access logs,
// traces, health endpoints and the OpenAPI document.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mailplane/mailplane/gateway/internal/apidocs"
	"github.com/mailplane/mailplane/gateway/internal/openapi"
)

// Config holds the edge's settings.
type Config struct {
	// Addr is the HTTP listen address, e.g. ":8080".
	Addr string
	// AccountsAddr is the gRPC address of the accounts service, e.g.
	// "127.0.0.1:9090", and of every service Backends does not name (one
	// process serving them all).
	AccountsAddr string
	// Backends are the gRPC addresses of the other services, by name
	// ("mailboxes": "mailplane-mailboxes:9090").
	Backends map[string]string
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://app.example.com"); "*" allows any; empty disables CORS.
	CORSOrigins []string
	// ShutdownTimeout bounds Run's graceful shutdown; zero means 20 s.
	ShutdownTimeout time.Duration
	// TrustedProxies are the networks of proxies in front of the edge (an
	// ingress) whose X-Forwarded-For entries are believed when they are the
	// peer; the client is then the nearest untrusted hop.
	TrustedProxies []netip.Prefix
	// Listener, when set, is where Run serves instead of listening on
	// Addr: a process that binds all its ports before it starts anything
	// passes it.
	Listener net.Listener
	// MeterProvider records the edge's request metrics; nil: the
	// process's.
	MeterProvider metric.MeterProvider
}

const (
	defaultShutdownTimeout = 20 * time.Second

	// maxBodyBytes caps a request body. The backends refuse messages above
	// gRPC's default 4 MiB anyway, and grpc-gateway reads the whole body
	// into memory before it calls them.
	maxBodyBytes = 4 << 20
)

// backend is one gRPC service the edge forwards to.
type backend struct {
	name string
	conn *grpc.ClientConn
}

// New dials the backends and returns the edge's handler and a func that
// closes the connections. Dialing does not wait for the backends: a backend
// that is down makes its routes answer 503 and /readyz fail until it is up.
func New(ctx context.Context, cfg Config, log *slog.Logger) (http.Handler, func() error, error) {
	if cfg.AccountsAddr == "" {
		return nil, nil, errors.New("gateway: no accounts address")
	}
	var backends []backend
	closeAll := func() error {
		var errs []error
		for _, b := range backends {
			if err := b.conn.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s connection: %w", b.name, err))
			}
		}
		return errors.Join(errs...)
	}
	for _, a := range apis {
		addr := cfg.Backends[a.name]
		if addr == "" {
			addr = cfg.AccountsAddr
		}
		conn, err := dial(addr)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dial %s at %s: %w", a.name, addr, err)
		}
		backends = append(backends, backend{name: a.name, conn: conn})
	}

	mux, err := newMux(ctx, backends, cfg.TrustedProxies, log)
	if err != nil {
		closeAll()
		return nil, nil, err
	}

	// Exchanging an API token for an access token is the accounts
	// service's: apis lists it first.
	routes := newExchanger(backends[0].conn, mux).wrap(mux)
	limited := http.MaxBytesHandler(routes, maxBodyBytes)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A bulk CSV upload is larger; its handler sets its own limit.
		if strings.HasSuffix(r.URL.Path, bulkCreateVerb) {
			routes.ServeHTTP(w, r)
			return
		}
		limited.ServeHTTP(w, r)
	})
	if len(cfg.CORSOrigins) > 0 {
		h = cors(cfg.CORSOrigins, h)
	}
	// The lists' public form endpoints have their own body limit and CORS
	// (gateway/forms.go): they go round both.
	for _, b := range backends {
		if b.name == "lists" {
			forms, api := newFormsHandler(b.conn, mux, cfg.TrustedProxies, log), h
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, formsPrefix) {
					forms.ServeHTTP(w, r)
					labelServeMuxRoute(r)
					return
				}
				api.ServeHTTP(w, r)
			})
		}
	}
	h = accessLog(log, h)
	h = requestID(h)
	otelOpts := []otelhttp.Option{
		otelhttp.WithFilter(func(r *http.Request) bool {
			// Probes every few seconds would bury the traces people look at.
			return r.URL.Path != "/healthz" && r.URL.Path != "/readyz"
		}),
		// A client's traceparent only links to the edge's trace: it
		// begins a new one, so that no client can force every request
		// sampled nor write spans into traces of its choosing.
		otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true }),
	}
	if cfg.MeterProvider != nil {
		otelOpts = append(otelOpts, otelhttp.WithMeterProvider(cfg.MeterProvider))
	}
	h = otelhttp.NewHandler(h, "gateway", otelOpts...)
	return h, closeAll, nil
}

// dial returns a client connection to addr. Plain-text transport: inside the
// cluster the backends are reached over the pod network (or loopback in dev).
// Calls take turns over every address the name resolves to (a headless
// Service's pods), rather than all going to the first.
func dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(roundRobin),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(
			otelgrpc.WithFilter(filters.Not(filters.HealthCheck())),
		)),
	}, opts...)...)
}

// roundRobin is the gRPC service config spreading calls over the backends.
const roundRobin = `{"loadBalancingConfig": [{"round_robin": {}}]}`

// newMux routes the API of apis[i] to backends[i], and the edge's own
// endpoints. The own endpoints go through the grpc-gateway mux too, so that
// an unknown path or a wrong method gets the same JSON error as everywhere
// else.
func newMux(ctx context.Context, backends []backend, trusted []netip.Prefix, log *slog.Logger) (*runtime.ServeMux, error) {
	queryFree, err := queryFreeRoutes()
	if err != nil {
		return nil, err
	}
	var mux *runtime.ServeMux
	mux = runtime.NewServeMux(
		// Every request body is JSON, whatever the Content-Type says
		// (checkBody refuses other types before the decoder runs).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler()),
		runtime.WithErrorHandler(errorHandler(log)),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		// The services read the token (which grpc-gateway always passes
		// on) and what outgoingMetadata sets, nothing else: by default
		// every standard header would follow as grpcgateway-*, a browser's
		// cookies included, to be copied on each hop.
		runtime.WithIncomingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithMetadata(outgoingMetadata(trusted)),
		// Middlewares run on routed requests only: an unknown path is a
		// 404 whatever its body. mux is set by the time they run.
		runtime.WithMiddlewares(
			labelRoute,
			func(next runtime.HandlerFunc) runtime.HandlerFunc { return checkPathParams(mux)(next) },
			func(next runtime.HandlerFunc) runtime.HandlerFunc { return checkQuery(mux, queryFree)(next) },
			func(next runtime.HandlerFunc) runtime.HandlerFunc { return checkBody(mux)(next) },
			func(next runtime.HandlerFunc) runtime.HandlerFunc { return checkIdempotencyKey(mux)(next) },
		),
		// A form POST (which a browser sends cross-site without asking)
		// would otherwise be routed to the GET route of its path, or to
		// the method an X-HTTP-Method-Override header names.
		runtime.WithDisablePathLengthFallback(),
		runtime.WithDisableHTTPMethodOverride(),
		// grpc-gateway keeps the query parser in a package variable: every
		// edge in the process sets the same stateless one.
		runtime.SetQueryParameterParser(&strictQuery{}),
	)
	for i, a := range apis {
		conn := backends[i].conn
		for _, register := range a.handlers {
			if err := register(ctx, mux, conn); err != nil {
				return nil, fmt.Errorf("register %s routes: %w", a.name, err)
			}
		}
		if a.routes != nil {
			if err := a.routes(mux, conn); err != nil {
				return nil, fmt.Errorf("register %s's own routes: %w", a.name, err)
			}
		}
	}

	own := []struct {
		path string
		h    http.HandlerFunc
	}{
		{"/healthz", healthz},
		{"/readyz", readyz(backends, log)},
		{"/openapi.json", serveOpenAPI},
		// The reference page for frontend teams, rendering /openapi.json.
		{"/docs", apidocs.Page},
		{"/docs/init.js", apidocs.Init},
	}
	for _, name := range apidocs.Names() {
		own = append(own, struct {
			path string
			h    http.HandlerFunc
		}{"/docs/" + name, func(w http.ResponseWriter, r *http.Request) { apidocs.Asset(w, r, name) }})
	}
	for _, o := range own {
		if err := mux.HandlePath(http.MethodGet, o.path, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			o.h(w, r)
		}); err != nil {
			return nil, fmt.Errorf("route %s: %w", o.path, err)
		}
	}
	return mux, nil
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, openapi.Document())
}

// Run serves the edge on cfg.Addr until ctx is done, then stops accepting
// connections and lets requests in flight finish within cfg.ShutdownTimeout.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.Addr == "" && cfg.Listener == nil {
		return errors.New("gateway: no HTTP listen address")
	}
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
	}
	h, closeBackends, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeBackends()

	// Listen here rather than in ListenAndServe so that a taken port is
	// reported to the caller before Run blocks.
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("gateway: listen on %s: %w", cfg.Addr, err)
		}
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("gateway listening", "addr", ln.Addr().String(), "accountsAddr", cfg.AccountsAddr)

	select {
	case err := <-served:
		return fmt.Errorf("gateway: serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("gateway shutting down", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running past the deadline are cut off.
		srv.Close()
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}
