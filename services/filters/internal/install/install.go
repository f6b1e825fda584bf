// Package install puts an address's Sieve scripts into Dovecot over
// ManageSieve (RFC 5804), logging in as a Dovecot master user on the
// address's behalf: the personal script (the customer's rules) into the
// address's own Sieve storage, where it is the active script, and the
// platform's scripts (spam, ads, block and allow lists, the mention, the
// auto-reply) into a second storage that only the platform's master user
// sees, which Dovecot runs before and after the personal one
// (deploy/mail/dovecot/conf.d/90-mailplane-sieve.conf). docs/filters.md,
// "Installing scripts", says why ManageSieve and not doveadm.
package install

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

// Scripts are an address's scripts, in the order Dovecot runs them. An
// empty script is installed as one that does nothing, so a rule turned off
// stops at once.
type Scripts struct {
	// Before runs first: the platform's spam, ads, block and allow lists
	// and mention.
	Before string
	// Vacation is the auto-reply (mailboxes' vacationSieve), after Before,
	// so spam is never answered.
	Vacation string
	// Personal is the customer's own rules, the active script of the
	// address's own Sieve storage.
	Personal string
	// After runs last, unless a script before it stopped.
	After string
}

// Script names. The platform's are the file names Dovecot's sieve_before,
// sieve_before2 and sieve_after point at (name.sieve in the platform
// storage); PersonalName is the personal storage's active script.
const (
	BeforeName   = "before"
	VacationName = "vacation"
	AfterName    = "after"
	PersonalName = "mailplane"
)

// PersonalKey is the personal script's key in FromMap (its stored name is
// PersonalName).
const PersonalKey = "personal"

// FromMap turns scripts keyed by name (BeforeName, VacationName,
// PersonalKey, AfterName), as the filters service's job holds them, into
// Scripts; a key it does not know is an error rather than a script
// silently dropped.
func FromMap(m map[string]string) (Scripts, error) {
	var s Scripts
	for k, v := range m {
		switch k {
		case BeforeName:
			s.Before = v
		case VacationName:
			s.Vacation = v
		case PersonalKey:
			s.Personal = v
		case AfterName:
			s.After = v
		default:
			return Scripts{}, fmt.Errorf("unknown script %q (want %s, %s, %s or %s)", k, BeforeName, VacationName, PersonalKey, AfterName)
		}
	}
	return s, nil
}

// FromRules puts the rules package's scripts in their places: before and
// after as rules.Platform.Scripts returns them ("mailplane-before",
// "mailplane-vacation"; "mailplane-after"), personal as rules.Compile
// does. A name it does not know is an error: Dovecot runs only the three
// platform files, and a script installed nowhere would be a rule silently
// dropped.
func FromRules(before, after []rules.Script, personal string) (Scripts, error) {
	s := Scripts{Personal: personal}
	for _, sc := range before {
		switch sc.Name {
		case "mailplane-before":
			s.Before = sc.Text
		case "mailplane-vacation":
			s.Vacation = sc.Text
		default:
			return Scripts{}, fmt.Errorf("unknown platform script %q before the personal one", sc.Name)
		}
	}
	for _, sc := range after {
		if sc.Name != "mailplane-after" {
			return Scripts{}, fmt.Errorf("unknown platform script %q after the personal one", sc.Name)
		}
		s.After = sc.Text
	}
	return s, nil
}

// MaxScript is the size above which a script is refused before it is sent
// (Dovecot's own limit, sieve_max_script_size, is 1M by default).
const MaxScript = 1 << 20

// emptyScript is installed for an empty script: Sieve's implicit keep.
const emptyScript = "# nothing to do\r\n"

// Login is a Dovecot master user (passdb master = yes).
type Login struct {
	User, Password string
}

// Installer installs scripts on one Dovecot's ManageSieve port.
type Installer struct {
	// Addr is ManageSieve's host:port.
	Addr string
	// Personal is the master user whose sessions see the address's own
	// Sieve storage; Platform, the one whose sessions see the platform's
	// (Dovecot's userdb tells them apart by %{master_user}).
	Personal, Platform Login
	// Timeout bounds each session; 0: 30 seconds.
	Timeout time.Duration
	// TLS, when set, makes every session STARTTLS (with this
	// configuration; ServerName defaults to Addr's host) before it
	// authenticates, and fails one whose server does not offer it.
	// Without it, the master passwords are sent in the clear: only to a
	// loopback address (Dovecot on the same host), never elsewhere.
	TLS *tls.Config
}

