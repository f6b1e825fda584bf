package dns

import (
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// TXTValue returns a TXT record's value as published: its strings joined
// (RFC 7208 3.3, RFC 6376 3.6.2.2), each unescaped (TXTParts).
func TXTValue(t *mdns.TXT) string { return strings.Join(TXTParts(t), "") }

// TXTValues returns the values of the TXT records among rrs.
func TXTValues(rrs []mdns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			out = append(out, TXTValue(t))
		}
	}
	return out
}

// TXTParts returns a TXT record's strings as published: miekg/dns holds
// them in presentation form, with `"` and `\` escaped and bytes outside
// printable ASCII as \DDD.
func TXTParts(t *mdns.TXT) []string {
	out := make([]string, len(t.Txt))
	for i, s := range t.Txt {
		out[i] = unescape(s)
	}
	return out
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			if n := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0'); n < 256 {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		i++
		b.WriteByte(s[i])
	}
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// TXTStrings cuts value into the strings of a TXT record, 255 bytes at
// most each, in the presentation form mdns.TXT.Txt takes: what TXTValue
// reads back as value.
func TXTStrings(value string) []string {
	var out []string
	for {
		n := min(len(value), 255)
		out = append(out, escapeTXT(value[:n]))
		value = value[n:]
		if value == "" {
			return out
		}
	}
}

// escapeTXT writes s in presentation form: quotes and backslashes
// escaped, bytes outside printable ASCII as \DDD.
func escapeTXT(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
