package dnssecurity

import (
	"context"
	"crypto"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"
)

// testOurs is what the platform publishes in these tests.
var testOurs = Ours{
	MX:         []string{"mx1.mailplane.test", "mx2.mailplane.test"},
	SPFInclude: "_spf.mailplane.test",
	IPs:        []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
}

// ourRecords is what the platform publishes: the SPF include and the
// address of an MX host (SPF's mx terms ask it).
const ourRecords = `_spf.mailplane.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"
mx1.mailplane.test. A 192.0.2.25
`

// serve starts platform/dns's LocalServer on loopback holding the
// zone-file lines of text (absolute names) and ourRecords under a root
// zone with TTL 0, so that every question reaches the server, and returns
// a resolver asking it, waiting at most timeout per question.
func serve(tb testing.TB, text string, timeout time.Duration) (*dns.Resolver, *dns.LocalServer) {
	tb.Helper()
	s, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	zone := "$ORIGIN .\n$TTL 0\n. SOA ns.test. hostmaster.test. 1 60 60 60 0\n" + ourRecords + text
	if err := s.SetZone(zone); err != nil {
		tb.Fatal(err)
	}
	r, err := dns.NewResolver(s.Addr(), timeout)
	if err != nil {
		tb.Fatal(err)
	}
	return r, s
}

// block is how a test makes the server fail for a name.
type block int

const (
	servfail block = iota + 1 // the server answers SERVFAIL
	drop                      // the server never answers: the resolver times out
)

func (b block) apply(s *dns.LocalServer, name string) {
	switch b {
	case servfail:
		s.Fail(name, mdns.RcodeServerFailure)
	case drop:
		s.Drop(name)
	}
}

func TestCheckMX(t *testing.T) {
	r, s := serve(t, `
missing.test. TXT "no mail here"
ours.test. MX 10 mx1.mailplane.test.
ours.test. MX 20 mx2.mailplane.test.
upper.test. MX 10 MX1.MailPlane.TEST.
other.test. MX 10 mx.elsewhere.example.
partly.test. MX 10 mx1.mailplane.test.
partly.test. MX 20 mx.elsewhere.example.
null.test. MX 0 .
`, 300*time.Millisecond)
	for name, b := range map[string]block{"servfail.test": servfail, "dropped.test": drop} {
		b.apply(s, name)
	}
	ctx := context.Background()
	for _, c := range []struct {
		domain  string
		code    string
		sev     finding.Severity
		foreign string // named in the message
	}{
		{"missing.test", "mx.missing", finding.Error, ""},
		{"nxdomain.test", "mx.missing", finding.Error, ""},
		{"ours.test", "mx.ok", finding.OK, ""},
		{"upper.test", "mx.ok", finding.OK, ""},
		{"other.test", "mx.not_ours", finding.Error, "mx.elsewhere.example"},
		{"partly.test", "mx.partly_ours", finding.Warning, "mx.elsewhere.example"},
		// A null MX (RFC 7505): the domain takes no mail, so none for us.
		{"null.test", "mx.null", finding.Error, ""},
		{"servfail.test", "mx.dns_failure", finding.Unknown, ""},
		{"dropped.test", "mx.dns_failure", finding.Unknown, ""},
	} {
		t.Run(c.domain, func(t *testing.T) {
			fs := checkMX(ctx, r, c.domain, testOurs.MX)
			if len(fs) != 1 || fs[0].Code != c.code || fs[0].Severity != c.sev {
				t.Fatalf("findings %v, want one %s (%v)", fs, c.code, c.sev)
			}
			f := fs[0]
			if !strings.Contains(f.Message, c.domain) || !strings.Contains(f.Message, c.foreign) {
				t.Errorf("message %q names not %s and %q", f.Message, c.domain, c.foreign)
			}
			switch c.sev {
			case finding.OK:
				if f.Fix != "" {
					t.Errorf("OK with a fix: %q", f.Fix)
				}
			case finding.Error, finding.Warning:
				for _, mx := range []string{"10 mx1.mailplane.test.", "10 mx2.mailplane.test."} {
					if !strings.Contains(f.Fix, mx) {
						t.Errorf("fix %q does not give our MX record %s", f.Fix, mx)
					}
				}
			}
		})
	}
}

