package knottest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

const zone = `$ORIGIN example.test.
$TTL 300
@      SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300
@      NS  ns1.example.test.
ns1    A   127.0.0.1
@      MX  10 mx.example.test.
mx     A   192.0.2.25
@      TXT "v=spf1 mx -all"
_dmarc TXT "v=DMARC1; p=none"
`

func ask(t *testing.T, s *Server, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	// UDP: the harness itself asks over TCP, so this shows both work.
	r, _, err := new(mdns.Client).Exchange(m, s.Addr)
	if err != nil {
		t.Fatalf("ask %s %s: %v", name, mdns.TypeToString[qtype], err)
	}
	return r
}

func txt(t *testing.T, s *Server, name string) []string {
	t.Helper()
	r := ask(t, s, name, mdns.TypeTXT)
	if r.Rcode != mdns.RcodeSuccess && r.Rcode != mdns.RcodeNameError {
		t.Fatalf("TXT %s: %s", name, mdns.RcodeToString[r.Rcode])
	}
	var got []string
	for _, rr := range r.Answer {
		if tx, ok := rr.(*mdns.TXT); ok {
			got = append(got, strings.Join(tx.Txt, ""))
		}
	}
	slices.Sort(got) // an RRset has no order
	return got
}

func serial(t *testing.T, s *Server) uint32 {
	t.Helper()
	r := ask(t, s, s.Zone, mdns.TypeSOA)
	if len(r.Answer) != 1 {
		t.Fatalf("SOA: %d records, want 1", len(r.Answer))
	}
	return r.Answer[0].(*mdns.SOA).Serial
}

func rr(t *testing.T, s string) mdns.RR {
	t.Helper()
	r, err := mdns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send sends m over TCP, signed with secret under the server's key name
// unless secret is empty.
func send(t *testing.T, s *Server, m *mdns.Msg, secret string) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: "tcp"}
	if secret != "" {
		m.SetTsig(s.KeyName, mdns.HmacSHA256, 300, time.Now().Unix())
		c.TsigSecret = map[string]string{s.KeyName: secret}
	}
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		// A refused signed update comes back with a TSIG error the client
		// reports (BADKEY); the answer is still there.
		if r == nil {
			t.Fatalf("update: %v", err)
		}
		t.Logf("update: %v", err)
	}
	return r
}

func TestStart(t *testing.T) {
	s := Start(t, zone)
	if s.Zone != "example.test." {
		t.Errorf("Zone = %q, want example.test.", s.Zone)
	}
	if got := serial(t, s); got != 1 {
		t.Errorf("SOA serial = %d, want 1", got)
	}
	for name, want := range map[string][]string{
		"example.test.":        {"v=spf1 mx -all"},
		"_dmarc.example.test.": {"v=DMARC1; p=none"},
		"www.example.test.":    nil,
	} {
		if diff := cmp.Diff(want, txt(t, s, name)); diff != "" {
			t.Errorf("TXT %s (-want +got):\n%s", name, diff)
		}
	}
}

