package spf

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// The scenarios of the openspf.org RFC 7208 test suite (rfc7208-tests.yml,
// release 2014.04, as kept in pyspf), ported as Go tables: each section's
// zone data in zone-file form, each scenario under its name. Records the
// suite publishes as type SPF are published as TXT (RFC 7208 dropped type
// SPF); scenarios only about type SPF are left out.
type scenario struct {
	name     string // the scenario's name in the suite
	helo     string
	host     string
	mailfrom string
	want     []Code // any of them
	// exp, when set, is the explanation expected; "DEFAULT" is
	// DefaultExplanation.
	exp string
}

type section struct {
	name  string
	zone  string
	tests []scenario
}

func runSections(t *testing.T, sections []section) {
	for _, s := range sections {
		t.Run(s.name, func(t *testing.T) {
			r, _ := serveZone(t, s.zone)
			for _, sc := range s.tests {
				t.Run(sc.name, func(t *testing.T) {
					domain := sc.helo
					if i := strings.LastIndexByte(sc.mailfrom, '@'); i >= 0 {
						domain = sc.mailfrom[i+1:]
					}
					ip := netip.MustParseAddr(sc.host)
					got := CheckHost(context.Background(), r, ip, domain, sc.mailfrom, Options{HELO: sc.helo, Receiver: "mx.receiver.example"})
					if !slices.Contains(sc.want, got.Code) {
						t.Fatalf("CheckHost(%s, %s, %q) = %v (problem %q, matched %+v), want %v", ip, domain, sc.mailfrom, got.Code, got.Problem, got.Matched, sc.want)
					}
					if sc.exp == "" || got.Code != Fail {
						return
					}
					want := sc.exp
					if want == "DEFAULT" {
						// %{d} is the domain whose record failed: a redirect's
						// target rather than the domain asked about.
						want = strings.NewReplacer("%{d}", got.Matched.Domain, "%{c}", ip.Unmap().String()).Replace(DefaultExplanation)
					}
					if !strings.EqualFold(got.Explanation, want) {
						t.Errorf("explanation %q, want %q", got.Explanation, want)
					}
				})
			}
		})
	}
}

func one(c ...Code) []Code { return c }

var (
	none      = one(None)
	neutral   = one(Neutral)
	pass      = one(Pass)
	fail      = one(Fail)
	softfail  = one(SoftFail)
	temperror = one(TempError)
	permerror = one(PermError)
)

