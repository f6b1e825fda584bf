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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/mailplane/mailplane/services/platform/postfixtest"
)

// TestPostfixRoutesLists runs a private Postfix instance configured with
// deploy/mail/postfix/main.cf.fragment (postfixtest), its lookups, policy
// service and milter served by this package, and sends mail to it over
// SMTP: a list's addresses, a VERP bounce address among them, arrive at
// the lists' LMTP with their full address; a mailbox's mail arrives at the
// mail store's LMTP (virtual_transport, Dovecot's stand-in); unknown
// addresses, and a list's the lists' LMTP refuses, are refused at RCPT.
func TestPostfixRoutesLists(t *testing.T) {
	postfixtest.Require(t)
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
	// The store's LMTP receiver stands in for Dovecot's.
	pf := postfixtest.Start(t, postfixtest.Fragment(t, socketmap.addr, policy, milter, "lmtp:inet:"+store.addr))

	c, err := smtp.Dial(pf.Addr)
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

// TestPostfixDropsForgedSpamHeaders: spam verdicts a sender wrote into
// the message (SpamAssassin's and rspamd's headers, in any case) are gone
// when it reaches the mail store, where the filters' Sieve would believe
// them; every other header is kept.
func TestPostfixDropsForgedSpamHeaders(t *testing.T) {
	postfixtest.Require(t)
	pool := newLookupPool(t)
	store := startLMTP(t)
	lookups := NewLookups(pool)
	log := slog.New(slog.DiscardHandler)
	socketmap := serveForTest(t, NewSocketmapServer(lookups, log).Serve)
	policy := serveForTest(t, NewPolicyServer(lookups, log).Serve)
	milter := serveForTest(t, NewMilterServer(lookups, log).Serve)
	pf := postfixtest.Start(t, postfixtest.Fragment(t, socketmap, policy, milter, "lmtp:inet:"+store.addr))

	if err := smtp.SendMail(pf.Addr, nil, "eve@example.org", []string{"sales@example.com"}, []byte("From: eve@example.org\r\n"+
		"To: sales@example.com\r\n"+
		"Subject: an offer\r\n"+
		"Message-ID: <offer@example.org>\r\n"+
		"X-Spam-Status: No, score=-5.0 required=5.0\r\n"+
		"X-Spam-Flag: NO\r\n"+
		"x-spam-score: -5\r\n"+
		"X-Spam: no\r\n"+
		"X-Spamd-Result: default: False [-5.00 / 15.00]\r\n"+
		"X-Spamd-Bar: /\r\n"+
		"X-Spammy-Name: kept\r\n"+
		"X-Mailer: kept\r\n"+
		"\r\n"+
		"X-Spam-Status: No (in the body, kept)\r\n")); err != nil {
		t.Fatal(err)
	}
	store.waitFor(t, 1)
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.msgs) != 1 {
		t.Fatalf("the store got %d messages, want 1", len(store.msgs))
	}
	header, body, _ := strings.Cut(store.msgs[0], "\r\n\r\n")
	for line := range strings.SplitSeq(header, "\r\n") {
		if name, _, _ := strings.Cut(line, ":"); strings.HasPrefix(strings.ToLower(name), "x-spam") && name != "X-Spammy-Name" {
			t.Errorf("the store got the sender's %q", line)
		}
	}
	for _, want := range []string{"X-Spammy-Name: kept", "X-Mailer: kept", "Subject: an offer"} {
		if !strings.Contains(header, want) {
			t.Errorf("the header lost %q:\n%s", want, header)
		}
	}
	if !strings.Contains(body, "X-Spam-Status: No (in the body, kept)") {
		t.Errorf("the body changed:\n%s", body)
	}
}

// lmtpReceiver is an LMTP server taking every message, keeping the
// recipients it was delivered to and the messages, and refusing some
// recipients.
type lmtpReceiver struct {
	addr   string
	refuse []string
	mu     sync.Mutex
	rcpt   []string
	msgs   []string
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
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.rcpt = append(s.r.rcpt, s.to...)
	s.r.msgs = append(s.r.msgs, string(msg))
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
