package dns

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

const exampleZone = `$ORIGIN example.com.
$TTL 300
@        IN SOA ns1 hostmaster 2026010100 3600 600 86400 60
@        IN NS  ns1
@        IN MX  10 mx
@        IN TXT "v=spf1 mx -all"
ns1      IN A   192.0.2.1
mx       IN A   192.0.2.2
www      IN CNAME mx
mail     IN CNAME www
away     IN CNAME mx.elsewhere.test.
gone     IN CNAME missing
sel._domainkey IN TXT "v=DKIM1; k=rsa; p=" "MIIB"
*.wild   IN TXT "wildcard"
`

// ask sends one question to addr and returns the whole answer.
func ask(t *testing.T, addr, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	in, _, err := (&mdns.Client{Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("ask %s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return in
}

// summary is an answer in short: rcode, AA, then each section's records
// (without TTLs but those of the authority section, for RFC 2308).
func summary(in *mdns.Msg) []string {
	out := []string{mdns.RcodeToString[in.Rcode]}
	if in.Authoritative {
		out = append(out, "aa")
	}
	for _, rr := range in.Answer {
		rr = mdns.Copy(rr)
		rr.Header().Ttl = 0
		out = append(out, "an "+strings.ReplaceAll(rr.String(), "\t", " "))
	}
	for _, rr := range in.Ns {
		out = append(out, "ns "+strings.ReplaceAll(rr.String(), "\t", " "))
	}
	return out
}

func TestLocalServerZone(t *testing.T) {
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	const soa = "ns example.com. 60 IN SOA ns1.example.com. hostmaster.example.com. 2026010100 3600 600 86400 60"
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"example.com.", mdns.TypeMX, []string{"NOERROR", "aa", "an example.com. 0 IN MX 10 mx.example.com."}},
		{"EXAMPLE.com.", mdns.TypeTXT, []string{"NOERROR", "aa", `an EXAMPLE.com. 0 IN TXT "v=spf1 mx -all"`}},
		{"sel._domainkey.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", `an sel._domainkey.example.com. 0 IN TXT "v=DKIM1; k=rsa; p=" "MIIB"`}},
		// NODATA: the name exists, not with this type.
		{"mx.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", soa}},
		// An empty non-terminal exists (RFC 8020).
		{"_domainkey.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", soa}},
		{"nothing.example.com.", mdns.TypeTXT, []string{"NXDOMAIN", "aa", soa}},
		{"www.example.com.", mdns.TypeA, []string{"NOERROR", "aa", "an www.example.com. 0 IN CNAME mx.example.com.", "an mx.example.com. 0 IN A 192.0.2.2"}},
		{"mail.example.com.", mdns.TypeA, []string{"NOERROR", "aa",
			"an mail.example.com. 0 IN CNAME www.example.com.", "an www.example.com. 0 IN CNAME mx.example.com.", "an mx.example.com. 0 IN A 192.0.2.2"}},
		{"www.example.com.", mdns.TypeCNAME, []string{"NOERROR", "aa", "an www.example.com. 0 IN CNAME mx.example.com."}},
		{"www.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", "an www.example.com. 0 IN CNAME mx.example.com.", soa}},
		// A CNAME leaving the server's zones: the resolver follows it.
		{"away.example.com.", mdns.TypeA, []string{"NOERROR", "aa", "an away.example.com. 0 IN CNAME mx.elsewhere.test."}},
		// A CNAME to a missing name: the rcode is the target's (RFC 6604).
		{"gone.example.com.", mdns.TypeA, []string{"NXDOMAIN", "aa", "an gone.example.com. 0 IN CNAME missing.example.com.", soa}},
		{"a.wild.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", `an a.wild.example.com. 0 IN TXT "wildcard"`}},
		{"b.a.wild.example.com.", mdns.TypeTXT, []string{"NOERROR", "aa", `an b.a.wild.example.com. 0 IN TXT "wildcard"`}},
		// Names outside every zone, never set: unknown.
		{"example.org.", mdns.TypeA, []string{"NXDOMAIN", "aa"}},
	} {
		t.Run(tc.name+"/"+mdns.TypeToString[tc.qtype], func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summary(ask(t, s.Addr(), tc.name, tc.qtype))); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// SetZone replaces the zone at its origin and keeps the others.
func TestLocalServerSetZoneReplaces(t *testing.T) {
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	other := "other.test. 60 IN SOA ns.other.test. h.other.test. 1 1 1 1 1\nother.test. 60 IN TXT \"other\"\n"
	if err := s.SetZone(other); err != nil {
		t.Fatal(err)
	}
	if err := s.SetZone("example.com. 60 IN SOA ns. h. 7 1 1 1 1\nnew.example.com. 60 IN TXT \"new\"\n"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, rcode string
		answers     int
	}{
		{"new.example.com.", "NOERROR", 1},
		{"example.com.", "NOERROR", 0},     // its TXT went with the old zone
		{"mx.example.com.", "NXDOMAIN", 0}, // so did mx
		{"other.test.", "NOERROR", 1},      // the other zone stays
	} {
		in := ask(t, s.Addr(), tc.name, mdns.TypeTXT)
		if got := mdns.RcodeToString[in.Rcode]; got != tc.rcode || len(in.Answer) != tc.answers {
			t.Errorf("%s TXT: %s with %d answers, want %s with %d", tc.name, got, len(in.Answer), tc.rcode, tc.answers)
		}
	}
	if serial, ok := s.Serial("example.com"); !ok || serial != 7 {
		t.Errorf("serial %d, %v; want 7", serial, ok)
	}
}

func TestLocalServerSetZoneErrors(t *testing.T) {
	s := newServer(t)
	for _, tc := range []struct{ name, text, want string }{
		{"no SOA", "a.test. 60 IN TXT \"x\"\n", "no SOA record"},
		{"outside", "a.test. 60 IN SOA ns. h. 1 1 1 1 1\nb.test. 60 IN TXT \"x\"\n", "b.test. is in none of the zones"},
		{"two SOA", "a.test. 60 IN SOA ns. h. 1 1 1 1 1\na.test. 60 IN SOA ns. h. 2 1 1 1 1\n", "two SOA records"},
		{"syntax", "a.test. 60 IN SOA ns. h. 1 1 1 1 1\na.test. 60 IN MX x\n", "bad MX"},
		{"relative without origin", "a.test. 60 IN SOA ns. h. 1 1 1 1 1\nwww 60 IN A 192.0.2.1\n", "bad owner name"},
		{"class", "a.test. 60 CH SOA ns. h. 1 1 1 1 1\n", "only IN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetZone(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// SetRecords changes a zone and bumps its serial; outside every zone it
// publishes records as SetTXT always did.
func TestLocalServerSetRecords(t *testing.T) {
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	mx := &mdns.MX{Hdr: mdns.RR_Header{Rrtype: mdns.TypeMX, Ttl: 60}, Preference: 5, Mx: "mx2.example.com."}
	if err := s.SetRecords("Example.com", mdns.TypeMX, mx); err != nil {
		t.Fatal(err)
	}
	want := []string{"NOERROR", "aa", "an example.com. 0 IN MX 5 mx2.example.com."}
	if diff := cmp.Diff(want, summary(ask(t, s.Addr(), "example.com.", mdns.TypeMX))); diff != "" {
		t.Errorf("after SetRecords (-want +got):\n%s", diff)
	}
	if serial, _ := s.Serial("example.com."); serial != 2026010101 {
		t.Errorf("serial %d, want 2026010101", serial)
	}
	if err := s.SetRecords("ns1.example.com", mdns.TypeA); err != nil {
		t.Fatal(err)
	}
	if in := ask(t, s.Addr(), "ns1.example.com.", mdns.TypeA); in.Rcode != mdns.RcodeNameError {
		t.Errorf("a name whose only records were deleted: %s, want NXDOMAIN", mdns.RcodeToString[in.Rcode])
	}

	for _, tc := range []struct {
		name  string
		qtype uint16
		rrs   []mdns.RR
		want  string
	}{
		{"example.com", mdns.TypeTXT, []mdns.RR{mx}, "a MX record is among them"},
		{"www.example.com", mdns.TypeSOA, []mdns.RR{&mdns.SOA{Hdr: mdns.RR_Header{Rrtype: mdns.TypeSOA}}}, "at its origin"},
		{"example.com", mdns.TypeSOA, nil, "at its origin"},
		{strings.Repeat("x", 64) + ".example.com", mdns.TypeTXT, nil, "bad name"},
	} {
		if err := s.SetRecords(tc.name, tc.qtype, tc.rrs...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("SetRecords(%s, %s): %v, want an error saying %q", tc.name, mdns.TypeToString[tc.qtype], err, tc.want)
		}
	}

	s.SetTXT("loose.test", 30, "x")
	if diff := cmp.Diff([]string{"NOERROR", "aa", `an loose.test. 0 IN TXT "x"`}, summary(ask(t, s.Addr(), "loose.test.", mdns.TypeTXT))); diff != "" {
		t.Errorf("outside every zone (-want +got):\n%s", diff)
	}
	if got := s.Records("loose.test", mdns.TypeTXT); len(got) != 1 || got[0].Header().Ttl != 30 {
		t.Errorf("Records: %v", got)
	}
}

// A server can be made to fail for a name, or never to answer: what a
// checker reports as "could not check".
func TestLocalServerFailures(t *testing.T) {
	s := newServer(t)
	if err := s.SetZone(exampleZone); err != nil {
		t.Fatal(err)
	}
	s.Fail("example.com", mdns.RcodeServerFailure)
	s.Drop("sel._domainkey.example.com")
	r, err := NewResolver(s.Addr(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"example.com", "sel._domainkey.example.com"} {
		if _, err := r.TXT(ctx, name); !errors.Is(err, ErrServer) {
			t.Errorf("%s: %v, want ErrServer", name, err)
		}
	}
	if n := s.Questions("sel._domainkey.example.com"); n == 0 {
		t.Error("the dropped question was not received")
	}
	s.Fail("example.com", mdns.RcodeSuccess)
	if got, err := r.TXT(ctx, "example.com"); err != nil || !slices.Equal(got, []string{"v=spf1 mx -all"}) {
		t.Errorf("after Fail(RcodeSuccess): %q, %v", got, err)
	}

	// Held questions are answered when released.
	release := s.Hold("mx.example.com")
	done := make(chan error)
	go func() {
		_, err := newResolver(t, s.Addr()).Lookup(ctx, "mx.example.com", mdns.TypeA)
		done <- err
	}()
	for s.Questions("mx.example.com") == 0 {
		time.Sleep(time.Millisecond)
	}
	release()
	if err := <-done; err != nil {
		t.Errorf("a held question, released: %v", err)
	}
}

func newResolver(t *testing.T, addr string) *Resolver {
	t.Helper()
	r, err := NewResolver(addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