func TestCheckDNSSEC(t *testing.T) {
	// A P-256 key is 64 bytes; the server packs it, so it must be base64.
	key := base64.StdEncoding.EncodeToString(make([]byte, 64))
	r, s := serve(t, fmt.Sprintf(`
unsigned.test. TXT "x"
signed.test. DNSKEY 257 3 13 %[1]s
mail.signed.test. TXT "x"
broken.test. TXT "x"
sub.broken.test. TXT "x"
`, key), 300*time.Millisecond)
	s.Fail("broken.test", mdns.RcodeServerFailure)
	s.Drop("dropped.test")
	ctx := context.Background()
	for _, c := range []struct {
		domain string
		code   string
		sev    finding.Severity
	}{
		{"unsigned.test", "dnssec.unsigned", finding.OK},
		{"nxdomain.test", "dnssec.unsigned", finding.OK},
		{"signed.test", "dnssec.signed", finding.OK},
		// Below the apex: the zone's key is at the closest parent.
		{"mail.signed.test", "dnssec.signed", finding.OK},
		{"broken.test", "dnssec.dns_failure", finding.Unknown},
		// Its own name answers, its parent's fails: still not known.
		{"sub.broken.test", "dnssec.dns_failure", finding.Unknown},
		{"dropped.test", "dnssec.dns_failure", finding.Unknown},
	} {
		t.Run(c.domain, func(t *testing.T) {
			fs := checkDNSSEC(ctx, r, c.domain)
			if len(fs) != 1 || fs[0].Code != c.code || fs[0].Severity != c.sev {
				t.Fatalf("findings %v, want one %s (%v)", fs, c.code, c.sev)
			}
			if !strings.Contains(fs[0].Message, c.domain) {
				t.Errorf("message %q does not name %s", fs[0].Message, c.domain)
			}
		})
	}
}

func TestAreaResult(t *testing.T) {
	f := func(code string, sev finding.Severity) finding.Finding {
		return finding.Finding{Code: code, Severity: sev}
	}
	for _, c := range []struct {
		name  string
		in    []finding.Finding
		want  []string
		state dnssecurityv1.SecurityStatus
	}{
		{"none", nil, nil, dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK},
		{"ok", []finding.Finding{f("a", finding.OK)}, []string{"a"}, dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK},
		{"worst first, equal ones in their order",
			[]finding.Finding{f("ok1", finding.OK), f("warn1", finding.Warning), f("err1", finding.Error), f("unk", finding.Unknown), f("warn2", finding.Warning), f("err2", finding.Error), f("ok2", finding.OK)},
			[]string{"err1", "err2", "unk", "warn1", "warn2", "ok1", "ok2"}, dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR},
		{"unknown above warning", []finding.Finding{f("warn", finding.Warning), f("unk", finding.Unknown)},
			[]string{"unk", "warn"}, dnssecurityv1.SecurityStatus_SECURITY_STATUS_UNKNOWN},
		{"warning", []finding.Finding{f("ok", finding.OK), f("warn", finding.Warning)},
			[]string{"warn", "ok"}, dnssecurityv1.SecurityStatus_SECURITY_STATUS_WARNING},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.in)
			res := areaResult(dnssecurityv1.Area_AREA_SPF, c.in)
			var got []string
			for i, p := range res.GetFindings() {
				got = append(got, p.GetCode())
				if i > 0 && rankOf(p.GetStatus()) > rankOf(res.GetFindings()[i-1].GetStatus()) {
					t.Errorf("finding %d (%v) is worse than the one before it", i, p.GetStatus())
				}
			}
			if !slices.Equal(got, c.want) || res.GetStatus() != c.state || res.GetArea() != dnssecurityv1.Area_AREA_SPF {
				t.Errorf("area %v %v %v, want %v %v", res.GetArea(), res.GetStatus(), got, c.state, c.want)
			}
			if !slices.Equal(in, c.in) {
				t.Errorf("areaResult reordered its argument: %v", c.in)
			}
		})
	}
	res := areaResult(dnssecurityv1.Area_AREA_SPF, []finding.Finding{f("spf.neutral_all", finding.Warning), f("spf.ptr", finding.Warning)})
	if !res.GetFindings()[0].GetCorrectable() || res.GetFindings()[1].GetCorrectable() {
		t.Errorf("correctable: %v, want spf.neutral_all only", res.GetFindings())
	}
}