// Install puts scripts in place for address: the platform's first, then
// the personal script, each replaced whole (PUTSCRIPT is atomic in
// Dovecot), so an Install that fails half way leaves working scripts and a
// retry finishes the job. An error from a Dovecot that cannot be reached
// or refuses is worth retrying; a script Dovecot does not compile is not
// (errors.As *ScriptError).
func (in *Installer) Install(ctx context.Context, address string, s Scripts) error {
	if address == "" || strings.ContainsAny(address, "\x00\r\n") {
		return fmt.Errorf("install scripts: invalid address %q", address)
	}
	for _, sc := range []struct{ name, text string }{{BeforeName, s.Before}, {VacationName, s.Vacation}, {PersonalName, s.Personal}, {AfterName, s.After}} {
		if len(sc.text) > MaxScript {
			return &ScriptError{Script: sc.name, Msg: fmt.Sprintf("%d bytes, more than %d", len(sc.text), MaxScript)}
		}
	}
	err := in.session(ctx, in.Platform, address, func(c *conn) error {
		for _, sc := range []struct{ name, text string }{{BeforeName, s.Before}, {VacationName, s.Vacation}, {AfterName, s.After}} {
			if err := c.putScript(sc.name, sc.text); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("install platform scripts of %s: %w", address, err)
	}
	err = in.session(ctx, in.Personal, address, func(c *conn) error {
		if err := c.putScript(PersonalName, s.Personal); err != nil {
			return err
		}
		return c.simple("SETACTIVE " + quote(PersonalName))
	})
	if err != nil {
		return fmt.Errorf("install personal script of %s: %w", address, err)
	}
	return nil
}

// ScriptError is a script Dovecot refused: it does not compile, or is too
// large. Retrying does not help.
type ScriptError struct {
	Script string
	Msg    string
}

func (e *ScriptError) Error() string { return fmt.Sprintf("script %s: %s", e.Script, e.Msg) }

// session logs in as master on behalf of address and runs f.
func (in *Installer) session(ctx context.Context, master Login, address string, f func(*conn) error) error {
	timeout := in.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", in.Addr)
	if err != nil {
		return fmt.Errorf("connect to managesieve: %w", err)
	}
	defer nc.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	// A cancelled ctx ends the session at once.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()

	c := &conn{r: bufio.NewReader(nc), w: nc}
	caps, err := c.response()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	switch {
	case in.TLS != nil:
		if !offers(caps, "STARTTLS") {
			return fmt.Errorf("managesieve at %s does not offer STARTTLS, which managesieve-tls asks for", in.Addr)
		}
		if err := c.simple("STARTTLS"); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
		cfg := in.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(in.Addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with managesieve at %s: %w", in.Addr, err)
		}
		c = &conn{r: bufio.NewReader(tc), w: tc}
		// RFC 5804 2.2: the server sends its capabilities again.
		if _, err := c.response(); err != nil {
			return fmt.Errorf("capabilities after STARTTLS: %w", err)
		}
	case !isLoopback(nc.RemoteAddr()):
		return fmt.Errorf("managesieve at %s is not on this host: the master password goes only over TLS (set managesieve-tls)", in.Addr)
	}
	// SASL PLAIN: authorization id the address, authentication id the
	// master user (Dovecot's master users take either this or user*master).
	plain := base64.StdEncoding.EncodeToString([]byte(address + "\x00" + master.User + "\x00" + master.Password))
	if err := c.simple(`AUTHENTICATE "PLAIN" ` + quote(plain)); err != nil {
		return fmt.Errorf("log in as %s for %s: %w", master.User, address, err)
	}
	if err := f(c); err != nil {
		return err
	}
	c.simple("LOGOUT")
	return nil
}

// offers says whether the capability lines hold capability name.
func offers(caps []string, name string) bool {
	for _, l := range caps {
		word, _, _ := strings.Cut(l, " ")
		if strings.EqualFold(strings.Trim(word, `"`), name) {
			return true
		}
	}
	return false
}

// isLoopback says whether a is a loopback address.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// conn is a ManageSieve session.
type conn struct {
	r *bufio.Reader
	w io.Writer
}

// putScript replaces script name with text.
func (c *conn) putScript(name, text string) error {
	if text == "" {
		text = emptyScript
	}
	// Sieve wants CRLF; a non-synchronizing literal needs no round trip.
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	err := c.simple(fmt.Sprintf("PUTSCRIPT %s {%d+}\r\n%s", quote(name), len(text), text))
	var no *refusal
	if errors.As(err, &no) {
		return &ScriptError{Script: name, Msg: no.msg}
	}
	if err != nil {
		return fmt.Errorf("PUTSCRIPT %s: %w", name, err)
	}
	return nil
}

// refusal is a NO answer.
type refusal struct{ msg string }

func (r *refusal) Error() string { return "refused: " + r.msg }

// simple sends cmd and wants OK.
func (c *conn) simple(cmd string) error {
	if _, err := io.WriteString(c.w, cmd+"\r\n"); err != nil {
		return err
	}
	_, err := c.response()
	return err
}

// response reads lines up to the final OK, NO or BYE, returning the
// lines before it; NO and BYE are errors carrying their text.
func (c *conn) response() ([]string, error) {
	var lines []string
	for {
		line, err := c.line()
		if err != nil {
			return lines, err
		}
		word, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "OK":
			return lines, nil
		case "NO":
			return lines, &refusal{msg: rest}
		case "BYE":
			return lines, fmt.Errorf("server closed the session: %s", rest)
		}
		lines = append(lines, line)
	}
}

// maxLiteral bounds a literal the server sends (a compile error's text).
const maxLiteral = 1 << 20

// line reads one response line, with any literal ({n}) it ends in read
// and put in its place.
func (c *conn) line() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "}") {
		n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
		if err == nil && n >= 0 && n <= maxLiteral {
			lit := make([]byte, n)
			if _, err := io.ReadFull(c.r, lit); err != nil {
				return "", err
			}
			rest, err := c.line()
			if err != nil {
				return "", err
			}
			return line[:i] + strings.TrimSpace(string(lit)) + rest, nil
		}
	}
	return line, nil
}

// quote makes s a ManageSieve quoted string; names and base64 never hold
// CR, LF or NUL (checked by the callers).
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
