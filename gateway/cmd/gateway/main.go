// Command gateway runs Mailplane's REST edge on its own, as Kubernetes
// deploys it. Every setting is a flag whose default comes from a MAILPLANE_*
// environment variable (--http-addr from MAILPLANE_HTTP_ADDR, and so on).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mailplane/mailplane/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run parses the settings from args and getenv, then serves the edge until
// ctx is done. Logs go to stdout as JSON.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	s, err := parseSettings(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := newLogger(stdout, s.logLevel)
	if err != nil {
		return err
	}
	shutdown, err := setupTracing(ctx, s.otlpEndpoint)
	if err != nil {
		return err
	}
	defer func() {
		// The signal context is done by now; give the exporter its own time.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("flush traces", "error", err)
		}
	}()
	return gateway.Run(ctx, s.Config, log)
}

type settings struct {
	gateway.Config
	logLevel     string
	otlpEndpoint string
}

func parseSettings(args []string, getenv func(string) string, usageOut io.Writer) (settings, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var errs []error
	shutdownTimeout := 20 * time.Second
	if v := getenv("MAILPLANE_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("MAILPLANE_SHUTDOWN_TIMEOUT=%q: want a duration like 20s", v))
		} else {
			shutdownTimeout = d
		}
	}

	var s settings
	var origins string
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	fs.StringVar(&s.Addr, "http-addr", env("MAILPLANE_HTTP_ADDR", ":8080"), "HTTP listen address (env MAILPLANE_HTTP_ADDR)")
	fs.StringVar(&s.AccountsAddr, "accounts-addr", env("MAILPLANE_ACCOUNTS_ADDR", "127.0.0.1:9090"), "gRPC address of the accounts service (env MAILPLANE_ACCOUNTS_ADDR)")
	fs.StringVar(&origins, "cors-origins", getenv("MAILPLANE_CORS_ORIGINS"), `comma-separated browser origins allowed to call the API, "*" for any; empty: no CORS (env MAILPLANE_CORS_ORIGINS)`)
	fs.DurationVar(&s.ShutdownTimeout, "shutdown-timeout", shutdownTimeout, "how long requests in flight may finish after SIGTERM (env MAILPLANE_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&s.logLevel, "log-level", env("MAILPLANE_LOG_LEVEL", "info"), "debug, info, warn or error (env MAILPLANE_LOG_LEVEL)")
	fs.StringVar(&s.otlpEndpoint, "otlp-endpoint", getenv("MAILPLANE_OTLP_ENDPOINT"), "OTLP/gRPC collector host:port for traces; empty: no export (env MAILPLANE_OTLP_ENDPOINT)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return s, err
		}
		errs = append(errs, err)
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			s.CORSOrigins = append(s.CORSOrigins, o)
		}
	}
	return s, errors.Join(errs...)
}

// newLogger returns a JSON logger at level that adds the trace and span ids
// to every record made with a context carrying a span.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(traceHandler{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})}), nil
}
