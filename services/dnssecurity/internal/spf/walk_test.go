package spf

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

const walkZone = `
_spf.mailplane.net TXT "v=spf1 ip4:203.0.113.0/24 -all"
ok.example TXT "v=spf1 mx include:_spf.mailplane.net ~all"
ok.example MX 10 mx.ok.example.
mx.ok.example A 192.0.2.10
plus.example TXT "v=spf1 +all"
neutral.example TXT "v=spf1 include:_spf.mailplane.net ?all"
noall.example TXT "v=spf1 include:_spf.mailplane.net"
multi.example TXT "v=spf1 include:_spf.mailplane.net -all"
multi.example TXT "v=spf1 mx -all"
syntax.example TXT "v=spf1 include:_spf.mailplane.net ip4:1.2.3.4/33 -all"
ptr.example TXT "v=spf1 ptr include:_spf.mailplane.net -all"
after.example TXT "v=spf1 include:_spf.mailplane.net -all a mx"
loop1.example TXT "v=spf1 include:loop2.example -all"
loop2.example TXT "v=spf1 include:loop1.example -all"
void.example TXT "v=spf1 a:nx1.void.example mx:nx2.void.example exists:nx3.void.example include:_spf.mailplane.net -all"
long.example TXT "v=spf1 include:_spf.mailplane.net ip4:192.0.2.1 ip4:192.0.2.2 ip4:192.0.2.3 ip4:192.0.2.4 ip4:192.0.2.5 ip4:192.0.2.6 ip4:192.0.2.7 ip4:192.0.2.8 ip4:192.0.2.9 ip4:192.0.2.10 ip4:192.0.2.11 ip4:192.0.2.12" " ip4:192.0.2.13 -all"
down.example TIMEOUT
inc-down.example TXT "v=spf1 include:down.example -all"
theirs.example TXT "v=spf1 ip4:198.51.100.0/24 -all"
notours.example TXT "v=spf1 include:theirs.example -all"
ipsours.example TXT "v=spf1 ip4:203.0.113.0/24 -all"
many.example TXT "v=spf1 include:d1.example include:d2.example include:d3.example include:d4.example a mx -all"
d1.example TXT "v=spf1 a mx a -all"
d2.example TXT "v=spf1 a mx -all"
d3.example TXT "v=spf1 a -all"
d4.example TXT "v=spf1 -all"
redir.example TXT "v=spf1 redirect=_spf.mailplane.net"
nxinc.example TXT "v=spf1 include:nothing.example -all"
`

var ours = Ours{Include: "_spf.mailplane.net", IPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}}

