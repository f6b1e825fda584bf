package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mailplane/mailplane/services/platform/dns"
	mdns "github.com/miekg/dns"
)

// Code is the result of an SPF evaluation (RFC 7208 §2.6).
type Code int

const (
	// None: no valid domain, or no SPF record.
	None Code = iota
	// Neutral: the domain states nothing about the address.
	Neutral
	// Pass: the address is authorized.
	Pass
	// Fail: the address is not authorized.
	Fail
	// SoftFail: probably not authorized.
	SoftFail
	// TempError: a DNS server failed; a later check may succeed.
	TempError
	// PermError: the records are broken; a person must fix them.
	PermError
)

func (c Code) String() string {
	switch c {
	case None:
		return "none"
	case Neutral:
		return "neutral"
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case SoftFail:
		return "softfail"
	case TempError:
		return "temperror"
	case PermError:
		return "permerror"
	}
	return fmt.Sprintf("code(%d)", int(c))
}

// qualifierCode maps a mechanism's qualifier to the result of its match
// (§4.6.2).
func qualifierCode(q byte) Code {
	switch q {
	case '-':
		return Fail
	case '~':
		return SoftFail
	case '?':
		return Neutral
	}
	return Pass
}

// Options are the parts of the SMTP session CheckHost may need besides the
// address and sender.
type Options struct {
	// HELO is the HELO/EHLO name (the h macro; the sender's domain when the
	// MAIL FROM is empty, §4.3).
	HELO string
	// Receiver is the name of the receiving host (the r macro, explanations
	// only); "unknown" when empty.
	Receiver string
	// Now is the time of the t macro (explanations only); the current time
	// when zero.
	Now time.Time
}

// Match says which term decided a result.
type Match struct {
	// Term is the term as written ("include:_spf.example.com").
	Term string
	// Domain is the domain whose record holds Term.
	Domain string
}

// Result is what CheckHost concludes.
type Result struct {
	Code Code
	// Explanation is given on Fail: the domain's exp= text (§6.2) when it
	// has one that can be read, else DefaultExplanation expanded.
	Explanation string
	// Matched is the term that decided, zero when none did (Neutral by
	// default, None, errors).
	Matched Match
	// Problem says why, for TempError and PermError.
	Problem string
	// Lookups is the number of DNS-querying terms evaluated (§4.6.4);
	// VoidLookups those of their lookups that answered no record.
	Lookups, VoidLookups int
	// Queries counts every DNS question asked, the p macro's included.
	Queries int
}

// DefaultExplanation is the explanation of a fail without a usable exp=.
const DefaultExplanation = "%{d} does not designate %{c} as a permitted sender"

// CheckHost evaluates whether ip may send mail for domain, as
// check_host() of RFC 7208 §4: sender is the MAIL FROM address ("" for
// the null sender: postmaster@HELO, §2.4), domain usually its domain or
// the HELO name.
//
// The limits of §4.6.4 apply: more than 10 DNS-querying terms, an mx with
// more than 10 names, or more than 2 lookups answering nothing give
// PermError; a ptr checks at most 10 names. An IPv4-mapped IPv6 address is
// an IPv4 address (§5).
func CheckHost(ctx context.Context, r Resolver, ip netip.Addr, domain, sender string, opt Options) Result {
	if sender == "" {
		sender = "postmaster@" + opt.HELO
	}
	local, dom := "postmaster", sender
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		local, dom = sender[:i], sender[i+1:]
		if local == "" {
			local = "postmaster"
		}
	}
	c := &checker{
		r:  r,
		ip: ip.Unmap(),
		env: macroEnv{
			sender:       local + "@" + dom,
			local:        local,
			senderDomain: dom,
			helo:         opt.HELO,
			ip:           ip.Unmap(),
			receiver:     opt.Receiver,
			now:          opt.Now,
		},
		validated: map[string]string{},
	}
	o := c.check(ctx, strings.TrimSuffix(domain, "."), true)
	res := Result{Code: o.code, Matched: o.match, Problem: o.problem, Lookups: c.lookups, VoidLookups: c.voids}
	if o.code == Fail {
		res.Explanation = c.explain(ctx, o)
	}
	res.Queries = c.queries
	return res
}