func TestRFC7208Suite(t *testing.T) {
	runSections(t, []section{
		{
			name: "Initial processing",
			zone: `
example.com TIMEOUT
example.net TXT "v=spf1 -all exp=exp.example.net"
a.example.net TXT "v=spf1 -all exp=exp.example.net"
exp.example.net TXT "%{l}"
a12345678901234567890123456789012345678901234567890123456789012.example.com TXT "v=spf1 -all"
hosed.example.com TXT "v=spf1 a:\239\187\191garbage.example.net -all"
hosed2.example.com TXT "v=spf1 \128a:example.net -all"
hosed3.example.com TXT "v=spf1 a:example.net \150all"
nothosed.example.com TXT "v=spf1 a:example.net -all"
nothosed.example.com TXT "\150"
ctrl.example.com TXT "v=spf1 a:ctrl.example.com\013ptr -all"
ctrl.example.com A 192.0.2.3
fine.example.com TXT "v=spf1 a  -all"
`,
			tests: []scenario{
				{"toolonglabel", "mail.example.net", "1.2.3.5", "lyme.eater@A123456789012345678901234567890123456789012345678901234567890123.example.com", none, ""},
				{"longlabel", "mail.example.net", "1.2.3.5", "lyme.eater@A12345678901234567890123456789012345678901234567890123456789012.example.com", fail, ""},
				{"emptylabel", "mail.example.net", "1.2.3.5", "lyme.eater@A...example.com", none, ""},
				{"helo-not-fqdn", "A2345678", "1.2.3.5", "", none, ""},
				{"helo-domain-literal", "[1.2.3.5]", "1.2.3.5", "", none, ""},
				{"nolocalpart", "mail.example.net", "1.2.3.4", "@example.net", fail, "postmaster"},
				{"domain-literal", "OEMCOMPUTER", "1.2.3.5", "foo@[1.2.3.5]", none, ""},
				{"non-ascii-policy", "hosed", "1.2.3.4", "foobar@hosed.example.com", permerror, ""},
				{"non-ascii-mech", "hosed", "1.2.3.4", "foobar@hosed2.example.com", permerror, ""},
				{"non-ascii-result", "hosed", "1.2.3.4", "foobar@hosed3.example.com", permerror, ""},
				{"non-ascii-non-spf", "hosed", "1.2.3.4", "foobar@nothosed.example.com", fail, "DEFAULT"},
				{"control-char-policy", "hosed", "192.0.2.3", "foobar@ctrl.example.com", permerror, ""},
				{"two-spaces", "hosed", "1.2.3.4", "actually@fine.example.com", fail, ""},
			},
		},
		{
			name: "Record lookup",
			zone: `
both.example.net TXT "v=spf1 -all"
txtonly.example.net TXT "v=spf1 -all"
spftimeout.example.net TXT "v=spf1 -all"
txttimeout.example.net TIMEOUT
nospftxttimeout.example.net TIMEOUT
alltimeout.example.net TIMEOUT
`,
			tests: []scenario{
				{"both", "mail.example.net", "1.2.3.4", "foo@both.example.net", fail, ""},
				{"txtonly", "mail.example.net", "1.2.3.4", "foo@txtonly.example.net", fail, ""},
				{"spfonly", "mail.example.net", "1.2.3.4", "foo@spfonly.example.net", none, ""},
				{"spftimeout", "mail.example.net", "1.2.3.4", "foo@spftimeout.example.net", fail, ""},
				{"txttimeout", "mail.example.net", "1.2.3.4", "foo@txttimeout.example.net", temperror, ""},
				{"nospftxttimeout", "mail.example.net", "1.2.3.4", "foo@nospftxttimeout.example.net", temperror, ""},
				{"alltimeout", "mail.example.net", "1.2.3.4", "foo@alltimeout.example.net", temperror, ""},
			},
		},
		{
			name: "Selecting records",
			zone: `
example3.com TXT "v=spf10"
example3.com TXT "v=spf1 mx"
example3.com MX 0 mail.example1.com
example1.com TXT "v=spf1"
example2.com TXT "v=spf1" "mx"
mail.example1.com A 1.2.3.4
example4.com TXT "v=spf1 -all"
example5.com TXT "v=spf1 -all"
example5.com TXT "v=spf1 +all"
example6.com TXT "v=spf1 -all"
example6.com TXT "V=sPf1 +all"
example8.com TXT "v=spf1 +all"
example9.com TXT "v=SpF1 ~all"
`,
			tests: []scenario{
				{"nospace1", "mail.example1.com", "1.2.3.4", "foo@example2.com", none, ""},
				{"empty", "mail1.example1.com", "1.2.3.4", "foo@example1.com", neutral, ""},
				{"nospace2", "mail.example1.com", "1.2.3.4", "foo@example3.com", pass, ""},
				{"spfoverride", "mail.example1.com", "1.2.3.4", "foo@example4.com", fail, ""},
				{"multitxt1", "mail.example1.com", "1.2.3.4", "foo@example5.com", permerror, ""},
				{"multitxt2", "mail.example1.com", "1.2.3.4", "foo@example6.com", permerror, ""},
				{"multispf2", "mail.example1.com", "1.2.3.4", "foo@example8.com", pass, ""},
				{"nospf", "mail.example1.com", "1.2.3.4", "foo@mail.example1.com", none, ""},
				{"case-insensitive", "mail.example1.com", "1.2.3.4", "foo@example9.com", softfail, ""},
			},
		},
		{
			name: "Record evaluation",
			zone: `
mail.example.com A 1.2.3.4
t1.example.com TXT "v=spf1 ip4:1.2.3.4 -all moo"
t2.example.com TXT "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 -all"
t3.example.com TXT "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 -all"
t4.example.com TXT "v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 -all"
t5.example.com TXT "v=spf1 redirect=t5.example.com ~all"
t6.example.com TXT "v=spf1 ip4:1.2.3.4 redirect=t2.example.com"
t7.example.com TXT "v=spf1 ip4:1.2.3.4"
t8.example.com TXT "v=spf1 ip4:1.2.3.4 redirect:t2.example.com"
t9.example.com TXT "v=spf1 a:foo-bar -all"
t10.example.com TXT "v=spf1 a:mail.example...com -all"
t11.example.com TXT "v=spf1 a:a123456789012345678901234567890123456789012345678901234567890123.example.com -all"
t12.example.com TXT "v=spf1 a:%{H}.bar -all"
`,
			tests: []scenario{
				{"detect-errors-anywhere", "mail.example.com", "1.2.3.4", "foo@t1.example.com", permerror, ""},
				{"modifier-charset-good", "mail.example.com", "1.2.3.4", "foo@t2.example.com", pass, ""},
				{"modifier-charset-bad1", "mail.example.com", "1.2.3.4", "foo@t3.example.com", permerror, ""},
				{"modifier-charset-bad2", "mail.example.com", "1.2.3.4", "foo@t4.example.com", permerror, ""},
				{"redirect-after-mechanisms1", "mail.example.com", "1.2.3.4", "foo@t5.example.com", softfail, ""},
				{"redirect-after-mechanisms2", "mail.example.com", "1.2.3.5", "foo@t6.example.com", fail, ""},
				{"default-result", "mail.example.com", "1.2.3.5", "foo@t7.example.com", neutral, ""},
				{"redirect-is-modifier", "mail.example.com", "1.2.3.4", "foo@t8.example.com", permerror, ""},
				{"invalid-domain", "mail.example.com", "1.2.3.4", "foo@t9.example.com", permerror, ""},
				{"invalid-domain-empty-label", "mail.example.com", "1.2.3.4", "foo@t10.example.com", one(Fail, PermError), ""},
				{"invalid-domain-long", "mail.example.com", "1.2.3.4", "foo@t11.example.com", one(Fail, PermError), ""},
				{"invalid-domain-long-via-macro", "%%%%%%%%%%%%%%%%%%%%%%", "1.2.3.4", "foo@t12.example.com", one(Fail, PermError), ""},
			},
		},
		{
			name: "ALL mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 -all."
e2.example.com TXT "v=spf1 -all:foobar"
e3.example.com TXT "v=spf1 -all/8"
e4.example.com TXT "v=spf1 ?all"
e5.example.com TXT "v=spf1 all -all"
`,
			tests: []scenario{
				{"all-dot", "mail.example.com", "1.2.3.4", "foo@e1.example.com", permerror, ""},
				{"all-arg", "mail.example.com", "1.2.3.4", "foo@e2.example.com", permerror, ""},
				{"all-cidr", "mail.example.com", "1.2.3.4", "foo@e3.example.com", permerror, ""},
				{"all-neutral", "mail.example.com", "1.2.3.4", "foo@e4.example.com", neutral, ""},
				{"all-double", "mail.example.com", "1.2.3.4", "foo@e5.example.com", pass, ""},
			},
		},
		{
			name: "PTR mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
mail.example.com AAAA 2001:db8::1
e1.example.com TXT "v=spf1 ptr/0 -all"
e2.example.com TXT "v=spf1 ptr:example.com -all"
4.3.2.1.in-addr.arpa PTR e3.example.com.
4.3.2.1.in-addr.arpa PTR e4.example.com.
4.3.2.1.in-addr.arpa PTR mail.example.com.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa PTR e3.example.com.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.D.0.1.0.0.2.ip6.arpa PTR mail.Example.com.
e3.example.com TXT "v=spf1 ptr -all"
e3.example.com A 1.2.3.4
e3.example.com AAAA CAFE:BABE::1
e4.example.com TXT "v=spf1 ptr -all"
e5.example.com TXT "v=spf1 ptr:"
e6.example.com TXT "v=spf1 ptr:example.Com -all"
`,
			tests: []scenario{
				{"ptr-cidr", "mail.example.com", "1.2.3.4", "foo@e1.example.com", permerror, ""},
				{"ptr-match-target", "mail.example.com", "1.2.3.4", "foo@e2.example.com", pass, ""},
				{"ptr-match-implicit", "mail.example.com", "1.2.3.4", "foo@e3.example.com", pass, ""},
				{"ptr-nomatch-invalid", "mail.example.com", "1.2.3.4", "foo@e4.example.com", fail, ""},
				{"ptr-match-ip6", "mail.example.com", "CAFE:BABE::1", "foo@e3.example.com", pass, ""},
				{"ptr-empty-domain", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"ptr-case-change", "mail.example.com", "2001:db8::1", "bar@e6.example.com", pass, ""},
			},
		},
		{
			name: "A mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 a/0 -all"
e2.example.com A 1.1.1.1
e2.example.com AAAA 1234::2
e2.example.com TXT "v=spf1 a/0 -all"
e2a.example.com AAAA 1234::1
e2a.example.com TXT "v=spf1 a//0 -all"
e2b.example.com A 1.1.1.1
e2b.example.com TXT "v=spf1 a//0 -all"
ipv6.example.com AAAA 1234::1
ipv6.example.com A 1.1.1.1
ipv6.example.com TXT "v=spf1 a -all"
e3.example.com TXT "v=spf1 a:foo.example.com\000"
e4.example.com TXT "v=spf1 a:111.222.33.44"
e5.example.com TXT "v=spf1 a:abc.123"
e5a.example.com TXT "v=spf1 a:museum"
e5b.example.com TXT "v=spf1 a:museum."
e6.example.com TXT "v=spf1 a//33 -all"
e6a.example.com TXT "v=spf1 a/33 -all"
e7.example.com TXT "v=spf1 a//129 -all"
e8.example.com A 1.2.3.5
e8.example.com AAAA 2001:db8:1234::dead:beef
e8.example.com TXT "v=spf1 a/24//64 -all"
e8e.example.com A 1.2.3.5
e8e.example.com AAAA 2001:db8:1234::dead:beef
e8e.example.com TXT "v=spf1 a/24/64 -all"
e8a.example.com A 1.2.3.5
e8a.example.com AAAA 2001:db8:1234::dead:beef
e8a.example.com TXT "v=spf1 a/24 -all"
e8b.example.com A 1.2.3.5
e8b.example.com AAAA 2001:db8:1234::dead:beef
e8b.example.com TXT "v=spf1 a//64 -all"
e9.example.com TXT "v=spf1 a:example.com:8080"
e10.example.com TXT "v=spf1 a:foo.example.com/24"
foo.example.com A 1.1.1.1
foo.example.com A 1.2.3.5
e11.example.com TXT "v=spf1 a:foo:bar/baz.example.com"
foo:bar/baz.example.com A 1.2.3.4
e12.example.com TXT "v=spf1 a:example.-com"
e13.example.com TXT "v=spf1 a:"
e14.example.com TXT "v=spf1 a:foo.example.xn--zckzah -all"
foo.example.xn--zckzah A 1.2.3.4
`,
			tests: []scenario{
				{"a-cidr6", "mail.example.com", "1.2.3.4", "foo@e6.example.com", fail, ""},
				{"a-bad-cidr4", "mail.example.com", "1.2.3.4", "foo@e6a.example.com", permerror, ""},
				{"a-bad-cidr6", "mail.example.com", "1.2.3.4", "foo@e7.example.com", permerror, ""},
				{"a-dual-cidr-ip4-match", "mail.example.com", "1.2.3.4", "foo@e8.example.com", pass, ""},
				{"a-dual-cidr-ip4-err", "mail.example.com", "1.2.3.4", "foo@e8e.example.com", permerror, ""},
				{"a-dual-cidr-ip6-match", "mail.example.com", "2001:db8:1234::cafe:babe", "foo@e8.example.com", pass, ""},
				{"a-dual-cidr-ip4-default", "mail.example.com", "1.2.3.4", "foo@e8b.example.com", fail, ""},
				{"a-dual-cidr-ip6-default", "mail.example.com", "2001:db8:1234::cafe:babe", "foo@e8a.example.com", fail, ""},
				{"a-multi-ip1", "mail.example.com", "1.2.3.4", "foo@e10.example.com", pass, ""},
				{"a-bad-domain", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"a-nxdomain", "mail.example.com", "1.2.3.4", "foo@e1.example.com", fail, ""},
				{"a-cidr4-0", "mail.example.com", "1.2.3.4", "foo@e2.example.com", pass, ""},
				{"a-cidr4-0-ip6", "mail.example.com", "1234::1", "foo@e2.example.com", fail, ""},
				{"a-cidr6-0-ip4", "mail.example.com", "1.2.3.4", "foo@e2a.example.com", fail, ""},
				{"a-cidr6-0-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4", "foo@e2a.example.com", fail, ""},
				{"a-cidr6-0-ip6", "mail.example.com", "1234::1", "foo@e2a.example.com", pass, ""},
				{"a-ip6-dualstack", "mail.example.com", "1234::1", "foo@ipv6.example.com", pass, ""},
				{"a-cidr6-0-nxdomain", "mail.example.com", "1234::1", "foo@e2b.example.com", fail, ""},
				{"a-null", "mail.example.com", "1.2.3.5", "foo@e3.example.com", permerror, ""},
				{"a-numeric", "mail.example.com", "1.2.3.4", "foo@e4.example.com", permerror, ""},
				{"a-numeric-toplabel", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"a-dash-in-toplabel", "mail.example.com", "1.2.3.4", "foo@e14.example.com", pass, ""},
				{"a-bad-toplabel", "mail.example.com", "1.2.3.4", "foo@e12.example.com", permerror, ""},
				{"a-only-toplabel", "mail.example.com", "1.2.3.4", "foo@e5a.example.com", permerror, ""},
				{"a-only-toplabel-trailing-dot", "mail.example.com", "1.2.3.4", "foo@e5b.example.com", permerror, ""},
				{"a-colon-domain", "mail.example.com", "1.2.3.4", "foo@e11.example.com", pass, ""},
				{"a-colon-domain-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4", "foo@e11.example.com", pass, ""},
				{"a-empty-domain", "mail.example.com", "1.2.3.4", "foo@e13.example.com", permerror, ""},
			},
		},
		{
			name: "Include mechanism semantics and syntax",
			zone: `
mail.example.com A 1.2.3.4
ip5.example.com TXT "v=spf1 ip4:1.2.3.5 -all"
ip6.example.com TXT "v=spf1 ip4:1.2.3.6 ~all"
ip7.example.com TXT "v=spf1 ip4:1.2.3.7 ?all"
ip8.example.com TIMEOUT
erehwon.example.com TXT "v=spfl am not an SPF record"
e1.example.com TXT "v=spf1 include:ip5.example.com ~all"
e2.example.com TXT "v=spf1 include:ip6.example.com all"
e3.example.com TXT "v=spf1 include:ip7.example.com -all"
e4.example.com TXT "v=spf1 include:ip8.example.com -all"
e5.example.com TXT "v=spf1 include:e6.example.com -all"
e6.example.com TXT "v=spf1 include +all"
e7.example.com TXT "v=spf1 include:erehwon.example.com -all"
e8.example.com TXT "v=spf1 include: -all"
e9.example.com TXT "v=spf1 include:ip5.example.com/24 -all"
`,
			tests: []scenario{
				{"include-fail", "mail.example.com", "1.2.3.4", "foo@e1.example.com", softfail, ""},
				{"include-softfail", "mail.example.com", "1.2.3.4", "foo@e2.example.com", pass, ""},
				{"include-neutral", "mail.example.com", "1.2.3.4", "foo@e3.example.com", fail, ""},
				{"include-temperror", "mail.example.com", "1.2.3.4", "foo@e4.example.com", temperror, ""},
				{"include-permerror", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"include-syntax-error", "mail.example.com", "1.2.3.4", "foo@e6.example.com", permerror, ""},
				{"include-cidr", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"include-none", "mail.example.com", "1.2.3.4", "foo@e7.example.com", permerror, ""},
				{"include-empty-domain", "mail.example.com", "1.2.3.4", "foo@e8.example.com", permerror, ""},
			},
		},
		{
			name: "MX mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
mail.example.com MX 0 .
mail.example.com TXT "v=spf1 mx"
e1.example.com TXT "v=spf1 mx/0 -all"
e1.example.com MX 0 e1.example.com.
e2.example.com A 1.1.1.1
e2.example.com AAAA 1234::2
e2.example.com MX 0 e2.example.com.
e2.example.com TXT "v=spf1 mx/0 -all"
e2a.example.com AAAA 1234::1
e2a.example.com MX 0 e2a.example.com.
e2a.example.com TXT "v=spf1 mx//0 -all"
e2b.example.com A 1.1.1.1
e2b.example.com MX 0 e2b.example.com.
e2b.example.com TXT "v=spf1 mx//0 -all"
e3.example.com TXT "v=spf1 mx:foo.example.com\000"
e4.example.com TXT "v=spf1 mx"
e4.example.com A 1.2.3.4
e5.example.com TXT "v=spf1 mx:abc.123"
e6.example.com TXT "v=spf1 mx//33 -all"
e6a.example.com TXT "v=spf1 mx/33 -all"
e7.example.com TXT "v=spf1 mx//129 -all"
e9.example.com TXT "v=spf1 mx:example.com:8080"
e10.example.com TXT "v=spf1 mx:foo.example.com/24"
foo.example.com MX 0 foo1.example.com.
foo1.example.com A 1.1.1.1
foo1.example.com A 1.2.3.5
e11.example.com TXT "v=spf1 mx:foo:bar/baz.example.com"
foo:bar/baz.example.com MX 0 foo:bar/baz.example.com.
foo:bar/baz.example.com A 1.2.3.4
e12.example.com TXT "v=spf1 mx:example.-com"
e13.example.com TXT "v=spf1 mx: -all"
`,
			tests: []scenario{
				{"mx-cidr6", "mail.example.com", "1.2.3.4", "foo@e6.example.com", fail, ""},
				{"mx-bad-cidr4", "mail.example.com", "1.2.3.4", "foo@e6a.example.com", permerror, ""},
				{"mx-bad-cidr6", "mail.example.com", "1.2.3.4", "foo@e7.example.com", permerror, ""},
				{"mx-multi-ip1", "mail.example.com", "1.2.3.4", "foo@e10.example.com", pass, ""},
				{"mx-bad-domain", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"mx-nxdomain", "mail.example.com", "1.2.3.4", "foo@e1.example.com", fail, ""},
				{"mx-cidr4-0", "mail.example.com", "1.2.3.4", "foo@e2.example.com", pass, ""},
				{"mx-cidr4-0-ip6", "mail.example.com", "1234::1", "foo@e2.example.com", fail, ""},
				{"mx-cidr6-0-ip4", "mail.example.com", "1.2.3.4", "foo@e2a.example.com", fail, ""},
				{"mx-cidr6-0-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4", "foo@e2a.example.com", fail, ""},
				{"mx-cidr6-0-ip6", "mail.example.com", "1234::1", "foo@e2a.example.com", pass, ""},
				{"mx-cidr6-0-nxdomain", "mail.example.com", "1234::1", "foo@e2b.example.com", fail, ""},
				{"mx-null", "mail.example.com", "1.2.3.5", "foo@e3.example.com", permerror, ""},
				{"mx-numeric-top-label", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"mx-colon-domain", "mail.example.com", "1.2.3.4", "foo@e11.example.com", pass, ""},
				{"mx-colon-domain-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4", "foo@e11.example.com", pass, ""},
				{"mx-bad-toplab", "mail.example.com", "1.2.3.4", "foo@e12.example.com", permerror, ""},
				{"mx-empty", "mail.example.com", "1.2.3.4", "", neutral, ""},
				{"mx-implicit", "mail.example.com", "1.2.3.4", "foo@e4.example.com", neutral, ""},
				{"mx-empty-domain", "mail.example.com", "1.2.3.4", "foo@e13.example.com", permerror, ""},
			},
		},
		{
			name: "EXISTS mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
mail6.example.com AAAA CAFE:BABE::4
err.example.com TIMEOUT
e1.example.com TXT "v=spf1 exists:"
e2.example.com TXT "v=spf1 exists"
e3.example.com TXT "v=spf1 exists:mail.example.com/24"
e4.example.com TXT "v=spf1 exists:mail.example.com"
e5.example.com TXT "v=spf1 exists:mail6.example.com -all"
e6.example.com TXT "v=spf1 exists:err.example.com -all"
`,
			tests: []scenario{
				{"exists-empty-domain", "mail.example.com", "1.2.3.4", "foo@e1.example.com", permerror, ""},
				{"exists-implicit", "mail.example.com", "1.2.3.4", "foo@e2.example.com", permerror, ""},
				{"exists-cidr", "mail.example.com", "1.2.3.4", "foo@e3.example.com", permerror, ""},
				{"exists-ip4", "mail.example.com", "1.2.3.4", "foo@e4.example.com", pass, ""},
				{"exists-ip6", "mail.example.com", "CAFE:BABE::3", "foo@e4.example.com", pass, ""},
				{"exists-ip6only", "mail.example.com", "CAFE:BABE::3", "foo@e5.example.com", fail, ""},
				{"exists-dnserr", "mail.example.com", "CAFE:BABE::3", "foo@e6.example.com", temperror, ""},
			},
		},
		{
			name: "IP4 mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 ip4:1.1.1.1/0 -all"
e2.example.com TXT "v=spf1 ip4:1.2.3.4/32 -all"
e3.example.com TXT "v=spf1 ip4:1.2.3.4/33 -all"
e4.example.com TXT "v=spf1 ip4:1.2.3.4/032 -all"
e5.example.com TXT "v=spf1 ip4"
e6.example.com TXT "v=spf1 ip4:1.2.3.4//32"
e7.example.com TXT "v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4"
e8.example.com TXT "v=spf1 ip4:1.2.3.4:8080"
e9.example.com TXT "v=spf1 ip4:1.2.3"
`,
			tests: []scenario{
				{"cidr4-0", "mail.example.com", "1.2.3.4", "foo@e1.example.com", pass, ""},
				{"cidr4-32", "mail.example.com", "1.2.3.4", "foo@e2.example.com", pass, ""},
				{"cidr4-33", "mail.example.com", "1.2.3.4", "foo@e3.example.com", permerror, ""},
				{"cidr4-032", "mail.example.com", "1.2.3.4", "foo@e4.example.com", permerror, ""},
				{"bare-ip4", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"bad-ip4-port", "mail.example.com", "1.2.3.4", "foo@e8.example.com", permerror, ""},
				{"bad-ip4-short", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"ip4-dual-cidr", "mail.example.com", "1.2.3.4", "foo@e6.example.com", permerror, ""},
				{"ip4-mapped-ip6", "mail.example.com", "::FFFF:1.2.3.4", "foo@e7.example.com", fail, ""},
			},
		},
		{
			name: "IP6 mechanism syntax",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 -all ip6"
e2.example.com TXT "v=spf1 ip6:::1.1.1.1/0"
e3.example.com TXT "v=spf1 ip6:::1.1.1.1/129"
e4.example.com TXT "v=spf1 ip6:::1.1.1.1//33"
e5.example.com TXT "v=spf1 ip6:Cafe:Babe:8000::/33"
e6.example.com TXT "v=spf1 ip6::CAFE::BABE"
`,
			tests: []scenario{
				{"bare-ip6", "mail.example.com", "1.2.3.4", "foo@e1.example.com", permerror, ""},
				{"cidr6-0-ip4", "mail.example.com", "1.2.3.4", "foo@e2.example.com", neutral, ""},
				{"cidr6-ip4", "mail.example.com", "::FFFF:1.2.3.4", "foo@e2.example.com", neutral, ""},
				{"cidr6-0", "mail.example.com", "DEAF:BABE::CAB:FEE", "foo@e2.example.com", pass, ""},
				{"cidr6-129", "mail.example.com", "1.2.3.4", "foo@e3.example.com", permerror, ""},
				{"cidr6-bad", "mail.example.com", "1.2.3.4", "foo@e4.example.com", permerror, ""},
				{"cidr6-33", "mail.example.com", "CAFE:BABE:8000::", "foo@e5.example.com", pass, ""},
				{"cidr6-33-ip4", "mail.example.com", "1.2.3.4", "foo@e5.example.com", neutral, ""},
				{"ip6-bad1", "mail.example.com", "1.2.3.4", "foo@e6.example.com", permerror, ""},
			},
		},
		{
			name: "Semantics of exp and other modifiers",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 exp=exp1.example.com redirect=e2.example.com"
e2.example.com TXT "v=spf1 -all"
e3.example.com TXT "v=spf1 exp=exp1.example.com redirect=e4.example.com"
e4.example.com TXT "v=spf1 -all exp=exp2.example.com"
exp1.example.com TXT "No-see-um"
exp2.example.com TXT "See me."
exp3.example.com TXT "Correct!"
exp4.example.com TXT "%{l} in implementation"
e5.example.com TXT "v=spf1 1up=foo"
e6.example.com TXT "v=spf1 =all"
e7.example.com TXT "v=spf1 include:e3.example.com -all exp=exp3.example.com"
e8.example.com TXT "v=spf1 -all exp=exp4.example.com"
e9.example.com TXT "v=spf1 -all foo=%abc"
e10.example.com TXT "v=spf1 redirect=erehwon.example.com"
e11.example.com TXT "v=spf1 -all exp=e11msg.example.com"
e11msg.example.com TXT "Answer a fool according to his folly."
e11msg.example.com TXT "Do not answer a fool according to his folly."
e12.example.com TXT "v=spf1 exp= -all"
e13.example.com TXT "v=spf1 exp=e13msg.example.com -all"
e13msg.example.com TXT "The %{x}-files."
e14.example.com TXT "v=spf1 exp=e13msg.example.com -all exp=e11msg.example.com"
e15.example.com TXT "v=spf1 redirect=e12.example.com -all redirect=e12.example.com"
e16.example.com TXT "v=spf1 exp=-all"
e17.example.com TXT "v=spf1 redirect=-all ?all"
e18.example.com TXT "v=spf1 ?all redirect="
e19.example.com TXT "v=spf1 default=pass"
e20.example.com TXT "v=spf1 default=+"
e21.example.com TXT "v=spf1 exp=e21msg.example.com -all"
e21msg.example.com TIMEOUT
e22.example.com TXT "v=spf1 exp=mail.example.com -all"
nonascii.example.com TXT "v=spf1 exp=badexp.example.com -all"
badexp.example.com TXT "\239\187\191Explanation"
tworecs.example.com TXT "v=spf1 exp=twoexp.example.com -all"
twoexp.example.com TXT "one"
twoexp.example.com TXT "two"
e23.example.com TXT "v=spf1 a:erehwon.example.com a:foobar.com exp=nxdomain.com -all"
e24.example.com TXT "v=spf1 redirect=testimplicit.example.com"
e24.example.com A 192.0.2.1
testimplicit.example.com TXT "v=spf1 a -all"
testimplicit.example.com A 192.0.2.2
`,
			tests: []scenario{
				{"redirect-none", "mail.example.com", "1.2.3.4", "foo@e10.example.com", permerror, ""},
				{"redirect-cancels-exp", "mail.example.com", "1.2.3.4", "foo@e1.example.com", fail, "DEFAULT"},
				{"redirect-syntax-error", "mail.example.com", "1.2.3.4", "foo@e17.example.com", permerror, ""},
				{"include-ignores-exp", "mail.example.com", "1.2.3.4", "foo@e7.example.com", fail, "Correct!"},
				{"redirect-cancels-prior-exp", "mail.example.com", "1.2.3.4", "foo@e3.example.com", fail, "See me."},
				{"invalid-modifier", "mail.example.com", "1.2.3.4", "foo@e5.example.com", permerror, ""},
				{"empty-modifier-name", "mail.example.com", "1.2.3.4", "foo@e6.example.com", permerror, ""},
				{"dorky-sentinel", "mail.example.com", "1.2.3.4", "Macro Error@e8.example.com", fail, "Macro Error in implementation"},
				{"exp-multiple-txt", "mail.example.com", "1.2.3.4", "foo@e11.example.com", fail, "DEFAULT"},
				{"exp-no-txt", "mail.example.com", "1.2.3.4", "foo@e22.example.com", fail, "DEFAULT"},
				{"exp-dns-error", "mail.example.com", "1.2.3.4", "foo@e21.example.com", fail, "DEFAULT"},
				{"exp-empty-domain", "mail.example.com", "1.2.3.4", "foo@e12.example.com", permerror, ""},
				{"explanation-syntax-error", "mail.example.com", "1.2.3.4", "foo@e13.example.com", fail, "DEFAULT"},
				{"exp-syntax-error", "mail.example.com", "1.2.3.4", "foo@e16.example.com", permerror, ""},
				{"exp-twice", "mail.example.com", "1.2.3.4", "foo@e14.example.com", permerror, ""},
				{"redirect-empty-domain", "mail.example.com", "1.2.3.4", "foo@e18.example.com", permerror, ""},
				{"redirect-twice", "mail.example.com", "1.2.3.4", "foo@e15.example.com", permerror, ""},
				{"unknown-modifier-syntax", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"default-modifier-obsolete", "mail.example.com", "1.2.3.4", "foo@e19.example.com", neutral, ""},
				{"default-modifier-obsolete2", "mail.example.com", "1.2.3.4", "foo@e20.example.com", neutral, ""},
				{"non-ascii-exp", "hosed", "1.2.3.4", "foobar@nonascii.example.com", fail, "DEFAULT"},
				{"two-exp-records", "hosed", "1.2.3.4", "foobar@tworecs.example.com", fail, "DEFAULT"},
				{"exp-void", "mail.example.com", "1.2.3.4", "foo@e23.example.com", fail, ""},
				{"redirect-implicit", "e24.example.com", "192.0.2.2", "bar@e24.example.com", pass, ""},
			},
		},
		{
			name: "Macro expansion rules",
			zone: `
example.com.d.spf.example.com TXT "v=spf1 redirect=a.spf.example.com"
a.spf.example.com TXT "v=spf1 include:o.spf.example.com. ~all"
o.spf.example.com TXT "v=spf1 ip4:192.168.218.40"
msgbas2x.cos.example.com A 192.168.218.40
example.com A 192.168.90.76
example.com TXT "v=spf1 redirect=%{d}.d.spf.example.com."
exp.example.com TXT "v=spf1 exp=msg.example.com. -all"
msg.example.com TXT "This is a test."
e1.example.com TXT "v=spf1 -exists:%(ir).sbl.example.com ?all"
e1e.example.com TXT "v=spf1 exists:foo%(ir).sbl.example.com ?all"
e1t.example.com TXT "v=spf1 exists:foo%.sbl.example.com ?all"
e1a.example.com TXT "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"
macro%percent\ \ space%20url-space.example.com A 1.2.3.4
e2.example.com TXT "v=spf1 -all exp=%{r}.example.com"
e3.example.com TXT "v=spf1 -all exp=%{ir}.example.com"
40.218.168.192.example.com TXT "Connections from %{c} not authorized."
somewhat.long.exp.example.com TXT "v=spf1 -all exp=foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.example.com"
somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.somewhat.long.exp.example.com.example.com TXT "Congratulations!  That was tricky."
e4.example.com TXT "v=spf1 -all exp=e4msg.example.com"
e4msg.example.com TXT "%{c} is queried as %{ir}.%{v}.arpa"
e5.example.com TXT "v=spf1 a:%{a}.example.com -all"
e6.example.com TXT "v=spf1 -all exp=e6msg.example.com"
e6msg.example.com TXT "connect from %{p}"
mx.example.com A 192.168.218.41
mx.example.com A 192.168.218.42
mx.example.com AAAA CAFE:BABE::2
mx.example.com AAAA CAFE:BABE::3
40.218.168.192.in-addr.arpa PTR mx.example.com.
41.218.168.192.in-addr.arpa PTR mx.example.com.
42.218.168.192.in-addr.arpa PTR mx.example.com.
42.218.168.192.in-addr.arpa PTR mx.e7.example.com.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa PTR mx.example.com.
3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa PTR mx.example.com.
mx.e7.example.com A 192.168.218.42
mx.e7.example.com.should.example.com A 127.0.0.2
mx.example.com.ok.example.com A 127.0.0.2
e7.example.com TXT "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com"
e8.example.com TXT "v=spf1 -all exp=msg8.%{D2}"
msg8.example.com TXT "http://example.com/why.html?l=%{L}"
e9.example.com TXT "v=spf1 a:%{H} -all"
e10.example.com TXT "v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 -all"
_spfh.example.com TXT "v=spf1 -a:%{h} +all"
e11.example.com TXT "v=spf1 exists:%{i}.%{l2r-}.user.%{d2}"
1.2.3.4.gladstone.philip.user.example.com A 127.0.0.2
e12.example.com TXT "v=spf1 exists:%{l2r+-}.user.%{d2}"
bar.foo.user.example.com A 127.0.0.2
`,
			tests: []scenario{
				{"trailing-dot-domain", "msgbas2x.cos.example.com", "192.168.218.40", "test@example.com", pass, ""},
				{"trailing-dot-exp", "msgbas2x.cos.example.com", "192.168.218.40", "test@exp.example.com", fail, "This is a test."},
				{"exp-only-macro-char", "msgbas2x.cos.example.com", "192.168.218.40", "test@e2.example.com", permerror, ""},
				{"invalid-macro-char", "msgbas2x.cos.example.com", "192.168.218.40", "test@e1.example.com", permerror, ""},
				{"invalid-embedded-macro-char", "msgbas2x.cos.example.com", "192.168.218.40", "test@e1e.example.com", permerror, ""},
				{"invalid-trailing-macro-char", "msgbas2x.cos.example.com", "192.168.218.40", "test@e1t.example.com", permerror, ""},
				{"macro-mania-in-domain", "mail.example.com", "1.2.3.4", "test@e1a.example.com", pass, ""},
				{"exp-txt-macro-char", "msgbas2x.cos.example.com", "192.168.218.40", "test@e3.example.com", fail, "Connections from 192.168.218.40 not authorized."},
				{"domain-name-truncation", "msgbas2x.cos.example.com", "192.168.218.40", "test@somewhat.long.exp.example.com", fail, "Congratulations!  That was tricky."},
				{"v-macro-ip4", "msgbas2x.cos.example.com", "192.168.218.40", "test@e4.example.com", fail, "192.168.218.40 is queried as 40.218.168.192.in-addr.arpa"},
				{"v-macro-ip6", "msgbas2x.cos.example.com", "CAFE:BABE::1", "test@e4.example.com", fail, "cafe:babe::1 is queried as 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"},
				{"undef-macro", "msgbas2x.cos.example.com", "CAFE:BABE::192.168.218.40", "test@e5.example.com", permerror, ""},
				{"p-macro-ip4-novalid", "msgbas2x.cos.example.com", "192.168.218.40", "test@e6.example.com", fail, "connect from unknown"},
				{"p-macro-ip4-valid", "msgbas2x.cos.example.com", "192.168.218.41", "test@e6.example.com", fail, "connect from mx.example.com"},
				{"p-macro-ip6-novalid", "msgbas2x.cos.example.com", "CAFE:BABE::1", "test@e6.example.com", fail, "connect from unknown"},
				{"p-macro-ip6-valid", "msgbas2x.cos.example.com", "CAFE:BABE::3", "test@e6.example.com", fail, "connect from mx.example.com"},
				{"p-macro-multiple", "msgbas2x.cos.example.com", "192.168.218.42", "test@e7.example.com", one(Pass, SoftFail), ""},
				{"upper-macro", "msgbas2x.cos.example.com", "192.168.218.42", "~jack&jill=up-a_b3.c@e8.example.com", fail, "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"},
				{"hello-macro", "msgbas2x.cos.example.com", "192.168.218.40", "test@e9.example.com", pass, ""},
				{"invalid-hello-macro", "JUMPIN' JUPITER", "192.168.218.40", "test@e9.example.com", fail, ""},
				{"hello-domain-literal", "[192.168.218.40]", "192.168.218.40", "test@e9.example.com", fail, ""},
				{"require-valid-helo", "OEMCOMPUTER", "1.2.3.4", "test@e10.example.com", fail, ""},
				{"macro-reverse-split-on-dash", "mail.example.com", "1.2.3.4", "philip-gladstone-test@e11.example.com", pass, ""},
				{"macro-multiple-delimiters", "mail.example.com", "1.2.3.4", "foo-bar+zip+quux@e12.example.com", pass, ""},
			},
		},
		{
			name: "Processing limits",
			zone: `
mail.example.com A 1.2.3.4
e1.example.com TXT "v=spf1 ip4:1.1.1.1 redirect=e1.example.com"
e1.example.com A 1.2.3.6
e2.example.com TXT "v=spf1 include:e3.example.com"
e2.example.com A 1.2.3.7
e3.example.com TXT "v=spf1 include:e2.example.com"
e3.example.com A 1.2.3.8
e4.example.com TXT "v=spf1 mx"
e4.example.com MX 0 mail.example.com.
e4.example.com MX 1 mail.example.com.
e4.example.com MX 2 mail.example.com.
e4.example.com MX 3 mail.example.com.
e4.example.com MX 4 mail.example.com.
e4.example.com MX 5 mail.example.com.
e4.example.com MX 6 mail.example.com.
e4.example.com MX 7 mail.example.com.
e4.example.com MX 8 mail.example.com.
e4.example.com MX 9 mail.example.com.
e4.example.com MX 10 e4.example.com.
e4.example.com A 1.2.3.5
e5.example.com TXT "v=spf1 ptr"
e5.example.com A 1.2.3.5
5.3.2.1.in-addr.arpa PTR e1.example.com.
5.3.2.1.in-addr.arpa PTR e2.example.com.
5.3.2.1.in-addr.arpa PTR e3.example.com.
5.3.2.1.in-addr.arpa PTR e4.example.com.
5.3.2.1.in-addr.arpa PTR example.com.
5.3.2.1.in-addr.arpa PTR e6.example.com.
5.3.2.1.in-addr.arpa PTR e7.example.com.
5.3.2.1.in-addr.arpa PTR e8.example.com.
5.3.2.1.in-addr.arpa PTR e9.example.com.
5.3.2.1.in-addr.arpa PTR e10.example.com.
5.3.2.1.in-addr.arpa PTR e5.example.com.
e6.example.com TXT "v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 -all"
e6.example.com A 1.2.3.8
e6.example.com MX 10 e6.example.com.
e7.example.com TXT "v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 -all"
e7.example.com A 1.2.3.20
e8.example.com TXT "v=spf1 a include:inc.example.com ip4:1.2.3.4 mx -all"
e8.example.com A 1.2.3.4
inc.example.com TXT "v=spf1 a a a a a a a a"
inc.example.com A 1.2.3.10
e9.example.com TXT "v=spf1 a include:inc.example.com a ip4:1.2.3.4 -all"
e9.example.com A 1.2.3.21
e10.example.com TXT "v=spf1 a -all"
e10.example.com A 1.2.3.1
e10.example.com A 1.2.3.2
e10.example.com A 1.2.3.3
e10.example.com A 1.2.3.4
e10.example.com A 1.2.3.5
e10.example.com A 1.2.3.6
e10.example.com A 1.2.3.7
e10.example.com A 1.2.3.8
e10.example.com A 1.2.3.9
e10.example.com A 1.2.3.10
e10.example.com A 1.2.3.11
e10.example.com A 1.2.3.12
e11.example.com TXT "v=spf1 a:err.example.com a:err1.example.com a:err2.example.com ?all"
e12.example.com TXT "v=spf1 a:err.example.com a:err1.example.com ?all"
`,
			tests: []scenario{
				{"redirect-loop", "mail.example.com", "1.2.3.4", "foo@e1.example.com", permerror, ""},
				{"include-loop", "mail.example.com", "1.2.3.4", "foo@e2.example.com", permerror, ""},
				{"mx-limit", "mail.example.com", "1.2.3.5", "foo@e4.example.com", permerror, ""},
				{"ptr-limit", "mail.example.com", "1.2.3.5", "foo@e5.example.com", one(Neutral, Pass), ""},
				{"false-a-limit", "mail.example.com", "1.2.3.12", "foo@e10.example.com", pass, ""},
				{"mech-at-limit", "mail.example.com", "1.2.3.4", "foo@e6.example.com", pass, ""},
				{"mech-over-limit", "mail.example.com", "1.2.3.4", "foo@e7.example.com", permerror, ""},
				{"include-at-limit", "mail.example.com", "1.2.3.4", "foo@e8.example.com", pass, ""},
				{"include-over-limit", "mail.example.com", "1.2.3.4", "foo@e9.example.com", permerror, ""},
				{"void-at-limit", "mail.example.com", "1.2.3.4", "foo@e12.example.com", neutral, ""},
				{"void-over-limit", "mail.example.com", "1.2.3.4", "foo@e11.example.com", permerror, ""},
			},
		},
		{
			name: "Test cases from implementation bugs",
			zone: `
example.org TXT "v=spf1 mx redirect=_spf.example.com"
example.org MX 10 smtp.example.org.
example.org MX 10 smtp1.example.com.
smtp.example.org A 198.51.100.2
smtp.example.org AAAA 2001:db8:ff0:100::3
smtp1.example.com A 192.0.2.26
smtp1.example.com AAAA 2001:db8:ff0:200::2
2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.F.F.0.8.B.D.0.1.0.0.2.ip6.arpa PTR smtp6-v.fe.example.org.
smtp6-v.fe.example.org AAAA 2001:db8:ff0:100::2
_spf.example.com TXT "v=spf1 ptr:fe.example.org ptr:sgp.example.com exp=_expspf.example.org -all"
_expspf.example.org TXT "Sender domain not allowed from this host. Please see http://www.openspf.org/Why?s=mfrom&id=%{S}&ip=%{C}&r=%{R}"
`,
			tests: []scenario{
				{"bytes-bug", "example.org", "2001:db8:ff0:100::2", "test@example.org", pass, ""},
			},
		},
	})
}