func TestUpdate(t *testing.T) {
	s := Start(t, zone)
	wrong := make([]byte, 32)
	tests := []struct {
		name   string
		secret string // "" sends it unsigned
		change func(m *mdns.Msg)
		want   int
		// owner and its TXT records after the update
		owner   string
		wantTXT []string
	}{
		{
			name:   "replace apex SPF",
			secret: s.Secret,
			change: func(m *mdns.Msg) {
				m.Remove([]mdns.RR{rr(t, `example.test. 300 IN TXT "v=spf1 mx -all"`)})
				m.Insert([]mdns.RR{rr(t, `example.test. 300 IN TXT "v=spf1 mx ~all"`)})
			},
			want:    mdns.RcodeSuccess,
			owner:   "example.test.",
			wantTXT: []string{"v=spf1 mx ~all"},
		},
		{
			name:   "replace DMARC",
			secret: s.Secret,
			change: func(m *mdns.Msg) {
				m.RemoveRRset([]mdns.RR{rr(t, `_dmarc.example.test. 0 IN TXT ""`)})
				m.Insert([]mdns.RR{rr(t, `_dmarc.example.test. 300 IN TXT "v=DMARC1; p=reject"`)})
			},
			want:    mdns.RcodeSuccess,
			owner:   "_dmarc.example.test.",
			wantTXT: []string{"v=DMARC1; p=reject"},
		},
		{
			name:   "add DKIM key",
			secret: s.Secret,
			change: func(m *mdns.Msg) {
				m.Insert([]mdns.RR{rr(t, `mp1._domainkey.example.test. 300 IN TXT "v=DKIM1; k=ed25519; p=abc"`)})
			},
			want:    mdns.RcodeSuccess,
			owner:   "mp1._domainkey.example.test.",
			wantTXT: []string{"v=DKIM1; k=ed25519; p=abc"},
		},
		{
			name:   "unsigned",
			change: func(m *mdns.Msg) { m.Insert([]mdns.RR{rr(t, `_dmarc.example.test. 300 IN TXT "unsigned"`)}) },
			want:   mdns.RcodeNotAuth,
			owner:  "_dmarc.example.test.", wantTXT: []string{"v=DMARC1; p=reject"},
		},
		{
			name:   "wrong secret",
			secret: base64.StdEncoding.EncodeToString(wrong),
			change: func(m *mdns.Msg) { m.Insert([]mdns.RR{rr(t, `_dmarc.example.test. 300 IN TXT "wrong"`)}) },
			want:   mdns.RcodeNotAuth,
			owner:  "_dmarc.example.test.", wantTXT: []string{"v=DMARC1; p=reject"},
		},
		{
			name:   "TXT outside the ACL",
			secret: s.Secret,
			change: func(m *mdns.Msg) { m.Insert([]mdns.RR{rr(t, `www.example.test. 300 IN TXT "no"`)}) },
			want:   mdns.RcodeNotAuth,
			owner:  "www.example.test.",
		},
		{
			name:   "A at the apex",
			secret: s.Secret,
			change: func(m *mdns.Msg) { m.Insert([]mdns.RR{rr(t, `example.test. 300 IN A 192.0.2.1`)}) },
			want:   mdns.RcodeNotAuth,
			owner:  "example.test.", wantTXT: []string{"v=spf1 mx ~all"},
		},
		{
			name:   "the _domainkey name itself",
			secret: s.Secret,
			change: func(m *mdns.Msg) { m.Insert([]mdns.RR{rr(t, `_domainkey.example.test. 300 IN TXT "o=-"`)}) },
			want:   mdns.RcodeNotAuth,
			owner:  "_domainkey.example.test.",
		},
	}
	// In order: each case sees the zone the ones before it left.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := serial(t, s)
			m := new(mdns.Msg)
			m.SetUpdate(s.Zone)
			tt.change(m)
			r := send(t, s, m, tt.secret)
			if r.Rcode != tt.want {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[r.Rcode], mdns.RcodeToString[tt.want])
			}
			if diff := cmp.Diff(tt.wantTXT, txt(t, s, tt.owner)); diff != "" {
				t.Errorf("TXT %s (-want +got):\n%s", tt.owner, diff)
			}
			after := serial(t, s)
			if changed := tt.want == mdns.RcodeSuccess; changed != (after == before+1) {
				t.Errorf("SOA serial %d -> %d, changed = %v", before, after, changed)
			}
		})
	}

	// Knot writes updates back to the zone file at once (zonefile-sync: 0).
	f, err := os.ReadFile(filepath.Join(s.Dir, "zones", s.Zone+"zone"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f), "p=reject") {
		t.Errorf("zone file lacks the updated DMARC record:\n%s", f)
	}
}

// TestCompareAndSwap is how the DNS security service changes a record
// someone else may be changing: the prerequisite holds the value it read.
func TestCompareAndSwap(t *testing.T) {
	s := Start(t, zone)
	cas := func() int {
		m := new(mdns.Msg)
		m.SetUpdate(s.Zone)
		old := `example.test. 300 IN TXT "v=spf1 mx -all"`
		// Used and Remove change the header in place: one RR each.
		m.Used([]mdns.RR{rr(t, old)})
		m.Remove([]mdns.RR{rr(t, old)})
		m.Insert([]mdns.RR{rr(t, `example.test. 300 IN TXT "v=spf1 mx include:_spf.example.net -all"`)})
		return send(t, s, m, s.Secret).Rcode
	}
	for i, want := range []int{mdns.RcodeSuccess, mdns.RcodeNXRrset} {
		if got := cas(); got != want {
			t.Errorf("swap %d: %s, want %s", i+1, mdns.RcodeToString[got], mdns.RcodeToString[want])
		}
	}
}

// TestParallel starts servers side by side: each has its own port and
// answers only for its zone.
func TestParallel(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			name := fmt.Sprintf("p%d.test.", i)
			s := Start(t, strings.ReplaceAll(zone, "example.test.", name))
			other := fmt.Sprintf("p%d.test.", (i+1)%3)
			if r := ask(t, s, other, mdns.TypeSOA); r.Rcode != mdns.RcodeRefused {
				t.Errorf("SOA %s at %s (server of %s): %s, want REFUSED", other, s.Addr, name, mdns.RcodeToString[r.Rcode])
			}
			m := new(mdns.Msg)
			m.SetUpdate(s.Zone)
			m.Insert([]mdns.RR{rr(t, "_dmarc."+name+` 300 IN TXT "`+name+`"`)})
			if r := send(t, s, m, s.Secret); r.Rcode != mdns.RcodeSuccess {
				t.Fatalf("update: %s", mdns.RcodeToString[r.Rcode])
			}
			if diff := cmp.Diff([]string{name, "v=DMARC1; p=none"}, txt(t, s, "_dmarc."+name)); diff != "" {
				t.Errorf("TXT _dmarc.%s (-want +got):\n%s", name, diff)
			}
		})
	}
}

