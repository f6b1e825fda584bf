package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is what a term is: one of the eight mechanisms (RFC 7208 §5) or a
// modifier (§6).
type Kind int

const (
	All Kind = iota
	Include
	A
	MX
	PTR
	IP4
	IP6
	Exists
	// Redirect, Exp and Unknown are modifiers.
	Redirect
	Exp
	Unknown
)

var kindNames = [...]string{"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists", "redirect", "exp", "unknown"}

func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
	return kindNames[k]
}

// Term is one mechanism or modifier of a record.
type Term struct {
	// Text is the term as written in the record.
	Text string
	// Pos is the term's column in the record, from 1.
	Pos  int
	Kind Kind
	// Qualifier of a mechanism: '+' (the default when none is written),
	// '-', '~' or '?'. Zero for modifiers.
	Qualifier byte
	// Domain is the domain-spec of include, a, mx, ptr, exists, redirect
	// and exp, a macro-string not yet expanded (§7); empty for a, mx and ptr
	// without one: the current domain.
	Domain string
	// Prefix is the network of ip4 and ip6.
	Prefix netip.Prefix
	// CIDR4 and CIDR6 are the dual-cidr-length of a and mx (§5.6): 32 and
	// 128 when not written.
	CIDR4, CIDR6 int
	// Name and Value of an unknown modifier (kept, ignored by evaluation,
	// §6).
	Name, Value string
}

// IsMechanism reports whether t is a mechanism rather than a modifier.
func (t Term) IsMechanism() bool { return t.Kind < Redirect }

// QueriesDNS reports whether t counts against the limit of 10 DNS-querying
// terms (§4.6.4): include, a, mx, ptr, exists and redirect.
func (t Term) QueriesDNS() bool {
	switch t.Kind {
	case Include, A, MX, PTR, Exists, Redirect:
		return true
	}
	return false
}

// Record is a parsed SPF record.
type Record struct {
	// Terms are the mechanisms and modifiers in the order written.
	Terms []Term
}

// Redirect returns the record's redirect modifier, if any.
func (r *Record) Redirect() (Term, bool) { return r.modifier(Redirect) }

// Exp returns the record's exp modifier, if any.
func (r *Record) Exp() (Term, bool) { return r.modifier(Exp) }

func (r *Record) modifier(k Kind) (Term, bool) {
	for _, t := range r.Terms {
		if t.Kind == k {
			return t, true
		}
	}
	return Term{}, false
}

// AllIndex returns the index in Terms of the first all mechanism, -1 when
// there is none.
func (r *Record) AllIndex() int {
	for i, t := range r.Terms {
		if t.Kind == All {
			return i
		}
	}
	return -1
}

// String is the record as text, each term as written.
func (r *Record) String() string {
	var b strings.Builder
	b.WriteString("v=spf1")
	for _, t := range r.Terms {
		b.WriteByte(' ')
		b.WriteString(t.Text)
	}
	return b.String()
}

// SyntaxError is a record that does not follow the grammar of RFC 7208
// §12; evaluating it gives permerror.
type SyntaxError struct {
	// Term is the offending term, empty when the record as a whole is
	// wrong.
	Term string
	// Pos is the column of Term in the record, from 1.
	Pos    int
	Reason string
}

func (e *SyntaxError) Error() string {
	if e.Term == "" {
		return "spf record: " + e.Reason
	}
	return fmt.Sprintf("spf term %q at column %d: %s", e.Term, e.Pos, e.Reason)
}

