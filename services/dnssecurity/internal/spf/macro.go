package spf

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Where a macro-string stands decides what it may hold (RFC 7208 §7.1,
// §7.2): the letters c, r and t only in explanation text, spaces only
// there too.
type macroMode int

const (
	macroDomain  macroMode = iota // a domain-spec: letters slodipvh
	macroAny                      // an unknown modifier's value: any letter
	macroExplain                  // the explanation text of exp= (§6.2): any letter, spaces
)

// macroPart is a literal, one of the escapes %% %_ %-, or a macro
// %{letter digits r delimiters}.
type macroPart struct {
	lit    string // a literal, or what an escape stands for
	escape bool
	letter byte // lower case; 0 for literals and escapes
	upper  bool // an upper-case letter: URL-escape the value (§7.3)
	digits int  // keep this many right-hand parts; 0: all
	rev    bool
	delims string
}

func (p macroPart) macro() bool { return p.escape || p.letter != 0 }

// parseMacroString splits a macro-string into its parts, refusing any '%'
// not followed by '{', '%', '_' or '-' (§7.1) and letters not allowed in
// mode.
func parseMacroString(s string, mode macroMode) ([]macroPart, error) {
	var parts []macroPart
	lit := 0
	flush := func(i int) {
		if i > lit {
			parts = append(parts, macroPart{lit: s[lit:i]})
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' && mode != macroExplain || c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf("%q holds byte %q, not allowed here", s, c)
		}
		if c != '%' {
			i++
			continue
		}
		flush(i)
		if i+1 == len(s) {
			return nil, fmt.Errorf("%q ends with a lone %%: write %%%% for a percent sign", s)
		}
		switch s[i+1] {
		case '%':
			parts = append(parts, macroPart{lit: "%", escape: true})
			i += 2
		case '_':
			parts = append(parts, macroPart{lit: " ", escape: true})
			i += 2
		case '-':
			parts = append(parts, macroPart{lit: "%20", escape: true})
			i += 2
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("%q: macro %q is not closed by }", s, s[i:])
			}
			p, err := parseMacro(s[i+2:i+end], mode)
			if err != nil {
				return nil, fmt.Errorf("%q: macro %q: %w", s, s[i:i+end+1], err)
			}
			parts = append(parts, p)
			i += end + 1
		default:
			return nil, fmt.Errorf("%q: %q is not a macro: %% is followed by {, %%, _ or - (§7.1)", s, s[i:i+2])
		}
		lit = i
	}
	flush(len(s))
	if len(parts) == 0 {
		parts = append(parts, macroPart{})
	}
	return parts, nil
}

// parseMacro parses the inside of %{...}: a letter, digits, an optional
// r, then delimiters.
func parseMacro(s string, mode macroMode) (macroPart, error) {
	var p macroPart
	if s == "" {
		return p, fmt.Errorf("no macro letter")
	}
	l := s[0]
	p.upper = 'A' <= l && l <= 'Z'
	l |= 0x20
	switch {
	case strings.IndexByte("slodipvh", l) >= 0:
	case strings.IndexByte("crt", l) >= 0:
		if mode == macroDomain {
			return p, fmt.Errorf("the letter %c is allowed only in explanation text (§7.2)", s[0])
		}
	default:
		return p, fmt.Errorf("unknown macro letter %q", s[0])
	}
	p.letter = l
	i := 1
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i > 1 {
		n, err := strconv.Atoi(s[1:i])
		if err != nil || n > 1000 {
			n = 1000 // §7.3 asks for at least 128; more is all parts anyway
		}
		if n == 0 {
			return p, fmt.Errorf("the number of parts must not be 0 (§7.3)")
		}
		p.digits = n
	}
	if i < len(s) && s[i]|0x20 == 'r' {
		p.rev = true
		i++
	}
	for ; i < len(s); i++ {
		if strings.IndexByte(".-+,/_=", s[i]) < 0 {
			return p, fmt.Errorf("%q is not a delimiter (one of .-+,/_=)", s[i])
		}
	}
	p.delims = s[len(s)-countDelims(s):]
	return p, nil
}

func countDelims(s string) int {
	n := 0
	for n < len(s) && strings.IndexByte(".-+,/_=", s[len(s)-1-n]) >= 0 {
		n++
	}
	return n
}

// macroEnv holds what the macro letters stand for (§7.2).
type macroEnv struct {
	sender, local, senderDomain string // s, l, o
	domain                      string // d
	helo                        string // h
	ip                          netip.Addr
	receiver                    string    // r
	now                         time.Time // t
	// validated returns the validated domain name of ip (p), looked up
	// only when a macro asks for it.
	validated func() string
}

func (e *macroEnv) value(letter byte) string {
	switch letter {
	case 's':
		return e.sender
	case 'l':
		return e.local
	case 'o':
		return e.senderDomain
	case 'd':
		return e.domain
	case 'h':
		return e.helo
	case 'i':
		return dotted(e.ip)
	case 'c':
		return e.ip.String()
	case 'v':
		if e.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'p':
		if e.validated == nil {
			return "unknown"
		}
		return e.validated()
	case 'r':
		if e.receiver == "" {
			return "unknown"
		}
		return e.receiver
	case 't':
		now := e.now
		if now.IsZero() {
			now = time.Now()
		}
		return strconv.FormatInt(now.Unix(), 10)
	}
	return ""
}

// dotted is ip as the i macro has it: dotted quad for IPv4, dot-separated
// nibbles for IPv6 (§7.3).
func dotted(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789abcdef"
	b := make([]byte, 0, 63)
	for _, x := range ip.As16() {
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, hex[x>>4], '.', hex[x&0xf])
	}
	return string(b)
}

// expand writes the macro-string's parts with their values (§7.3):
// split on the delimiters, reversed, cut to the right-hand parts, joined
// with dots, URL-escaped for upper-case letters.
func (e *macroEnv) expand(parts []macroPart) string {
	var b strings.Builder
	for _, p := range parts {
		if p.letter == 0 {
			b.WriteString(p.lit)
			continue
		}
		v := e.value(p.letter)
		if p.delims != "" || p.rev || p.digits > 0 {
			delims := p.delims
			if delims == "" {
				delims = "."
			}
			fs := splitKeep(v, delims)
			if p.rev {
				slices.Reverse(fs)
			}
			if p.digits > 0 && p.digits < len(fs) {
				fs = fs[len(fs)-p.digits:]
			}
			v = strings.Join(fs, ".")
		}
		if p.upper {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

// splitKeep splits v on any of delims, keeping empty parts as §7.3 asks
// ("split into parts" at each delimiter).
func splitKeep(v, delims string) []string {
	var fs []string
	start := 0
	for i := 0; i < len(v); i++ {
		if strings.IndexByte(delims, v[i]) >= 0 {
			fs = append(fs, v[start:i])
			start = i + 1
		}
	}
	return append(fs, v[start:])
}

// urlEscape escapes every byte outside RFC 3986's unreserved set.
func urlEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// expandDomain expands a domain-spec into a name to look up: without its
// trailing dot, and cut from the left, label by label, to 253 characters
// (§7.3).
func (e *macroEnv) expandDomain(spec string) (string, error) {
	parts, err := parseMacroString(spec, macroDomain)
	if err != nil {
		return "", err
	}
	name := strings.TrimSuffix(e.expand(parts), ".")
	for len(name) > 253 {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			break
		}
		name = name[i+1:]
	}
	return name, nil
}
