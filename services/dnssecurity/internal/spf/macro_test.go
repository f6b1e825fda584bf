package spf

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The examples of RFC 7208 §7.4, with sender strong-bad@email.example.com,
// IPv4 192.0.2.3 or IPv6 2001:db8::cb01, and the letters only explanations
// may use.
func TestMacroExpansion(t *testing.T) {
	env4 := macroEnv{
		sender: "strong-bad@email.example.com", local: "strong-bad", senderDomain: "email.example.com",
		domain: "email.example.com", helo: "mx.example.org", ip: netip.MustParseAddr("192.0.2.3"),
		receiver: "mx.receiver.example", now: time.Unix(1700000000, 0),
		validated: func() string { return "mx.example.com" },
	}
	env6 := env4
	env6.ip = netip.MustParseAddr("2001:db8::cb01")
	tests := []struct {
		env  *macroEnv
		in   string
		mode macroMode
		want string
	}{
		{&env4, "%{s}", macroDomain, "strong-bad@email.example.com"},
		{&env4, "%{o}", macroDomain, "email.example.com"},
		{&env4, "%{d}", macroDomain, "email.example.com"},
		{&env4, "%{d4}", macroDomain, "email.example.com"},
		{&env4, "%{d3}", macroDomain, "email.example.com"},
		{&env4, "%{d2}", macroDomain, "example.com"},
		{&env4, "%{d1}", macroDomain, "com"},
		{&env4, "%{dr}", macroDomain, "com.example.email"},
		{&env4, "%{d2r}", macroDomain, "example.email"},
		{&env4, "%{l}", macroDomain, "strong-bad"},
		{&env4, "%{l-}", macroDomain, "strong.bad"},
		{&env4, "%{lr}", macroDomain, "strong-bad"},
		{&env4, "%{lr-}", macroDomain, "bad.strong"},
		{&env4, "%{l1r-}", macroDomain, "strong"},
		{&env4, "%{ir}.%{v}._spf.%{d2}", macroDomain, "3.2.0.192.in-addr._spf.example.com"},
		{&env4, "%{lr-}.lp._spf.%{d2}", macroDomain, "bad.strong.lp._spf.example.com"},
		{&env4, "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", macroDomain, "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{&env4, "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", macroDomain, "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{&env4, "%{d2}.trusted-domains.example.net", macroDomain, "example.com.trusted-domains.example.net"},
		{&env6, "%{ir}.%{v}._spf.%{d2}", macroDomain, "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com"},
		{&env4, "%{h}", macroDomain, "mx.example.org"},
		{&env4, "%{p}", macroDomain, "mx.example.com"},
		{&env4, "%{i}", macroDomain, "192.0.2.3"},
		{&env6, "%{c}", macroExplain, "2001:db8::cb01"},
		{&env4, "%{c}", macroExplain, "192.0.2.3"},
		{&env4, "%{r}", macroExplain, "mx.receiver.example"},
		{&env4, "%{t}", macroExplain, "1700000000"},
		{&env4, "%%%_%-", macroExplain, "% %20"},
		{&env4, "%{L}", macroDomain, "strong-bad"},
		{&env4, "%{S}", macroDomain, "strong-bad%40email.example.com"},
		{&env4, "%{l+-}", macroDomain, "strong.bad"},
		{&env4, "a b", macroExplain, "a b"},
	}
	for _, tc := range tests {
		parts, err := parseMacroString(tc.in, tc.mode)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := tc.env.expand(parts); got != tc.want {
			t.Errorf("%q expands to %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMacroErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		mode macroMode
	}{
		{"%{c}", macroDomain}, // c, r, t: explanations only (§7.2)
		{"%{r}.example.com", macroDomain},
		{"%{t}", macroDomain},
		{"%{a}", macroExplain},
		{"%{d0}", macroDomain},
		{"%{d2x}", macroDomain},
		{"%{d", macroDomain},
		{"%x", macroDomain},
		{"50%", macroDomain},
		{"a b", macroDomain},
		{"%{}", macroDomain},
	} {
		if _, err := parseMacroString(tc.in, tc.mode); err == nil {
			t.Errorf("%q parses, want an error", tc.in)
		}
	}
}

// The r and t letters, through CheckHost's exp=: Options.Receiver and
// Options.Now.
func TestExplanationReceiverAndTime(t *testing.T) {
	r, _ := serveZone(t, `
x.example TXT "v=spf1 -all exp=why.x.example"
why.x.example TXT "%{r} refused %{c} at %{t} for %{s} (%{o}, %{d}, %{h}, %{v})"
`)
	got := CheckHost(context.Background(), r, netip.MustParseAddr("192.0.2.9"), "x.example", "a@x.example",
		Options{HELO: "h.example", Receiver: "mx.us.example", Now: time.Unix(1234567890, 0)})
	want := "mx.us.example refused 192.0.2.9 at 1234567890 for a@x.example (x.example, x.example, h.example, in-addr)"
	if got.Code != Fail || got.Explanation != want {
		t.Fatalf("%v %q, want fail %q", got.Code, got.Explanation, want)
	}
	if got.Matched != (Match{"-all", "x.example"}) {
		t.Errorf("matched %+v", got.Matched)
	}
	// Without a receiver, r is "unknown".
	got = CheckHost(context.Background(), r, netip.MustParseAddr("192.0.2.9"), "x.example", "a@x.example", Options{HELO: "h.example"})
	if !strings.HasPrefix(got.Explanation, "unknown refused") {
		t.Errorf("explanation %q", got.Explanation)
	}
}

func TestParseErrorsNameTheTerm(t *testing.T) {
	for _, tc := range []struct {
		rec, term string
		pos       int
	}{
		{"v=spf1 a mx ip4:1.2.3.4/33 -all", "ip4:1.2.3.4/33", 13},
		{"v=spf1 include:x.example  foo:bar", "foo:bar", 27},
		{"v=spf1 -all exp=a.example exp=b.example", "exp=b.example", 27},
		{"v=spf1 a:%{q}.example", "a:%{q}.example", 8},
	} {
		_, err := Parse(tc.rec)
		se, ok := err.(*SyntaxError)
		if !ok || se.Term != tc.term || se.Pos != tc.pos || !strings.Contains(err.Error(), tc.term) {
			t.Errorf("Parse(%q) = %v; want the term %q at %d", tc.rec, err, tc.term, tc.pos)
		}
	}
	rec, err := Parse("v=spf1 ~a:mail.example/24//64 -mx ?ptr:x.example ip6:2001:db8::/32 exists:%{i}.bl.example include:i.example redirect=r.example exp=e.example foo=bar")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		k Kind
		q byte
	}{{A, '~'}, {MX, '-'}, {PTR, '?'}, {IP6, '+'}, {Exists, '+'}, {Include, '+'}, {Redirect, 0}, {Exp, 0}, {Unknown, 0}}
	for i, w := range want {
		if rec.Terms[i].Kind != w.k || rec.Terms[i].Qualifier != w.q {
			t.Errorf("term %d: %v %q, want %v %q", i, rec.Terms[i].Kind, rec.Terms[i].Qualifier, w.k, w.q)
		}
	}
	if a := rec.Terms[0]; a.CIDR4 != 24 || a.CIDR6 != 64 || a.Domain != "mail.example" {
		t.Errorf("a: %+v", a)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all", "v=spf1 a mx ptr ip4:1.2.3.4/24 ip6:::1/64 exists:%{i}.x.example include:y.example ~all",
		"v=spf1 a:%{l2r-}.%{d}/24//64 redirect=%{d}.example exp=%{h}.example foo=%{C}",
		"v=spf1 moo.cow-far_out=man:dog/cat", "v=spf1 a//0 mx/0", "v=spf1 %{", "v=spf1 ip6::CAFE::BABE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := Parse(s)
		if err != nil {
			return
		}
		// What parses, printed, parses the same.
		again, err := Parse(rec.String())
		if err != nil || len(again.Terms) != len(rec.Terms) {
			t.Fatalf("%q parses, its String %q does not: %v", s, rec.String(), err)
		}
	})
}

func FuzzExpand(f *testing.F) {
	for _, s := range []string{"%{ir}.%{v}._spf.%{d2}", "%{L2r+-}", "%%%_%-", "%{c} %{r} %{t}", "%{p}", "%{s999999999999r}"} {
		f.Add(s, "a-b+c@d.example", "2001:db8::1")
	}
	f.Fuzz(func(t *testing.T, s, sender, ip string) {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return
		}
		parts, err := parseMacroString(s, macroExplain)
		if err != nil {
			return
		}
		env := macroEnv{sender: sender, local: sender, senderDomain: sender, domain: sender, helo: sender, ip: addr.Unmap()}
		_ = env.expand(parts)
		if name, err := env.expandDomain(strings.ReplaceAll(s, " ", "")); err == nil && len(name) > 253 && strings.Contains(name, ".") {
			t.Fatalf("%q expands to a name of %d bytes", s, len(name))
		}
	})
}
