package dkim

import (
	"context"
	"crypto"
	"fmt"
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

// Lint checks the key published for selector at domain. held is the
// public key Mailplane signs with under that selector, nil for a
// selector of the customer's own (another provider's), whose key is only
// checked for itself.
func Lint(ctx context.Context, r Resolver, domain, selector string, held crypto.PublicKey) []finding.Finding {
	if err := ValidSelector(selector); err != nil {
		return []finding.Finding{{
			Code: "dkim.syntax", Severity: finding.Error,
			Message: fmt.Sprintf("The DKIM selector cannot be used: %v.", err),
			Fix:     "Use the selector exactly as your mail provider gives it.",
		}}
	}
	name := RecordName(selector, domain)
	txts, err := lookupTXT(ctx, r, name)
	if err != nil {
		return []finding.Finding{{
			Code: "dkim.dns_failure", Severity: finding.Unknown,
			Message: fmt.Sprintf("We could not check the DKIM key at %s: the DNS did not answer (%v).", name, err),
			Fix:     "Nothing to change; we check again later.",
		}}
	}
	switch len(txts) {
	case 0:
		fix := fmt.Sprintf("Publish the DKIM key your mail provider gives you as a TXT record at %s.", name)
		if held != nil {
			if want, err := TXT(held); err == nil {
				fix = fmt.Sprintf("Publish a TXT record at %s with the value: %s", name, want)
			}
		}
		return []finding.Finding{{
			Code: "dkim.missing", Severity: finding.Error,
			Message: fmt.Sprintf("There is no DKIM key at %s: receivers cannot verify mail signed with selector %q.", name, selector),
			Fix:     fix,
		}}
	case 1:
	default:
		return []finding.Finding{{
			Code: "dkim.multiple", Severity: finding.Error,
			Message: fmt.Sprintf("%s holds %d TXT records; receivers pick one at random, so signatures fail now and then.", name, len(txts)),
			Record:  strings.Join(txts, "\n"),
			Fix:     "Keep one DKIM record at this name and delete the others.",
		}}
	}
	txt := txts[0]
	k, err := ParseKey(txt)
	if err != nil {
		return []finding.Finding{{
			Code: "dkim.syntax", Severity: finding.Error,
			Message: fmt.Sprintf("The DKIM record at %s cannot be read: %v. Receivers ignore it.", name, err),
			Record:  txt,
			Fix:     "Copy the record again from your mail provider, as one value, without quotes or line breaks added.",
		}}
	}
	var fs []finding.Finding
	add := func(code string, sev finding.Severity, msg, fix string) {
		fs = append(fs, finding.Finding{Code: code, Severity: sev, Message: msg, Record: txt, Fix: fix})
	}
	if k.Revoked() {
		sev := finding.Warning
		if held != nil {
			sev = finding.Error
		}
		add("dkim.revoked", sev,
			fmt.Sprintf("The DKIM key of selector %q is revoked (p= is empty): mail signed with it fails DKIM.", selector),
			"If you still send mail signed with this selector, publish its key; if not, nothing to do.")
		return fs
	}
	if held != nil && !sameKey(held, k.Public) {
		fix := "Replace the record with the one Mailplane shows for this selector."
		if want, err := TXT(held); err == nil {
			fix = fmt.Sprintf("Replace the TXT record at %s with: %s", name, want)
		}
		add("dkim.mismatch", finding.Error,
			fmt.Sprintf("The DKIM key at %s is not the key Mailplane signs your mail with: receivers will reject our signatures.", name),
			fix)
	}
	if k.Type == "rsa" {
		switch {
		case k.Bits < 1024:
			add("dkim.rsa_too_short", finding.Error,
				fmt.Sprintf("The DKIM key of selector %q is RSA with %d bits; receivers ignore keys under 1024 bits and it can be broken.", selector, k.Bits),
				"Create a 2048-bit key and publish it under a new selector.")
		case k.Bits < 2048:
			add("dkim.rsa_short", finding.Warning,
				fmt.Sprintf("The DKIM key of selector %q is RSA with %d bits; 2048 bits is the recommended size.", selector, k.Bits),
				"Create a 2048-bit key and publish it under a new selector.")
		}
	}
	if k.Testing() {
		add("dkim.testing", finding.Warning,
			fmt.Sprintf("The DKIM key of selector %q is in testing mode (t=y): receivers may treat failed signatures as unsigned.", selector),
			"Once your signatures verify, remove t=y from the record.")
	}
	if len(fs) == 0 {
		add("dkim.ok", finding.OK,
			fmt.Sprintf("The DKIM key of selector %q is published correctly (%s, %d bits).", selector, k.Type, k.Bits), "")
	}
	return fs
}

func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// lookupTXT returns name's TXT records, each one's strings joined.
func lookupTXT(ctx context.Context, r Resolver, name string) ([]string, error) {
	rrs, err := r.Lookup(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return dns.TXTValues(rrs), nil
}
