package dns

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newServer(t *testing.T) *LocalServer {
	t.Helper()
	s, err := ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestTXT(t *testing.T) {
	s := newServer(t)
	long := strings.Repeat("x", 600)
	s.SetTXT("_v.example.com", 60, "mailplane-verification=abc", long)
	r, err := NewResolver(s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.TXT(context.Background(), "_v.Example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mailplane-verification=abc", long}, got); diff != "" {
		t.Errorf("TXT (-want +got):\n%s", diff)
	}
	got, err = r.TXT(context.Background(), "missing.example.com")
	if err != nil || len(got) != 0 {
		t.Errorf("a missing name: %q, %v", got, err)
	}
}

// The cache keeps an answer for its TTL and no longer, and never keeps one
// whose TTL is 0.
func TestCacheHonoursTTL(t *testing.T) {
	s := newServer(t)
	s.SetTXT("ttl60.example", 60, "a")
	s.SetTXT("ttl0.example", 0, "b")
	r, err := NewResolver(s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	ask := func(name string) {
		t.Helper()
		if _, err := r.TXT(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}

	ask("ttl60.example")
	ask("ttl60.example")
	now = now.Add(59 * time.Second)
	ask("ttl60.example")
	if n := s.Questions("ttl60.example"); n != 1 {
		t.Errorf("within the TTL the server was asked %d times, want 1", n)
	}
	now = now.Add(time.Second)
	ask("ttl60.example")
	if n := s.Questions("ttl60.example"); n != 2 {
		t.Errorf("after the TTL the server was asked %d times, want 2", n)
	}

	ask("ttl0.example")
	ask("ttl0.example")
	if n := s.Questions("ttl0.example"); n != 2 {
		t.Errorf("TTL 0: the server was asked %d times, want 2", n)
	}

	// Absence is not cached: a record published is seen at once.
	ask("new.example")
	s.SetTXT("new.example", 60, "c")
	got, err := r.TXT(context.Background(), "new.example")
	if err != nil || len(got) != 1 {
		t.Errorf("a record just published: %q, %v", got, err)
	}
}

func TestServerFailure(t *testing.T) {
	// Nothing listens there: the question fails with ErrServer.
	s := newServer(t)
	addr := s.Addr()
	s.Close()
	r, err := NewResolver(addr, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.TXT(context.Background(), "example.com"); !errors.Is(err, ErrServer) {
		t.Errorf("a server that is gone: %v, want ErrServer", err)
	}
}

// A local server holding no record of a name asks its upstream.
func TestLocalServerForwards(t *testing.T) {
	upstream := newServer(t)
	upstream.SetTXT("real.example", 60, "from upstream")
	local := newServer(t)
	local.Forward(upstream.Addr())
	local.SetTXT("demo.example", 60, "local")
	r, err := NewResolver(local.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"demo.example": "local", "real.example": "from upstream"} {
		got, err := r.TXT(context.Background(), name)
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("%s: %q, %v; want %q", name, got, err, want)
		}
	}
}
