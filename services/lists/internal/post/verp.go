package post

import (
	"strings"
)

// VERP returns the return path that names member in a copy sent from the
// list's bounces address (Variable Envelope Return Path, the qmail and
// Mailman convention): bounces local part, "+", the member's local part,
// "=", the member's domain, "@", the bounces domain.
//
//	VERP("team-bounces@example.com", "jane@example.org")
//	  = "team-bounces+jane=example.org@example.com"
//
// The member's local part keeps every atext character (RFC 5322 §3.2.3),
// "=" and "+" included, because UnVERP splits at the first "+" and the
// last "=" (a domain holds neither). Anything else (what only a quoted
// local part can hold, and "%" itself) is written %XX, so the result is
// always a dot-atom address; a "." that would follow another is escaped
// too. The member's domain is lower-cased (domains compare without case).
func VERP(bounces, member string) string {
	bl, bd, _ := strings.Cut(bounces, "@")
	at := strings.LastIndexByte(member, '@')
	ml, md := member, ""
	if at >= 0 {
		ml, md = member[:at], member[at+1:]
	}
	if len(ml) >= 2 && ml[0] == '"' && ml[len(ml)-1] == '"' {
		ml = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(ml[1 : len(ml)-1])
	}
	var b strings.Builder
	b.Grow(len(bounces) + len(member) + 8)
	b.WriteString(bl)
	b.WriteByte('+')
	prev := byte('+')
	for i := 0; i < len(ml); i++ {
		c := ml[i]
		if c != '%' && isAtext(c) || c == '.' && prev != '.' {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
		prev = c
	}
	b.WriteByte('=')
	b.WriteString(strings.ToLower(md))
	b.WriteByte('@')
	b.WriteString(bd)
	return b.String()
}

// UnVERP returns the member a VERP address names, and false when addr is
// not one (no "+" or "=" in its local part, an empty part, a bad escape).
// The member comes back as VERP received it, its domain lower-cased; a
// local part that needs quoting comes back quoted.
func UnVERP(addr string) (member string, ok bool) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "", false
	}
	local := addr[:at]
	plus := strings.IndexByte(local, '+')
	if plus <= 0 {
		return "", false
	}
	rest := local[plus+1:]
	eq := strings.LastIndexByte(rest, '=')
	if eq <= 0 || eq == len(rest)-1 {
		return "", false
	}
	ml, md := rest[:eq], rest[eq+1:]
	var b strings.Builder
	quote := false
	for i := 0; i < len(ml); i++ {
		c := ml[i]
		if c == '%' {
			if i+2 >= len(ml) {
				return "", false
			}
			hi, lo := unhex(ml[i+1]), unhex(ml[i+2])
			if hi < 0 || lo < 0 {
				return "", false
			}
			c = byte(hi<<4 | lo)
			i += 2
			if !isAtext(c) && c != '.' {
				quote = true
			}
		}
		b.WriteByte(c)
	}
	ml = b.String()
	if quote || strings.HasPrefix(ml, ".") || strings.HasSuffix(ml, ".") || strings.Contains(ml, "..") {
		ml = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(ml) + `"`
	}
	return ml + "@" + md, true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	}
	return -1
}