// rankOf orders the statuses as the diagnostic does: OK, warning,
// unknown, error.
func rankOf(s dnssecurityv1.SecurityStatus) int {
	return map[dnssecurityv1.SecurityStatus]int{
		dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK: 0, dnssecurityv1.SecurityStatus_SECURITY_STATUS_WARNING: 1,
		dnssecurityv1.SecurityStatus_SECURITY_STATUS_UNKNOWN: 2, dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR: 3,
	}[s]
}

// goodDomain is the zone-file text of domain with every area right: MX
// to us, SPF including ours, the DKIM key dkimTXT at selector sel, DMARC
// at reject, MTA-STS and TLS reporting. Each line of override ("owner
// TYPE data", or "owner TYPE -" to remove) replaces the records of its
// owner and type.
func goodDomain(domain, dkimTXT string, override ...string) string {
	lines := []string{
		domain + `. MX 10 mx1.mailplane.test.`,
		domain + `. TXT "v=spf1 ip4:198.51.100.7 include:_spf.mailplane.test -all"`,
		`sel._domainkey.` + domain + `. TXT "` + strings.Join(dkim.Strings(dkimTXT), `" "`) + `"`,
		`_dmarc.` + domain + `. TXT "v=DMARC1; p=reject; rua=mailto:dmarc@` + domain + `"`,
		`_mta-sts.` + domain + `. TXT "v=STSv1; id=20260101T000000"`,
		`_smtp._tls.` + domain + `. TXT "v=TLSRPTv1; rua=mailto:tls@` + domain + `"`,
	}
	for _, o := range override {
		f := strings.Fields(o)
		key := f[0] + " " + f[1] + " "
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, key) })
		if f[2] != "-" {
			lines = append(lines, o)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestCheck(t *testing.T) {
	key, err := dkim.Generate(dkim.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := dkim.TXT(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]crypto.PublicKey{"sel": key.Public()}
	const (
		ok      = dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK
		warning = dnssecurityv1.SecurityStatus_SECURITY_STATUS_WARNING
		unknown = dnssecurityv1.SecurityStatus_SECURITY_STATUS_UNKNOWN
		bad     = dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR
	)
	type areas map[dnssecurityv1.Area]dnssecurityv1.SecurityStatus
	for _, c := range []struct {
		name     string
		override []string
		servfail []string // names the server fails for; {d} is the domain
		held     map[string]crypto.PublicKey
		others   []string
		want     areas // areas not named are OK
		status   dnssecurityv1.SecurityStatus
		codes    []string // among the findings
	}{
		{name: "all right", held: held, status: ok,
			codes: []string{"mx.ok", "spf.ok", "dmarc.ok", "mtasts.ok", "tlsrpt.ok", "dnssec.unsigned"}},
		{name: "a warning", held: held, override: []string{`_dmarc.{d}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{d}"`},
			want: areas{dnssecurityv1.Area_AREA_DMARC: warning}, status: warning, codes: []string{"dmarc.policy_none"}},
		{name: "unknown above a warning", held: held, override: []string{`_dmarc.{d}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{d}"`},
			servfail: []string{"_mta-sts.{d}"},
			want:     areas{dnssecurityv1.Area_AREA_DMARC: warning, dnssecurityv1.Area_AREA_MTA_STS: unknown}, status: unknown,
			codes: []string{"mtasts.dns_failure", "tlsrpt.ok"}},
		{name: "error above unknown", held: held, override: []string{`{d}. TXT "v=spf1 ip4:198.51.100.7 -all"`},
			servfail: []string{"_smtp._tls.{d}"},
			want:     areas{dnssecurityv1.Area_AREA_SPF: bad, dnssecurityv1.Area_AREA_TLS_RPT: unknown, dnssecurityv1.Area_AREA_DMARC: warning},
			status:   bad, codes: []string{"spf.not_authorized", "tlsrpt.dns_failure", "dmarc.no_spf_dkim"}},
		{name: "mail elsewhere: SPF for us means little", held: held, override: []string{`{d}. MX 10 mx.elsewhere.example.`},
			want:   areas{dnssecurityv1.Area_AREA_MX: bad, dnssecurityv1.Area_AREA_SPF: warning},
			status: bad, codes: []string{"mx.not_ours", "spf.mx_elsewhere", "spf.ok"}},
		{name: "our key not published", held: held, override: []string{`sel._domainkey.{d}. TXT -`},
			want:   areas{dnssecurityv1.Area_AREA_DKIM: bad, dnssecurityv1.Area_AREA_DMARC: warning},
			status: bad, codes: []string{"dkim.missing", "dmarc.no_spf_dkim"}},
		{name: "no key of ours", others: []string{"sel"},
			want:   areas{dnssecurityv1.Area_AREA_DMARC: warning},
			status: warning, codes: []string{"dkim.ok", "dmarc.no_spf_dkim"}},
		{name: "no DKIM at all",
			want:   areas{dnssecurityv1.Area_AREA_DKIM: warning, dnssecurityv1.Area_AREA_DMARC: warning},
			status: warning, codes: []string{"dkim.no_key", "dmarc.no_spf_dkim"}},
		{name: "the domain's server fails", held: held, servfail: []string{"{d}"},
			want:   areas{dnssecurityv1.Area_AREA_MX: unknown, dnssecurityv1.Area_AREA_SPF: unknown, dnssecurityv1.Area_AREA_DNSSEC: unknown},
			status: unknown, codes: []string{"mx.dns_failure", "spf.dns_failure", "dnssec.dns_failure", "dmarc.ok"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const domain = "check.test"
			var over []string
			for _, o := range c.override {
				over = append(over, strings.ReplaceAll(o, "{d}", domain))
			}
			r, s := serve(t, goodDomain(domain, txt, over...), time.Second)
			for _, name := range c.servfail {
				s.Fail(strings.ReplaceAll(name, "{d}", domain), mdns.RcodeServerFailure)
			}
			srv := &Server{dns: r, ours: testOurs}
			d := srv.check(context.Background(), domain, c.held, c.others)

			var got []string
			worst := ok
			seen := map[dnssecurityv1.Area]bool{}
			for _, a := range d.GetAreas() {
				seen[a.GetArea()] = true
				want, named := c.want[a.GetArea()]
				if !named {
					want = ok
				}
				var cs []string
				for _, f := range a.GetFindings() {
					cs = append(cs, f.GetCode())
				}
				if a.GetStatus() != want {
					t.Errorf("area %v: %v %v, want %v", a.GetArea(), a.GetStatus(), cs, want)
				}
				if len(cs) == 0 {
					t.Errorf("area %v without findings", a.GetArea())
				}
				// MTA-STS and TLS reporting are one check split in two.
				for _, code := range cs {
					if prefix, ok := map[dnssecurityv1.Area]string{dnssecurityv1.Area_AREA_MTA_STS: "mtasts.", dnssecurityv1.Area_AREA_TLS_RPT: "tlsrpt."}[a.GetArea()]; ok && !strings.HasPrefix(code, prefix) {
						t.Errorf("area %v holds %s", a.GetArea(), code)
					}
				}
				got = append(got, cs...)
				if rankOf(a.GetStatus()) > rankOf(worst) {
					worst = a.GetStatus()
				}
			}
			if len(seen) != 7 {
				t.Errorf("areas %v, want the 7", d.GetAreas())
			}
			if d.GetStatus() != c.status || d.GetStatus() != worst {
				t.Errorf("overall %v, want %v (the worst area: %v)", d.GetStatus(), c.status, worst)
			}
			for _, code := range c.codes {
				if !slices.Contains(got, code) {
					t.Errorf("findings %v lack %s", got, code)
				}
			}
			if d.GetRunTime() == nil {
				t.Error("no run time")
			}
		})
	}
}