// Parse parses an SPF record (§4.5, §4.6, §12): "v=spf1" then terms
// separated by spaces. Every term is checked, including those after "all"
// (§4.6: syntax errors anywhere in the record count), as are macro-strings
// (§7.1) and CIDR lengths (§5.6).
func Parse(record string) (*Record, error) {
	for i := 0; i < len(record); i++ {
		if c := record[i]; c < 0x20 || c > 0x7e {
			return nil, &SyntaxError{Pos: i + 1, Reason: fmt.Sprintf("byte 0x%02x at column %d: records are printable ASCII, terms separated by spaces (§3.1, §4.6.1)", c, i+1)}
		}
	}
	if !isSPF(record) {
		return nil, &SyntaxError{Reason: `a record starts with "v=spf1" followed by a space or its end (§4.5)`}
	}
	rec := &Record{}
	seen := map[Kind]bool{}
	pos := len("v=spf1")
	for pos < len(record) {
		if record[pos] == ' ' {
			pos++
			continue
		}
		end := strings.IndexByte(record[pos:], ' ')
		if end < 0 {
			end = len(record)
		} else {
			end += pos
		}
		t, err := parseTerm(record[pos:end])
		if err != nil {
			return nil, &SyntaxError{Term: record[pos:end], Pos: pos + 1, Reason: err.Error()}
		}
		t.Pos = pos + 1
		if t.Kind == Redirect || t.Kind == Exp {
			if seen[t.Kind] {
				return nil, &SyntaxError{Term: t.Text, Pos: t.Pos, Reason: fmt.Sprintf("%s appears more than once (§6)", t.Kind)}
			}
			seen[t.Kind] = true
		}
		rec.Terms = append(rec.Terms, t)
		pos = end
	}
	return rec, nil
}

func parseTerm(s string) (Term, error) {
	t := Term{Text: s}
	body := s
	if strings.IndexByte("+-~?", s[0]) >= 0 {
		t.Qualifier = s[0]
		body = s[1:]
	}
	i := strings.IndexAny(body, ":/=")
	if i >= 0 && body[i] == '=' {
		if t.Qualifier != 0 {
			return t, fmt.Errorf("a modifier takes no qualifier")
		}
		return parseModifier(t, body[:i], body[i+1:])
	}
	if t.Qualifier == 0 {
		t.Qualifier = '+'
	}
	name, rest := body, ""
	if i >= 0 {
		name, rest = body[:i], body[i:]
	}
	switch strings.ToLower(name) {
	case "all":
		t.Kind = All
		if rest != "" {
			return t, fmt.Errorf(`"all" takes no argument`)
		}
	case "include", "exists":
		t.Kind = Include
		if strings.EqualFold(name, "exists") {
			t.Kind = Exists
		}
		if !strings.HasPrefix(rest, ":") {
			return t, fmt.Errorf(`%s needs ":" and a domain`, t.Kind)
		}
		t.Domain = rest[1:]
		if err := checkDomainSpec(t.Domain); err != nil {
			return t, err
		}
	case "a", "mx":
		t.Kind = A
		if strings.EqualFold(name, "mx") {
			t.Kind = MX
		}
		arg, colon := strings.CutPrefix(rest, ":")
		dom, c4, c6, err := cutDualCIDR(arg)
		if err != nil {
			return t, err
		}
		t.CIDR4, t.CIDR6 = c4, c6
		if colon {
			t.Domain = dom
			if err := checkDomainSpec(dom); err != nil {
				return t, err
			}
		} else if dom != "" {
			return t, fmt.Errorf("%q is not a CIDR length (/N for IPv4, //N for IPv6)", dom)
		}
	case "ptr":
		t.Kind = PTR
		if rest != "" {
			if rest[0] != ':' {
				return t, fmt.Errorf(`ptr takes only ":" and a domain, no CIDR length`)
			}
			t.Domain = rest[1:]
			if err := checkDomainSpec(t.Domain); err != nil {
				return t, err
			}
		}
	case "ip4", "ip6":
		t.Kind = IP4
		bits := 32
		if strings.EqualFold(name, "ip6") {
			t.Kind, bits = IP6, 128
		}
		arg, ok := strings.CutPrefix(rest, ":")
		if !ok || arg == "" {
			return t, fmt.Errorf(`%s needs ":" and an address`, t.Kind)
		}
		addr, length := arg, bits
		if j := strings.LastIndexByte(arg, '/'); j >= 0 {
			n, err := cidrLength(arg[j+1:], bits)
			if err != nil {
				return t, err
			}
			addr, length = arg[:j], n
		}
		ip, err := netip.ParseAddr(addr)
		if err != nil || ip.Zone() != "" || (t.Kind == IP4) != ip.Is4() {
			return t, fmt.Errorf("%q is not an %s address", addr, map[Kind]string{IP4: "IPv4", IP6: "IPv6"}[t.Kind])
		}
		t.Prefix = netip.PrefixFrom(ip, length).Masked()
	default:
		if strings.EqualFold(name, "redirect") || strings.EqualFold(name, "exp") {
			return t, fmt.Errorf(`%s is a modifier, written %s=domain`, strings.ToLower(name), strings.ToLower(name))
		}
		return t, fmt.Errorf("unknown mechanism %q", name)
	}
	return t, nil
}