func TestServersApart(t *testing.T) {
	a := Start(t, zone)
	b := Start(t, strings.ReplaceAll(zone, "example.test.", "other.test."))
	if a.Addr == b.Addr || a.Secret == b.Secret || a.Dir == b.Dir {
		t.Errorf("servers share an address, a secret or a directory: %+v, %+v", a, b)
	}
	// a's key does not open b's zone.
	m := new(mdns.Msg)
	m.SetUpdate(b.Zone)
	m.Insert([]mdns.RR{rr(t, `_dmarc.other.test. 300 IN TXT "from a"`)})
	if r := send(t, b, m, a.Secret); r.Rcode != mdns.RcodeNotAuth {
		t.Errorf("update of b signed with a's secret: %s, want NOTAUTH", mdns.RcodeToString[r.Rcode])
	}
}

func TestZoneName(t *testing.T) {
	tests := []struct {
		zone, want, err string
	}{
		{zone: zone, want: "example.test."},
		{zone: "Example.TEST. 300 IN SOA ns1.example.test. h.example.test. 1 2 3 4 5\n", want: "example.test."},
		{zone: "$ORIGIN example.test.\nns1 300 IN A 127.0.0.1\n", err: "no SOA"},
		{zone: "$ORIGIN a.test.\n@ 300 IN SOA ns h 1 2 3 4 5\n$ORIGIN b.test.\n@ 300 IN SOA ns h 1 2 3 4 5\n", err: "two SOA"},
		{zone: "@ 300 IN SOA ns h 1 2 3 4 5\n", err: "parse zone"},
		{zone: "$ORIGIN example.test.\n@ 300 IN SOA ns1\n", err: "parse zone"},
	}
	for _, tt := range tests {
		got, err := ZoneName(tt.zone)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ZoneName(%q) = %q, %v; want error with %q", tt.zone, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ZoneName(%q) = %q, %v; want %q", tt.zone, got, err, tt.want)
		}
	}
}

// TestPortTaken: knotd exits when its port is taken, and Start knows why
// (it then tries another port).
func TestPortTaken(t *testing.T) {
	a := Start(t, zone)
	_, p, _ := net.SplitHostPort(a.Addr)
	port, _ := strconv.Atoi(p)
	b := prepare(t, zone)
	err := b.start(t, knotd(t), port)
	if !errors.Is(err, errPortTaken) {
		t.Fatalf("start on a's port %d: %v, want errPortTaken", port, err)
	}
	// a still answers.
	if got := serial(t, a); got != 1 {
		t.Errorf("SOA serial of a = %d, want 1", got)
	}
}

// TestStopped: when its test ends, the server is gone.
func TestStopped(t *testing.T) {
	var addr string
	t.Run("run", func(t *testing.T) { addr = Start(t, zone).Addr })
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its test ended", addr)
	}
}

func FuzzZoneName(f *testing.F) {
	f.Add(zone)
	f.Add("$ORIGIN a.test.\n@ 300 IN SOA ns h 1 2 3 4 5\n")
	f.Add("$ORIGIN a.test.\n@ 300 IN TXT \"x\"\n")
	f.Fuzz(func(t *testing.T, zone string) {
		name, err := ZoneName(zone)
		if err == nil && (!mdns.IsFqdn(name) || name != mdns.CanonicalName(name)) {
			t.Errorf("ZoneName = %q, not canonical", name)
		}
	})
}

// TestOwnerSetTXT: the owner's key writes a name the update key may not
// (a verification record), and the update key still may not.
func TestOwnerSetTXT(t *testing.T) {
	s := Start(t, zone)
	const name = "_mailplane-verification.example.test."
	s.SetTXT(t, name, "token-1")
	if diff := cmp.Diff([]string{"token-1"}, txt(t, s, name)); diff != "" {
		t.Errorf("TXT %s after SetTXT (-want +got):\n%s", name, diff)
	}
	m := new(mdns.Msg)
	m.SetUpdate(s.Zone)
	m.Insert([]mdns.RR{rr(t, name+" 0 TXT \"forged\"")})
	if r := send(t, s, m, s.Secret); r.Rcode != mdns.RcodeRefused && r.Rcode != mdns.RcodeNotAuth {
		t.Errorf("update key writing %s: %s, want REFUSED or NOTAUTH", name, mdns.RcodeToString[r.Rcode])
	}
	if diff := cmp.Diff([]string{"token-1"}, txt(t, s, name)); diff != "" {
		t.Errorf("TXT %s after the refused update (-want +got):\n%s", name, diff)
	}
}
