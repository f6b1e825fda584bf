// Package oteltest is an OTLP trace receiver for tests: a gRPC server on
// loopback implementing the OTLP TraceService, which collects the spans the
// real exporter sends it, so that a test can wait for the spans of a trace
// and check who is whose parent. Nothing of the SDK is replaced: spans go
// through the process's own exporter, over gRPC, as they would to a
// collector.
package oteltest

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
)

// WaitLimit bounds every wait of a Receiver: a span that has not come by
// then is not coming (the exporters of tests send at once, or every 100 ms
// with OTEL_BSP_SCHEDULE_DELAY=100), and the test fails saying which.
const WaitLimit = 30 * time.Second

// Span is a span as the receiver got it.
type Span struct {
	TraceID trace.TraceID
	SpanID  trace.SpanID
	// Parent is the zero SpanID for a trace's root.
	Parent trace.SpanID
	Name   string
	Kind   trace.SpanKind
	// Service is the service.name of the process that sent the span.
	Service string
	// Scope is the instrumentation scope (the tracer's name).
	Scope string
	// Attrs are the span's attributes, each value as a string (numbers in
	// decimal, others as JSON).
	Attrs map[string]string
	// Events are the names of the span's events ("exception" for an error
	// recorded with RecordError).
	Events        []string
	Status        codes.Code
	StatusMessage string
}

func (s Span) String() string {
	parent := "root"
	if s.Parent.IsValid() {
		parent = "parent " + s.Parent.String()
	}
	return fmt.Sprintf("%s %q (%s, %s, %s, status %s) %v", s.SpanID, s.Name, s.Kind, s.Scope, parent, s.Status, s.Attrs)
}

// Want describes spans a test waits for; its zero fields match anything.
type Want struct {
	Name string
	Kind trace.SpanKind
	// Attrs must all be on the span, with these values.
	Attrs map[string]string
	// Status, when not Unset, is the status wanted.
	Status codes.Code
}

// Matches reports whether s is such a span.
func (w Want) Matches(s Span) bool {
	if w.Name != "" && s.Name != w.Name || w.Kind != trace.SpanKindUnspecified && s.Kind != w.Kind {
		return false
	}
	if w.Status != codes.Unset && s.Status != w.Status {
		return false
	}
	for k, v := range w.Attrs {
		if got, ok := s.Attrs[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (w Want) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "a span")
	if w.Kind != trace.SpanKindUnspecified {
		fmt.Fprintf(&b, " of kind %s", w.Kind)
	}
	if w.Name != "" {
		fmt.Fprintf(&b, " named %q", w.Name)
	}
	if len(w.Attrs) > 0 {
		fmt.Fprintf(&b, " with %v", w.Attrs)
	}
	if w.Status != codes.Unset {
		fmt.Fprintf(&b, " with status %s", w.Status)
	}
	return b.String()
}

// Receiver is an OTLP/gRPC trace receiver on loopback.
type Receiver struct {
	// Addr is where exporters send ("127.0.0.1:port"): the value of an
	// otlp-endpoint setting.
	Addr string

	mu    sync.Mutex
	spans []Span
	// more is closed, and replaced, whenever spans come.
	more chan struct{}
}

// Start runs a receiver until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oteltest: listen: %v", err)
	}
	r := &Receiver{Addr: lis.Addr().String(), more: make(chan struct{})}
	srv := grpc.NewServer()
	collectorpb.RegisterTraceServiceServer(srv, traceService{r: r})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return r
}

