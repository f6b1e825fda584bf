package dmarc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

// Lint checks the DMARC record that applies to domain. spfOK and dkimOK
// say whether the domain's SPF and DKIM checks passed: DMARC without them
// fails every message.
func Lint(ctx context.Context, r Resolver, domain string, spfOK, dkimOK bool) []finding.Finding {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	own := "_dmarc." + domain
	d, err := Discover(ctx, r, domain)
	if err != nil {
		return []finding.Finding{dnsFailure(own, err)}
	}
	if recs := d.Walk[0].Records; len(recs) > 1 {
		return []finding.Finding{{
			Code: "dmarc.multiple", Severity: finding.Error,
			Message: fmt.Sprintf("%s holds %d DMARC records; receivers ignore them all, as if there were none.", own, len(recs)),
			Record:  strings.Join(recs, "\n"),
			Fix:     "Keep one record starting with v=DMARC1 at this name and delete the others.",
		}}
	}
	if d.Record == nil {
		return []finding.Finding{{
			Code: "dmarc.missing", Severity: finding.Error,
			Message: fmt.Sprintf("%s has no DMARC record: receivers cannot tell forged mail from yours, and you get no reports.", domain),
			Fix: fmt.Sprintf("Publish a TXT record at %s with the value %q, with your own address for the reports.",
				own, Build(Recommend("dmarc-reports@"+domain))),
		}}
	}

	var fs []finding.Finding
	add := func(code string, sev finding.Severity, msg, fix string) {
		fs = append(fs, finding.Finding{Code: code, Severity: sev, Message: msg, Record: d.Text, Fix: fix})
	}
	at := "_dmarc." + d.PolicyDomain
	rec := d.Record
	policy := rec.P
	if d.Inherited() {
		if rec.SP != "" {
			policy = rec.SP
		}
		add("dmarc.inherited", finding.OK,
			fmt.Sprintf("%s has no DMARC record of its own; receivers apply the one at %s.", domain, at),
			fmt.Sprintf("Nothing to do, unless %s needs another policy than the one of %s: then publish a record at %s.", domain, d.PolicyDomain, own))
	}
	if policy == "" {
		policy = None
	}

	for _, err := range Validate(d.Text) {
		var te *TagError
		if !errors.As(err, &te) {
			continue
		}
		_, isRemoved := removed[te.Tag]
		switch {
		case te.Tag == "rua" || te.Tag == "ruf":
			add("dmarc.rua_invalid", finding.Error,
				fmt.Sprintf("A report address of the DMARC record at %s is wrong (%v): reports to it are lost.", at, te),
				"Write each address as mailto:name@example.com, separated by commas.")
		case isRemoved && te.Warning:
			add("dmarc.removed_tag", finding.Warning,
				fmt.Sprintf("The DMARC record at %s uses %s=, %s.", at, te.Tag, te.Msg),
				fmt.Sprintf("Remove %s= from the record.", te.Tag))
		case te.Warning:
			add("dmarc.syntax", finding.Warning,
				fmt.Sprintf("The DMARC record at %s: %v.", at, te), "Correct the record; receivers still use it.")
		default:
			add("dmarc.syntax", finding.Error,
				fmt.Sprintf("The DMARC record at %s has an error: %v. Receivers ignore that tag.", at, te),
				fmt.Sprintf("Correct the record; a valid one is %q.", Build(fromRecord(rec))))
		}
	}

	p := fromRecord(rec)
	p.P = policy
	if policy == None {
		next, why := Next(p)
		add("dmarc.policy_none", finding.Warning,
			fmt.Sprintf("The DMARC policy of %s is none: receivers report forged mail but still deliver it.", domain),
			fmt.Sprintf("%s The record would then be %q.", why, Build(next)))
	} else if rec.T == "y" {
		next, why := Next(p)
		add("dmarc.testing", finding.Warning,
			fmt.Sprintf("The DMARC policy of %s is %s in testing mode (t=y): receivers apply one step less.", domain, policy),
			fmt.Sprintf("%s The record would then be %q.", why, Build(next)))
	}

	fs = append(fs, authorize(ctx, r, d, at)...)

	switch {
	case !spfOK && !dkimOK:
		sev := finding.Error
		if policy == None {
			sev = finding.Warning
		}
		add("dmarc.no_spf_dkim", sev,
			fmt.Sprintf("DMARC is in place for %s, but neither SPF nor DKIM passes: every message from the domain fails DMARC.", domain),
			"Fix SPF and DKIM first (see their checks); DMARC only confirms them.")
	case !spfOK || !dkimOK:
		missing := "SPF"
		if !dkimOK {
			missing = "DKIM"
		}
		add("dmarc.no_spf_dkim", finding.Warning,
			fmt.Sprintf("DMARC is in place for %s, but %s does not pass: mail passes DMARC through the other alone, and forwarded mail may fail.", domain, missing),
			fmt.Sprintf("Fix %s (see its check).", missing))
	}

	if finding.Worst(fs) == finding.OK {
		add("dmarc.ok", finding.OK,
			fmt.Sprintf("The DMARC record of %s is correct, with policy %s.", domain, policy), "")
	}
	return fs
}

// authorize checks that the report destinations outside the domain's
// organization accept its reports: RFC 7489 §7.1 and RFC 9990 §3 ask
// receivers to send reports to another domain only when it publishes
// <domain>._report._dmarc.<destination> TXT "v=DMARC1".
func authorize(ctx context.Context, r Resolver, d *Discovery, at string) []finding.Finding {
	var fs []finding.Finding
	done := map[string]bool{}
	for _, uri := range append(append([]string(nil), d.Record.RUA...), d.Record.RUF...) {
		dest := MailtoDomain(uri)
		if dest == "" || done[dest] || dest == d.OrgDomain || strings.HasSuffix(dest, "."+d.OrgDomain) ||
			dest == d.PolicyDomain || strings.HasSuffix(dest, "."+d.PolicyDomain) {
			continue
		}
		done[dest] = true
		name := d.PolicyDomain + "._report._dmarc." + dest
		txts, err := lookupTXT(ctx, r, name)
		if err != nil {
			fs = append(fs, dnsFailure(name, err))
			continue
		}
		ok := false
		for _, t := range txts {
			ok = ok || IsDMARC(t)
		}
		if !ok {
			fs = append(fs, finding.Finding{
				Code: "dmarc.rua_unauthorized", Severity: finding.Warning,
				Message: fmt.Sprintf("The DMARC record at %s sends reports to %s, which does not say it accepts reports for %s: receivers will not send them.", at, dest, d.PolicyDomain),
				Record:  d.Text,
				Fix:     fmt.Sprintf("Ask the operator of %s to publish a TXT record at %s with the value \"v=DMARC1\", or send reports to an address in your own domain.", dest, name),
			})
		}
	}
	return fs
}

// fromRecord is the policy a record states.
func fromRecord(rec *Record) Policy {
	return Policy{
		P: rec.P, SP: rec.SP, NP: rec.NP, ADKIM: rec.ADKIM, ASPF: rec.ASPF,
		Testing: rec.T == "y", RUA: rec.RUA, RUF: rec.RUF, FO: rec.FO,
	}
}

func dnsFailure(name string, err error) finding.Finding {
	return finding.Finding{
		Code: "dmarc.dns_failure", Severity: finding.Unknown,
		Message: fmt.Sprintf("We could not check %s: the DNS did not answer (%v).", name, err),
		Fix:     "Nothing to change; we check again later.",
	}
}
