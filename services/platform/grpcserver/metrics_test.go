package grpcserver_test

import (
	"testing"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestCallMetrics checks the RED metrics every service gets from the
// server: each call, unary or streaming, counted in
// rpc_server_call_duration_seconds with its method and status code, as
// dashboards and alerts read them.
func TestCallMetrics(t *testing.T) {
	// The server's instrumentation reads the process's meter provider,
	// as telemetry.Setup installs it; no test of this package runs in
	// parallel.
	metrics := metrictest.New()
	otel.SetMeterProvider(metrics.Provider)
	t.Cleanup(func() { otel.SetMeterProvider(noop.NewMeterProvider()) })
	srv := start(t, options{register: func(s *grpcserver.Server) { s.RegisterService(&watchService, struct{}{}) }})
	token := srv.token(t, "u_7")

	users := accountsv1.NewUserServiceClient(srv.conn)
	if _, err := users.GetCurrentUser(bearer(callCtx(t), token), &accountsv1.GetCurrentUserRequest{}); err != nil {
		t.Fatal(err)
	}
	users.GetCurrentUser(callCtx(t), &accountsv1.GetCurrentUserRequest{}) // no token: Unauthenticated
	if _, err := healthpb.NewHealthClient(srv.conn).Check(callCtx(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"", "not found"} {
		stream, err := srv.conn.NewStream(bearer(callCtx(t), token), &grpc.StreamDesc{ServerStreams: true}, "/mailplane.test.v1.WatchService/Watch")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(wrapperspb.String(req)); err != nil {
			t.Fatal(err)
		}
		stream.CloseSend()
		for stream.RecvMsg(new(wrapperspb.StringValue)) == nil {
		}
	}
	// The server records a call once it has answered it, which may be
	// just after the client has the answer.
	srv.stop()

	// otelgrpc's current semantic conventions: the method is
	// "package.Service/Method", the status code its canonical name.
	for _, c := range []struct{ method, code string }{
		{"mailplane.accounts.v1.UserService/GetCurrentUser", "OK"},
		{"mailplane.accounts.v1.UserService/GetCurrentUser", "UNAUTHENTICATED"},
		{"mailplane.test.v1.WatchService/Watch", "OK"},
		{"mailplane.test.v1.WatchService/Watch", "NOT_FOUND"},
	} {
		n, _ := metrics.Value(t, "rpc_server_call_duration_seconds_count", "rpc_method", c.method, "rpc_response_status_code", c.code)
		if n != 1 {
			t.Errorf("%s with %s counted %v times, want 1; series: %v", c.method, c.code, n,
				metrics.Labels(t, "rpc_server_call_duration_seconds"))
		}
	}
	// Probes are left out, of the traces too.
	if n, _ := metrics.Value(t, "rpc_server_call_duration_seconds_count", "rpc_method", "grpc.health.v1.Health/Check", "rpc_response_status_code", "OK"); n != 0 {
		t.Errorf("health check counted %v times, want 0", n)
	}
}
