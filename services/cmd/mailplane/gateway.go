package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/mailplane/mailplane/gateway"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"golang.org/x/sync/errgroup"
)

// serveGateway runs the REST edge on its own, as Kubernetes deploys it: one
// binary for every part, the edge scaled in its own Deployment.
func serveGateway(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	l := config.NewLoader("mailplane gateway", getenv, stdout)
	var c gateway.Config
	var origins, proxies, logLevel, otlp, metricsAddr string
	var traceSample float64
	l.String(&c.Addr, "http-addr", ":8080", "REST edge listen address")
	l.String(&c.AccountsAddr, "accounts-addr", "127.0.0.1:9090", "gRPC address of the accounts service")
	// Every other service has its address setting, named after it.
	c.Backends = map[string]string{}
	addrs := map[string]*string{}
	for _, name := range gateway.Services() {
		if name != "accounts" {
			addrs[name] = new(string)
			l.String(addrs[name], name+"-addr", "", "gRPC address of the "+name+" service; empty: accounts-addr")
		}
	}
	l.String(&origins, "cors-origins", "", `browser origins allowed to call the API, comma-separated; "*" for any; empty: no CORS`)
	l.String(&proxies, "trusted-proxies", "", "networks of the proxies in front of the edge (CIDRs, comma-separated) whose X-Forwarded-For is believed")
	l.Duration(&c.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "time requests in flight may take to finish on shutdown")
	l.String(&logLevel, "log-level", "info", "debug, info, warn or error")
	l.String(&otlp, "otlp-endpoint", "", "OTLP/gRPC collector host:port for traces; empty: no export")
	l.Float(&traceSample, "trace-sample-ratio", 1, "share of traces recorded (0 to 1) when otlp-endpoint is set; the edge begins most traces, so this is the share of requests traced")
	l.String(&metricsAddr, "metrics-addr", ":9464", "Prometheus /metrics listen address; empty disables it")
	if err := l.Parse(args); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	if len(l.Args()) > 0 {
		return fmt.Errorf("unexpected arguments %q", l.Args())
	}
	for name, addr := range addrs {
		c.Backends[name] = *addr
	}
	if traceSample < 0 || traceSample > 1 {
		return fmt.Errorf("configuration: trace-sample-ratio (--trace-sample-ratio, MAILPLANE_TRACE_SAMPLE_RATIO): want 0 to 1, got %v", traceSample)
	}
	c.CORSOrigins = splitList(origins)
	for _, p := range splitList(proxies) {
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			return fmt.Errorf("configuration: trusted-proxies (--trusted-proxies, MAILPLANE_TRUSTED_PROXIES): %q is not a CIDR like 10.0.0.0/8", p)
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix.Masked())
	}
	log, err := telemetry.NewLogger(stdout, logLevel)
	if err != nil {
		return err
	}
	metrics, err := listenHTTP("metrics", "metrics-addr", metricsAddr)
	if err != nil {
		return err
	}
	defer metrics.close()
	tel, err := telemetry.Setup(ctx, "mailplane-gateway", telemetry.Traces{Endpoint: otlp, SampleRatio: traceSample})
	if err != nil {
		return err
	}
	defer tel.Shutdown(context.WithoutCancel(ctx))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gateway.Run(gctx, c, log) })
	metrics.serve(gctx, g, metricsHandler(tel), c.ShutdownTimeout)
	return g.Wait()
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
