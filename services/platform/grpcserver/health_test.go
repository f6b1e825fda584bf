package grpcserver_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// tcpProxy forwards a loopback port to a server, and can cut it off and
// bring it back on the same port: a database that becomes unreachable
// (a network partition, a failover) and then returns.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, addr: "127.0.0.1:0", target: target}
	p.up()
	t.Cleanup(p.down)
	return p
}

// up listens and forwards every connection.
func (p *tcpProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
}

// down stops listening and cuts every connection.
func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestHealthFollowsDatabase checks that a service's health reflects whether
// its database can be reached, with a real PostgreSQL cut off and brought
// back: readiness probes ask for the service by name.
func TestHealthFollowsDatabase(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	pool := newPool(t, u.String()+"?connect_timeout=1")
	probe := pg.NewProbe(pool)
	t.Cleanup(probe.Close)

	srv := start(t, options{})
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { srv.Watch(ctx, "accounts", probe.Check); close(watched) }()
	t.Cleanup(func() { cancel(); <-watched })

	// Watch the status as a kubelet would see it change.
	client := healthpb.NewHealthClient(srv.conn)
	stream, err := client.Watch(callCtx(t), &healthpb.HealthCheckRequest{Service: "accounts"})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for %v: %v", want, err)
			}
			if resp.Status == want {
				return
			}
		}
	}
	wait(healthpb.HealthCheckResponse_SERVING)

	proxy.down()
	wait(healthpb.HealthCheckResponse_NOT_SERVING)
	// The process itself is fine: liveness must not restart it for this.
	resp, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: ""})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("whole-server health = %v, %v; want SERVING", resp.GetStatus(), err)
	}

	proxy.up()
	wait(healthpb.HealthCheckResponse_SERVING)
	if err := pool.Ping(callCtx(t)); err != nil {
		t.Errorf("pool after the database came back: %v", err)
	}
}

// TestWatchStopsWithContext checks that Watch returns once its context is
// done, and leaves the status alone afterwards.
func TestWatchStopsWithContext(t *testing.T) {
	srv := start(t, options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	checked := make(chan struct{}, 1)
	go func() {
		srv.Watch(ctx, "accounts", func(context.Context) error {
			select {
			case checked <- struct{}{}:
			default:
			}
			return nil
		})
		close(done)
	}()
	<-checked
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}
