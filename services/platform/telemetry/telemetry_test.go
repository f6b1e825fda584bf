package telemetry_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/platform/oteltest"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// TestSampling: with an exporter, the ratio decides for traces that begin
// here, and a trace begun elsewhere follows the decision its context
// carries, whatever the ratio.
func TestSampling(t *testing.T) {
	sampled := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	notSampled := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{2}, SpanID: trace.SpanID{2}, Remote: true,
	})
	for _, tt := range []struct {
		name  string
		ratio float64
		want  []string
	}{
		{"every trace", 1, []string{"root", "sampled parent"}},
		{"no trace begins here", 0, []string{"sampled parent"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := oteltest.Start(t)
			ctx := context.Background()
			tel, err := telemetry.Setup(ctx, "telemetrytest", telemetry.Traces{Endpoint: r.Addr, SampleRatio: tt.ratio})
			if err != nil {
				t.Fatal(err)
			}
			tr := tel.Tracer.Tracer("telemetrytest")
			for name, parent := range map[string]trace.SpanContext{"root": {}, "sampled parent": sampled, "unsampled parent": notSampled} {
				_, span := tr.Start(trace.ContextWithRemoteSpanContext(ctx, parent), name)
				span.End()
			}
			// Shutdown sends what is left: every span kept is received.
			if err := tel.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, s := range r.Spans() {
				got[s.Name] = true
			}
			for _, name := range []string{"root", "sampled parent", "unsampled parent"} {
				want := false
				for _, w := range tt.want {
					want = want || w == name
				}
				if got[name] != want {
					t.Errorf("span %q exported: %v, want %v", name, got[name], want)
				}
			}
		})
	}
}

// TestNoExporterRecordsNothing: without an endpoint the spans a process
// begins carry trace ids (for the logs and to propagate) but are not
// recorded.
func TestNoExporterRecordsNothing(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, "telemetrytest", telemetry.Traces{SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	_, span := tel.Tracer.Tracer("telemetrytest").Start(ctx, "root")
	defer span.End()
	if !span.SpanContext().IsValid() || span.IsRecording() {
		t.Errorf("span valid %v, recording %v; want a valid id, not recorded", span.SpanContext().IsValid(), span.IsRecording())
	}
}

// TestUnreadMetricsDropped: the HTTP body size histograms are not
// exported; the request duration, which dashboards read, is.
func TestUnreadMetricsDropped(t *testing.T) {
	ctx := context.Background()
	tel, err := telemetry.Setup(ctx, "telemetrytest", telemetry.Traces{})
	if err != nil {
		t.Fatal(err)
	}
	defer tel.Shutdown(ctx)
	m := tel.Meter.Meter("telemetrytest")
	for _, name := range []string{"http.server.request.duration", "http.server.request.body.size", "http.server.response.body.size"} {
		h, err := m.Float64Histogram(name)
		if err != nil {
			t.Fatal(err)
		}
		h.Record(ctx, 1)
	}
	w := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body := w.Body.String()
	if !strings.Contains(body, "http_server_request_duration") {
		t.Errorf("http_server_request_duration missing from:\n%s", body)
	}
	if strings.Contains(body, "body_size") {
		t.Errorf("a body size histogram exported:\n%s", body)
	}
}
