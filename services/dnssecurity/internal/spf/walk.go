package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	mdns "github.com/miekg/dns"
)

// Tree is the diagnosis of a domain's SPF: its record and, recursively,
// the records its include and redirect terms name. It is not an
// evaluation: no client address is involved, and every term is assumed to
// run, as for a client no term matches (the worst path a receiver can take
// through the limits of RFC 7208 §4.6.4).
type Tree struct {
	Root *Node
	// Lookups is the number of DNS-querying terms a receiver runs over the
	// whole tree on the worst path; more than MaxLookups is a permerror.
	Lookups int
	// VoidLookups is the number of those terms whose target has no record;
	// more than MaxVoidLookups is a permerror.
	VoidLookups int
}

// Node is one domain's record in a Tree.
type Node struct {
	Domain string
	// Via is the term of the parent that leads here ("include:x",
	// "redirect=x"); empty for the root.
	Via string
	// Records are the SPF records the domain publishes (§4.5: one is
	// expected), each joined from Strings, the character-strings of its
	// TXT record as published.
	Records []string
	Strings [][]string
	// Record is the first record parsed; nil when there is none or it does
	// not parse (SyntaxErr).
	Record    *Record
	SyntaxErr error
	// DNSErr is a server failure while reading the record: nothing is
	// known about it.
	DNSErr error
	// Loop: Domain is already on the path from the root; it is not
	// followed again.
	Loop bool
	// Lookups counts the DNS-querying terms of this record that run;
	// Voids the terms whose target has no record (the term's text).
	Lookups int
	Voids   []string
	// Unreachable are the terms after "all", which never run (redirect
	// included, §6.1).
	Unreachable []Term
	// Addrs are the addresses a and mx terms resolve to, by term index.
	Addrs map[int][]netip.Addr
	// Notes are other observations: DNS failures while checking a term, an
	// mx naming more than 10 hosts, targets that depend on the sender
	// (macros) and cannot be followed.
	Notes []string
	// CheckFailures are the terms whose targets could not be checked
	// because a server failed.
	CheckFailures []string
	Children      []*Node
	// TotalLookups and TotalVoids are this node's and its subtree's.
	TotalLookups, TotalVoids int
}

// maxNodes bounds a tree, whatever its records say.
const maxNodes = 100

// parallelQueries bounds the questions a walk asks at once.
const parallelQueries = 8

// Walk fetches domain's SPF record and those of every include and redirect
// target, recursively, the independent ones in parallel, and counts what
// §4.6.4 limits. DNS failures are recorded on the nodes, never returned.
func Walk(ctx context.Context, r Resolver, domain string) *Tree {
	w := &walker{r: r, sem: make(chan struct{}, parallelQueries)}
	root := w.node(ctx, strings.TrimSuffix(domain, "."), "", nil, nil)
	return &Tree{Root: root, Lookups: root.TotalLookups, VoidLookups: root.TotalVoids}
}

// walkRecord is Walk of a record not (yet) published at domain.
func walkRecord(ctx context.Context, r Resolver, domain, record string) *Tree {
	w := &walker{r: r, sem: make(chan struct{}, parallelQueries)}
	root := w.node(ctx, domain, "", nil, []string{record})
	return &Tree{Root: root, Lookups: root.TotalLookups, VoidLookups: root.TotalVoids}
}

type walker struct {
	r   Resolver
	sem chan struct{}

	mu    sync.Mutex
	nodes int
}

func (w *walker) lookup(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	if !askable(name) {
		return nil, nil
	}
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-w.sem }()
	return w.r.Lookup(ctx, name, qtype)
}

