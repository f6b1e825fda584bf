package mailboxes

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// TestPostfixRoutesLists runs a private Postfix instance configured with
// deploy/mail/postfix/main.cf.fragment, its lookups, policy service and
// milter served by this package, and sends mail to it over SMTP: a list's
// addresses, a VERP bounce address among them, arrive at the lists' LMTP
// with their full address; a mailbox's mail arrives at the mail store's
// LMTP (virtual_transport, Dovecot's stand-in); an unknown address is
// still refused at RCPT. Postfix starts only as root; the test is skipped
// otherwise, and when Postfix is missing (except under CI=true).
func TestPostfixRoutesLists(t *testing.T) {
	postfix := postfixCommand(t)
	pool := newLookupPool(t)
	// A list's other robots, beside the fixture's team, team-join and
	// team-bounces.
	if _, err := pool.Exec(context.Background(), `
INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias, holder) VALUES
  ('00000000-0000-0000-0000-000000000001', 'team-owner', NULL, false, 'lists'),
  ('00000000-0000-0000-0000-000000000001', 'team-confirm', NULL, false, 'lists')`); err != nil {
		t.Fatal(err)
	}
	// The lists service takes the details of -bounces and -confirm only.
	lists, store := startLMTP(t, "team+x@example.com"), startLMTP(t)
	transport, err := LMTPTransport(lists.addr)
	if err != nil {
		t.Fatal(err)
	}
	lookups := NewLookups(pool)
	lookups.Route(HolderLists, transport)
	log := slog.New(slog.DiscardHandler)
	socketmap := recordSocketmap(t, serveForTest(t, NewSocketmapServer(lookups, log).Serve))
	policy := serveForTest(t, NewPolicyServer(lookups, log).Serve)
	milter := serveForTest(t, NewMilterServer(lookups, log).Serve)

	fragment, err := os.ReadFile("../../../deploy/mail/postfix/main.cf.fragment")
	if err != nil {
		t.Fatal(err)
	}
	conf := string(fragment)
	for _, r := range []struct{ from, to string }{
		{"127.0.0.1:9101", socketmap.addr}, {"127.0.0.1:9102", policy}, {"127.0.0.1:9103", milter},
	} {
		if !strings.Contains(conf, r.from) {
			t.Fatalf("main.cf.fragment does not name %s", r.from)
		}
		conf = strings.ReplaceAll(conf, r.from, r.to)
	}
	// Dovecot's LMTP stand-in.
	const dovecot = "virtual_transport = lmtp:unix:private/dovecot-lmtp"
	if !strings.Contains(conf, dovecot) {
		t.Fatalf("main.cf.fragment has no %q", dovecot)
	}
	conf = strings.Replace(conf, dovecot, "virtual_transport = lmtp:inet:"+store.addr, 1)
	smtpdAddr := freeLoopbackAddr(t)
	startPostfix(t, postfix, smtpdAddr, conf)

	c, err := smtp.Dial(smtpdAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("ann@example.org"); err != nil {
		t.Fatal(err)
	}
	// Postfix keeps the case the client wrote (Team-Owner@) and delivers
	// a recipient given twice, in any case, once.
	toLists := []string{
		"team@example.com", "team-join@example.com", "Team-Owner@Example.COM",
		"team-bounces+bob=example.net@example.com", "team-confirm+0123abcd@example.com",
	}
	toStore := []string{"sales@example.com", "sales+news@example.com", "team+vip@example.com"}
	for _, rcpt := range slices.Concat(toLists, toStore, []string{"TEAM@example.com"}) {
		if err := c.Rcpt(rcpt); err != nil {
			t.Errorf("RCPT TO:<%s>: %v", rcpt, err)
		}
	}
	// Unknown addresses are still refused: the lists' are accepted because
	// they are known, not because everything is.
	// team+x@ is refused by the lists' LMTP, which Postfix asks before it
	// answers (reject_unverified_recipient).
	for _, rcpt := range []string{"nobody@other.example", "team-request@other.example", "abuse@example.com", "team+x@example.com"} {
		var tp *textproto.Error
		if err := c.Rcpt(rcpt); !errors.As(err, &tp) || tp.Code != 550 {
			t.Errorf("RCPT TO:<%s> = %v, want 550", rcpt, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "From: ann@example.org\r\nTo: team@example.com\r\nSubject: hello\r\nMessage-ID: <1@example.org>\r\n\r\nHello.\r\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c.Quit()

	// sales+news@ keeps its extension; team+vip@ is an alias of sales.
	wantStore := []string{"sales@example.com", "sales+news@example.com", "sales@example.com"}
	gotLists, gotStore := lists.waitFor(t, len(toLists)), store.waitFor(t, len(wantStore))
	slices.Sort(toLists)
	slices.Sort(wantStore)
	if !slices.Equal(gotLists, toLists) {
		t.Errorf("the lists' LMTP got %q, want %q", gotLists, toLists)
	}
	if !slices.Equal(gotStore, wantStore) {
		t.Errorf("the mail store's LMTP got %q, want %q", gotStore, wantStore)
	}

	// Postfix asks the transport map for the full address only: the
	// service itself falls back from team-bounces+VERP to team-bounces.
	asked := socketmap.requests()
	if !slices.Contains(asked, "transport team-bounces+bob=example.net@example.com") {
		t.Errorf("socketmap requests %q: no transport lookup of the full VERP address", asked)
	}
	for _, r := range asked {
		if r == "transport team-bounces@example.com" {
			t.Errorf("Postfix asked %q: it does strip the extension for a socketmap", r)
		}
	}
	t.Logf("socketmap requests: %q", asked)
}

// postfixCommand finds postfix, which Debian installs in /usr/sbin, and
// skips the test when it is missing (except under CI=true) or when the
// test does not run as root, which postfix start needs.
func postfixCommand(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("postfix")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/postfix")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("postfix not found; CI needs it (apt-get install postfix)")
		}
		t.Skip("postfix not found (apt-get install postfix)")
	}
	if os.Geteuid() != 0 {
		t.Skip("postfix start needs root")
	}
	return path
}

// freeLoopbackAddr returns a loopback address with a port free right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPostfix starts a Postfix instance of its own (configuration, queue
// and log in a temporary directory) listening for SMTP on smtpdAddr only,
// with conf appended to its main.cf, and stops it when the test ends. It is
// the final destination of nothing but conf's virtual domains.
func startPostfix(t *testing.T, postfix, smtpdAddr, conf string) {
	t.Helper()
	// Postfix's processes, running as the postfix user, need to reach the
	// queue: not a t.TempDir, which is private to root.
	dir, err := os.MkdirTemp("", "mailplane-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The master takes its lock in data_directory, which must be the
	// postfix user's; postfix start makes the queue's subdirectories.
	if err := os.MkdirAll(filepath.Join(dir, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	main := `compatibility_level = 3.6
queue_directory = ` + dir + `/queue
data_directory = ` + dir + `/data
maillog_file = ` + dir + `/maillog
maillog_file_prefixes = ` + dir + `
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.mailplane.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
smtpd_peername_lookup = no
address_verify_poll_delay = 1s
`
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main+conf), 0o644); err != nil {
		t.Fatal(err)
	}
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), master, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	postconf := filepath.Join(filepath.Dir(postfix), "postconf")
	// No chroot (the queue directory holds no copy of /etc), no SMTP on
	// port 25, and the test's port instead.
	run(postconf, "-c", dir, "-F", "*/*/chroot = n")
	run(postconf, "-c", dir, "-M#", "smtp/inet")
	run(postconf, "-c", dir, "-Me", smtpdAddr+"/inet = "+smtpdAddr+" inet n - n - - smtpd")
	run(postfix, "-c", dir, "start")
	t.Cleanup(func() {
		exec.Command(postfix, "-c", dir, "stop").Run()
		// Stop only signals the master: wait until it is gone before the
		// directory goes (status fails once it is).
		for range 100 {
			if exec.Command(postfix, "-c", dir, "status").Run() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if t.Failed() || testing.Verbose() {
			if log, err := os.ReadFile(filepath.Join(dir, "maillog")); err == nil {
				t.Logf("Postfix's log:\n%s", log)
			}
		}
	})
	// The master process opens the SMTP port a moment after start returns.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", smtpdAddr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix does not listen on %s: %v", smtpdAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lmtpReceiver is an LMTP server taking every message, keeping the
// recipients it was delivered to, and refusing some recipients.
type lmtpReceiver struct {
	addr   string
	refuse []string
	mu     sync.Mutex
	rcpt   []string
}

// startLMTP runs an LMTP receiver on loopback until the test ends. It
// refuses the recipients refuse (550 5.1.1) and takes all others.
func startLMTP(t *testing.T, refuse ...string) *lmtpReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &lmtpReceiver{addr: ln.Addr().String(), refuse: refuse}
	srv := gosmtp.NewServer(r)
	srv.LMTP = true
	srv.Domain = "lmtp.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

// waitFor waits up to a minute for n recipients and returns them sorted.
func (r *lmtpReceiver) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r.mu.Lock()
		got := slices.Clone(r.rcpt)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			slices.Sort(got)
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *lmtpReceiver) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &lmtpSession{r: r}, nil
}

type lmtpSession struct {
	r  *lmtpReceiver
	to []string
}

func (s *lmtpSession) Mail(string, *gosmtp.MailOptions) error { return nil }

func (s *lmtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if slices.Contains(s.r.refuse, to) {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such list address"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *lmtpSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.rcpt = append(s.r.rcpt, s.to...)
	return nil
}

func (s *lmtpSession) Reset()        { s.to = nil }
func (s *lmtpSession) Logout() error { return nil }

// socketmapRecorder is a proxy in front of a socketmap server keeping every
// request that passes.
type socketmapRecorder struct {
	addr string
	mu   sync.Mutex
	reqs []string
}

// recordSocketmap proxies to the socketmap server at upstream until the
// test ends.
func recordSocketmap(t *testing.T, upstream string) *socketmapRecorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rec := &socketmapRecorder{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rec.proxy(c, upstream)
		}
	}()
	return rec
}

func (rec *socketmapRecorder) proxy(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go io.Copy(c, u)
	r, w := bufio.NewReader(c), bufio.NewWriter(u)
	for {
		req, err := readNetstring(r, maxSocketmapRequest)
		if err != nil {
			return
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, string(req))
		rec.mu.Unlock()
		writeNetstring(w, string(req))
		if w.Flush() != nil {
			return
		}
	}
}

func (rec *socketmapRecorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.reqs)
}
