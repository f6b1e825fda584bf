// Package metrictest reads, in tests, what code reported through an
// OpenTelemetry meter: as OpenTelemetry data, or as Prometheus scrapes it,
// under the names and labels dashboards and alerts use.
package metrictest

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader collects what its Meter records.
type Reader struct {
	Meter metric.Meter
	// Provider is Meter's provider, for instrumentation that takes one.
	Provider *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
	registry *prometheus.Registry
}

// New returns a Reader with a fresh meter, exported to Prometheus as a
// process's are (package telemetry).
func New() *Reader {
	r := sdkmetric.NewManualReader()
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		panic(err) // only a registry refusing the collector, which a fresh one never does
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r), sdkmetric.WithReader(exp))
	return &Reader{Meter: mp.Meter("test"), Provider: mp, reader: r, registry: reg}
}

// Value is what Prometheus scrapes of name: a gauge's or a counter's
// value ("mailplane_outbox_pending", "mailplane_jobs_failed_total"), or a
// histogram's count ("rpc_server_call_duration_seconds_count"), summed
// over the series whose labels include labels ("key", "value", ...). ok
// is false when no series matches.
func (r *Reader) Value(t testing.TB, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metrictest: labels %q are not key, value pairs", labels)
	}
	families, err := r.registry.Gather()
	if err != nil {
		t.Fatalf("metrictest: gather: %v", err)
	}
	for _, f := range families {
		isCount := f.GetType() == dto.MetricType_HISTOGRAM && name == f.GetName()+"_count"
		if f.GetName() != name && !isCount {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			ok = true
			switch {
			case isCount:
				v += float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				v += m.GetGauge().GetValue()
			case m.Counter != nil:
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v, ok
}

// Labels are the label sets of name's series, without the labels every
// series of the exporter carries (otel_scope_*).
func (r *Reader) Labels(t testing.TB, name string) []map[string]string {
	t.Helper()
	families, err := r.registry.Gather()
	if err != nil {
		t.Fatalf("metrictest: gather: %v", err)
	}
	var out []map[string]string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			ls := map[string]string{}
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_scope_") {
					ls[l.GetName()] = l.GetValue()
				}
			}
			out = append(out, ls)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Sum is the total of the integer counter name over all its attributes (0
// if nothing was recorded).
func (r *Reader) Sum(t testing.TB, name string) int64 {
	t.Helper()
	var total int64
	for _, m := range r.collect(t) {
		if s, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == name {
			for _, p := range s.DataPoints {
				total += p.Value
			}
		}
	}
	return total
}

// Count is how many values the histogram name recorded.
func (r *Reader) Count(t testing.TB, name string) uint64 {
	t.Helper()
	n, _ := r.histogram(t, name)
	return n
}

// Total is the sum of the values the histogram name recorded.
func (r *Reader) Total(t testing.TB, name string) float64 {
	t.Helper()
	_, total := r.histogram(t, name)
	return total
}

func (r *Reader) histogram(t testing.TB, name string) (count uint64, total float64) {
	t.Helper()
	for _, m := range r.collect(t) {
		if m.Name != name {
			continue
		}
		switch h := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, p := range h.DataPoints {
				count, total = count+p.Count, total+p.Sum
			}
		case metricdata.Histogram[int64]:
			for _, p := range h.DataPoints {
				count, total = count+p.Count, total+float64(p.Sum)
			}
		}
	}
	return count, total
}

func (r *Reader) collect(t testing.TB) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		out = append(out, sm.Metrics...)
	}
	return out
}
