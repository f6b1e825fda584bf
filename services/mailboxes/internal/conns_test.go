package mailboxes

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// mailServers are the servers Postfix talks to, each with a probe making
// one exchange on a connection, as Postfix would.
func mailServers(t *testing.T, limits ConnLimits) []struct {
	name  string
	addr  string
	probe func(net.Conn) error
} {
	lookups := NewLookups(newLookupPool(t))
	log := slog.New(slog.DiscardHandler)
	sm, pol, mil := NewSocketmapServer(lookups, log), NewPolicyServer(lookups, log), NewMilterServer(lookups, log)
	sm.Limits, pol.Limits, mil.Limits = limits, limits, limits
	return []struct {
		name  string
		addr  string
		probe func(net.Conn) error
	}{
		{"socketmap", serveForTest(t, sm.Serve), func(c net.Conn) error {
			if _, err := io.WriteString(c, netstring("domain example.com")); err != nil {
				return err
			}
			_, err := readNetstring(bufio.NewReader(c), 1000)
			return err
		}},
		{"policy", serveForTest(t, pol.Serve), func(c net.Conn) error {
			if _, err := io.WriteString(c, "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@example.com\n\n"); err != nil {
				return err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil && !strings.HasPrefix(line, "action=") {
				err = fmt.Errorf("reply %q", line)
			}
			return err
		}},
		{"milter", serveForTest(t, mil.Serve), func(c net.Conn) error {
			// SMFIC_OPTNEG: version 6, every action, every protocol step.
			pkt := []byte{0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0, 0, 0}
			if _, err := c.Write(pkt); err != nil {
				return err
			}
			var n uint32
			if err := binary.Read(c, binary.BigEndian, &n); err != nil {
				return err
			}
			reply := make([]byte, min(n, 1000))
			if _, err := io.ReadFull(c, reply); err != nil {
				return err
			}
			if len(reply) == 0 || reply[0] != 'O' {
				return fmt.Errorf("reply %q", reply)
			}
			return nil
		}},
	}
}

// TestConnLimits: each server holds at most PerClient connections of one
// client address and Total in all, and closes the others at once; a closed
// connection frees its place.
func TestConnLimits(t *testing.T) {
	for _, srv := range mailServers(t, ConnLimits{Total: 3, PerClient: 2, Idle: time.Hour}) {
		t.Run(srv.name, func(t *testing.T) {
			dial := func(from string) net.Conn {
				t.Helper()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.Dial("tcp", srv.addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			served := func(c net.Conn) bool {
				c.SetDeadline(time.Now().Add(10 * time.Second))
				return srv.probe(c) == nil
			}
			a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
			if !served(a1) || !served(a2) {
				t.Fatal("the first two connections of a client are not served")
			}
			if served(dial("127.0.0.1")) {
				t.Error("a third connection of one client is served")
			}
			if !served(dial("127.0.0.2")) {
				t.Error("another client's connection is not served")
			}
			if served(dial("127.0.0.3")) {
				t.Error("a connection over the total is served")
			}
			// The connections served stay open.
			a2.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := a2.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a held connection: %v, want it open", err)
			}
			a1.Close()
			deadline := time.Now().Add(10 * time.Second)
			for !served(dial("127.0.0.1")) {
				if time.Now().After(deadline) {
					t.Fatal("a closed connection did not free its place")
				}
			}
		})
	}
}

// TestConnIdle: a connection that sends nothing is closed after Idle.
func TestConnIdle(t *testing.T) {
	for _, srv := range mailServers(t, ConnLimits{Idle: 50 * time.Millisecond}) {
		t.Run(srv.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("read from an idle connection: %v, want EOF (closed by the server)", err)
			}
		})
	}
}
