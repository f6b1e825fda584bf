// Package mtasts checks the TXT records of MTA-STS (RFC 8461,
// _mta-sts.<domain>) and SMTP TLS reporting (RFC 8460,
// _smtp._tls.<domain>). The policy file MTA-STS serves over HTTPS is not
// fetched here.
package mtasts

import (
	"context"
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

// Resolver is the DNS the checks ask; *dns.Resolver of services/platform/dns satisfies it.
type Resolver interface {
	// Lookup returns name's records of qtype: none and no error when
	// there are none, an error when the server failed to answer.
	Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error)
}

// STS is an MTA-STS TXT record.
type STS struct {
	// ID changes whenever the policy does: senders fetch the policy again.
	ID string
	// Extensions are the other fields, in order, as "name=value".
	Extensions []string
}

// ParseSTS parses an MTA-STS TXT record (RFC 8461 §3.1): "v=STSv1" first,
// then an id of 1 to 32 letters and digits.
func ParseSTS(txt string) (*STS, error) {
	fields, err := fields(txt, "v=STSv1")
	if err != nil {
		return nil, err
	}
	s := &STS{}
	for _, f := range fields {
		name, value, _ := strings.Cut(f, "=")
		if name != "id" {
			if err := checkExtension(name, value); err != nil {
				return nil, err
			}
			s.Extensions = append(s.Extensions, f)
			continue
		}
		if s.ID != "" {
			return nil, fmt.Errorf("id= appears twice")
		}
		if len(value) < 1 || len(value) > 32 || !alnum(value) {
			return nil, fmt.Errorf("id=%s: the id is 1 to 32 letters and digits", value)
		}
		s.ID = value
	}
	if s.ID == "" {
		return nil, fmt.Errorf("id= is missing")
	}
	return s, nil
}

// TLSRPT is a TLS reporting TXT record.
type TLSRPT struct {
	// RUA are the report destinations: mailto: and https: URIs.
	RUA        []string
	Extensions []string
}

// ParseTLSRPT parses a TLS reporting TXT record (RFC 8460 §3):
// "v=TLSRPTv1" first, then rua= with mailto: or https: URIs separated
// by commas.
func ParseTLSRPT(txt string) (*TLSRPT, error) {
	fields, err := fields(txt, "v=TLSRPTv1")
	if err != nil {
		return nil, err
	}
	t := &TLSRPT{}
	seen := false
	for _, f := range fields {
		name, value, _ := strings.Cut(f, "=")
		if name != "rua" {
			if err := checkExtension(name, value); err != nil {
				return nil, err
			}
			t.Extensions = append(t.Extensions, f)
			continue
		}
		if seen {
			return nil, fmt.Errorf("rua= appears twice")
		}
		seen = true
		for _, u := range strings.Split(value, ",") {
			u = strings.Trim(u, " \t")
			if err := checkReportURI(u); err != nil {
				return nil, fmt.Errorf("rua: %w", err)
			}
			t.RUA = append(t.RUA, u)
		}
	}
	if !seen {
		return nil, fmt.Errorf("rua= is missing: the record names no report destination")
	}
	return t, nil
}

// fields splits a record of fields separated by ";" (with optional white
// space around), checking that it starts with version exactly. The final
// ";" is optional.
func fields(txt, version string) ([]string, error) {
	parts := strings.Split(txt, ";")
	for i := range parts {
		parts[i] = strings.Trim(parts[i], " \t")
	}
	if parts[0] != version {
		return nil, fmt.Errorf("the record must start with %s (exactly, in this case)", version)
	}
	parts = parts[1:]
	if n := len(parts); n > 0 && parts[n-1] == "" {
		parts = parts[:n-1]
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("an empty field (two semicolons in a row)")
		}
		if !strings.Contains(p, "=") {
			return nil, fmt.Errorf("%q is not a name=value field", p)
		}
	}
	return parts, nil
}

