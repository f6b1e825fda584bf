package dmarc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

func txt(name, value string) string { return fmt.Sprintf("%s 300 IN TXT %q", name, value) }

func TestDiscover(t *testing.T) {
	for _, tc := range []struct {
		name, zone, domain  string
		wantPolicy, wantOrg string // wantPolicy "" when no record applies
		wantAsked           []string
	}{
		{name: "own record",
			zone:   txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"example.com", "com"}},
		{name: "RFC 9989 §4.10.2 first example: records at mail.example.com and example.com",
			zone: txt("_dmarc.mail.example.com.", "v=DMARC1; p=none") + "\n" +
				txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "a.mail.example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"a.mail.example.com", "mail.example.com", "example.com", "com"}},
		{name: "RFC 9989 §4.10.2 second example: psd=n at mail.example.com",
			zone: txt("_dmarc.mail.example.com.", "v=DMARC1; p=quarantine; psd=n") + "\n" +
				txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "a.mail.example.com", wantPolicy: "mail.example.com", wantOrg: "mail.example.com",
			wantAsked: []string{"a.mail.example.com", "mail.example.com"}},
		{name: "RFC 9989 §4.10.2 last example: only psd=y at com",
			zone:   txt("_dmarc.com.", "v=DMARC1; p=reject; psd=y"),
			domain: "a.mail.example.com", wantPolicy: "com", wantOrg: "example.com",
			wantAsked: []string{"a.mail.example.com", "mail.example.com", "example.com", "com"}},
		{name: "own record under a psd=y suffix",
			zone: txt("_dmarc.shop.example.co.uk.", "v=DMARC1; p=none") + "\n" +
				txt("_dmarc.co.uk.", "v=DMARC1; p=reject; psd=y"),
			domain: "shop.example.co.uk", wantPolicy: "shop.example.co.uk", wantOrg: "example.co.uk",
			wantAsked: []string{"shop.example.co.uk", "example.co.uk", "co.uk"}},
		{name: "psd=y at the start is ignored for the org domain",
			zone:   txt("_dmarc.gov.example.", "v=DMARC1; p=reject; psd=y"),
			domain: "gov.example", wantPolicy: "gov.example", wantOrg: "gov.example",
			wantAsked: []string{"gov.example"}},
		{name: "two records at a name are discarded",
			zone: txt("_dmarc.mail.example.com.", "v=DMARC1; p=none") + "\n" +
				txt("_dmarc.mail.example.com.", "v=DMARC1; p=reject") + "\n" +
				txt("_dmarc.example.com.", "v=DMARC1; p=quarantine"),
			domain: "mail.example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"mail.example.com", "example.com", "com"}},
		{name: "records not starting with v=DMARC1 are skipped",
			zone: txt("_dmarc.example.com.", "google-site-verification=x") + "\n" +
				txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"example.com", "com"}},
		{name: "nothing", zone: txt("other.example.", "x"),
			domain: "mail.example.com", wantPolicy: "", wantOrg: "mail.example.com",
			wantAsked: []string{"mail.example.com", "example.com", "com"}},
		{name: "RFC 9989 §4.10: long names skip to their last seven labels, eight questions",
			zone:   txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "a.b.c.d.e.f.g.h.i.j.mail.example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com", "h.i.j.mail.example.com",
				"i.j.mail.example.com", "j.mail.example.com", "mail.example.com", "example.com", "com"}},
		{name: "RFC 9989 §5.1.8: a psd=n record past the shortcut is never seen",
			zone: txt("_dmarc.b.c.d.e.f.g.example.com.", "v=DMARC1; p=none; psd=n") + "\n" +
				txt("_dmarc.example.com.", "v=DMARC1; p=reject"),
			domain: "mail.a.b.c.d.e.f.g.example.com", wantPolicy: "example.com", wantOrg: "example.com",
			wantAsked: []string{"mail.a.b.c.d.e.f.g.example.com", "c.d.e.f.g.example.com", "d.e.f.g.example.com",
				"e.f.g.example.com", "f.g.example.com", "g.example.com", "example.com", "com"}},
		{name: "eight labels: the walk is one label at a time",
			zone: "", domain: "b.c.d.e.f.g.example.com", wantOrg: "b.c.d.e.f.g.example.com",
			wantAsked: []string{"b.c.d.e.f.g.example.com", "c.d.e.f.g.example.com", "d.e.f.g.example.com",
				"e.f.g.example.com", "f.g.example.com", "g.example.com", "example.com", "com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, srv := serveZone(t, tc.zone)
			d, err := Discover(context.Background(), r, tc.domain)
			if err != nil {
				t.Fatal(err)
			}
			policy := ""
			if d.Record != nil {
				policy = d.PolicyDomain
			}
			if policy != tc.wantPolicy || d.OrgDomain != tc.wantOrg {
				t.Errorf("policy at %q, org domain %q; want %q, %q", policy, d.OrgDomain, tc.wantPolicy, tc.wantOrg)
			}
			var walked []string
			for _, l := range d.Walk {
				walked = append(walked, l.Domain)
			}
			if diff := cmp.Diff(tc.wantAsked, walked); diff != "" {
				t.Errorf("Walk (-want +got):\n%s", diff)
			}
			// The server saw each of these questions once, and no other
			// about the domain or its parents.
			asked := map[string]bool{}
			for _, a := range tc.wantAsked {
				asked[a] = true
			}
			labels := strings.Split(tc.domain, ".")
			for i := range labels {
				name := strings.Join(labels[i:], ".")
				want := 0
				if asked[name] {
					want = 1
				}
				if got := srv.Questions("_dmarc." + name); got != want {
					t.Errorf("questions about _dmarc.%s: %d, want %d", name, got, want)
				}
			}
			if len(walked) > maxQueries {
				t.Errorf("%d questions, more than %d", len(walked), maxQueries)
			}
		})
	}
}

