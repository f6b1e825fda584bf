// Package dovecottest runs a real Dovecot for tests: a private instance in
// a temporary directory, serving IMAP on 127.0.0.1, with the passdb, userdb
// and plugins a test gives it, and IMAP and doveadm helpers to talk to it.
//
// A test without Dovecot installed is skipped, except under CI=true, where
// it fails: CI must never pass on tests that did not run.
package dovecottest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/logtest"
)

// Dovecot is a private Dovecot instance: made by New, running after Start.
type Dovecot struct {
	// Dir is the instance's directory, where a test writes the files its
	// configuration includes.
	Dir string
	// Vmail is a directory the mail user owns, for the homes, as
	// /srv/vmail is in production.
	Vmail string
	// MailUser is the user Dovecot reads and writes mail as (mail_uid);
	// its services' sockets must be open to it.
	MailUser string
	// Addr is the IMAP address, set by Start; Conf, the configuration
	// file, for doveadm.
	Addr string
	Conf string
	// LMTP and Sieve, set before Start, add Dovecot's LMTP and ManageSieve
	// listeners (Debian: dovecot-lmtpd, dovecot-managesieved); Start sets
	// their addresses.
	LMTP, Sieve         bool
	LMTPAddr, SieveAddr string
	// SASL, set before Start, adds a loopback listener of Dovecot's auth
	// service, which Postfix reaches for SMTP AUTH (smtpd_sasl_type =
	// dovecot, smtpd_sasl_path = inet:SASLAddr); Start sets SASLAddr.
	SASL     bool
	SASLAddr string

	bin              string
	root             bool
	internal, group  string
	login            string
	mailUID, mailGID string
	// clients counts connections, each from its own loopback address:
	// Dovecot 2.3 delays every failed login from an address more than the
	// last (auth penalty, up to 15s), and nothing in its configuration
	// turns that off.
	clients atomic.Uint32

	port, lmtpPort, sievePort, saslPort int
	stop                                func()
}

// Stop stops a started Dovecot, as a crash or an upgrade would; Start runs
// it again on the same ports.
func (d *Dovecot) Stop() { d.stop() }

// New prepares an instance, removed when t ends, skipping t when Dovecot
// is not installed (Debian: dovecot-imapd, in /usr/sbin), except under
// CI=true.
func New(t testing.TB) *Dovecot {
	t.Helper()
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/dovecot")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("dovecot is not installed; CI needs it (apt-get install dovecot-imapd dovecot-pgsql)")
		}
		t.Skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pgsql)")
	}
	// Not t.TempDir: the mail user must be able to reach its home, and
	// t.TempDir's parents are private to the user running the test.
	dir, err := os.MkdirTemp("", "mailplane-dovecot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Dovecot{Dir: dir, Vmail: filepath.Join(dir, "vmail"), bin: bin, root: os.Geteuid() == 0}
	if d.root {
		// Debian's package creates these users; the mail user is dovecot's
		// (any unprivileged user does: uid 0 may not own mail).
		d.internal, d.group, d.login = "dovecot", "dovecot", "dovenull"
		u, err := user.Lookup("dovecot")
		if err != nil {
			t.Fatalf("dovecot runs as root and needs its users: %v", err)
		}
		d.mailUID, d.mailGID, d.MailUser = u.Uid, u.Gid, u.Username
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		d.internal, d.group, d.login = u.Username, g.Name, u.Username
		d.mailUID, d.mailGID, d.MailUser = u.Uid, u.Gid, u.Username
	}
	if err := os.Mkdir(d.Vmail, 0o700); err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(d.mailUID)
	gid, _ := strconv.Atoi(d.mailGID)
	if err := os.Chown(d.Vmail, uid, gid); err != nil {
		t.Fatal(err)
	}
	return d
}

// baseConf is what every instance runs: under Dir, listening on 127.0.0.1
// only, without TLS, maildir in each home.
var baseConf = template.Must(template.New("dovecot.conf").Parse(`
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
protocols = imap{{if .LMTP}} lmtp{{end}}{{if .Sieve}} sieve{{end}}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_failure_delay = 0
auth_verbose = yes
auth_debug = yes
default_internal_user = {{.Internal}}
default_internal_group = {{.Group}}
default_login_user = {{.Login}}
mail_uid = {{.MailUID}}
mail_gid = {{.MailGID}}
first_valid_uid = {{.MailUID}}
first_valid_gid = {{.MailGID}}
mail_location = maildir:~/Maildir
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = {{.Port}}
  }
  inet_listener imaps {
    port = 0
  }
{{- if not .Root}}
  chroot =
{{- end}}
}
{{- if .LMTP}}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = {{.LMTPPort}}
  }
}
{{- end}}
{{- if .Sieve}}
service managesieve-login {
  inet_listener sieve {
    address = 127.0.0.1
    port = {{.SievePort}}
  }
{{- if not .Root}}
  chroot =
{{- end}}
}
{{- end}}
{{- if .SASL}}
service auth {
  inet_listener sasl {
    address = 127.0.0.1
    port = {{.SASLPort}}
  }
}
{{- end}}
{{- if not .Root}}
service anvil {
  chroot =
}
{{- end}}
`))

