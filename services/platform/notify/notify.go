// Package notify delivers notices to people: email by SMTP submission to a
// relay, and SMS through a provider. It only transports; what to say, to
// whom, and retrying belong to the caller.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Email is a plain-text message to one person.
type Email struct {
	To      string
	Subject string
	Body    string
}

// SMTP sends email through a submission relay (port 587): STARTTLS, then
// AUTH PLAIN when a username is set.
type SMTP struct {
	// Addr is the relay's host:port.
	Addr string
	// From is the sender address, e.g. "Mailplane <no-reply@example.com>".
	From     string
	Username string
	Password string
	// Insecure skips STARTTLS: only for a relay on loopback in development.
	Insecure bool
	// TLS, when set, replaces the default TLS settings (a private CA).
	TLS *tls.Config
	// Timeout bounds one delivery; default 30 s.
	Timeout time.Duration
}

// Send delivers e. An error wraps the relay's answer, which says whether
// trying again may help (smtp.SMTPError's Temporary).
func (s *SMTP) Send(ctx context.Context, e Email) error {
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("smtp: sender %q: %w", s.From, err)
	}
	to, err := mail.ParseAddress(e.To)
	if err != nil {
		return fmt.Errorf("smtp: recipient %q: %w", e.To, err)
	}
	msg, err := compose(from, to, e, time.Now())
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", s.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	var c *smtp.Client
	if s.Insecure {
		c = smtp.NewClient(conn)
	} else {
		cfg := s.TLS
		if cfg == nil {
			host, _, _ := net.SplitHostPort(s.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return fmt.Errorf("smtp: starttls with %s: %w", s.Addr, err)
		}
	}
	defer c.Close()
	if s.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.Username, s.Password)); err != nil {
			return fmt.Errorf("smtp: auth as %s: %w", s.Username, err)
		}
	}
	if err := c.SendMail(from.Address, []string{to.Address}, bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("smtp: send to %s: %w", to.Address, err)
	}
	return c.Quit()
}

// compose writes an RFC 5322 message with a quoted-printable UTF-8 body.
func compose(from, to *mail.Address, e Email, now time.Time) ([]byte, error) {
	if strings.ContainsAny(e.Subject, "\r\n") {
		return nil, errors.New("smtp: subject has a line break")
	}
	id := make([]byte, 16)
	rand.Read(id)
	domain := from.Address[strings.LastIndexByte(from.Address, '@')+1:]
	var b bytes.Buffer
	for _, h := range [][2]string{
		{"From", from.String()},
		{"To", to.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", e.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "@" + domain + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"},
	} {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(e.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := io.WriteString(qp, body); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// SMS is a text message to a phone number in E.164 form.
type SMS struct {
	To   string
	Text string
}

// HTTPSMS sends SMS through a provider's JSON API: a POST of
// {"to": "+41...", "text": "..."} to URL with "Authorization: Bearer <Key>",
// answered 2xx when accepted.
type HTTPSMS struct {
	URL    string
	Key    string
	Client *http.Client
}

// Send hands sms to the provider.
func (p *HTTPSMS) Send(ctx context.Context, sms SMS) error {
	body, _ := json.Marshal(map[string]string{"to": sms.To, "text": sms.Text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Key)
	client := p.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("sms: post to provider: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("sms: provider answered %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// LogSMS is the development sink: it logs each SMS instead of sending it.
type LogSMS struct {
	Log *slog.Logger
}

// Send logs sms.
func (l LogSMS) Send(ctx context.Context, sms SMS) error {
	l.Log.InfoContext(ctx, "sms (development sink, not sent)", "to", sms.To, "text", sms.Text)
	return nil
}

// LogEmail is the development sink for email: it logs each message instead
// of sending it, so `mailplane dev` works without a relay.
type LogEmail struct {
	Log *slog.Logger
}

// Send logs e.
func (l LogEmail) Send(ctx context.Context, e Email) error {
	l.Log.InfoContext(ctx, "email (development sink, not sent)", "to", e.To, "subject", e.Subject, "body", e.Body)
	return nil
}
