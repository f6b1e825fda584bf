package mailboxes

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveForTest runs serve on a loopback port until the test ends, and
// returns the address.
func serveForTest(t *testing.T, serve func(context.Context, net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after its context ended")
		}
	})
	return ln.Addr().String()
}

// postmapCommand finds Postfix's postmap, which Debian installs in
// /usr/sbin. Without it the test is skipped, except under CI=true.
func postmapCommand(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("postmap")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/postmap")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("postmap not found; CI needs it (apt-get install postfix)")
		}
		t.Skip("postmap not found (apt-get install postfix)")
	}
	return path
}

// postmapResult is what `postmap -q` printed and its exit code.
type postmapResult struct {
	out    string
	code   int
	stderr string
}

// postmapQuery runs `postmap -q key socketmap:inet:addr:name` with an empty
// Postfix configuration.
func postmapQuery(t *testing.T, postmap, confDir, addr, name, key string) postmapResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, postmap, "-c", confDir, "-q", key, "socketmap:inet:"+addr+":"+name)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run postmap: %v", err)
	}
	return postmapResult{out: strings.TrimSuffix(out.String(), "\n"), code: cmd.ProcessState.ExitCode(), stderr: stderr.String()}
}

// postfixConfDir is a directory with an empty main.cf: postmap needs one.
func postfixConfDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSocketmapPostmap asks the real Postfix client, postmap, what the maps
// say: exit code 0 and the value when found, 1 and nothing when not.
func TestSocketmapPostmap(t *testing.T) {
	postmap := postmapCommand(t)
	conf := postfixConfDir(t)
	log := slog.New(slog.DiscardHandler)
	lookups := NewLookups(newLookupPool(t))
	lookups.Route(HolderLists, listsTransport)
	addr := serveForTest(t, NewSocketmapServer(lookups, log).Serve)
	tests := []struct {
		name, key string
		want      string // "" means not found
	}{
		{mapDomain, "example.com", "example.com"},
		{mapDomain, "EXAMPLE.COM", "example.com"},
		{mapDomain, "xn--bcher-kva.example", "xn--bcher-kva.example"},
		{mapDomain, "gone.example", ""},
		{mapDomain, "unknown.example", ""},
		{mapDomain, "pending.example", ""}, // claimed, not verified

		{mapMailbox, "sales@example.com", "example.com/sales/"},
		{mapMailbox, "Anna.Smith@Example.com", "example.com/anna.smith/"},
		{mapMailbox, "*@example.com", ""},
		{mapMailbox, "contact@example.com", ""},
		{mapMailbox, "noreply@example.com", ""},
		{mapMailbox, "fwd@example.com", ""},
		{mapMailbox, "old@gone.example", ""},
		{mapMailbox, "sales+news@example.com", "example.com/sales/"},
		{mapMailbox, "sales@pending.example", ""},
		{mapMailbox, "thief@example.com", ""},     // another organization's lost claim
		{mapMailbox, "team@example.com", "lists"}, // a list's address: known, for the transport below
		{mapMailbox, "team-bounces+ann=example.org@example.com", "lists"},
		{mapMailbox, "abuse@example.com", ""}, // reserved for a service without a transport

		// Postfix asks for the full address only (see TestPostfixRoutesLists).
		{mapTransport, "team@example.com", listsTransport},
		{mapTransport, "TEAM-JOIN@example.com", listsTransport},
		{mapTransport, "team-bounces+ann=example.org@example.com", listsTransport},
		{mapTransport, "team+vip@example.com", ""}, // an alias of sales: the mail store
		{mapTransport, "sales@example.com", ""},
		{mapTransport, "nobody@example.com", ""},
		{mapTransport, "abuse@example.com", ""},
		{mapTransport, "example.com", ""},
		{mapTransport, "team@gone.example", ""},

		{mapVerify, "team-bounces+ann=example.org@example.com", "reject_unverified_recipient"},
		{mapVerify, "team+x@example.com", "reject_unverified_recipient"},
		{mapVerify, "team@example.com", ""}, // reserved itself: the lists service takes it
		{mapVerify, "team+vip@example.com", ""},
		{mapVerify, "sales+news@example.com", ""},
		{mapVerify, "abuse+x@example.com", ""},

		{mapAlias, "sales@example.com", "sales@example.com"},           // identity mapping
		{mapAlias, "SALES@EXAMPLE.COM", "sales@example.com"},           // case-insensitive
		{mapAlias, "Anna.Smith@example.com", "anna.smith@example.com"}, // identity, folded
		{mapAlias, "contact@example.com", "sales@example.com"},         // alias -> address
		{mapAlias, "fwd@example.com", "a@gmail.com,b@example.org"},     // redirect -> destinations
		{mapAlias, "nobody@example.com", "sales@example.com"},          // the catch-all's destination
		{mapAlias, "nobody+x@example.com", "sales@example.com"},
		{mapAlias, "sales+news@example.com", "sales+news@example.com"}, // extension kept
		{mapAlias, "contact+news@example.com", "sales+news@example.com"},
		{mapAlias, "team@example.com", ""}, // reserved: not swallowed by the catch-all
		{mapAlias, "team-join@example.com", ""},
		{mapAlias, "noreply@example.com", ""},
		{mapAlias, "nobody@other.example", ""}, // no catch-all there
		{mapAlias, "old@gone.example", ""},     // deleted mail service
		{mapAlias, "oldalias@gone.example", ""},
		{mapAlias, "nobody@gone.example", ""},
		{mapAlias, "@example.com", ""}, // Postfix's own catch-all form: we answer the exact key instead
		{mapAlias, "sales", ""},
		{mapAlias, "a@b@example.com", ""},
		{mapAlias, `"sales"@example.com`, ""},
		{mapAlias, "sales@", ""},
		{mapAlias, "sales@pending.example", ""},
		{mapAlias, "nobody@pending.example", ""},
		{mapAlias, "thief@example.com", "sales@example.com"}, // the verified domain's catch-all, not the lost claim's

		{mapSenderLogin, "sales@example.com", "sales@example.com"},
		{mapSenderLogin, "contact@example.com", "sales@example.com"},
		{mapSenderLogin, "Info@Example.com", "sales@example.com"},
		{mapSenderLogin, "donotreply@example.com", "noreply@example.com"},
		{mapSenderLogin, "fwd@example.com", ""},
		{mapSenderLogin, "*@example.com", ""},
		{mapSenderLogin, "nobody@example.com", ""},
		{mapSenderLogin, "old@gone.example", ""},
		{mapSenderLogin, "sales+news@example.com", "sales@example.com"},
		{mapSenderLogin, "sales@pending.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.key, func(t *testing.T) {
			got := postmapQuery(t, postmap, conf, addr, tt.name, tt.key)
			want := postmapResult{out: tt.want, code: 0}
			if tt.want == "" {
				want.code = 1
			}
			if got.out != want.out || got.code != want.code || got.stderr != "" {
				t.Errorf("postmap -q %q %s = %q, exit %d, stderr %q; want %q, exit %d", tt.key, tt.name, got.out, got.code, got.stderr, want.out, want.code)
			}
		})
	}
}