func codes(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

func TestWalkAndLint(t *testing.T) {
	r, _ := serveZone(t, walkZone)
	tests := []struct {
		domain  string
		lookups int
		voids   int
		want    []string // codes that must appear
		wantNot []string
	}{
		{"ok.example", 2, 0, []string{"spf.ok"}, []string{"spf.not_authorized"}},
		{"missing.example", 0, 0, []string{"spf.missing"}, []string{"spf.ok"}},
		{"plus.example", 0, 0, []string{"spf.plus_all"}, []string{"spf.ok"}},
		{"neutral.example", 1, 0, []string{"spf.neutral_all"}, []string{"spf.not_authorized"}},
		{"noall.example", 1, 0, []string{"spf.no_all"}, nil},
		{"multi.example", 1, 0, []string{"spf.multiple"}, nil},
		{"syntax.example", 0, 0, []string{"spf.syntax"}, []string{"spf.ok"}},
		{"ptr.example", 2, 0, []string{"spf.ptr"}, nil},
		{"after.example", 1, 0, []string{"spf.unreachable_terms"}, nil},
		{"loop1.example", 2, 0, []string{"spf.loop"}, nil},
		{"void.example", 4, 3, []string{"spf.void_lookup", "spf.too_many_void_lookups"}, nil},
		{"long.example", 1, 0, []string{"spf.long_string"}, nil},
		{"down.example", 0, 0, []string{"spf.dns_failure"}, []string{"spf.missing", "spf.ok"}},
		{"inc-down.example", 1, 0, []string{"spf.dns_failure"}, []string{"spf.ok"}},
		{"notours.example", 1, 0, []string{"spf.not_authorized"}, nil},
		{"ipsours.example", 0, 0, []string{"spf.ok"}, []string{"spf.not_authorized"}},
		{"many.example", 12, 8, []string{"spf.too_many_lookups", "spf.too_many_void_lookups"}, nil},
		{"redir.example", 1, 0, []string{"spf.ok"}, []string{"spf.no_all"}},
		{"nxinc.example", 1, 1, []string{"spf.include_missing"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.domain, func(t *testing.T) {
			tree := Walk(context.Background(), r, tc.domain)
			if tree.Lookups != tc.lookups || tree.VoidLookups != tc.voids {
				t.Errorf("lookups %d, voids %d; want %d, %d", tree.Lookups, tree.VoidLookups, tc.lookups, tc.voids)
			}
			fs := Lint(tree, ours)
			got := codes(fs)
			for _, c := range tc.want {
				if !slices.Contains(got, c) {
					t.Errorf("findings %v lack %s", got, c)
				}
			}
			for _, c := range tc.wantNot {
				if slices.Contains(got, c) {
					t.Errorf("findings %v hold %s", got, c)
				}
			}
			for _, f := range fs {
				if f.Message == "" || (f.Severity != finding.OK && f.Fix == "" && f.Code != "spf.note") {
					t.Errorf("%s: message %q, fix %q", f.Code, f.Message, f.Fix)
				}
				if f.Code == "spf.dns_failure" && f.Severity != finding.Unknown {
					t.Errorf("a DNS failure is %v, want unknown", f.Severity)
				}
			}
		})
	}
}

// The message names the case's numbers: 12 lookups, and what each term
// costs.
func TestLintTooManyLookupsMessage(t *testing.T) {
	r, _ := serveZone(t, walkZone)
	fs := Lint(Walk(context.Background(), r, "many.example"), ours)
	for _, f := range fs {
		if f.Code != "spf.too_many_lookups" {
			continue
		}
		for _, s := range []string{"12 DNS lookups", "include:d1.example 4", "include:d4.example 1", "mx 1"} {
			if !strings.Contains(f.Message, s) {
				t.Errorf("message %q lacks %q", f.Message, s)
			}
		}
		return
	}
	t.Fatal("no spf.too_many_lookups")
}

func TestCorrect(t *testing.T) {
	r, _ := serveZone(t, walkZone+`
ten.example TXT "v=spf1 include:d1.example include:d2.example include:d3.example a -all"
nine.example TXT "v=spf1 include:d1.example include:d2.example include:d3.example ptr -all"
`)
	tests := []struct {
		name    string
		current []string
		want    string
		err     string
	}{
		{"none", nil, "v=spf1 include:_spf.mailplane.net ~all", ""},
		{"not spf", []string{"google-site-verification=x"}, "v=spf1 include:_spf.mailplane.net ~all", ""},
		{"plus all", []string{"v=spf1 mx +all"}, "v=spf1 mx include:_spf.mailplane.net ~all", ""},
		{"neutral all", []string{"v=spf1 a ?all"}, "v=spf1 a include:_spf.mailplane.net ~all", ""},
		{"no all", []string{"v=spf1 ip4:192.0.2.1"}, "v=spf1 ip4:192.0.2.1 include:_spf.mailplane.net ~all", ""},
		{"keeps -all", []string{"v=spf1 ip4:192.0.2.1 -all"}, "v=spf1 ip4:192.0.2.1 include:_spf.mailplane.net -all", ""},
		{"already ours", []string{"v=spf1 include:_spf.mailplane.net ~all"}, "v=spf1 include:_spf.mailplane.net ~all", ""},
		{"merges and dedupes", []string{"v=spf1 mx include:theirs.example -all", "v=spf1 +mx a ~all exp=why.example"},
			"v=spf1 mx include:theirs.example a include:_spf.mailplane.net -all exp=why.example", ""},
		{"redirect becomes include", []string{"v=spf1 redirect=theirs.example"}, "v=spf1 include:theirs.example include:_spf.mailplane.net ~all", ""},
		{"drops invalid terms", []string{"v=spf1 ip4:1.2.3.4/33 a ~all"}, "v=spf1 a include:_spf.mailplane.net ~all", ""},
		{"ptr dropped for the limit", []string{"v=spf1 include:d1.example include:d2.example include:d3.example ptr -all"},
			"v=spf1 include:d1.example include:d2.example include:d3.example include:_spf.mailplane.net -all", ""},
		{"ptr kept within the limit", []string{"v=spf1 ptr mx -all"}, "v=spf1 ptr mx include:_spf.mailplane.net -all", ""},
		{"over the limit", []string{"v=spf1 include:d1.example include:d2.example include:d3.example a mx -all"}, "",
			"would need 12 DNS lookups"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Correct(context.Background(), r, "custom.example", tc.current, ours)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "include:d1.example 4") {
					t.Fatalf("Correct = %q, %v; want an error with %q and each term's cost", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Correct = %q, %v; want %q", got, err, tc.want)
			}
			if _, err := Parse(got); err != nil {
				t.Errorf("the corrected record does not parse: %v", err)
			}
		})
	}
}
