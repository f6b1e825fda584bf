// Package natstest runs a real NATS server with JetStream inside the test
// process, one per test.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is a NATS server that a test can stop and start again on the same
// port and store, to play an outage.
type Server struct {
	*server.Server
	opts *server.Options
	t    testing.TB
}

// Start runs a JetStream-enabled server on a free loopback port, storing
// under a temporary directory, shut down when t ends. Each of with may
// change its options first (TLS, authentication).
func Start(t testing.TB, with ...func(*server.Options)) *Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoSigs:    true,
		NoLog:     true,
	}
	for _, f := range with {
		f(opts)
	}
	s := &Server{opts: opts, t: t}
	s.start()
	// Keep the port for restarts.
	opts.Port = s.Addr().(*net.TCPAddr).Port
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	ns, err := server.NewServer(s.opts)
	if err != nil {
		s.t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		s.t.Fatal("nats server did not start")
	}
	s.Server = ns
}

// Stop shuts the server down.
func (s *Server) Stop() {
	if s.Server != nil && s.Server.Running() {
		s.Server.Shutdown()
		s.Server.WaitForShutdown()
	}
}

// Restart starts the server again with the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