type checker struct {
	r         Resolver
	ip        netip.Addr
	env       macroEnv
	lookups   int
	voids     int
	queries   int
	validated map[string]string // the p macro's value per current domain
}

// outcome is the result of one check_host() level, with the record and
// domain that decided it (for exp=, §6.2: the record that produced the
// fail, a redirect's target rather than its source).
type outcome struct {
	code    Code
	match   Match
	problem string
	rec     *Record
	domain  string
}

// evalError stops an evaluation with TempError or PermError.
type evalError struct {
	code    Code
	problem string
}

func (e *evalError) Error() string { return e.problem }

func permErr(format string, args ...any) *evalError {
	return &evalError{PermError, fmt.Sprintf(format, args...)}
}

func errOutcome(err error) outcome {
	var e *evalError
	if errors.As(err, &e) {
		return outcome{code: e.code, problem: e.problem}
	}
	return outcome{code: TempError, problem: err.Error()}
}

// check is check_host() for one domain: top is false inside include,
// whose fail is no more than a mismatch.
func (c *checker) check(ctx context.Context, domain string, top bool) outcome {
	if !validDomain(domain) {
		return outcome{code: None, problem: fmt.Sprintf("%q is not a valid domain name (§4.3)", domain)}
	}
	rec, err := c.record(ctx, domain)
	if err != nil {
		return errOutcome(err)
	}
	if rec == nil {
		return outcome{code: None, problem: fmt.Sprintf("%s publishes no SPF record", domain)}
	}
	env := c.env
	env.domain = domain
	env.validated = func() string { return c.validatedName(ctx, domain) }
	for _, t := range rec.Terms {
		if !t.IsMechanism() {
			continue
		}
		if err := c.count(t); err != nil {
			return errOutcome(err)
		}
		ok, err := c.match(ctx, &env, domain, t)
		if err != nil {
			return errOutcome(err)
		}
		if ok {
			return outcome{code: qualifierCode(t.Qualifier), match: Match{t.Text, domain}, rec: rec, domain: domain}
		}
	}
	// §6.1: redirect applies when no mechanism matched and the record has
	// no "all".
	if t, ok := rec.Redirect(); ok && rec.AllIndex() < 0 {
		if err := c.count(t); err != nil {
			return errOutcome(err)
		}
		target, err := env.expandDomain(t.Domain)
		if err != nil {
			return errOutcome(permErr("%s in %s: %v", t.Text, domain, err))
		}
		o := c.check(ctx, target, top)
		if o.code == None {
			return outcome{code: PermError, problem: fmt.Sprintf("%s in %s: %s", t.Text, domain, o.problem)}
		}
		return o
	}
	return outcome{code: Neutral, rec: rec, domain: domain}
}

// count counts a DNS-querying term against the limit of §4.6.4.
func (c *checker) count(t Term) error {
	if !t.QueriesDNS() {
		return nil
	}
	c.lookups++
	if c.lookups > MaxLookups {
		return permErr("more than %d DNS-querying terms (include, a, mx, ptr, exists, redirect); the 11th is %s (§4.6.4)", MaxLookups, t.Text)
	}
	return nil
}

// record fetches and parses domain's SPF record: nil when it has none,
// PermError when it has several or one that does not parse (§4.5).
func (c *checker) record(ctx context.Context, domain string) (*Record, error) {
	rrs, err := c.query(ctx, domain, mdns.TypeTXT)
	if err != nil {
		return nil, err
	}
	recs, _ := spfRecords(rrs)
	switch len(recs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, permErr("%s publishes %d SPF records; it must publish one (§4.5)", domain, len(recs))
	}
	rec, err := Parse(recs[0])
	if err != nil {
		return nil, permErr("the SPF record of %s: %v", domain, err)
	}
	return rec, nil
}