// Start runs Dovecot in the foreground with the base configuration and
// conf after it (passdb, userdb, plugins: what the test is about), and
// stops it when t ends. Its configuration and logs go to the test output
// if t fails.
func (d *Dovecot) Start(t testing.TB, conf string) {
	t.Helper()
	// A restart (after Stop) keeps the ports: clients keep their addresses.
	if d.port == 0 {
		d.port = freeport.Port(t)
		if d.LMTP {
			d.lmtpPort = freeport.Port(t)
			d.LMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.lmtpPort))
		}
		if d.Sieve {
			d.sievePort = freeport.Port(t)
			d.SieveAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.sievePort))
		}
		if d.SASL {
			d.saslPort = freeport.Port(t)
			d.SASLAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.saslPort))
		}
	}
	port, lmtpPort, sievePort := d.port, d.lmtpPort, d.sievePort
	var b strings.Builder
	err := baseConf.Execute(&b, map[string]any{
		"Dir": d.Dir, "Port": port, "Root": d.root,
		"LMTP": d.LMTP, "LMTPPort": lmtpPort, "Sieve": d.Sieve, "SievePort": sievePort,
		"SASL": d.SASL, "SASLPort": d.saslPort,
		"Internal": d.internal, "Group": d.group, "Login": d.login,
		"MailUID": d.mailUID, "MailGID": d.mailGID,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString(conf)
	d.Conf = filepath.Join(d.Dir, "dovecot.conf")
	if err := os.WriteFile(d.Conf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	var out logtest.Buffer
	cmd := exec.Command(d.bin, "-F", "-c", d.Conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		// SIGTERM lets the master stop its children; the group kill is for
		// a master that does not.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
			t.Logf("dovecot.conf:\n%s\ndovecot output:\n%s\ndovecot.log:\n%s", b.String(), out.String(), log)
		}
	}
	t.Cleanup(d.stop)

	d.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("dovecot exited: %s", out.String())
		default:
		}
		conn, err := net.DialTimeout("tcp", d.Addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			greeting, err := textproto.NewConn(conn).ReadLine()
			conn.Close()
			if err == nil && strings.HasPrefix(greeting, "* OK") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("dovecot did not answer on %s within 15s: %v", d.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Doveadm is the command line of doveadm for this instance, to which a
// caller appends doveadm's arguments.
func (d *Dovecot) Doveadm() []string {
	// Debian's doveadm is in /usr/bin, which root's PATH may lack.
	path, err := exec.LookPath("doveadm")
	if err != nil {
		path = "/usr/bin/doveadm"
	}
	return []string{path, "-c", d.Conf}
}

// AuthTest asks Dovecot's auth service, as service would (Postfix asks as
// "smtp"), whether password opens user, with doveadm auth test.
func (d *Dovecot) AuthTest(t testing.TB, service, user, password string) bool {
	t.Helper()
	return d.authTest(t, service, "", user, password)
}

// AuthTestAs is AuthTest for master acting as user (doveadm auth test -M:
// SASL PLAIN with user as the authorization id).
func (d *Dovecot) AuthTestAs(t testing.TB, service, user, master, password string) bool {
	t.Helper()
	return d.authTest(t, service, master, user, password)
}

func (d *Dovecot) authTest(t testing.TB, service, master, user, password string) bool {
	t.Helper()
	args := append(d.Doveadm(), "auth", "test", "-x", "service="+service)
	if master != "" {
		args = append(args, "-M", master)
	}
	args = append(args, user, password)
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 77: // authentication failed
		return false
	}
	t.Fatalf("doveadm auth test: %v\n%s", err, out)
	return false
}

// Dial connects to the IMAP port, from a loopback address of its own, and
// reads the greeting.
func (d *Dovecot) Dial() (net.Conn, *textproto.Conn, error) {
	n := d.clients.Add(1) + 1 // 127.0.0.2 on
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	conn, err := dialer.Dial("tcp", d.Addr)
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := textproto.NewConn(conn)
	if _, err := c.ReadLine(); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("greeting: %w", err)
	}
	return conn, c, nil
}

// Login opens a connection, sends LOGIN and returns the tagged answer, like
// "a1 OK [CAPABILITY ...] Logged in" or "a1 NO [AUTHENTICATIONFAILED] ...".
// A login that works must also open the INBOX: the userdb's home must hold
// a usable mailbox.
func (d *Dovecot) Login(user, password string) (string, error) {
	conn, c, err := d.Dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	line, err := Command(c, "a1 LOGIN "+Quote(user)+" "+Quote(password))
	if err != nil {
		return "", fmt.Errorf("LOGIN: %w", err)
	}
	if strings.HasPrefix(line, "a1 OK") {
		if sel, err := Command(c, "a2 SELECT INBOX"); err != nil || !strings.HasPrefix(sel, "a2 OK") {
			return "", fmt.Errorf("logged in, but SELECT INBOX: %q %v", sel, err)
		}
		c.PrintfLine("a3 LOGOUT")
	}
	return line, nil
}

// Session logs in and selects the INBOX, as a mail client keeps doing.
func (d *Dovecot) Session(user, password string) (net.Conn, *textproto.Conn, error) {
	conn, c, err := d.Dial()
	if err != nil {
		return nil, nil, err
	}
	for _, cmd := range []string{"a1 LOGIN " + Quote(user) + " " + Quote(password), "a2 SELECT INBOX"} {
		if line, err := Command(c, cmd); err != nil || !strings.HasPrefix(line, cmd[:3]+"OK") {
			conn.Close()
			return nil, nil, fmt.Errorf("%s: %q %v", cmd[3:strings.IndexByte(cmd[3:], ' ')+3], line, err)
		}
	}
	return conn, c, nil
}

// Append logs in and appends a message of about size bytes to the INBOX,
// returning the APPEND's tagged answer.
func (d *Dovecot) Append(user, password string, size int) (string, error) {
	conn, c, err := d.Dial()
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if line, err := Command(c, "a1 LOGIN "+Quote(user)+" "+Quote(password)); err != nil || !strings.HasPrefix(line, "a1 OK") {
		return "", fmt.Errorf("LOGIN: %q %v", line, err)
	}
	msg := "From: someone@example.net\r\nTo: " + user + "\r\nSubject: test\r\n\r\n" + strings.Repeat("x", size) + "\r\n"
	// A synchronizing literal: the server says whether it takes the size
	// before the message is sent.
	if err := c.PrintfLine("a2 APPEND INBOX {%d}", len(msg)); err != nil {
		return "", err
	}
	line, err := c.ReadLine()
	if err != nil || !strings.HasPrefix(line, "+") {
		return line, err
	}
	if _, err := io.WriteString(conn, msg+"\r\n"); err != nil {
		return "", err
	}
	for {
		line, err := c.ReadLine()
		if err != nil || strings.HasPrefix(line, "a2 ") {
			return line, err
		}
	}
}

// WaitDisconnected waits for the server to end the session on conn.
func WaitDisconnected(t testing.TB, conn net.Conn, c *textproto.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := c.ReadLine()
		if errors.Is(err, io.EOF) || strings.HasPrefix(line, "* BYE") {
			return
		}
		if err != nil {
			t.Fatalf("the session is still open: %v", err)
		}
	}
}

