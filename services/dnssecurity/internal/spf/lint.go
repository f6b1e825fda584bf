package spf

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
)

// Ours is what a customer's SPF must authorize for Mailplane to send for
// them.
type Ours struct {
	// Include is the domain customers include ("_spf.mailplane.net").
	Include string
	// IPs are our sending networks.
	IPs []netip.Prefix
}

// Lint turns a tree into findings (codes "spf.*"), each with a sentence
// naming this case's domains and numbers, the record as seen and what to
// do. A tree without problems gives one finding, spf.ok.
func Lint(tree *Tree, ours Ours) []finding.Finding {
	root := tree.Root
	var fs []finding.Finding
	add := func(code string, sev finding.Severity, record, msg, fix string) {
		fs = append(fs, finding.Finding{Code: code, Severity: sev, Message: msg, Record: record, Fix: fix})
	}
	suggested := "v=spf1 include:" + ours.Include + " ~all"
	if ours.Include == "" {
		suggested = "v=spf1 ~all"
	}

	if root.DNSErr != nil {
		add("spf.dns_failure", finding.Unknown, "",
			fmt.Sprintf("The SPF record of %s could not be read: its DNS servers did not answer (%v).", root.Domain, root.DNSErr),
			"Check again in a few minutes; if it persists, ask your DNS provider whether its servers answer for "+root.Domain+".")
		return fs
	}
	if len(root.Records) == 0 {
		add("spf.missing", finding.Error, "",
			fmt.Sprintf("%s publishes no SPF record: receivers cannot tell which servers may send its mail, and may reject or junk it.", root.Domain),
			fmt.Sprintf("Publish this TXT record at %s: %s", root.Domain, suggested))
		return fs
	}

	for _, n := range tree.Nodes() {
		rec := ""
		if len(n.Records) > 0 {
			rec = n.Records[0]
		}
		where := n.Domain
		if n.Via != "" {
			where = fmt.Sprintf("%s (reached by %s)", n.Domain, n.Via)
		}
		switch {
		case n.Loop:
			add("spf.loop", finding.Error, "",
				fmt.Sprintf("%s leads back to %s, which is already being evaluated: receivers go round until they stop at %d lookups, with a permanent error.", n.Via, n.Domain, MaxLookups),
				fmt.Sprintf("Remove %s from the record that holds it.", n.Via))
			continue
		case n.DNSErr != nil:
			add("spf.dns_failure", finding.Unknown, "",
				fmt.Sprintf("The SPF record of %s could not be read: its DNS servers did not answer (%v).", where, n.DNSErr),
				"Check again in a few minutes.")
			continue
		case len(n.Records) == 0 && n != root:
			add("spf.include_missing", finding.Error, "",
				fmt.Sprintf("%s names %s, which publishes no SPF record: receivers give a permanent error.", n.Via, n.Domain),
				fmt.Sprintf("Remove %s, or fix the name.", n.Via))
			continue
		}
		if len(n.Records) > 1 {
			add("spf.multiple", finding.Error, strings.Join(n.Records, "\n"),
				fmt.Sprintf("%s publishes %d SPF records; receivers accept exactly one and otherwise give a permanent error.", where, len(n.Records)),
				"Merge them into one record (the Correct button does) and delete the others.")
		}
		for i, ss := range n.Strings {
			if len(ss) > 1 {
				add("spf.long_string", finding.Warning, n.Records[i],
					fmt.Sprintf("The SPF record of %s is published as %d strings; receivers join them, but some DNS providers mishandle records split this way.", where, len(ss)),
					"Check that the record as served matches what you entered; shortening it to 255 characters or less avoids the split.")
			}
			for _, s := range ss {
				if len(s) > 255 {
					add("spf.long_string", finding.Error, n.Records[i],
						fmt.Sprintf("The SPF record of %s holds a string of %d characters; DNS allows 255 per string.", where, len(s)),
						"Split the record into strings of at most 255 characters, or shorten it.")
				}
			}
		}
		if n.SyntaxErr != nil {
			add("spf.syntax", finding.Error, rec,
				fmt.Sprintf("The SPF record of %s is invalid: %v. Receivers give a permanent error, as if there were no record.", where, n.SyntaxErr),
				"Correct the term named, or use the Correct button.")
			continue
		}
		if n.Record == nil {
			continue
		}
		for _, t := range n.Record.Terms {
			if t.Kind == PTR {
				add("spf.ptr", finding.Warning, rec,
					fmt.Sprintf("The SPF record of %s uses %q, which RFC 7208 deprecates: it is slow, many receivers skip it, and it costs a lookup.", where, t.Text),
					fmt.Sprintf("Replace %s by ip4:/ip6: terms listing the servers it stands for.", t.Text))
			}
			if t.Kind == All && t.Qualifier == '+' {
				add("spf.plus_all", finding.Error, rec,
					fmt.Sprintf("The SPF record of %s ends with %q: it authorizes every server on the Internet to send as %s.", where, t.Text, root.Domain),
					`Replace it with "~all" (or "-all" once every sender is listed).`)
			}
		}
		if len(n.Unreachable) > 0 {
			var ts []string
			for _, t := range n.Unreachable {
				ts = append(ts, t.Text)
			}
			add("spf.unreachable_terms", finding.Warning, rec,
				fmt.Sprintf("In the SPF record of %s, %s come after \"all\" and never take effect.", where, strings.Join(ts, ", ")),
				`Move them before "all", or delete them.`)
		}
		for _, v := range n.Voids {
			add("spf.void_lookup", finding.Warning, rec,
				fmt.Sprintf("In the SPF record of %s, %s points to a name that has no such DNS record.", where, v),
				fmt.Sprintf("Remove %s or fix the name; receivers give a permanent error after %d such lookups.", v, MaxVoidLookups))
		}
		for _, f := range n.CheckFailures {
			add("spf.dns_failure", finding.Unknown, rec,
				fmt.Sprintf("In the SPF record of %s, %s could not be checked: a DNS server did not answer.", where, f),
				"Check again in a few minutes.")
		}
		for _, note := range n.Notes {
			add("spf.note", finding.Warning, rec, fmt.Sprintf("In the SPF record of %s, %s.", where, note), "")
		}
	}

	// The root's own policy: its "all", or the end of its redirect chain.
	if root.Record != nil {
		rec := root.Records[0]
		eff := effective(root)
		if eff != nil && eff.Record != nil {
			if i := eff.Record.AllIndex(); i >= 0 {
				if q := eff.Record.Terms[i].Qualifier; q == '?' {
					add("spf.neutral_all", finding.Warning, rec,
						fmt.Sprintf("The SPF record of %s ends with \"?all\": it says nothing about servers it does not list, so forged mail is not flagged.", root.Domain),
						`Replace "?all" with "~all".`)
				}
			} else if _, ok := eff.Record.Redirect(); !ok {
				add("spf.no_all", finding.Warning, rec,
					fmt.Sprintf("The SPF record of %s has no \"all\" term: servers it does not list get the neutral result, so forged mail is not flagged.", root.Domain),
					`Add "~all" at the end of the record.`)
			}
		}
		if tree.Lookups > MaxLookups {
			add("spf.too_many_lookups", finding.Error, rec,
				fmt.Sprintf("The SPF record of %s needs %d DNS lookups (%s); receivers stop at %d and give a permanent error, so its mail can fail SPF.", root.Domain, tree.Lookups, lookupCosts(root), MaxLookups),
				"Remove includes of services you no longer use, or replace a, mx and ptr terms by ip4:/ip6: ranges.")
		}
		if tree.VoidLookups > MaxVoidLookups {
			add("spf.too_many_void_lookups", finding.Error, rec,
				fmt.Sprintf("%d terms in the SPF tree of %s point to names that do not exist; receivers stop after %d and give a permanent error.", tree.VoidLookups, root.Domain, MaxVoidLookups),
				"Remove the terms that point to names without records.")
		}
		if (ours.Include != "" || len(ours.IPs) > 0) && !authorized(tree, ours) {
			add("spf.not_authorized", finding.Error, rec,
				fmt.Sprintf("The SPF record of %s does not authorize Mailplane's servers: mail we send for %s fails SPF.", root.Domain, root.Domain),
				fmt.Sprintf("Add include:%s before the \"all\" term (the Correct button does).", ours.Include))
		}
	}

	if finding.Worst(fs) == finding.OK {
		rec := ""
		if len(root.Records) > 0 {
			rec = root.Records[0]
		}
		add("spf.ok", finding.OK, rec,
			fmt.Sprintf("The SPF record of %s is valid, needs %d of %d DNS lookups and authorizes Mailplane.", root.Domain, tree.Lookups, MaxLookups), "")
	}
	return fs
}