// query asks one DNS question; a server failure is TempError (§5). Names
// that cannot be asked (a label over 63 bytes, an empty label: what a macro
// can produce) have no records.
func (c *checker) query(ctx context.Context, name string, qtype uint16) ([]mdns.RR, error) {
	if !askable(name) {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, &evalError{TempError, "the check ran out of time: " + err.Error()}
	}
	c.queries++
	rrs, err := c.r.Lookup(ctx, name, qtype)
	if err != nil {
		return nil, &evalError{TempError, err.Error()}
	}
	return rrs, nil
}

// void counts a lookup of a term that answered no record (§4.6.4).
func (c *checker) void(t Term, name string) error {
	c.voids++
	if c.voids > MaxVoidLookups {
		return permErr("more than %d lookups found nothing; the last, of %s for %s (§4.6.4)", MaxVoidLookups, name, t.Text)
	}
	return nil
}

func (c *checker) match(ctx context.Context, env *macroEnv, domain string, t Term) (bool, error) {
	switch t.Kind {
	case All:
		return true, nil
	case IP4:
		return c.ip.Is4() && t.Prefix.Contains(c.ip), nil
	case IP6:
		return c.ip.Is6() && t.Prefix.Contains(c.ip), nil
	}
	target := domain
	if t.Domain != "" {
		var err error
		if target, err = env.expandDomain(t.Domain); err != nil {
			return false, permErr("%s in %s: %v", t.Text, domain, err)
		}
	}
	switch t.Kind {
	case Include:
		o := c.check(ctx, target, false)
		switch o.code {
		case Pass:
			return true, nil
		case Fail, SoftFail, Neutral:
			return false, nil
		case TempError:
			return false, &evalError{TempError, o.problem}
		}
		return false, permErr("%s in %s: %s", t.Text, domain, o.problem)
	case A:
		addrs, err := c.addrs(ctx, target)
		if err != nil {
			return false, err
		}
		if len(addrs) == 0 {
			return false, c.void(t, target)
		}
		return c.inAny(addrs, t), nil
	case MX:
		rrs, err := c.query(ctx, target, mdns.TypeMX)
		if err != nil {
			return false, err
		}
		if len(rrs) == 0 {
			return false, c.void(t, target)
		}
		if len(rrs) > maxNames {
			return false, permErr("%s in %s: %s has %d MX records; at most %d are looked up (§4.6.4)", t.Text, domain, target, len(rrs), maxNames)
		}
		for _, rr := range rrs {
			mx, ok := rr.(*mdns.MX)
			if !ok || mx.Mx == "." {
				continue // a null MX (RFC 7505) names no host
			}
			addrs, err := c.addrs(ctx, mx.Mx)
			if err != nil {
				return false, err
			}
			if c.inAny(addrs, t) {
				return true, nil
			}
		}
		return false, nil
	case PTR:
		names, err := c.validatedNames(ctx)
		if err != nil {
			return false, nil // §5.5: a DNS error makes ptr not match
		}
		if names == nil {
			return false, c.void(t, "PTR")
		}
		for _, n := range names {
			if isSubdomain(n, target) {
				return true, nil
			}
		}
		return false, nil
	case Exists:
		rrs, err := c.query(ctx, target, mdns.TypeA)
		if err != nil {
			return false, err
		}
		if len(rrs) == 0 {
			return false, c.void(t, target)
		}
		return true, nil
	}
	return false, nil
}

// addrs returns name's addresses of the client's family (§5.3: A for an
// IPv4 client, AAAA for IPv6).
func (c *checker) addrs(ctx context.Context, name string) ([]netip.Addr, error) {
	qtype := mdns.TypeA
	if c.ip.Is6() {
		qtype = mdns.TypeAAAA
	}
	rrs, err := c.query(ctx, strings.TrimSuffix(name, "."), qtype)
	if err != nil {
		return nil, err
	}
	return rrAddrs(rrs), nil
}

func rrAddrs(rrs []mdns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		var ip netip.Addr
		switch rr := rr.(type) {
		case *mdns.A:
			ip, _ = netip.AddrFromSlice(rr.A.To4())
		case *mdns.AAAA:
			ip, _ = netip.AddrFromSlice(rr.AAAA.To16())
		default:
			continue
		}
		out = append(out, ip)
	}
	return out
}