func parseModifier(t Term, name, value string) (Term, error) {
	switch {
	case strings.EqualFold(name, "redirect"), strings.EqualFold(name, "exp"):
		t.Kind = Redirect
		if strings.EqualFold(name, "exp") {
			t.Kind = Exp
		}
		if value == "" {
			return t, fmt.Errorf("%s= needs a domain", t.Kind)
		}
		t.Domain = value
		return t, checkDomainSpec(value)
	}
	if !validName(name) {
		return t, fmt.Errorf("%q is not a modifier name (a letter, then letters, digits, -, _ or .)", name)
	}
	t.Kind, t.Name, t.Value = Unknown, name, value
	if _, err := parseMacroString(value, macroAny); err != nil {
		return t, err
	}
	return t, nil
}

func validName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// cutDualCIDR splits "domain/N//M" into its parts; absent lengths are 32
// and 128 (§5.6).
func cutDualCIDR(s string) (rest string, c4, c6 int, err error) {
	c4, c6 = 32, 128
	if i := strings.LastIndex(s, "//"); i >= 0 && allDigits(s[i+2:]) {
		if c6, err = cidrLength(s[i+2:], 128); err != nil {
			return "", 0, 0, err
		}
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '/'); i >= 0 && allDigits(s[i+1:]) {
		if c4, err = cidrLength(s[i+1:], 32); err != nil {
			return "", 0, 0, err
		}
		s = s[:i]
	}
	return s, c4, c6, nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// cidrLength parses a CIDR length of at most max bits, without leading
// zeros (§5.6 forbids them in addresses; the test suite, in lengths too).
func cidrLength(s string, max int) (int, error) {
	if !allDigits(s) || (len(s) > 1 && s[0] == '0') || len(s) > 3 {
		return 0, fmt.Errorf("%q is not a CIDR length", "/"+s)
	}
	n, _ := strconv.Atoi(s)
	if n > max {
		return 0, fmt.Errorf("CIDR length /%d is longer than %d bits", n, max)
	}
	return n, nil
}

// checkDomainSpec checks a domain-spec (§7.1): a macro-string without the
// letters c, r and t (§7.2: explanations only), ending in a macro or in a
// dot and a top label that is not all digits.
func checkDomainSpec(s string) error {
	if s == "" {
		return fmt.Errorf("the domain is empty")
	}
	parts, err := parseMacroString(s, macroDomain)
	if err != nil {
		return err
	}
	if last := parts[len(parts)-1]; last.macro() {
		return nil
	}
	name := strings.TrimSuffix(s, ".")
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return fmt.Errorf("%q is not a domain: it needs at least two labels", s)
	}
	if top := name[i+1:]; !validTopLabel(top) {
		return fmt.Errorf("%q is not a domain: its last label %q must be letters, digits and inner dashes, not all digits", s, top)
	}
	return nil
}

func validTopLabel(s string) bool {
	if s == "" || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	alpha := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			alpha = true
		case isDigit(c), c == '-':
		default:
			return false
		}
	}
	return alpha || strings.Contains(s, "-")
}
