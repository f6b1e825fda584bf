package dns

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

// handlerServer serves h on loopback over network ("udp" or "tcp") and
// returns its address: a server that behaves as no LocalServer does.
func handlerServer(t *testing.T, network string, h mdns.HandlerFunc) string {
	t.Helper()
	srv := &mdns.Server{Handler: h, MsgAcceptFunc: accept}
	var addr string
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.PacketConn, addr = pc, pc.LocalAddr().String()
	} else {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener, addr = ln, ln.Addr().String()
	}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe() //nolint:errcheck // ends with Shutdown
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return addr
}

// Concurrent identical questions share one exchange, and one caller giving
// up does not end it for the others.
func TestLookupSharesExchanges(t *testing.T) {
	s := newServer(t)
	s.SetTXT("shared.example", 0, "v") // TTL 0: no answer comes from the cache
	release := s.Hold("shared.example")
	r := newResolver(t, s.Addr())
	const n = 5
	var waiting sync.WaitGroup
	waiting.Add(n)
	r.waiting = func(question) { waiting.Done() }

	impatient, cancel := context.WithCancel(context.Background())
	errs := make(chan error, n)
	for i := range n {
		ctx := context.Background()
		if i == 0 {
			ctx = impatient
		}
		go func() {
			got, err := r.TXT(ctx, "shared.example")
			if err == nil && (len(got) != 1 || got[0] != "v") {
				err = errors.New("answer " + strings.Join(got, ","))
			}
			errs <- err
		}()
	}
	waiting.Wait()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrServer) {
		t.Errorf("the caller giving up: %v, want ErrServer and context.Canceled", err)
	}
	release()
	for range n - 1 {
		if err := <-errs; err != nil {
			t.Errorf("a caller sharing the exchange: %v", err)
		}
	}
	if q := s.Questions("shared.example"); q != 1 {
		t.Errorf("the server was asked %d times, want 1", q)
	}
}

func TestSigned(t *testing.T) {
	s := newServer(t)
	zones := exampleZone + `
@ IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==
$ORIGIN unsigned.test.
@ IN SOA ns1 hostmaster 1 3600 600 86400 60
alias IN CNAME example.com.
`
	if err := s.SetZone(zones); err != nil {
		t.Fatal(err)
	}
	s.Fail("broken.test", mdns.RcodeServerFailure)
	r := newResolver(t, s.Addr())
	ctx := context.Background()
	for _, tc := range []struct {
		zone           string
		signed, secure bool
		err            error
	}{
		{"example.com", true, false, nil}, // LocalServer does not validate
		{"unsigned.test", false, false, nil},
		{"alias.unsigned.test", false, false, nil}, // the DNSKEY of the CNAME's target is not its own
		{"nowhere.test", false, false, nil},
		{"broken.test", false, false, ErrServer},
	} {
		signed, err := r.Signed(ctx, tc.zone)
		if signed != tc.signed || !errors.Is(err, tc.err) {
			t.Errorf("Signed(%s) = %v, %v; want %v, %v", tc.zone, signed, err, tc.signed, tc.err)
		}
		secure, err := r.Secure(ctx, tc.zone)
		if secure != tc.secure || !errors.Is(err, tc.err) {
			t.Errorf("Secure(%s) = %v, %v; want %v, %v", tc.zone, secure, err, tc.secure, tc.err)
		}
	}

	// A validating resolver vouches with the AD bit, when asked with DO.
	validating := handlerServer(t, "udp", func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(req)
		if opt := req.IsEdns0(); opt != nil && opt.Do() {
			m.AuthenticatedData = req.Question[0].Name == "secure.test."
		}
		key, _ := mdns.NewRR(req.Question[0].Name + " 60 IN DNSKEY 257 3 13 AAAA")
		m.Answer = []mdns.RR{key}
		w.WriteMsg(m)
	})
	r = newResolver(t, validating)
	for zone, want := range map[string]bool{"secure.test": true, "insecure.test": false} {
		if got, err := r.Secure(ctx, zone); got != want || err != nil {
			t.Errorf("Secure(%s) from a validating resolver: %v, %v; want %v", zone, got, err, want)
		}
	}
}