// TestSocketmapPostmapTemporaryFailure checks that a database failure is a
// temporary lookup error for Postfix, not "not found".
func TestSocketmapPostmapTemporaryFailure(t *testing.T) {
	postmap := postmapCommand(t)
	addr := serveForTest(t, NewSocketmapServer(closedLookups(t), slog.New(slog.DiscardHandler)).Serve)
	got := postmapQuery(t, postmap, postfixConfDir(t), addr, mapAlias, "sales@example.com")
	if got.code == 0 || got.out != "" || !strings.Contains(got.stderr, "lookup failed, try again later") {
		t.Errorf("postmap with the database down = %q, exit %d, stderr %q; want a temporary lookup error", got.out, got.code, got.stderr)
	}
}

// netstring frames s.
func netstring(s string) string { return strconv.Itoa(len(s)) + ":" + s + "," }

// TestSocketmapFraming speaks the protocol byte by byte: several requests on
// one connection, and garbage closing only the connection that sent it.
func TestSocketmapFraming(t *testing.T) {
	addr := serveForTest(t, NewSocketmapServer(NewLookups(newLookupPool(t)), slog.New(slog.DiscardHandler)).Serve)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}

	c, r := dial()
	requests := []struct{ req, reply string }{
		{"alias sales@example.com", "OK sales@example.com"},
		{"alias team@example.com", "NOTFOUND "},
		{"mailbox sales@example.com", "OK example.com/sales/"},
		{"senderlogin contact@example.com", "OK sales@example.com"},
		{"domain example.com", "OK example.com"},
		{"transport team@example.com", "NOTFOUND "}, // not routed in this test
		{"quota sales@example.com", "PERM no map named quota"},
		{"alias", "PERM a request is \"name key\""},
		{"alias ", "NOTFOUND "},
	}
	// Pipelined: all requests first, then all replies, in order.
	var all strings.Builder
	for _, rq := range requests {
		all.WriteString(netstring(rq.req))
	}
	if _, err := io.WriteString(c, all.String()); err != nil {
		t.Fatal(err)
	}
	for _, rq := range requests {
		got, err := readNetstring(r, maxSocketmapReply)
		if err != nil {
			t.Fatalf("reply to %q: %v", rq.req, err)
		}
		if string(got) != rq.reply {
			t.Errorf("reply to %q = %q, want %q", rq.req, got, rq.reply)
		}
	}

	for _, garbage := range []string{
		"hello\n",
		"5:alias sales@example.com,", // length too short: no comma where expected
		"23:alias sales@example.com;",
		"99999999:",
		":,",
		"-1:x,",
	} {
		t.Run(garbage, func(t *testing.T) {
			c, r := dial()
			io.WriteString(c, garbage)
			if b, err := r.ReadByte(); err == nil {
				t.Fatalf("server answered %q with %q, want the connection closed", garbage, b)
			}
		})
	}

	// The server is still up, and so is the first connection.
	c2, r2 := dial()
	for _, conn := range []struct {
		c net.Conn
		r *bufio.Reader
	}{{c, r}, {c2, r2}} {
		io.WriteString(conn.c, netstring("alias contact@example.com"))
		got, err := readNetstring(conn.r, maxSocketmapReply)
		if err != nil || string(got) != "OK sales@example.com" {
			t.Errorf("after garbage: reply %q, %v; want %q", got, err, "OK sales@example.com")
		}
	}
}

func TestReadNetstring(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "0:,", want: ""},
		{in: "3:abc,", want: "abc"},
		{in: "03:abc,", want: "abc"},
		{in: "3:abc", wantErr: true},
		{in: "3:abcd", wantErr: true},
		{in: "3abc,", wantErr: true},
		{in: ":abc,", wantErr: true},
		{in: "11:abc,", wantErr: true}, // longer than the limit of 10
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := readNetstring(bufio.NewReader(strings.NewReader(tt.in)), 10)
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("readNetstring(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestServeStops checks that ending the context closes open connections
// and Serve returns.
func TestServeStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := NewSocketmapServer(NewLookups(newLookupPool(t)), slog.New(slog.DiscardHandler))
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	io.WriteString(c, netstring("domain example.com"))
	if got, err := readNetstring(r, 100); err != nil || string(got) != "OK example.com" {
		t.Fatalf("reply %q, %v", got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("read after stop: %v, want EOF", err)
	}
}