// Command sends an IMAP command and returns its tagged answer.
func Command(c *textproto.Conn, cmd string) (string, error) {
	tag, _, _ := strings.Cut(cmd, " ")
	if err := c.PrintfLine("%s", cmd); err != nil {
		return "", err
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(line, tag+" ") {
			return line, nil
		}
	}
}

// Quote makes s an IMAP quoted string (RFC 3501).
func Quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// PGConnect is the database of c as a libpq connection string, as
// Dovecot's pgsql driver takes it in "connect =".
func PGConnect(c *pgx.ConnConfig) string {
	quote := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	parts := []string{"host=" + quote(c.Host), "port=" + strconv.Itoa(int(c.Port)), "dbname=" + quote(c.Database), "user=" + quote(c.User)}
	if c.Password != "" {
		parts = append(parts, "password="+quote(c.Password))
	}
	if c.TLSConfig == nil {
		parts = append(parts, "sslmode=disable")
	}
	return strings.Join(parts, " ")
}

// Deliver hands msg (CRLF lines) from sender to the recipients over LMTP,
// as Postfix does, and returns each recipient's answer after the data:
// "250 ..." when it was delivered.
func (d *Dovecot) Deliver(from string, to []string, msg string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", d.LMTPAddr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := textproto.NewConn(conn)
	if _, _, err := c.ReadResponse(220); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	if _, err := c.Cmd("LHLO localhost"); err != nil {
		return nil, err
	}
	if _, _, err := c.ReadResponse(250); err != nil {
		return nil, fmt.Errorf("LHLO: %w", err)
	}
	steps := []string{"MAIL FROM:<" + from + ">"}
	for _, r := range to {
		steps = append(steps, "RCPT TO:<"+r+">")
	}
	for _, s := range append(steps, "DATA") {
		if _, err := c.Cmd("%s", s); err != nil {
			return nil, err
		}
		want := 250
		if s == "DATA" {
			want = 354
		}
		if _, _, err := c.ReadResponse(want); err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
	}
	w := c.DotWriter()
	io.WriteString(w, strings.ReplaceAll(msg, "\r\n", "\n"))
	if err := w.Close(); err != nil {
		return nil, err
	}
	// LMTP answers once per recipient.
	var answers []string
	for range to {
		code, text, err := c.ReadResponse(0)
		if err != nil && code == 0 {
			return answers, err
		}
		answers = append(answers, fmt.Sprintf("%d %s", code, text))
	}
	c.Cmd("QUIT")
	return answers, nil
}

