package bounces

import (
	"net/mail"
	"strconv"
	"strings"
	"time"
)

// field is one "Name: value" line of a delivery-status part, its name
// lower-cased and its continuation lines unfolded.
type field struct{ name, value string }

// group is one block of fields: the per-message fields, then one block
// per recipient (RFC 3464 section 2.1).
type group []field

func (g group) get(name string) string {
	for _, f := range g {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// parseDSN reads a message/delivery-status or message/global-delivery-status
// body. It returns the failed and delayed recipients, and how many recipient
// blocks it saw (a DSN may report only successes). date is the bounce's
// Date, used when the DSN gives no date of its own.
func parseDSN(body []byte, date time.Time) ([]Failure, int) {
	groups := splitGroups(string(body))
	if len(groups) == 0 {
		return nil, 0
	}
	// The per-message block comes first; Arrival-Date lives there. Broken
	// DSNs without the blank line after it have it in the first recipient
	// block, where get finds it too.
	arrival := parseDate(groups[0].get("arrival-date"))
	var fs []Failure
	n := 0
	for _, g := range groups {
		final, orig := g.get("final-recipient"), g.get("original-recipient")
		if final == "" && orig == "" {
			continue
		}
		n++
		rcpt := dsnAddress(orig)
		if rcpt == "" {
			rcpt = dsnAddress(final)
		}
		if rcpt == "" {
			continue
		}
		action := strings.ToLower(firstWord(g.get("action")))
		diag := diagnostic(g.get("diagnostic-code"))
		status := findStatus(g.get("status"))
		if status == "" {
			status = findStatus(diag)
		}
		var permanent bool
		switch action {
		case "delivered", "relayed", "expanded":
			continue // not a failure
		case "delayed":
			permanent = false
		case "failed":
			permanent = !strings.HasPrefix(status, "4.")
		default: // missing or unknown: the status decides
			switch {
			case strings.HasPrefix(status, "5."):
				permanent = true
			case strings.HasPrefix(status, "4."):
				permanent = false
			default:
				continue
			}
		}
		if want := defaultStatus(permanent)[:2]; !strings.HasPrefix(status, want) {
			// Missing, or at odds with the action ("failed" with 2.0.0):
			// the status must say what Permanent says.
			status = defaultStatus(permanent)
		}
		when := parseDate(g.get("last-attempt-date"))
		if when.IsZero() {
			when = arrival
		}
		if when.IsZero() {
			when = date
		}
		fs = append(fs, Failure{Recipient: rcpt, Permanent: permanent, Status: status, Diagnostic: diag, Reported: when})
	}
	return fs, n
}

// splitGroups splits a delivery-status body into its blocks of fields.
// Blocks are separated by blank lines; a field repeated within a block
// also starts a new one, since some servers forget the blank line between
// recipients. Lines that are not fields are skipped.
func splitGroups(s string) []group {
	var groups []group
	var cur group
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, cur)
		}
		cur = nil
	}
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if len(cur) > 0 {
				cur[len(cur)-1].value += " " + strings.TrimSpace(line)
			}
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || strings.ContainsAny(name, " \t") {
				continue
			}
			name = strings.ToLower(name)
			if cur.get(name) != "" {
				flush()
			}
			cur = append(cur, field{name: name, value: strings.TrimSpace(value)})
		}
	}
	flush()
	return groups
}

// dsnAddress reads the address of a Final-Recipient or Original-Recipient
// value, "rfc822; user@example.com" (RFC 3464 section 2.3.1), or
// "utf-8; ..." with RFC 6533's \x{HEX} escapes. It returns "" when the
// value holds no address.
func dsnAddress(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		addr, typ = typ, "" // the type is often missing in the wild
	}
	typ = strings.ToLower(strings.TrimSpace(typ))
	if typ != "" && typ != "rfc822" && typ != "utf-8" {
		return "" // an X.400 or unknown address: nothing a list can match
	}
	addr = strings.TrimSpace(addr)
	if typ == "utf-8" {
		addr = unescapeUTF8(addr)
	}
	return cleanAddress(addr)
}

// cleanAddress trims what surrounds an address in reports (angle brackets,
// quotes, a trailing colon or dot), checks that it looks like one (a local
// part, "@", a domain, no spaces) and lower-cases its domain. It returns
// "" for anything else.
func cleanAddress(a string) string {
	a = strings.TrimSpace(a)
	if strings.HasPrefix(strings.ToLower(a), "mailto:") {
		a = a[len("mailto:"):]
	}
	a = strings.Trim(a, "<>\"'[](),;:.")
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || strings.ContainsAny(a, " \t<>()[],;\"") {
		return ""
	}
	domain := a[at+1:]
	if !strings.Contains(domain, ".") && !strings.EqualFold(domain, "localhost") {
		return ""
	}
	return a[:at+1] + strings.ToLower(domain)
}

// unescapeUTF8 decodes RFC 6533's embedded-unicode escapes, "\x{E9}".
func unescapeUTF8(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, `\x{`)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		n, err := strconv.ParseUint(s[i+3:i+end], 16, 32)
		if err != nil || n > 0x10FFFF {
			b.WriteString(s[:i+end+1])
		} else {
			b.WriteString(s[:i])
			b.WriteRune(rune(n))
		}
		s = s[i+end+1:]
	}
}

// diagnostic strips the diagnostic type from a Diagnostic-Code value,
// "smtp; 550 5.1.1 user unknown" (RFC 3464 section 2.3.6); the types in
// the wild are single words (smtp, X-Postfix, X-Unix).
func diagnostic(v string) string {
	if typ, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") {
		v = rest
	}
	return strings.Join(strings.Fields(v), " ")
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// parseDate reads an RFC 5322 date, as DSN date fields are; zero when
// missing or unreadable.
func parseDate(v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := mail.ParseDate(v)
	if err != nil {
		return time.Time{}
	}
	return t
}
