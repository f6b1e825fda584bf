package lists_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/postfixtest"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc"
)

// TestPostfixDeliversToLists is the mail path end to end: a real Postfix
// configured with deploy/mail/postfix/main.cf.fragment, asking a mailboxes
// replica (socketmap, policy, milter) that knows the list's reservations
// only from the list's creation, delivers over LMTP to a lists replica: a
// member's post to team@ is distributed through the relay, a bounce to
// team-bounces+VERP@ counts against the member the VERP names, and
// team+x@, which the lists service refuses, is refused at RCPT (Postfix
// asks it first).
func TestPostfixDeliversToLists(t *testing.T) {
	postfixtest.Require(t)
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	e.addMember("alice@example.net")
	socketmap, policy, milter := serveMailboxes(t, e)
	// No mailbox gets mail here: the mail store's transport discards.
	pf := postfixtest.Start(t, postfixtest.Fragment(t, socketmap, policy, milter, "discard:"))

	send := func(from string, rcpt []string, msg string) []error {
		t.Helper()
		c, err := smtp.Dial(pf.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail(from); err != nil {
			t.Fatalf("MAIL FROM:<%s>: %v", from, err)
		}
		errs := make([]error, len(rcpt))
		ok := false
		for i, r := range rcpt {
			errs[i] = c.Rcpt(r)
			ok = ok || errs[i] == nil
		}
		if ok {
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, msg)
			if err := w.Close(); err != nil {
				t.Fatalf("end of DATA: %v", err)
			}
		}
		c.Quit()
		return errs
	}

	// A post: the list distributes it to its members but the author.
	if errs := send("ann@example.org", []string{"team@example.test"}, firstPost); errs[0] != nil {
		t.Fatalf("RCPT TO:<team@example.test>: %v", errs[0])
	}
	e.waitPosts(1)
	var to []string
	for _, m := range relay.Messages() {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if want := []string{"alice@example.net", "bob@Example.org", "cat@example.net"}; !slices.Equal(to, want) {
		t.Errorf("the relay got copies to %q, want %q", to, want)
	}

	// A bounce to alice's VERP address: the detail reached the service.
	if errs := send("", []string{aliceVERP}, bounceMail(t, "dsn-failed.eml")); errs[0] != nil {
		t.Fatalf("RCPT TO:<%s>: %v", aliceVERP, errs[0])
	}
	for deadline := time.Now().Add(30 * time.Second); e.member("alice@example.net").GetBounceScore() != 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice's bounce score is %d, want 1", e.member("alice@example.net").GetBounceScore())
		}
	}

	// Refused at RCPT with the lists' answer, or as unknown.
	for _, rcpt := range []string{"team+x@example.test", "nobody@example.test"} {
		errs := send("ann@example.org", []string{rcpt}, firstPost)
		var tp *textproto.Error
		if !errors.As(errs[0], &tp) || tp.Code != 550 {
			t.Errorf("RCPT TO:<%s> = %v, want 550", rcpt, errs[0])
		}
	}
	if log := pf.Log(); !strings.Contains(log, "<team+x@example.test>: Recipient address rejected: undeliverable address") {
		t.Errorf("team+x@ was not refused after asking the lists' LMTP; Postfix's log:\n%s", log)
	}
}

// serveMailboxes runs a mailboxes replica serving what Postfix asks
// (socketmap, policy, milter) on free loopback ports, over e's database,
// with the lists' mail routed to e's LMTP, and returns the three addresses.
func serveMailboxes(t *testing.T, e *mailEnv) (socketmap, policy, milter string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := pg.Connect(ctx, e.pool.Config().ConnString(), mailboxes.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Nothing here asks DNS; the domain checks of its jobs find nothing.
	resolver, err := dns.NewResolver("127.0.0.1:1", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	socketmap, policy, milter = freeLoopback(t), freeLoopback(t), freeLoopback(t)
	svc, err := mailboxes.Register(grpc.NewServer(), pool, mailboxes.Config{AccountsAddr: e.srv.Addr,
		SocketmapAddr: socketmap, PolicyAddr: policy, MilterAddr: milter, ListsLMTPAddr: e.lmtp,
		DomainCheckInterval: time.Hour}, resolver, e.srv.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("mailboxes run: %v", err)
		}
	})
	return socketmap, policy, milter
}

// freeLoopback returns a loopback address with a port free right now.
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
