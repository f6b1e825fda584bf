package spf

import (
	"bufio"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/platform/dns"
)

// zoneServer is a DNS server on loopback answering from zone-file lines
// ("name TTL? TYPE data", names absolute without their dot). A line
// "name TIMEOUT" makes every question about name fail (SERVFAIL), which the
// resolver reports as a server failure.
type zoneServer struct {
	mu   sync.Mutex
	rrs  map[string][]mdns.RR // by wire-form lower-case name
	fail map[string]bool
	asks map[string]int
}

// serveZone starts a zone server holding text and returns a resolver
// asking it.
func serveZone(t testing.TB, text string) (*dns.Resolver, *zoneServer) {
	t.Helper()
	z := &zoneServer{rrs: map[string][]mdns.RR{}, fail: map[string]bool{}, asks: map[string]int{}}
	z.load(t, text)
	srv := &mdns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: mdns.HandlerFunc(z.answer)}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ListenAndServe() //nolint:errcheck // ends with Shutdown
	<-started
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	r, err := dns.NewResolver(srv.PacketConn.LocalAddr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r, z
}

func (z *zoneServer) load(t testing.TB, text string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if name, ok := strings.CutSuffix(line, " TIMEOUT"); ok {
			z.fail[key(name)] = true
			continue
		}
		rr, err := mdns.NewRR(line)
		if err != nil || rr == nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		rr.Header().Ttl = 0 // every question reaches the server
		k := key(rr.Header().Name)
		z.rrs[k] = append(z.rrs[k], rr)
	}
}

// key is a name in wire form, lower case, so that names escaped
// differently compare equal.
func key(name string) string {
	buf := make([]byte, 256)
	n, err := mdns.PackDomainName(mdns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		return strings.ToLower(name)
	}
	return strings.ToLower(string(buf[:n]))
}

func (z *zoneServer) answer(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	k := key(q.Name)
	z.mu.Lock()
	z.asks[k]++
	fail, rrs := z.fail[k], z.rrs[k]
	z.mu.Unlock()
	switch {
	case fail:
		m.Rcode = mdns.RcodeServerFailure
	case rrs == nil:
		m.Rcode = mdns.RcodeNameError
	default:
		for _, rr := range rrs {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	w.WriteMsg(m) //nolint:errcheck
}

// questions is how many questions about name the server answered.
func (z *zoneServer) questions(name string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.asks[key(name)]
}
