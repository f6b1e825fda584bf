// Package sieve writes Sieve scripts (RFC 5228) for the mail server,
// Dovecot's Pigeonhole: strings escaped so that what a person typed can
// never end a string early or add a command, and the auto-reply's
// vacation script (RFC 5230). The filters service's rule compiler builds
// on the same escaping.
package sieve

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Quote returns s as a Sieve quoted string: between double quotes, with
// every double quote and backslash escaped by a backslash, the only escape
// Sieve has. It refuses what a one-line string cannot hold: a NUL (which
// Pigeonhole rejects), a CR or LF (a quoted string may span lines, but
// filters and subjects are one line), or bytes that are not UTF-8 (Sieve
// compares text as UTF-8).
func Quote(s string) (string, error) {
	if err := check(s, false); err != nil {
		return "", fmt.Errorf("sieve quoted string: %w", err)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String(), nil
}

// Text returns s as a Sieve multi-line string: "text:", its lines, and a
// line holding only "."; a line of s starting with "." gets one more
// (dot-stuffing), so that no line of s ends the string early. Backslashes
// and quotes need no escaping there. Lines end in "\n", which Pigeonhole
// takes for CRLF; CRLF in s is read as "\n", and s always ends with a line
// break in the script (the empty string is one empty line). It refuses a
// NUL, a CR not followed by LF, and bytes that are not UTF-8.
func Text(s string) (string, error) {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if err := check(s, true); err != nil {
		return "", fmt.Errorf("sieve multi-line string: %w", err)
	}
	var b strings.Builder
	b.Grow(len(s) + 10)
	b.WriteString("text:\n")
	for line := range strings.SplitSeq(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	b.WriteString(".\n")
	return b.String(), nil
}

// check reports the first character of s that a Sieve string cannot hold;
// LF is allowed in a multi-line one.
func check(s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not UTF-8")
	}
	for i, r := range s {
		if r == 0 || r == '\r' || r == '\n' && !multiline {
			return fmt.Errorf("character %s at byte %d", strconv.QuoteRune(r), i)
		}
	}
	return nil
}

// Vacation is an out-of-office answer.
type Vacation struct {
	// Subject of the answer; empty: the mail server's ("Auto: " and the
	// original subject).
	Subject string
	// Message is the answer's text.
	Message string
	// Start and End bound when it answers, by the mail server's clock;
	// zero: from any time, until turned off.
	Start, End time.Time
	// Days is how long before the same sender is answered again; below 1,
	// DefaultDays.
	Days int
}

// DefaultDays is RFC 5230's interval between answers to one sender.
const DefaultDays = 7

// Script returns the script answering mail with v at time now: the
// "vacation" action (RFC 5230), which Pigeonhole sends at most once per
// sender per :days, guarded by the start and end times with "currentdate"
// (RFC 5260) compared in UTC as ISO 8601 text, which orders as time does.
// The mail server's clock decides, so a script installed early starts on
// time. It is "" when there is nothing left to answer: End has passed at
// now. An error says which field a Sieve string cannot hold (see Quote and
// Text).
func (v Vacation) Script(now time.Time) (string, error) {
	if !v.End.IsZero() && !v.End.After(now) {
		return "", nil
	}
	var guards []string
	for _, g := range []struct {
		at time.Time
		op string
	}{{v.Start, "ge"}, {v.End, "lt"}} {
		if g.at.IsZero() {
			continue
		}
		// A timestamp is always a valid string.
		at, _ := Quote(g.at.UTC().Format("2006-01-02T15:04:05Z"))
		guards = append(guards, `currentdate :zone "+0000" :value "`+g.op+`" "iso8601" `+at)
	}
	days := v.Days
	if days < 1 {
		days = DefaultDays
	}
	action := fmt.Sprintf("vacation :days %d", days)
	if v.Subject != "" {
		subject, err := Quote(v.Subject)
		if err != nil {
			return "", fmt.Errorf("vacation subject: %w", err)
		}
		action += " :subject " + subject
	}
	message, err := Text(v.Message)
	if err != nil {
		return "", fmt.Errorf("vacation message: %w", err)
	}
	action += " " + message + ";\n"

	var b strings.Builder
	b.WriteString(`require ["vacation", "date", "relational"];` + "\n\n")
	switch len(guards) {
	case 0:
		b.WriteString(action)
	case 1:
		b.WriteString("if " + guards[0] + " {\n" + action + "}\n")
	case 2:
		b.WriteString("if allof (" + guards[0] + ",\n          " + guards[1] + ") {\n" + action + "}\n")
	}
	return b.String(), nil
}