type codeSev struct {
	Code     string
	Severity finding.Severity
}

func codes(fs []finding.Finding) []codeSev {
	var out []codeSev
	for _, f := range fs {
		out = append(out, codeSev{f.Code, f.Severity})
	}
	return out
}

func TestLint(t *testing.T) {
	zone := strings.Join([]string{
		txt("_dmarc.good.example.", "v=DMARC1; p=reject; rua=mailto:dmarc@good.example"),
		txt("_dmarc.none.example.", "v=DMARC1; p=none; rua=mailto:dmarc@none.example"),
		txt("_dmarc.two.example.", "v=DMARC1; p=none"),
		txt("_dmarc.two.example.", "v=DMARC1; p=reject"),
		txt("_dmarc.old.example.", "v=DMARC1; p=quarantine; pct=50; rua=mailto:d@old.example"),
		txt("_dmarc.bad.example.", "v=DMARC1; p=quarantine; adkim=x"),
		txt("_dmarc.badrua.example.", "v=DMARC1; p=reject; rua=mailto:nobody"),
		txt("_dmarc.ext.example.", "v=DMARC1; p=reject; rua=mailto:d@reports.example,mailto:d@authorized.example"),
		txt("ext.example._report._dmarc.authorized.example.", "v=DMARC1"),
		txt("_dmarc.parent.example.", "v=DMARC1; p=reject; sp=quarantine"),
		txt("_dmarc.test.example.", "v=DMARC1; p=reject; t=y"),
		txt("_dmarc.unknown.example.", "v=DMARC1; p=reject; foo=bar"),
		txt("_dmarc.down.example.", "v=DMARC1; p=reject"),
	}, "\n")
	r, srv := serveZone(t, zone)
	srv.Fail("_dmarc.down.example", mdns.RcodeServerFailure)
	for _, tc := range []struct {
		name, domain  string
		spfOK, dkimOK bool
		want          []codeSev
	}{
		{"good", "good.example", true, true, []codeSev{{"dmarc.ok", finding.OK}}},
		{"missing", "missing.example", true, true, []codeSev{{"dmarc.missing", finding.Error}}},
		{"multiple", "two.example", true, true, []codeSev{{"dmarc.multiple", finding.Error}}},
		{"policy none", "none.example", true, true, []codeSev{{"dmarc.policy_none", finding.Warning}}},
		{"removed tag", "old.example", true, true, []codeSev{{"dmarc.removed_tag", finding.Warning}}},
		{"syntax", "bad.example", true, true, []codeSev{{"dmarc.syntax", finding.Error}}},
		{"unknown tag", "unknown.example", true, true, []codeSev{{"dmarc.syntax", finding.Warning}}},
		{"rua invalid", "badrua.example", true, true, []codeSev{{"dmarc.rua_invalid", finding.Error}}},
		{"rua unauthorized", "ext.example", true, true, []codeSev{{"dmarc.rua_unauthorized", finding.Warning}}},
		{"inherited", "shop.parent.example", true, true, []codeSev{{"dmarc.inherited", finding.OK}, {"dmarc.ok", finding.OK}}},
		{"testing", "test.example", true, true, []codeSev{{"dmarc.testing", finding.Warning}}},
		{"no spf, no dkim", "good.example", false, false, []codeSev{{"dmarc.no_spf_dkim", finding.Error}}},
		{"no dkim", "good.example", true, false, []codeSev{{"dmarc.no_spf_dkim", finding.Warning}}},
		{"no spf, no dkim, p=none", "none.example", false, false,
			[]codeSev{{"dmarc.policy_none", finding.Warning}, {"dmarc.no_spf_dkim", finding.Warning}}},
		{"servfail", "down.example", true, true, []codeSev{{"dmarc.dns_failure", finding.Unknown}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := Lint(context.Background(), r, tc.domain, tc.spfOK, tc.dkimOK)
			if diff := cmp.Diff(tc.want, codes(fs)); diff != "" {
				t.Errorf("Lint codes (-want +got):\n%s\n%+v", diff, fs)
			}
			for _, f := range fs {
				if f.Message == "" {
					t.Errorf("%s has no message", f.Code)
				}
				if (f.Severity == finding.Error || f.Severity == finding.Warning) && f.Fix == "" {
					t.Errorf("%s has no fix", f.Code)
				}
			}
		})
	}

	t.Run("policy none shows the next record", func(t *testing.T) {
		fs := Lint(context.Background(), r, "none.example", true, true)
		want := "v=DMARC1; p=quarantine; rua=mailto:dmarc@none.example"
		if len(fs) != 1 || !strings.Contains(fs[0].Fix, want) || fs[0].Record == "" {
			t.Errorf("Lint = %+v, want a fix holding %q and the record", fs, want)
		}
	})
	t.Run("missing suggests a record", func(t *testing.T) {
		fs := Lint(context.Background(), r, "missing.example", true, true)
		if len(fs) != 1 || !strings.Contains(fs[0].Fix, "v=DMARC1; p=none; rua=mailto:") {
			t.Errorf("Lint = %+v", fs)
		}
	})
	t.Run("inherited subdomain policy", func(t *testing.T) {
		fs := Lint(context.Background(), r, "shop.parent.example", true, true)
		if !strings.Contains(fs[len(fs)-1].Message, "quarantine") {
			t.Errorf("Lint = %+v, want the sp= policy (quarantine) applied", fs)
		}
	})
}

// A server that never answers leaves the check unknown, not failed.
func TestLintSilentServer(t *testing.T) {
	r, srv := serveZone(t, "")
	srv.Drop("_dmarc.example.com")
	fs := Lint(context.Background(), r, "example.com", true, true)
	if diff := cmp.Diff([]codeSev{{"dmarc.dns_failure", finding.Unknown}}, codes(fs)); diff != "" {
		t.Errorf("Lint (-want +got):\n%s", diff)
	}
}