func TestAsk(t *testing.T) {
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	s.Fail("refused.example.com", mdns.RcodeRefused)
	// A server that does not serve the zone answers without authority, as a
	// recursive resolver or a lame server would.
	var rd atomic.Bool
	lame := handlerServer(t, "udp", func(w mdns.ResponseWriter, req *mdns.Msg) {
		rd.Store(rd.Load() || req.RecursionDesired)
		m := new(mdns.Msg)
		m.SetReply(req)
		w.WriteMsg(m)
	})
	r := newResolver(t, s.Addr())
	ctx := context.Background()
	for _, tc := range []struct {
		server, name string
		want         []string
		err          error
	}{
		{s.Addr(), "sel._domainkey.example.com", []string{`"v=DKIM1; k=rsa; p=" "MIIB"`}, nil},
		{s.Addr(), "mx.example.com", nil, nil},      // NODATA
		{s.Addr(), "nothing.example.com", nil, nil}, // NXDOMAIN
		{s.Addr(), "refused.example.com", nil, ErrServer},
		{lame, "example.com", nil, ErrServer},
	} {
		rrs, err := r.Ask(ctx, tc.server, tc.name, mdns.TypeTXT)
		var got []string
		for _, rr := range rrs {
			got = append(got, strings.TrimPrefix(rr.String(), rr.Header().String()))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" || !errors.Is(err, tc.err) {
			t.Errorf("Ask(%s) = %v (-want +got):\n%s", tc.name, err, diff)
		}
	}
	if rd.Load() {
		t.Error("Ask asked for recursion")
	}

	// Ask is not cached: a change is seen at once, even with a long TTL.
	s.SetTXT("sel._domainkey.example.com", 86400, "v=DKIM1; p=new")
	if rrs, err := r.Ask(ctx, s.Addr(), "sel._domainkey.example.com", mdns.TypeTXT); err != nil || len(rrs) != 1 || rrs[0].(*mdns.TXT).Txt[0] != "v=DKIM1; p=new" {
		t.Errorf("after a change: %v, %v", rrs, err)
	}
}

func TestAuthoritatives(t *testing.T) {
	s := newServer(t)
	zones := `$ORIGIN example.com.
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS  ns1
@   IN NS  ns2.example.net.
@   IN NS  ns1 ; twice, as two names for one server would be
ns1 IN A    127.0.0.1
ns1 IN AAAA ::1
$ORIGIN example.net.
@   IN SOA ns2 hostmaster 1 3600 600 86400 60
ns2 IN A    127.0.0.2
$ORIGIN lame.test.
@   IN SOA ns hostmaster 1 3600 600 86400 60
@   IN NS  ns
`
	if err := s.SetZone(zones); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, s.Addr())
	_, port, _ := net.SplitHostPort(s.Addr())
	r.SetAuthoritativePort(port)
	ctx := context.Background()
	got, err := r.Authoritatives(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:" + port, "127.0.0.2:" + port, "[::1]:" + port}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Authoritatives (-want +got):\n%s", diff)
	}
	if got, err := r.Authoritatives(ctx, "ns1.example.com"); err != nil || len(got) != 0 {
		t.Errorf("a name that is no zone: %v, %v; want none", got, err)
	}
	if _, err := r.Authoritatives(ctx, "lame.test"); err == nil || !strings.Contains(err.Error(), "no address for ns.lame.test.") {
		t.Errorf("NS names without address: %v", err)
	}
	s.Fail("example.net", mdns.RcodeServerFailure)
	s.Fail("example.com", mdns.RcodeServerFailure)
	if _, err := r.Authoritatives(ctx, "example.com"); !errors.Is(err, ErrServer) {
		t.Errorf("a failing resolver: %v, want ErrServer", err)
	}

	// Following a change to each authoritative server, as the security
	// diagnostic does after publishing a record.
	s.Fail("example.com", mdns.RcodeSuccess)
	s.SetTXT("_dmarc.example.com", 3600, "v=DMARC1; p=reject")
	servers, err := r.Authoritatives(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, server := range servers[:1] { // only 127.0.0.1 listens
		rrs, err := r.Ask(ctx, server, "_dmarc.example.com", mdns.TypeTXT)
		if err != nil || len(rrs) != 1 {
			t.Errorf("Ask(%s): %v, %v", server, rrs, err)
		}
	}
}