// inAny reports whether the client is in the network of any of addrs with
// t's CIDR length.
func (c *checker) inAny(addrs []netip.Addr, t Term) bool {
	bits := t.CIDR4
	if c.ip.Is6() {
		bits = t.CIDR6
	}
	for _, a := range addrs {
		if a.Is4() != c.ip.Is4() {
			continue
		}
		if p, err := a.Prefix(bits); err == nil && p.Contains(c.ip) {
			return true
		}
	}
	return false
}

// validatedNames returns the client's validated names (§5.5): of the first
// 10 names its PTR records give, those whose addresses include it. nil:
// the PTR lookup found nothing.
func (c *checker) validatedNames(ctx context.Context) ([]string, error) {
	rev, err := mdns.ReverseAddr(c.ip.String())
	if err != nil {
		return nil, err
	}
	rrs, err := c.query(ctx, rev, mdns.TypePTR)
	if err != nil || len(rrs) == 0 {
		return nil, err
	}
	names := []string{}
	checked := 0
	for _, rr := range rrs {
		p, ok := rr.(*mdns.PTR)
		if !ok {
			continue
		}
		if checked++; checked > maxNames {
			break
		}
		addrs, err := c.addrs(ctx, p.Ptr)
		if err != nil {
			continue // §5.5: a name whose lookup fails is skipped
		}
		for _, a := range addrs {
			if a == c.ip {
				names = append(names, strings.TrimSuffix(p.Ptr, "."))
				break
			}
		}
	}
	return names, nil
}

// validatedName is the p macro (§7.3): a validated name of the client,
// preferably domain or one of its subdomains, else "unknown".
func (c *checker) validatedName(ctx context.Context, domain string) string {
	if v, ok := c.validated[domain]; ok {
		return v
	}
	v := "unknown"
	names, err := c.validatedNames(ctx)
	if err == nil && len(names) > 0 {
		v = names[0]
		for _, n := range names {
			if isSubdomain(n, domain) {
				v = n
				break
			}
		}
	}
	c.validated[domain] = v
	return v
}

// explain is the explanation of a fail (§6.2): the TXT record exp= names,
// expanded, or DefaultExplanation when there is no exp=, no single TXT
// record, or one that is not a valid explain-string. None of it counts
// against the limits.
func (c *checker) explain(ctx context.Context, o outcome) string {
	env := c.env
	env.domain = o.domain
	env.validated = func() string { return c.validatedName(ctx, o.domain) }
	def := func() string {
		parts, _ := parseMacroString(DefaultExplanation, macroExplain)
		return env.expand(parts)
	}
	if o.rec == nil {
		return def()
	}
	t, ok := o.rec.Exp()
	if !ok {
		return def()
	}
	name, err := env.expandDomain(t.Domain)
	if err != nil {
		return def()
	}
	rrs, err := c.query(ctx, name, mdns.TypeTXT)
	var txts []string
	for _, rr := range rrs {
		if txt, ok := rr.(*mdns.TXT); ok {
			txts = append(txts, dns.TXTValue(txt))
		}
	}
	if err != nil || len(txts) != 1 {
		return def()
	}
	parts, err := parseMacroString(txts[0], macroExplain)
	if err != nil {
		return def()
	}
	return env.expand(parts)
}

// validDomain reports whether d can be checked at all (§4.3): a name of
// at least two labels, each of 1 to 63 bytes, not an address literal.
func validDomain(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if !strings.Contains(d, ".") || strings.HasPrefix(d, "[") {
		return false
	}
	return askable(d)
}

// askable reports whether name fits in a DNS question: labels of 1 to 63
// bytes, 253 in all.
func askable(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 || strings.ContainsAny(name, `\`) {
		return false
	}
	for l := range strings.SplitSeq(name, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
	}
	return true
}

// isSubdomain reports whether name is parent or below it, ignoring case
// and trailing dots.
func isSubdomain(name, parent string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	parent = strings.ToLower(strings.TrimSuffix(parent, "."))
	return name == parent || strings.HasSuffix(name, "."+parent)
}
