// Package metrictest reads, in tests, what code reported through an
// OpenTelemetry meter.
package metrictest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Reader collects what its Meter records.
type Reader struct {
	Meter  metric.Meter
	reader *sdkmetric.ManualReader
}

// New returns a Reader with a fresh meter.
func New() *Reader {
	r := sdkmetric.NewManualReader()
	return &Reader{Meter: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)).Meter("test"), reader: r}
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