// TracerProvider returns a provider sampling every span and sending each,
// as it ends, to r over OTLP/gRPC, as service; it is shut down when the
// test ends.
func (r *Receiver) TracerProvider(t testing.TB, service string) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(r.Addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatalf("oteltest: exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// Spans returns every span received so far, in the order they came.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Trace returns the spans received so far of trace id.
func (r *Receiver) Trace(id trace.TraceID) []Span {
	var out []Span
	for _, s := range r.Spans() {
		if s.TraceID == id {
			out = append(out, s)
		}
	}
	return out
}

// Wait waits until found holds of the spans received, and returns them;
// it fails the test, naming what, if they do not come within WaitLimit.
func (r *Receiver) Wait(t testing.TB, what string, found func([]Span) bool) []Span {
	t.Helper()
	timeout := time.NewTimer(WaitLimit)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		spans, more := slices.Clone(r.spans), r.more
		r.mu.Unlock()
		if found(spans) {
			return spans
		}
		select {
		case <-more:
		case <-timeout.C:
			t.Fatalf("oteltest: still waiting for %s after %v; received:\n%s", what, WaitLimit, Format(spans))
			return nil
		}
	}
}

// WaitSpan waits for a span matching want, in any trace, and returns the
// first.
func (r *Receiver) WaitSpan(t testing.TB, want Want) Span {
	t.Helper()
	var got Span
	r.Wait(t, want.String(), func(spans []Span) bool {
		var ok bool
		got, ok = Find(spans, want)
		return ok
	})
	return got
}

// WaitChild waits for a span matching want whose parent is parent, and
// returns the first.
func (r *Receiver) WaitChild(t testing.TB, parent Span, want Want) Span {
	t.Helper()
	var got Span
	r.Wait(t, fmt.Sprintf("%s child of %s %q", want, parent.SpanID, parent.Name), func(spans []Span) bool {
		var ok bool
		got, ok = Find(Children(spans, parent), want)
		return ok
	})
	return got
}

// Find returns the first span of spans matching want.
func Find(spans []Span, want Want) (Span, bool) {
	for _, s := range spans {
		if want.Matches(s) {
			return s, true
		}
	}
	return Span{}, false
}

// Children returns the spans of spans whose parent is p (in p's trace).
func Children(spans []Span, p Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.TraceID == p.TraceID && s.Parent == p.SpanID {
			out = append(out, s)
		}
	}
	return out
}

// Format lists spans one a line, by trace, for a failure message.
func Format(spans []Span) string {
	byTrace := map[trace.TraceID][]Span{}
	for _, s := range spans {
		byTrace[s.TraceID] = append(byTrace[s.TraceID], s)
	}
	var b strings.Builder
	for _, id := range slices.SortedFunc(maps.Keys(byTrace), func(a, b trace.TraceID) int { return strings.Compare(a.String(), b.String()) }) {
		fmt.Fprintf(&b, "trace %s\n", id)
		for _, s := range byTrace[id] {
			fmt.Fprintf(&b, "  %s\n", s)
		}
	}
	return b.String()
}

// traceService is the OTLP TraceService the exporters call.
type traceService struct {
	collectorpb.UnimplementedTraceServiceServer
	r *Receiver
}

func (ts traceService) Export(_ context.Context, req *collectorpb.ExportTraceServiceRequest) (*collectorpb.ExportTraceServiceResponse, error) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		service := attrs(rs.GetResource().GetAttributes())[string(semconv.ServiceNameKey)]
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, span(service, ss.GetScope().GetName(), s))
			}
		}
	}
	r := ts.r
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	close(r.more)
	r.more = make(chan struct{})
	r.mu.Unlock()
	return &collectorpb.ExportTraceServiceResponse{}, nil
}

func span(service, scope string, s *tracepb.Span) Span {
	out := Span{
		Name:          s.GetName(),
		Kind:          trace.SpanKind(s.GetKind()), // the same numbers in OTLP and the API
		Service:       service,
		Scope:         scope,
		Attrs:         attrs(s.GetAttributes()),
		StatusMessage: s.GetStatus().GetMessage(),
	}
	copy(out.TraceID[:], s.GetTraceId())
	copy(out.SpanID[:], s.GetSpanId())
	copy(out.Parent[:], s.GetParentSpanId())
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, e.GetName())
	}
	switch s.GetStatus().GetCode() {
	case tracepb.Status_STATUS_CODE_OK:
		out.Status = codes.Ok
	case tracepb.Status_STATUS_CODE_ERROR:
		out.Status = codes.Error
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		v := kv.GetValue()
		switch v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.GetStringValue()
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetIntValue())
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetBoolValue())
		case *commonpb.AnyValue_DoubleValue:
			m[kv.GetKey()] = fmt.Sprint(v.GetDoubleValue())
		default:
			b, _ := protojson.Marshal(v)
			m[kv.GetKey()] = string(b)
		}
	}
	return m
}
