package freeport

import (
	"net"
	"testing"
)

// TestPort: a port is below the ephemeral range, free, and not one that
// something listens on.
func TestPort(t *testing.T) {
	for range 50 {
		p := Port(t)
		if p < low || p >= high {
			t.Fatalf("port %d outside %d-%d", p, low, high)
		}
	}
	l, err := net.Listen("tcp", Addr(t))
	if err != nil {
		t.Fatalf("listen on a free address: %v", err)
	}
	defer l.Close()
	if free(l.Addr().(*net.TCPAddr).Port) {
		t.Error("a port with a listener is said to be free")
	}
}