// Found is a message in a mailbox: where it is, and its flags.
type Found struct {
	Mailbox string
	Flags   []string
}

// Find logs in and returns every message, in every mailbox, whose subject
// contains subject, with its flags.
func (d *Dovecot) Find(user, password, subject string) ([]Found, error) {
	return d.Search(user, password, "SUBJECT "+Quote(subject))
}

// Search logs in and returns every message, in every mailbox, that the
// IMAP SEARCH criteria match (`HEADER X-Spam ""`), with its flags.
func (d *Dovecot) Search(user, password, criteria string) ([]Found, error) {
	conn, c, err := d.Dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if line, err := Command(c, "a1 LOGIN "+Quote(user)+" "+Quote(password)); err != nil || !strings.HasPrefix(line, "a1 OK") {
		return nil, fmt.Errorf("LOGIN: %q %v", line, err)
	}
	var mailboxes []string
	if err := untagged(c, `a2 LIST "" "*"`, func(line string) {
		// * LIST (\HasNoChildren) "." "Spam" (or unquoted)
		if !strings.HasPrefix(line, "* LIST ") {
			return
		}
		attrs, rest, _ := strings.Cut(line, ") ")
		if strings.Contains(attrs, `\Noselect`) || strings.Contains(attrs, `\NonExistent`) {
			return // a parent that holds no mail: Work of Work/Inbound
		}
		_, name, _ := strings.Cut(rest, " ")
		mailboxes = append(mailboxes, strings.Trim(name, `"`))
	}); err != nil {
		return nil, err
	}
	var found []Found
	for i, m := range mailboxes {
		if line, err := Command(c, fmt.Sprintf("s%d EXAMINE %s", i, Quote(m))); err != nil || !strings.HasPrefix(line, fmt.Sprintf("s%d OK", i)) {
			return nil, fmt.Errorf("EXAMINE %s: %q %v", m, line, err)
		}
		var seqs []string
		if err := untagged(c, fmt.Sprintf("q%d SEARCH %s", i, criteria), func(line string) {
			if n, ok := strings.CutPrefix(line, "* SEARCH"); ok {
				seqs = append(seqs, strings.Fields(n)...)
			}
		}); err != nil {
			return nil, err
		}
		for j, n := range seqs {
			if err := untagged(c, fmt.Sprintf("f%d.%d FETCH %s (FLAGS)", i, j, n), func(line string) {
				if _, flags, ok := strings.Cut(line, "FLAGS ("); ok {
					flags, _, _ = strings.Cut(flags, ")")
					found = append(found, Found{Mailbox: m, Flags: strings.Fields(flags)})
				}
			}); err != nil {
				return nil, err
			}
		}
	}
	c.PrintfLine("z LOGOUT")
	return found, nil
}

// untagged sends an IMAP command, hands each untagged answer to f, and
// fails unless the tagged answer is OK.
func untagged(c *textproto.Conn, cmd string, f func(string)) error {
	tag, _, _ := strings.Cut(cmd, " ")
	if err := c.PrintfLine("%s", cmd); err != nil {
		return err
	}
	for {
		line, err := c.ReadLine()
		if err != nil {
			return err
		}
		if strings.HasPrefix(line, tag+" ") {
			if !strings.HasPrefix(line, tag+" OK") {
				return fmt.Errorf("%s: %s", cmd, line)
			}
			return nil
		}
		f(line)
	}
}
