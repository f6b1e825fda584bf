package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"

	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

// TestRouteMetrics checks that the edge's request metrics name each
// request's route by its pattern, never by the path a client sent (whose
// ids would make a series per resource), and no route for a path that
// matches none.
func TestRouteMetrics(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	accountspb.RegisterUserServiceServer(srv, fakeUsers{})
	listspb.RegisterPublicFormServiceServer(srv, &fakeForms{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	reader := sdkmetric.NewManualReader()
	edge := newEdge(t, Config{AccountsAddr: lis.Addr().String(), MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))}, nil)

	requests := []struct {
		method, path, route string
	}{
		{http.MethodGet, "/v1/users/me", "/v1/users/me"},
		{http.MethodGet, "/v1/organizations/0191c3a0-0000-7000-8000-000000000001", "/v1/{name=organizations/*}"},
		{http.MethodGet, "/v1/organizations/0191c3a0-0000-7000-8000-000000000002", "/v1/{name=organizations/*}"},
		{http.MethodPost, "/forms/team@example.test/subscribe", "/forms/{list}/{action}"},
		{http.MethodGet, "/v1/nothing/here", ""},
	}
	want := map[string]int64{}
	for _, r := range requests {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader("email=ann%40example.org"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		serve(edge, req)
		want[r.route]++
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if m.Name != "http.server.request.duration" || !ok {
				continue
			}
			for _, p := range h.DataPoints {
				route, _ := p.Attributes.Value(attribute.Key("http.route"))
				got[route.AsString()] += int64(p.Count)
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests recorded by http.route (-want +got):\n%s", diff)
	}
}
