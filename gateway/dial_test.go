package gateway

import (
	"context"
	"net"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// TestDialSpreadsCalls: when a backend's name resolves to several pods (a
// headless Service), the edge's calls go to all of them, not only the first.
func TestDialSpreadsCalls(t *testing.T) {
	var calls [2]atomic.Int32
	var addrs []resolver.Address
	for i := range calls {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			calls[i].Add(1)
			return h(ctx, req)
		}))
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(lis)
		t.Cleanup(s.Stop)
		addrs = append(addrs, resolver.Address{Addr: lis.Addr().String()})
	}
	r := manual.NewBuilderWithScheme("pods")
	r.InitialState(resolver.State{Addresses: addrs})
	conn, err := dial(r.Scheme()+":///accounts", grpc.WithResolvers(r))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	// Round robin uses a pod as soon as its connection is up; with gRPC's
	// default (pick_first) the second would never get one.
	for n := 0; n < 500 && (calls[0].Load() == 0 || calls[1].Load() == 0); n++ {
		if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal(err)
		}
	}
	if calls[0].Load() == 0 || calls[1].Load() == 0 {
		t.Errorf("calls per pod: %d and %d; want both used", calls[0].Load(), calls[1].Load())
	}
}
