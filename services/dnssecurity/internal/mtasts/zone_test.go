package mtasts

import (
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/dns"
)

// rootSOA makes the records of a test one zone at the root, so that
// names of any domain can be served.
const rootSOA = ". 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300\n"

// serveZone serves zone-file text (absolute names) on loopback and returns
// a resolver asking the server, and the server.
func serveZone(t *testing.T, text string) (*dns.Resolver, *dns.LocalServer) {
	t.Helper()
	s, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.SetZone(rootSOA + text); err != nil {
		t.Fatal(err)
	}
	r, err := dns.NewResolver(s.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r, s
}
