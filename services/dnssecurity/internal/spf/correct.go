package spf

import (
	"context"
	"fmt"
	"strings"
)

// Correct writes the SPF record domain should publish instead of current
// (the SPF records it publishes now): the customer's mechanisms kept, in
// order, several records merged into one, duplicates removed,
// include:<ours.Include> added before "all", "+all", "?all" or no "all"
// turned into "~all" ("-all" and "~all" kept). A redirect becomes an
// include, since "all" would cancel it (§6.1). Terms that do not parse are
// dropped: receivers reject the whole record for them. ptr terms are
// dropped only when the record would otherwise need more than 10 lookups;
// when even then it does, the error says what each term costs, for the
// customer to choose what to remove.
func Correct(ctx context.Context, r Resolver, domain string, current []string, ours Ours) (string, error) {
	var mechs, mods []Term
	seen := map[string]bool{}
	allQ := byte('~')
	keep := func(t Term, list *[]Term) {
		k := canonical(t)
		if seen[k] {
			return
		}
		seen[k] = true
		*list = append(*list, t)
	}
	hasExp := false
	for _, rec := range current {
		if !isSPF(rec) {
			continue
		}
		var terms []Term
		for _, f := range strings.Fields(rec[len("v=spf1"):]) {
			if t, err := parseTerm(f); err == nil {
				terms = append(terms, t)
			}
		}
		hasAll := false
		for _, t := range terms {
			hasAll = hasAll || t.Kind == All
		}
		for _, t := range terms {
			switch t.Kind {
			case All:
				if t.Qualifier == '-' {
					allQ = '-'
				}
			case Redirect:
				if !hasAll {
					keep(Term{Text: "include:" + t.Domain, Kind: Include, Qualifier: '+', Domain: t.Domain}, &mechs)
				}
			case Exp:
				if !hasExp {
					hasExp = true
					keep(t, &mods)
				}
			case Unknown:
				keep(t, &mods)
			default:
				keep(t, &mechs)
			}
		}
	}
	if ours.Include != "" {
		keep(Term{Text: "include:" + ours.Include, Kind: Include, Qualifier: '+', Domain: ours.Include}, &mechs)
	} else {
		for _, p := range ours.IPs {
			kind, name := IP4, "ip4:"
			if p.Addr().Is6() {
				kind, name = IP6, "ip6:"
			}
			text := name + p.Masked().String()
			if p.IsSingleIP() {
				text = name + p.Addr().String()
			}
			keep(Term{Text: text, Kind: kind, Qualifier: '+', Prefix: p.Masked()}, &mechs)
		}
	}

	build := func(mechs []Term) string {
		var b strings.Builder
		b.WriteString("v=spf1")
		for _, t := range mechs {
			b.WriteString(" " + t.Text)
		}
		b.WriteString(" " + string(allQ) + "all")
		for _, t := range mods {
			b.WriteString(" " + t.Text)
		}
		return b.String()
	}
	rec := build(mechs)
	tree := walkRecord(ctx, r, domain, rec)
	if tree.Lookups > MaxLookups {
		var noPTR []Term
		for _, t := range mechs {
			if t.Kind != PTR {
				noPTR = append(noPTR, t)
			}
		}
		if len(noPTR) < len(mechs) {
			rec = build(noPTR)
			tree = walkRecord(ctx, r, domain, rec)
		}
	}
	if tree.Lookups > MaxLookups {
		return "", fmt.Errorf("the SPF record of %s would need %d DNS lookups with Mailplane's include, and receivers stop at %d: %s. Remove %d lookups' worth of terms, such as includes of services you no longer use, or replace a and mx terms by ip4:/ip6: ranges",
			domain, tree.Lookups, MaxLookups, lookupCosts(tree.Root), tree.Lookups-MaxLookups)
	}
	if _, err := Parse(rec); err != nil {
		return "", fmt.Errorf("the corrected SPF record of %s does not parse: %w", domain, err)
	}
	return rec, nil
}

// canonical is a term's text for finding duplicates: lower case, without
// the default qualifier.
func canonical(t Term) string {
	s := t.Text
	if !strings.Contains(s, "%") { // a macro letter's case matters (§7.3)
		s = strings.ToLower(s)
	}
	if t.Kind == Unknown {
		return "mod:" + strings.ToLower(t.Name) + "=" + t.Value
	}
	return strings.TrimPrefix(s, "+")
}
