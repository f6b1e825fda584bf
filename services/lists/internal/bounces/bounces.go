// Package bounces reads the delivery failures a bounce message reports.
//
// A bounce is what a mail server sends back when it could not deliver a
// message: a standard delivery status notification (RFC 3464, RFC 6533 for
// internationalized addresses), or one of the plain-text reports that
// servers wrote before DSNs existed and some still write (qmail, Exim,
// Postfix and Sendmail without DSN, Microsoft Exchange and Office 365,
// Gmail, Yahoo). Parse reads both; it does no I/O and keeps no state, so
// the lists service decides what a failure costs a member.
package bounces

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
)

// Failure is one recipient a bounce says could not be reached.
type Failure struct {
	// Recipient is the address the failure is about: the DSN's
	// Original-Recipient when it holds an address (the address as it was
	// sent, before any forwarding, so the one a list knows its member by),
	// else its Final-Recipient, else the address a text report names. The
	// domain is lower-cased; compare local parts case-insensitively too.
	Recipient string
	// Permanent is true when retrying will not help: a DSN's Action
	// "failed" with a 5.x.x status (or none), or a text report of a
	// failure. A "delayed" action, a 4.x.x status or a warning-only report
	// is temporary: the server is still trying, or gave up on a condition
	// that may pass (a full mailbox, a host that did not answer).
	Permanent bool
	// Status is the RFC 3463 enhanced status code, "5.1.1". When the
	// report gives none, it is derived from the SMTP reply code
	// ("550" gives "5.0.0") or from Permanent ("5.0.0" or "4.0.0").
	Status string
	// Diagnostic is what the remote server said, "550 5.1.1 user unknown",
	// without the DSN's diagnostic type ("smtp;") and unfolded to one line.
	Diagnostic string
	// Reported is when the failure happened, as best the bounce tells:
	// the DSN's Last-Attempt-Date, else its Arrival-Date, else the
	// bounce's Date. Zero when none can be read.
	Reported time.Time
}

// Limits on what Parse reads, so a hostile message costs bounded work.
const (
	maxDepth     = 8       // nested multiparts
	maxParts     = 64      // parts looked at in all
	maxPartBytes = 1 << 20 // bytes read from one part
	maxTextBytes = 1 << 20 // text kept for the plain-text formats
)

// Parse returns the failures the bounce msg reports, or nil, nil when msg
// is not a bounce (an auto-reply, a successful-delivery DSN, an ordinary
// message). A message/delivery-status (or message/global-delivery-status)
// part anywhere outside the returned original decides; without one, the
// plain-text formats are tried, but only on a message IsBounce accepts, so
// that a person's mail quoting a bounce does not count. An error means
// msg's header could not be read at all.
func Parse(msg []byte) ([]Failure, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !readable(e, err) {
		return nil, fmt.Errorf("read bounce header: %w", err)
	}
	h := mail.Header{Header: e.Header}
	date, _ := h.Date()

	var c collector
	c.walk(e, 0)

	if len(c.dsn) > 0 {
		var fs []Failure
		sawRecipient := false
		for _, d := range c.dsn {
			got, n := parseDSN(d, date)
			fs = append(fs, got...)
			sawRecipient = sawRecipient || n > 0
		}
		if sawRecipient {
			// A DSN naming recipients is the truth, even when it reports
			// only successes (then nothing failed). Text reports fill in a
			// diagnostic the DSN left out (Exchange often does).
			fillDiagnostics(fs, parseText(c.body(), date))
			return dedupe(fs), nil
		}
	}
	if !IsBounce(h) {
		return nil, nil
	}
	return dedupe(parseText(c.body(), date)), nil
}

// readable reports whether message.Read's err still left an entity to
// read: an unknown charset or transfer encoding gives the raw body, which
// serves for bounces (addresses and codes are ASCII).
func readable(e *message.Entity, err error) bool {
	return e != nil && (message.IsUnknownCharset(err) || message.IsUnknownEncoding(err))
}

// collector gathers, from a message's parts, the delivery-status parts and
// the human-readable text.
type collector struct {
	dsn   [][]byte
	text  strings.Builder
	html  strings.Builder // used when no part is text/plain
	parts int
}

func (c *collector) walk(e *message.Entity, depth int) {
	if c.parts >= maxParts || depth > maxDepth {
		return
	}
	c.parts++
	t, _, _ := e.Header.ContentType()
	t = strings.ToLower(t)
	if mr := e.MultipartReader(); mr != nil {
		for c.parts < maxParts {
			p, err := mr.NextPart()
			if p == nil || (err != nil && !readable(p, err)) {
				break // the end, or a broken part: keep what was read
			}
			c.walk(p, depth+1)
		}
		return
	}
	if disp, _, _ := e.Header.ContentDisposition(); strings.EqualFold(disp, "attachment") && strings.HasPrefix(t, "text/") {
		return // an attached file, not the report's words
	}
	switch t {
	case "message/delivery-status", "message/global-delivery-status":
		b, _ := readAll(e)
		c.dsn = append(c.dsn, b)
	case "text/plain", "":
		b, _ := readAll(e)
		appendCapped(&c.text, string(b))
	case "text/html":
		if c.text.Len() == 0 {
			b, _ := readAll(e)
			appendCapped(&c.html, htmlText(string(b)))
		}
	}
	// message/rfc822, text/rfc822-headers and the like are the returned
	// original: never read, or its recipients would look like failures.
}

// body is the report's text: its plain-text parts, else its HTML ones.
func (c *collector) body() string {
	if c.text.Len() > 0 {
		return c.text.String()
	}
	return c.html.String()
}

func readAll(e *message.Entity) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(io.LimitReader(e.Body, maxPartBytes))
	return b.Bytes(), err
}

func appendCapped(b *strings.Builder, s string) {
	if room := maxTextBytes - b.Len(); room > 0 {
		if len(s) > room {
			s = s[:room]
		}
		b.WriteString(s)
		b.WriteString("\n")
	}
}

// fillDiagnostics gives a DSN failure without a diagnostic the one a text
// report of the same message gives for the same recipient.
func fillDiagnostics(fs, text []Failure) {
	for i := range fs {
		if fs[i].Diagnostic != "" {
			continue
		}
		for _, t := range text {
			if strings.EqualFold(t.Recipient, fs[i].Recipient) && t.Diagnostic != "" {
				fs[i].Diagnostic = t.Diagnostic
				break
			}
		}
	}
}

// dedupe keeps the first failure reported for each recipient: a bounce
// may name an address twice (several DSN parts, or text and DSN).
func dedupe(fs []Failure) []Failure {
	if len(fs) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(fs))
	out := fs[:0]
	for _, f := range fs {
		k := strings.ToLower(f.Recipient)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}
