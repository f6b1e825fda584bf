package dmarc

import (
	"strings"
)

// Policy is what the record wizard writes.
type Policy struct {
	// P is the policy for the domain; empty means none.
	P Action
	// SP and NP, when set, are the policies for existing and
	// non-existent subdomains.
	SP, NP Action
	// ADKIM and ASPF are "s" for strict alignment; empty or "r" writes
	// nothing (relaxed is the default).
	ADKIM, ASPF string
	// Testing writes t=y: receivers apply one step below P.
	Testing bool
	// RUA and RUF are report addresses: mailto: URIs or bare addresses.
	RUA, RUF []string
	// FO is the failure report options, written only with RUF.
	FO string
}

// Build writes p as a record every receiver accepts, those of RFC 7489
// and of RFC 9989 alike: v=DMARC1 first, p second, no pct (RFC 9989
// removed it; t=y does its job), no tag either RFC lacks.
func Build(p Policy) string {
	if p.P == "" {
		p.P = None
	}
	tags := []string{"v=DMARC1", "p=" + string(p.P)}
	if p.SP != "" {
		tags = append(tags, "sp="+string(p.SP))
	}
	if p.NP != "" {
		tags = append(tags, "np="+string(p.NP))
	}
	if p.ADKIM == "s" {
		tags = append(tags, "adkim=s")
	}
	if p.ASPF == "s" {
		tags = append(tags, "aspf=s")
	}
	if p.Testing {
		tags = append(tags, "t=y")
	}
	if len(p.RUA) > 0 {
		tags = append(tags, "rua="+uriList(p.RUA))
	}
	if len(p.RUF) > 0 {
		tags = append(tags, "ruf="+uriList(p.RUF))
		if p.FO != "" {
			tags = append(tags, "fo="+p.FO)
		}
	}
	return strings.Join(tags, "; ")
}

// uriList writes report addresses as mailto: URIs, escaping the commas,
// exclamation marks and semicolons that would cut the list or the record.
func uriList(addrs []string) string {
	esc := strings.NewReplacer(",", "%2C", "!", "%21", ";", "%3B", " ", "%20")
	out := make([]string, len(addrs))
	for i, a := range addrs {
		if !strings.Contains(a, ":") {
			a = "mailto:" + a
		}
		out[i] = esc.Replace(a)
	}
	return strings.Join(out, ",")
}

// Recommend is the simple mode's first record: monitoring (p=none) with
// aggregate reports to reportTo, an address or a mailto: URI.
func Recommend(reportTo string) Policy {
	return Policy{P: None, RUA: []string{reportTo}}
}

// Next is the step after p on the path none → quarantine → reject, with
// what to check before taking it. A policy in testing (t=y) first drops
// the flag; reject is the end of the path and returns p unchanged.
func Next(p Policy) (Policy, string) {
	n := p
	n.RUA, n.RUF = append([]string(nil), p.RUA...), append([]string(nil), p.RUF...)
	switch {
	case p.Testing && p.P != None && p.P != "":
		n.Testing = false
		return n, "Remove t=y once the reports show that receivers' treatment of failing mail causes no harm: " +
			"the policy " + string(p.P) + " then applies in full."
	case p.P == "" || p.P == None:
		n.P, n.Testing = Quarantine, false
		return n, "Move to p=quarantine once two to four weeks of aggregate reports show that all your own mail " +
			"passes SPF or DKIM with your domain (every server and service that sends for you): " +
			"failing mail then goes to spam folders instead of inboxes."
	case p.P == Quarantine:
		n.P = Reject
		return n, "Move to p=reject once a few weeks at quarantine show no legitimate mail in spam folders: " +
			"receivers then refuse mail that forges your domain."
	}
	return n, "p=reject is the strongest policy: keep reading the reports to catch new senders that fail."
}
