package dmarc

import (
	"context"
	"fmt"
	"strings"

	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"
)

// Resolver is the DNS the checks ask; *dns.Resolver of services/platform/dns satisfies it.
type Resolver interface {
	// Lookup returns name's records of qtype: none and no error when
	// there are none, an error when the server failed to answer.
	Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error)
}

// maxQueries caps a tree walk (RFC 9989 §4.10): names longer than
// eight labels skip to their last seven after the first question.
const maxQueries = 8

// Lookup is one question of a tree walk and the DMARC records it found.
type Lookup struct {
	Domain  string   // the domain asked about; the question is _dmarc.<Domain>
	Records []string // the TXT records starting with v=DMARC1
}

// Discovery is what the tree walk found for a domain.
type Discovery struct {
	// Domain is the domain asked about.
	Domain string
	// Record is the policy record that applies to Domain, nil when none
	// does; Text is that record as published, PolicyDomain where.
	Record       *Record
	Text         string
	PolicyDomain string
	// OrgDomain is Domain's organizational domain (RFC 9989 §4.10.2).
	OrgDomain string
	// Walk is every question asked, in order.
	Walk []Lookup
}

// Inherited reports whether the record applying to Domain is published at
// another domain (its organizational or public suffix domain).
func (d *Discovery) Inherited() bool {
	return d.Record != nil && d.PolicyDomain != d.Domain
}

// Discover finds the DMARC record that applies to domain and domain's
// organizational domain, by the DNS tree walk of RFC 9989 §4.10: the
// domain's own _dmarc name, then its parents up to the root, at most
// eight questions, stopping at a record with psd=y or psd=n. An error is
// a DNS failure: without all answers nothing is concluded.
func Discover(ctx context.Context, r Resolver, domain string) (*Discovery, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	d := &Discovery{Domain: domain}
	labels := strings.Split(domain, ".")
	type found struct {
		at  int // the number of labels of the domain it is at
		txt string
		rec *Record
	}
	var hits []found
	for n := len(labels); n >= 1; {
		name := strings.Join(labels[len(labels)-n:], ".")
		recs, err := lookupDMARC(ctx, r, name)
		if err != nil {
			return nil, err
		}
		d.Walk = append(d.Walk, Lookup{Domain: name, Records: recs})
		// Several records at one name are all discarded (§4.10 step 2).
		if len(recs) == 1 {
			rec, _ := parse(recs[0])
			hits = append(hits, found{n, recs[0], rec})
			if rec.PSD == "y" || rec.PSD == "n" {
				break
			}
		}
		if n == len(labels) && n > maxQueries {
			n = maxQueries - 1
		} else {
			n--
		}
	}

	// The organizational domain (§4.10.2): from the longest name to the
	// shortest, a psd=n record's domain, or the domain below a psd=y
	// record (not the walk's start), or else the shortest name with a
	// record; with no record at all, the domain itself.
	d.OrgDomain = domain
	decided := false
	for _, h := range hits {
		if h.rec.PSD == "n" {
			d.OrgDomain, decided = suffix(labels, h.at), true
			break
		}
		if h.rec.PSD == "y" && h.at != len(labels) {
			d.OrgDomain, decided = suffix(labels, h.at+1), true
			break
		}
	}
	if !decided && len(hits) > 0 {
		d.OrgDomain = suffix(labels, hits[len(hits)-1].at)
	}

	// The policy (§4.10.1): the domain's own record, else its
	// organizational domain's, else its public suffix domain's.
	var pol *found
	switch {
	case len(hits) > 0 && hits[0].at == len(labels):
		pol = &hits[0]
	default:
		for i := range hits {
			if suffix(labels, hits[i].at) == d.OrgDomain {
				pol = &hits[i]
			}
		}
		if pol == nil {
			for i := range hits {
				if hits[i].rec.PSD == "y" {
					pol = &hits[i]
				}
			}
		}
	}
	if pol != nil {
		d.Record, d.Text, d.PolicyDomain = pol.rec, pol.txt, suffix(labels, pol.at)
	}
	return d, nil
}

// suffix is the domain of the last n labels.
func suffix(labels []string, n int) string {
	return strings.Join(labels[len(labels)-n:], ".")
}

// lookupDMARC returns the TXT records at _dmarc.<domain> that start with
// v=DMARC1.
func lookupDMARC(ctx context.Context, r Resolver, domain string) ([]string, error) {
	txts, err := lookupTXT(ctx, r, "_dmarc."+domain)
	if err != nil {
		return nil, fmt.Errorf("dmarc record of %s: %w", domain, err)
	}
	var out []string
	for _, t := range txts {
		if IsDMARC(t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func lookupTXT(ctx context.Context, r Resolver, name string) ([]string, error) {
	rrs, err := r.Lookup(ctx, name, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	return dns.TXTValues(rrs), nil
}