// node builds the node of domain; record, when set, stands for what the
// domain publishes.
func (w *walker) node(ctx context.Context, domain, via string, path []string, record []string) *Node {
	n := &Node{Domain: domain, Via: via, Addrs: map[int][]netip.Addr{}}
	for _, p := range path {
		if strings.EqualFold(p, domain) {
			n.Loop = true
			return n
		}
	}
	w.mu.Lock()
	w.nodes++
	over := w.nodes > maxNodes
	w.mu.Unlock()
	if over {
		n.Notes = append(n.Notes, fmt.Sprintf("not followed: the tree has more than %d records", maxNodes))
		return n
	}
	path = append(path[:len(path):len(path)], domain)

	if record != nil {
		n.Records = record
		for _, r := range record {
			n.Strings = append(n.Strings, []string{r})
		}
	} else {
		rrs, err := w.lookup(ctx, domain, mdns.TypeTXT)
		if err != nil {
			n.DNSErr = err
			return n
		}
		n.Records, n.Strings = spfRecords(rrs)
	}
	if len(n.Records) == 0 {
		return n
	}
	rec, err := Parse(n.Records[0])
	if err != nil {
		n.SyntaxErr = err
		return n
	}
	n.Record = rec

	all := rec.AllIndex()
	var wg sync.WaitGroup
	var mu sync.Mutex
	note := func(failure bool, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if failure {
			n.CheckFailures = append(n.CheckFailures, fmt.Sprintf(format, args...))
		} else {
			n.Notes = append(n.Notes, fmt.Sprintf(format, args...))
		}
	}
	type child struct {
		i int
		n *Node
	}
	var children []*child
	for i, t := range rec.Terms {
		if all >= 0 && i > all && (t.IsMechanism() || t.Kind == Redirect) || t.Kind == Redirect && all >= 0 {
			n.Unreachable = append(n.Unreachable, t)
			continue
		}
		if !t.QueriesDNS() {
			continue
		}
		n.Lookups++
		target := domain
		if t.Domain != "" {
			target = strings.TrimSuffix(t.Domain, ".")
			if strings.Contains(t.Domain, "%") {
				note(false, "%s depends on the sender (macros) and was not followed", t.Text)
				continue
			}
		}
		switch t.Kind {
		case Include, Redirect:
			slot := &child{i: i}
			children = append(children, slot)
			wg.Add(1)
			go func() {
				defer wg.Done()
				slot.n = w.node(ctx, target, t.Text, path, nil)
			}()
		case A, MX, Exists:
			wg.Add(1)
			go func() {
				defer wg.Done()
				addrs, void, err := w.check(ctx, t, target)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, errTooManyMX):
					n.Notes = append(n.Notes, fmt.Sprintf("%s: %v", t.Text, err))
				case err != nil:
					n.CheckFailures = append(n.CheckFailures, fmt.Sprintf("%s: %v", t.Text, err))
				case void:
					n.Voids = append(n.Voids, t.Text)
				}
				if len(addrs) > 0 {
					n.Addrs[i] = addrs
				}
			}()
		}
	}
	wg.Wait()
	n.TotalLookups, n.TotalVoids = n.Lookups, len(n.Voids)
	for _, c := range children {
		n.Children = append(n.Children, c.n)
		n.TotalLookups += c.n.TotalLookups
		n.TotalVoids += c.n.TotalVoids
		if c.n.Record == nil && c.n.DNSErr == nil && !c.n.Loop {
			n.TotalVoids++ // an include or redirect to a name without a record
		}
	}
	// Keep the order of the record, not of the answers.
	sortByTerm(n)
	return n
}

var errTooManyMX = errors.New("more than 10 MX records (§4.6.4: a receiver gives permerror)")

// check resolves the target of an a, mx or exists term: its addresses
// (an mx's hosts' addresses), and whether the lookup counting as the
// term's own found nothing.
func (w *walker) check(ctx context.Context, t Term, target string) ([]netip.Addr, bool, error) {
	both := func(name string) ([]netip.Addr, error) {
		var addrs []netip.Addr
		for _, q := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			rrs, err := w.lookup(ctx, name, q)
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, rrAddrs(rrs)...)
		}
		return addrs, nil
	}
	switch t.Kind {
	case A:
		addrs, err := both(target)
		return addrs, err == nil && len(addrs) == 0, err
	case Exists:
		rrs, err := w.lookup(ctx, target, mdns.TypeA)
		return nil, err == nil && len(rrs) == 0, err
	}
	rrs, err := w.lookup(ctx, target, mdns.TypeMX)
	if err != nil || len(rrs) == 0 {
		return nil, err == nil, err
	}
	if len(rrs) > maxNames {
		return nil, false, errTooManyMX
	}
	var addrs []netip.Addr
	for _, rr := range rrs {
		mx, ok := rr.(*mdns.MX)
		if !ok || mx.Mx == "." {
			continue
		}
		a, err := both(strings.TrimSuffix(mx.Mx, "."))
		if err != nil {
			return nil, false, err
		}
		addrs = append(addrs, a...)
	}
	return addrs, false, nil
}

// sortByTerm orders the voids of n as their terms are written.
func sortByTerm(n *Node) {
	pos := map[string]int{}
	for i, t := range n.Record.Terms {
		if _, ok := pos[t.Text]; !ok {
			pos[t.Text] = i
		}
	}
	for i := 1; i < len(n.Voids); i++ {
		for j := i; j > 0 && pos[n.Voids[j]] < pos[n.Voids[j-1]]; j-- {
			n.Voids[j], n.Voids[j-1] = n.Voids[j-1], n.Voids[j]
		}
	}
}

// Nodes returns the tree's nodes, root first, depth first in the order of
// the terms.
func (t *Tree) Nodes() []*Node {
	var out []*Node
	var visit func(n *Node)
	visit = func(n *Node) {
		out = append(out, n)
		for _, c := range n.Children {
			visit(c)
		}
	}
	if t.Root != nil {
		visit(t.Root)
	}
	return out
}