// effective is the node whose record decides the root's policy: the end of
// its redirect chain (redirect is followed only without "all").
func effective(n *Node) *Node {
	for n != nil && n.Record != nil && n.Record.AllIndex() < 0 {
		t, ok := n.Record.Redirect()
		if !ok {
			return n
		}
		var next *Node
		for _, c := range n.Children {
			if c.Via == t.Text {
				next = c
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// lookupCosts says what each DNS-querying term of n costs with its
// subtree: "include:a.example 4, mx 1".
func lookupCosts(n *Node) string {
	var out []string
	for _, t := range termCosts(n) {
		out = append(out, fmt.Sprintf("%s %d", t.term, t.cost))
	}
	return strings.Join(out, ", ")
}

type termCost struct {
	term string
	cost int
}

func termCosts(n *Node) []termCost {
	if n.Record == nil {
		return nil
	}
	var out []termCost
	all := n.Record.AllIndex()
	for i, t := range n.Record.Terms {
		if !t.QueriesDNS() || (all >= 0 && i > all) || (t.Kind == Redirect && all >= 0) {
			continue
		}
		cost := 1
		for _, c := range n.Children {
			if c.Via == t.Text {
				cost += c.TotalLookups
				break
			}
		}
		out = append(out, termCost{t.Text, cost})
	}
	return out
}

// authorized reports whether the tree authorizes Mailplane: our include
// is reached by a term that runs, or every one of our networks passes.
func authorized(tree *Tree, ours Ours) bool {
	if ours.Include != "" {
		for _, n := range tree.Nodes() {
			if n != tree.Root && isSubdomain(n.Domain, ours.Include) && isSubdomain(ours.Include, n.Domain) {
				return true
			}
		}
	}
	if len(ours.IPs) == 0 {
		return false
	}
	for _, p := range ours.IPs {
		if staticResult(tree.Root, p.Masked(), 0) != Pass {
			return false
		}
	}
	return true
}

// staticResult evaluates n for every address of p from what the walk
// learnt: ip4/ip6 terms, a and mx addresses, includes, redirect and all.
// exists and ptr, which depend on the client, never match.
func staticResult(n *Node, p netip.Prefix, depth int) Code {
	if n == nil || n.Record == nil || depth > MaxLookups {
		return PermError
	}
	child := func(t Term) *Node {
		for _, c := range n.Children {
			if c.Via == t.Text {
				return c
			}
		}
		return nil
	}
	for i, t := range n.Record.Terms {
		if !t.IsMechanism() {
			continue
		}
		match := false
		switch t.Kind {
		case All:
			match = true
		case IP4, IP6:
			match = t.Prefix.Bits() <= p.Bits() && t.Prefix.Contains(p.Addr())
		case A, MX:
			for _, a := range n.Addrs[i] {
				bits := t.CIDR4
				if a.Is6() {
					bits = t.CIDR6
				}
				if q, err := a.Prefix(bits); err == nil && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
					match = true
				}
			}
		case Include:
			match = staticResult(child(t), p, depth+1) == Pass
		}
		if match {
			return qualifierCode(t.Qualifier)
		}
	}
	if t, ok := n.Record.Redirect(); ok && n.Record.AllIndex() < 0 {
		return staticResult(child(t), p, depth+1)
	}
	return Neutral
}
