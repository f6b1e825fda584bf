package spf

import (
	"bufio"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/platform/dns"
)

// serveZone starts platform/dns's LocalServer on loopback holding the
// zone-file lines of text (names absolute, without their final dot, TTL 0
// so that every question reaches the server) under a root zone, and
// returns a resolver asking it. A line "name TIMEOUT" makes every question
// about name fail (SERVFAIL), which the resolver reports as a server
// failure.
func serveZone(t testing.TB, text string) (*dns.Resolver, *dns.LocalServer) {
	t.Helper()
	s, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var zone strings.Builder
	zone.WriteString("$ORIGIN .\n$TTL 0\n. SOA ns.test. hostmaster.test. 1 60 60 60 0\n")
	var fail []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutSuffix(line, " TIMEOUT"); ok {
			fail = append(fail, name)
			continue
		}
		zone.WriteString(line + "\n")
	}
	if err := s.SetZone(zone.String()); err != nil {
		t.Fatal(err)
	}
	for _, name := range fail {
		s.Fail(name, mdns.RcodeServerFailure)
	}
	r, err := dns.NewResolver(s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}
