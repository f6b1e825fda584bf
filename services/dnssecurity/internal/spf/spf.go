// Package spf is the SPF engine of the DNS security diagnostic: a parser of
// SPF records (RFC 7208 §4.6, §5, §6, §7), CheckHost, the evaluation a
// receiver runs (§4 to §7), Walk, the diagnosis of a domain's whole tree of
// records, Lint, which turns a tree into findings, and Correct, which writes
// the record a customer should publish.
//
// Nothing here caches or retries: the Resolver does (platform/dns).
package spf

import (
	"context"
	"strings"

	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"
)

// Resolver is the DNS the checks ask; *dns.Resolver of services/platform/dns
// satisfies it. A name that does not exist or has no record of the type
// answers (nil, nil); a server that fails or times out answers an error.
type Resolver interface {
	Lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error)
}

// Processing limits of RFC 7208 §4.6.4.
const (
	// MaxLookups is the number of DNS-querying terms (include, a, mx, ptr,
	// exists, redirect) one evaluation may run.
	MaxLookups = 10
	// MaxVoidLookups is the number of lookups answering no record that one
	// evaluation tolerates.
	MaxVoidLookups = 2
	// maxNames caps the names an mx mechanism may return and the names a
	// ptr lookup checks.
	maxNames = 10
)

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// spfRecords returns, of the TXT records rrs, those that are SPF version 1
// records (§4.5: "v=spf1" followed by a space or the end, in any case), each
// with the strings it was published as.
func spfRecords(rrs []mdns.RR) (records []string, parts [][]string) {
	for _, rr := range rrs {
		t, ok := rr.(*mdns.TXT)
		if !ok {
			continue
		}
		ss := dns.TXTParts(t)
		rec := strings.Join(ss, "")
		if isSPF(rec) {
			records = append(records, rec)
			parts = append(parts, ss)
		}
	}
	return records, parts
}

func isSPF(rec string) bool {
	const v = "v=spf1"
	return len(rec) >= len(v) && strings.EqualFold(rec[:len(v)], v) && (len(rec) == len(v) || rec[len(v)] == ' ')
}
