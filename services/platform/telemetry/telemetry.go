// Package telemetry sets up what SREs watch: JSON logs carrying the trace id,
// OpenTelemetry traces (exported over OTLP when an endpoint is configured)
// and Prometheus metrics.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// DelayBuckets are the bounds, in seconds, of the histograms of how long
// something waited (an event in the outbox, in the stream): from 5 ms, where
// all is well, to 5 min, where something is stuck.
func DelayBuckets() []float64 {
	return []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
}

// Telemetry holds the providers a process reports through.
type Telemetry struct {
	Tracer   trace.TracerProvider
	Meter    *sdkmetric.MeterProvider
	Registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// Traces says where spans go and how many are kept.
type Traces struct {
	// Endpoint is the OTLP/gRPC collector (host:port); empty: spans are
	// only propagated, never recorded.
	Endpoint string
	// SampleRatio is the share of traces recorded, 0 to 1, decided where
	// a trace begins (the edge, or a service called without a trace);
	// the rest of a trace follows that decision, carried in the trace
	// context, so a trace is whole or absent.
	SampleRatio float64
}

// Setup builds the providers for service. Traces are exported as traces
// says. It also installs them as the process-wide OpenTelemetry defaults,
// which libraries such as the NATS and gRPC instrumentation read.
func Setup(ctx context.Context, service string, traces Traces) (*Telemetry, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t := &Telemetry{Registry: prometheus.NewRegistry()}
	t.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if traces.Endpoint != "" {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(traces.Endpoint), otlptracegrpc.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("otlp exporter: %w", err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(traces.SampleRatio))))
	} else {
		// Nothing would read recorded spans: keep trace ids for the logs
		// and for propagation, but do not record.
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	t.Tracer = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	exporter, err := otelprom.New(otelprom.WithRegisterer(t.Registry))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	t.Meter = sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exporter), dropUnread)
	t.shutdown = append(t.shutdown, t.Meter.Shutdown)

	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(t.Meter)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return t, nil
}

// dropUnread drops the instruments that libraries record and nothing
// reads: the HTTP body size histograms otelhttp keeps on every request
// (a series per bucket, route and status), which cost the edge CPU per
// request and Prometheus series for no dashboard or alert.
var dropUnread = sdkmetric.WithView(
	sdkmetric.NewView(sdkmetric.Instrument{Name: "http.server.request.body.size"}, sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}}),
	sdkmetric.NewView(sdkmetric.Instrument{Name: "http.server.response.body.size"}, sdkmetric.Stream{Aggregation: sdkmetric.AggregationDrop{}}),
)

// MetricsHandler serves the Prometheus exposition format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.Registry, promhttp.HandlerOpts{Registry: t.Registry})
}

// Shutdown flushes pending spans and metrics.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// NewLogger returns a JSON logger at level ("debug", "info", "warn",
// "error") that adds traceId and spanId to every record made with a context
// carrying a span.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(traceHandler{h}), nil
}

type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("traceId", sc.TraceID().String()), slog.String("spanId", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}
