package dmarc

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/platform/dns"
)

// zone is an authoritative DNS server on loopback answering from zone-file
// text, and counting the questions it gets.
type zone struct {
	mu    sync.Mutex
	rrs   []mdns.RR
	fail  map[string]bool // names answered SERVFAIL
	asked []string        // "name TYPE", in order
}

// serveZone serves text (one record a line, zone-file syntax, names
// absolute or relative to "."), and returns a resolver asking it.
func serveZone(t *testing.T, text string) (*dns.Resolver, *zone) {
	t.Helper()
	z := &zone{fail: map[string]bool{}}
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		rr, err := mdns.NewRR(line)
		if err != nil {
			t.Fatalf("zone line %q: %v", line, err)
		}
		z.rrs = append(z.rrs, rr)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(z.answer), NotifyStartedFunc: func() { close(started) }}
	go srv.ActivateAndServe() //nolint:errcheck // ends with Shutdown
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return resolver(t, pc.LocalAddr().String()), z
}

func resolver(t *testing.T, addr string) *dns.Resolver {
	t.Helper()
	r, err := dns.NewResolver(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// silentServer returns a resolver asking a server that never answers.
func silentServer(t *testing.T) *dns.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return resolver(t, pc.LocalAddr().String())
}

func (z *zone) answer(w mdns.ResponseWriter, req *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		z.mu.Lock()
		z.asked = append(z.asked, mdns.CanonicalName(q.Name)+" "+mdns.TypeToString[q.Qtype])
		exists, fail := false, z.fail[mdns.CanonicalName(q.Name)]
		for _, rr := range z.rrs {
			h := rr.Header()
			if !strings.EqualFold(h.Name, q.Name) {
				continue
			}
			exists = true
			if h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		z.mu.Unlock()
		switch {
		case fail:
			m.Answer, m.Rcode = nil, mdns.RcodeServerFailure
		case !exists:
			m.Rcode = mdns.RcodeNameError
		}
	}
	w.WriteMsg(m) //nolint:errcheck // the client asks again
}

// failAt makes the server answer SERVFAIL to questions about name.
func (z *zone) failAt(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.fail[mdns.CanonicalName(name)] = true
}

// questions returns the questions asked so far.
func (z *zone) questions() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return append([]string(nil), z.asked...)
}
