// Package freeport picks loopback ports for the servers a test starts
// when the port must be known before the server listens (a Postfix or
// Dovecot configuration, the flags of `mailplane dev`).
//
// The ports come from below the kernel's ephemeral range (Linux's default
// is 32768-60999, /proc/sys/net/ipv4/ip_local_port_range), where it never
// picks a port by itself. A port it handed out for "127.0.0.1:0" is back in
// that range once closed, and may become the source port of any outgoing
// connection of the tests running beside before the server listens on it:
// "address already in use". Below the range, only another pick collides.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// The range picked from: above the well-known and most registered ports,
// below the ephemeral ones.
const (
	low  = 20000
	high = 32000
)

// Port returns a loopback port on which nothing listens now, over TCP or
// UDP.
func Port(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := low + rand.IntN(high-low)
		if free(port) {
			return port
		}
	}
	t.Fatalf("freeport: no free loopback port in %d-%d", low, high)
	return 0
}

// Addr returns "127.0.0.1:port" with a port as Port's.
func Addr(t testing.TB) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", Port(t))
}

func free(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}