// checkExtension checks an extension field: a name of 1 to 32 letters,
// digits, "_", "-" or ".", and a value of visible characters but ";" and
// "=".
func checkExtension(name, value string) error {
	if len(name) < 1 || len(name) > 32 {
		return fmt.Errorf("%q is not a field name (1 to 32 characters)", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !alnum(string(c)) && c != '_' && c != '-' && c != '.' {
			return fmt.Errorf("%q is not a field name: it holds %q", name, c)
		}
	}
	if value == "" {
		return fmt.Errorf("%s= has no value", name)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x21 || c > 0x7e || c == ';' || c == '=' {
			return fmt.Errorf("%s= holds %q, not allowed in a value", name, c)
		}
	}
	return nil
}

func checkReportURI(u string) error {
	p, err := url.Parse(u)
	if err != nil || u == "" {
		return fmt.Errorf("%q is not a URI", u)
	}
	switch p.Scheme {
	case "mailto":
		addr, _, _ := strings.Cut(p.Opaque, "?")
		if a, err := url.PathUnescape(addr); err == nil {
			addr = a
		}
		if a, err := mail.ParseAddress(addr); err != nil || a.Address != addr {
			return fmt.Errorf("%q: %q is not a mail address", u, addr)
		}
	case "https":
		if p.Host == "" {
			return fmt.Errorf("%q names no host", u)
		}
	default:
		return fmt.Errorf("%q: reports go to mailto: or https: URIs only", u)
	}
	return nil
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// Lint checks domain's MTA-STS and TLS reporting records. Neither is
// required: their absence is a note or a warning, never an error.
func Lint(ctx context.Context, r Resolver, domain string) []finding.Finding {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	sts, fs := lintSTS(ctx, r, domain)
	return append(fs, lintTLSRPT(ctx, r, domain, sts)...)
}

// lintSTS reports on _mta-sts.<domain>, and whether a usable record is
// there.
func lintSTS(ctx context.Context, r Resolver, domain string) (bool, []finding.Finding) {
	name := "_mta-sts." + domain
	recs, err := records(ctx, r, name, "v=STSv1")
	if err != nil {
		return false, []finding.Finding{dnsFailure("mtasts", name, err)}
	}
	switch len(recs) {
	case 0:
		return false, []finding.Finding{{
			Code: "mtasts.missing", Severity: finding.OK,
			Message: fmt.Sprintf("%s does not publish MTA-STS: senders deliver to it with TLS when they can, but an attacker on the path can turn TLS off.", domain),
			Fix:     fmt.Sprintf("Optional: serve a policy at https://mta-sts.%s/.well-known/mta-sts.txt and publish a TXT record at %s: \"v=STSv1; id=<a new id at each policy change>\".", domain, name),
		}}
	case 1:
	default:
		return false, []finding.Finding{{
			Code: "mtasts.multiple", Severity: finding.Error,
			Message: fmt.Sprintf("%s holds %d MTA-STS records; senders then act as if there were none.", name, len(recs)),
			Record:  strings.Join(recs, "\n"),
			Fix:     "Keep one record starting with v=STSv1 and delete the others.",
		}}
	}
	s, err := ParseSTS(recs[0])
	if err != nil {
		return false, []finding.Finding{{
			Code: "mtasts.syntax", Severity: finding.Error,
			Message: fmt.Sprintf("The MTA-STS record at %s cannot be read (%v): senders act as if there were none.", name, err),
			Record:  recs[0],
			Fix:     "Publish exactly \"v=STSv1; id=20260101T000000\", with an id of letters and digits that changes with the policy.",
		}}
	}
	return true, []finding.Finding{{
		Code: "mtasts.ok", Severity: finding.OK,
		Message: fmt.Sprintf("%s publishes MTA-STS (policy id %s).", domain, s.ID),
		Record:  recs[0],
	}}
}

func lintTLSRPT(ctx context.Context, r Resolver, domain string, sts bool) []finding.Finding {
	name := "_smtp._tls." + domain
	recs, err := records(ctx, r, name, "v=TLSRPTv1")
	if err != nil {
		return []finding.Finding{dnsFailure("tlsrpt", name, err)}
	}
	switch len(recs) {
	case 0:
		f := finding.Finding{
			Code: "tlsrpt.missing", Severity: finding.OK,
			Message: fmt.Sprintf("%s does not ask for TLS reports: you do not learn when senders fail to reach you securely.", domain),
			Fix:     fmt.Sprintf("Optional: publish a TXT record at %s: \"v=TLSRPTv1; rua=mailto:tls-reports@%s\".", name, domain),
		}
		if sts {
			f.Severity = finding.Warning
			f.Message = fmt.Sprintf("%s publishes MTA-STS but asks for no TLS reports: a policy that blocks mail goes unnoticed.", domain)
			f.Fix = fmt.Sprintf("Publish a TXT record at %s: \"v=TLSRPTv1; rua=mailto:tls-reports@%s\".", name, domain)
		}
		return []finding.Finding{f}
	case 1:
	default:
		return []finding.Finding{{
			Code: "tlsrpt.multiple", Severity: finding.Error,
			Message: fmt.Sprintf("%s holds %d TLS reporting records; senders then send no reports.", name, len(recs)),
			Record:  strings.Join(recs, "\n"),
			Fix:     "Keep one record starting with v=TLSRPTv1 and delete the others.",
		}}
	}
	t, err := ParseTLSRPT(recs[0])
	if err != nil {
		return []finding.Finding{{
			Code: "tlsrpt.syntax", Severity: finding.Error,
			Message: fmt.Sprintf("The TLS reporting record at %s cannot be read (%v): senders send no reports.", name, err),
			Record:  recs[0],
			Fix:     fmt.Sprintf("Publish \"v=TLSRPTv1; rua=mailto:tls-reports@%s\", with your own address.", domain),
		}}
	}
	return []finding.Finding{{
		Code: "tlsrpt.ok", Severity: finding.OK,
		Message: fmt.Sprintf("%s asks for TLS reports (to %s).", domain, strings.Join(t.RUA, ", ")),
		Record:  recs[0],
	}}
}

// records returns the TXT records at name starting with prefix (the
// version): senders discard the others (RFC 8461 §3.1, RFC 8460 §3).
func records(ctx context.Context, r Resolver, name, prefix string) ([]string, error) {
	rrs, err := r.Lookup(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range rrs {
		t, ok := rr.(*mdns.TXT)
		if !ok {
			continue
		}
		if s := dns.TXTValue(t); strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out, nil
}

func dnsFailure(area, name string, err error) finding.Finding {
	return finding.Finding{
		Code: area + ".dns_failure", Severity: finding.Unknown,
		Message: fmt.Sprintf("We could not check %s: the DNS did not answer (%v).", name, err),
		Fix:     "Nothing to change; we check again later.",
	}
}
