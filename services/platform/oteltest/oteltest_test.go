package oteltest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mailplane/mailplane/services/platform/oteltest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// TestReceiverCollectsExportedSpans sends spans through the SDK's OTLP
// exporter and finds them, with their parents, attributes, status and
// service, in the receiver.
func TestReceiverCollectsExportedSpans(t *testing.T) {
	r := oteltest.Start(t)
	tr := r.TracerProvider(t, "oteltest-svc").Tracer("oteltest")

	ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		attribute.String("s", "v"), attribute.Int("n", 42), attribute.Bool("b", true)))
	child.RecordError(errors.New("broken"))
	child.SetStatus(codes.Error, "broken")
	child.End()
	parent.End()
	_, other := tr.Start(context.Background(), "child")
	other.End()

	p := r.WaitSpan(t, oteltest.Want{Name: "parent", Kind: trace.SpanKindServer})
	if p.TraceID != parent.SpanContext().TraceID() || p.SpanID != parent.SpanContext().SpanID() || p.Parent.IsValid() {
		t.Errorf("parent = %v, want root %v", p, parent.SpanContext())
	}
	if p.Service != "oteltest-svc" || p.Scope != "oteltest" {
		t.Errorf("parent's service %q scope %q", p.Service, p.Scope)
	}
	c := r.WaitChild(t, p, oteltest.Want{Name: "child", Attrs: map[string]string{"s": "v", "n": "42", "b": "true"}, Status: codes.Error})
	if c.SpanID != child.SpanContext().SpanID() || c.Kind != trace.SpanKindProducer {
		t.Errorf("child = %v, want %v", c, child.SpanContext())
	}
	if c.StatusMessage != "broken" || len(c.Events) != 1 || c.Events[0] != "exception" {
		t.Errorf("child's status %q, events %v; want broken and one exception", c.StatusMessage, c.Events)
	}
	// The other "child" is in a trace of its own: not p's child.
	r.Wait(t, "three spans", func(spans []oteltest.Span) bool { return len(spans) == 3 })
	if kids := oteltest.Children(r.Spans(), p); len(kids) != 1 {
		t.Errorf("children of parent: %v, want one", kids)
	}
	if got := r.Trace(p.TraceID); len(got) != 2 {
		t.Errorf("trace of parent holds %d spans, want 2:\n%s", len(got), oteltest.Format(got))
	}
}

func TestWantMatches(t *testing.T) {
	s := oteltest.Span{Name: "publish x", Kind: trace.SpanKindProducer, Attrs: map[string]string{"a": "1"}, Status: codes.Error}
	for _, tc := range []struct {
		want oteltest.Want
		ok   bool
	}{
		{oteltest.Want{}, true},
		{oteltest.Want{Name: "publish x", Kind: trace.SpanKindProducer, Attrs: map[string]string{"a": "1"}, Status: codes.Error}, true},
		{oteltest.Want{Name: "publish y"}, false},
		{oteltest.Want{Kind: trace.SpanKindConsumer}, false},
		{oteltest.Want{Attrs: map[string]string{"a": "2"}}, false},
		{oteltest.Want{Attrs: map[string]string{"b": ""}}, false},
		{oteltest.Want{Status: codes.Ok}, false},
	} {
		if got := tc.want.Matches(s); got != tc.ok {
			t.Errorf("%v matches %v = %v, want %v", tc.want, s, got, tc.ok)
		}
	}
}
