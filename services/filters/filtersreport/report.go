// Package filtersreport is the spam report a mail server sends the
// filters service when a customer moves a message into Spam (spam) or
// out of it (ham) over IMAP: the wire format both sides share, and
// `mailplane report`, the program Dovecot's imapsieve pipes the message
// to (deploy/mail/dovecot/sieve-pipe/mailplane-report).
//
// The program runs on the mail server and sends only a description of
// the message (Message-ID, From, Subject, its SHA-256 and size, the spam
// filters' headers), never its body, as JSON over HTTP to the filters
// service's report listener (report-addr), which only the mail servers
// may reach (docs/filters.md, "Spam reports").
package filtersreport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mailplane/mailplane/services/platform/config"
)

// Path is where the report listener takes reports (POST, JSON). It
// answers 204 when the report is recorded, 400 naming the field of a bad
// one, 404 for an address it does not know, 429 past the address's
// hourly cap.
const Path = "/v1/spamReports"

// Caps of a report, which the service checks and Describe keeps to.
const (
	// MaxField bounds message_id, from, subject and a header's value in
	// bytes (RFC 5322's line length).
	MaxField = 998
	// MaxSpamHeaders bounds the spam headers a report carries.
	MaxSpamHeaders = 20
	// MaxBody bounds a report's JSON.
	MaxBody = 64 << 10
	// maxHeaderBytes bounds the header section Describe reads; the rest
	// is hashed, not read into memory.
	maxHeaderBytes = 256 << 10
)

// Verdicts.
const (
	Spam = "spam"
	Ham  = "ham"
)

// Report describes a message a customer moved into or out of Spam.
type Report struct {
	// Login is the address as Dovecot knows it (local@domain).
	Login string `json:"login"`
	// Verdict is Spam or Ham.
	Verdict     string   `json:"verdict"`
	MessageID   string   `json:"messageId"`
	From        string   `json:"from"`
	Subject     string   `json:"subject"`
	SHA256      string   `json:"sha256"`
	Size        int64    `json:"size"`
	SpamHeaders []Header `json:"spamHeaders"`
}

// Header is one header field of the message.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// FieldError is a report's bad field.
type FieldError struct{ Field, Description string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Description }

// Check returns a *FieldError for the first field of r outside the
// caps, or one the service cannot store (invalid UTF-8, NUL).
func (r *Report) Check() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{field, fmt.Sprintf(format, args...)}
	}
	if r.Verdict != Spam && r.Verdict != Ham {
		return bad("verdict", "want spam or ham, got %q", r.Verdict)
	}
	if r.Login == "" || len(r.Login) > 320 || !strings.Contains(r.Login, "@") || !clean(r.Login) {
		return bad("login", "want an address, got %q", short(r.Login))
	}
	for _, f := range []struct{ name, v string }{{"messageId", r.MessageID}, {"from", r.From}, {"subject", r.Subject}} {
		if len(f.v) > MaxField || !clean(f.v) {
			return bad(f.name, "at most %d bytes of UTF-8 without control characters", MaxField)
		}
	}
	if _, err := hex.DecodeString(r.SHA256); err != nil || len(r.SHA256) != 2*sha256.Size {
		return bad("sha256", "want 64 hex digits")
	}
	if r.Size < 0 {
		return bad("size", "want 0 or more, got %d", r.Size)
	}
	if len(r.SpamHeaders) > MaxSpamHeaders {
		return bad("spamHeaders", "at most %d", MaxSpamHeaders)
	}
	for i, h := range r.SpamHeaders {
		if h.Name == "" || len(h.Name) > 76 || !clean(h.Name) || strings.ContainsAny(h.Name, ": ") {
			return bad(fmt.Sprintf("spamHeaders[%d].name", i), "want a header name")
		}
		if len(h.Value) > MaxField || !clean(h.Value) {
			return bad(fmt.Sprintf("spamHeaders[%d].value", i), "at most %d bytes of UTF-8 without control characters", MaxField)
		}
	}
	return nil
}

// clean says s is UTF-8 without control characters but tab.
func clean(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Describe reads a whole message from r and returns its report, without
// Login and Verdict. The header section is read up to 256 KiB; the rest
// only passes through the hash.
func Describe(r io.Reader) (Report, error) {
	h := sha256.New()
	n := &counter{r: io.TeeReader(r, h)}
	br := bufio.NewReader(n)
	var head []byte
	partial := false // the last read ended within a long line
	for len(head) < maxHeaderBytes {
		line, err := br.ReadSlice('\n')
		if !partial && len(bytes.TrimRight(line, "\r\n")) == 0 {
			break // the blank line, or the end
		}
		head = append(head, line...)
		partial = errors.Is(err, bufio.ErrBufferFull)
		if err != nil && !partial {
			break
		}
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return Report{}, fmt.Errorf("read message: %w", err)
	}
	rep := Report{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n.n, SpamHeaders: []Header{}}
	for _, f := range fields(head) {
		name := strings.ToLower(f.Name)
		switch {
		case name == "message-id" && rep.MessageID == "":
			rep.MessageID = fit(f.Value)
		case name == "from" && rep.From == "":
			rep.From = fit(decode(f.Value))
		case name == "subject" && rep.Subject == "":
			rep.Subject = fit(decode(f.Value))
		case strings.HasPrefix(name, "x-spam") || strings.HasPrefix(name, "x-rspamd"):
			if len(rep.SpamHeaders) < MaxSpamHeaders && len(f.Name) <= 76 && clean(f.Name) {
				rep.SpamHeaders = append(rep.SpamHeaders, Header{f.Name, fit(f.Value)})
			}
		}
	}
	return rep, nil
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// fields splits a header section into unfolded fields; lines that are
// not fields are skipped (a report is best effort, never refused for a
// malformed message).
func fields(head []byte) []Header {
	var out []Header
	for _, line := range strings.Split(string(head), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(out) > 0 && len(out[len(out)-1].Value) < 4*MaxField {
				out[len(out)-1].Value += " " + strings.TrimSpace(line)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			continue
		}
		out = append(out, Header{name, strings.TrimSpace(value)})
	}
	return out
}

// decode decodes RFC 2047 words, or keeps s as it is.
func decode(s string) string {
	d := mime.WordDecoder{}
	if out, err := d.DecodeHeader(s); err == nil {
		return out
	}
	return s
}

// fit makes s a value Check accepts: valid UTF-8, control characters as
// spaces, cut to MaxField bytes on a character boundary.
func fit(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= MaxField {
		return s
	}
	cut := MaxField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Send posts rep to the report listener at addr (host:port).
func Send(ctx context.Context, client *http.Client, addr string, rep Report) error {
	body, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+Path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
}

// Usage is the command's synopsis.
const Usage = "mailplane report [flags] spam|ham <address> < message"

// Command is `mailplane report`: it reads the message on stdin and
// sends its report. It never fails the IMAP command that ran it: a
// report it cannot deliver (the service down or slow, the address over
// its cap) is a line on stderr, which Dovecot logs, and exit status 0; a
// lost report is acceptable, a hung IMAP client is not. It returns an
// error only for bad flags (flag.ErrHelp for -h).
func Command(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	l := config.NewLoader("mailplane report", getenv, stdout)
	var to string
	var timeout time.Duration
	l.String(&to, "report-to", "127.0.0.1:9105", "host:port of the filters service's report listener (its report-addr)")
	l.Duration(&timeout, "report-timeout", 5*time.Second, "how long the report may take once the message is read; Dovecot kills the program after sieve_pipe_exec_timeout (10s)")
	if err := l.Parse(args); err != nil {
		io.Copy(io.Discard, stdin)
		return err
	}
	fail := func(err error) error {
		fmt.Fprintf(stderr, "mailplane report: not recorded: %v\n", err)
		return nil
	}
	rest := l.Args()
	if len(rest) != 2 || (rest[0] != Spam && rest[0] != Ham) {
		io.Copy(io.Discard, stdin)
		return fail(fmt.Errorf("usage: %s (got %q)", Usage, rest))
	}
	rep, err := Describe(stdin)
	if err != nil {
		return fail(err)
	}
	rep.Verdict, rep.Login = rest[0], strings.ToLower(rest[1])
	if err := rep.Check(); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := Send(ctx, &http.Client{Timeout: timeout}, to, rep); err != nil {
		return fail(fmt.Errorf("%s report of %s to %s: %w", rep.Verdict, rep.Login, to, err))
	}
	return nil
}
