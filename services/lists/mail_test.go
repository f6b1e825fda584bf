package lists_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"mime"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc"
)

// mailEnv is start's env with the mail path running: a lists replica
// serving LMTP on a free port and working the distribution jobs, sending
// through relay.
type mailEnv struct {
	*env
	lmtp string
	list *listsv1.List
	svc  *lists.Service
}

// startMail starts the stack, a list team@example.test (subject prefix,
// a footer naming the member, posts by members, at most 4 KiB) with three
// members and a moderator by email, and a lists replica taking its mail
// over LMTP and sending through relay.
func startMail(t *testing.T, relay lists.Relay) *mailEnv {
	t.Helper()
	e := start(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{
		LocalPart: "team", DisplayName: "Team", SubjectPrefix: "[team]", MaxMessageBytes: 4096,
		FooterText: "You are subscribed as ${member}.",
		Moderators: []*listsv1.Moderator{{Email: "boss@elsewhere.example"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"ann@example.org", "bob@Example.org", "cat@example.net"} {
		if _, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: created.GetList().GetName(), Member: &listsv1.Member{Email: m}, Silent: true}); err != nil {
			t.Fatal(err)
		}
	}
	// A replica of its own, as a second pod would be: its gRPC server is
	// not served, the mail path is what it is for.
	svc, err := lists.Register(grpc.NewServer(), e.pool, lists.Config{AccountsAddr: e.srv.Addr, MailboxesAddr: e.srv.Addr,
		LMTPAddr: "127.0.0.1:0", Relay: relay}, e.srv.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunForTest(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return &mailEnv{env: e, lmtp: svc.LMTPAddr(), list: created.GetList(), svc: svc}
}

// result is the LMTP answer for one recipient: its code, 250 when taken.
type result struct {
	code int
	msg  string
}

func codeOf(err error) result {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return result{se.Code, se.Message}
	}
	if err != nil {
		return result{-1, err.Error()}
	}
	return result{250, ""}
}

// deliver sends msg from the envelope sender from to rcpts over LMTP, as
// Postfix's lmtp client does, and returns each recipient's answer: the
// RCPT refusal, or the per-recipient answer to DATA.
func (e *mailEnv) deliver(from string, rcpts []string, msg string) map[string]result {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.lmtp)
	if err != nil {
		e.t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mx.example.test"); err != nil {
		e.t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		e.t.Fatalf("MAIL FROM:<%s>: %v", from, err)
	}
	out := map[string]result{}
	var taken []string
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			out[r] = codeOf(err)
			continue
		}
		taken = append(taken, r)
	}
	if len(taken) == 0 {
		return out
	}
	w, err := c.Data()
	if err != nil {
		e.t.Fatalf("DATA: %v", err)
	}
	if _, err := io.WriteString(w, strings.ReplaceAll(msg, "\n", "\r\n")); err != nil {
		e.t.Fatal(err)
	}
	resp, err := w.CloseWithLMTPResponse()
	var lerr smtp.LMTPDataError
	errors.As(err, &lerr)
	if err != nil && lerr == nil {
		e.t.Fatalf("end of DATA: %v", err)
	}
	for _, r := range taken {
		switch {
		case lerr[r] != nil:
			out[r] = codeOf(lerr[r])
		case resp[r] != nil:
			out[r] = result{250, resp[r].StatusText}
		default:
			e.t.Errorf("no LMTP answer for %s", r)
		}
	}
	return out
}

// waitPosts waits until n posts were distributed to the end.
func (e *mailEnv) waitPosts(n int) {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var done int
		if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM posts WHERE done_time IS NOT NULL").Scan(&done); err != nil {
			e.t.Fatal(err)
		}
		if done == n {
			return
		}
		if done > n || time.Now().After(deadline) {
			e.t.Fatalf("%d posts distributed, want %d", done, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *mailEnv) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// The posts, as mail clients write them.
const (
	// Thunderbird: multipart/alternative, an encoded non-ASCII subject.
	firstPost = `From: Ann Example <ann@example.org>
To: team@example.test
Subject: =?UTF-8?Q?Caf=C3=A9_on_Friday?=
Message-ID: <first@example.org>
Date: Sat, 5 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"
DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s; b=abc

--b1
Content-Type: text/plain; charset=utf-8

Who comes?
--b1
Content-Type: text/html; charset=utf-8

<html><body><p>Who comes?</p></body></html>
--b1--
`
	// Outlook: a reply with "AW:" before the prefix, Cc to a member, a
	// quoted text and a signature.
	replyPost = `From: Bob <bob@example.org>
To: team@example.test
Cc: cat@example.net
Subject: AW: [team] =?UTF-8?Q?Caf=C3=A9_on_Friday?=
Message-ID: <reply@example.org>
In-Reply-To: <first@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

I do.

> Who comes?
-- 
Bob
`
)

// TestPostDistributed: posts by members, sent over LMTP as mail clients
// write them, reach every other member through the relay, each copy its
// own (VERP return path, footer naming the member), with the list's
// headers and the subject prefix once; the author and members already in
// To or Cc get none.
func TestPostDistributed(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})

	if got := e.deliver("ann@example.org", []string{"team@example.test"}, firstPost); got["team@example.test"].code != 250 {
		t.Fatalf("first post: %v", got)
	}
	e.waitPosts(1)
	if got := e.deliver("bob@example.org", []string{"Team@EXAMPLE.test"}, replyPost); got["Team@EXAMPLE.test"].code != 250 {
		t.Fatalf("reply: %v", got)
	}
	e.waitPosts(2)

	type copyOf struct{ post, to string }
	got := map[copyOf]smtptest.Message{}
	for _, m := range relay.Messages() {
		msg := m.Parsed(t)
		if len(m.To) != 1 {
			t.Fatalf("copy to %v, want one recipient each", m.To)
		}
		k := copyOf{msg.Header.Get("Message-Id"), m.To[0]}
		if _, dup := got[k]; dup {
			t.Errorf("two copies of %s to %s", k.post, k.to)
		}
		got[k] = m
	}
	want := []copyOf{
		{"<first@example.org>", "bob@Example.org"}, {"<first@example.org>", "cat@example.net"},
		{"<reply@example.org>", "ann@example.org"},
	}
	if len(got) != len(want) {
		t.Errorf("copies: %v, want %v", slices.Collect(maps.Keys(got)), want)
	}
	for _, w := range want {
		m, ok := got[w]
		if !ok {
			t.Errorf("no copy of %s to %s", w.post, w.to)
			continue
		}
		local, domain, _ := strings.Cut(w.to, "@")
		if verp := "team-bounces+" + local + "=" + strings.ToLower(domain) + "@example.test"; m.From != verp {
			t.Errorf("%s to %s: MAIL FROM %s, want %s", w.post, w.to, m.From, verp)
		}
		msg := m.Parsed(t)
		for k, v := range map[string]string{
			"List-Id":          "Team <team.example.test>",
			"List-Post":        "<mailto:team@example.test>",
			"List-Unsubscribe": "<mailto:team-leave@example.test>",
			"Dkim-Signature":   "",
		} {
			if got := msg.Header.Get(k); got != v {
				t.Errorf("%s to %s: %s %q, want %q", w.post, w.to, k, got, v)
			}
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		if err != nil || strings.Count(subject, "[team]") != 1 || !strings.Contains(subject, "Café on Friday") {
			t.Errorf("%s to %s: subject %q (%v), want the prefix once", w.post, w.to, subject, err)
		}
		body, _ := io.ReadAll(msg.Body)
		if footer := "You are subscribed as " + w.to + "."; !strings.Contains(string(body), footer) {
			t.Errorf("%s to %s: body without %q:\n%s", w.post, w.to, footer, body)
		}
	}
	var sent, failed int
	if err := e.pool.QueryRow(context.Background(), "SELECT sum(sent_count), sum(failed_count) FROM posts").Scan(&sent, &failed); err != nil || sent != 3 || failed != 0 {
		t.Errorf("posts counted %d sent, %d refused (%v); want 3, 0", sent, failed, err)
	}
	// The checkpoints' connection, which commits asynchronously, went
	// back to the pool committing durably like the others.
	for _, c := range e.pool.AcquireAllIdle(context.Background()) {
		var v string
		if err := c.QueryRow(context.Background(), "SHOW synchronous_commit").Scan(&v); err != nil || v != "on" {
			t.Errorf("a pooled connection has synchronous_commit %q (%v), want on", v, err)
		}
		c.Release()
	}
}

// TestPostRefused: what the list must not take is refused at LMTP with
// the right code, per recipient, and nothing is stored or sent.
func TestPostRefused(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	big := "From: ann@example.org\nSubject: big\n\n" + strings.Repeat("0123456789abcdef\n", 300)
	for _, tc := range []struct {
		name, rcpt, msg string
		code            int
		mention         string
	}{
		{"unknown list", "nobody@example.test", firstPost, 550, "no such list"},
		{"unknown domain", "team@elsewhere.test", firstPost, 550, "no such list"},
		{"list+tag", "team+tag@example.test", firstPost, 550, "no such list"},
		{"too large for the list", "team@example.test", big, 552, "4096"},
		{"no From", "team@example.test", "Subject: hi\n\nbody\n", 554, "From"},
		{"bad From", "team@example.test", "From: <<not an address\nSubject: hi\n\nbody\n", 554, "From"},
		{"broken header", "team@example.test", "From: ann@example.org\nthis line is no field\n\nbody\n", 554, "header"},
		{"multipart without boundary", "team@example.test", "From: ann@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\nbody\n", 554, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.deliver("ann@example.org", []string{tc.rcpt}, tc.msg)[tc.rcpt]
			if got.code != tc.code || !strings.Contains(got.msg, tc.mention) {
				t.Errorf("answer %d %q, want %d mentioning %q", got.code, got.msg, tc.code, tc.mention)
			}
		})
	}
	if n := e.count("posts") + e.count("held_posts"); n != 0 {
		t.Errorf("%d posts stored, want none", n)
	}
	if n := len(relay.Messages()); n != 0 {
		t.Errorf("%d copies sent, want none", n)
	}
}

// TestPostPolicy: a non-member's post is held with its reason, not sent;
// a moderator's (by email, not a member) goes out; mail from machines is
// taken and dropped, so no loop can start.
func TestPostPolicy(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	for _, tc := range []struct{ name, from, msg string }{
		{"non-member", "dan@example.com", "From: Dan <dan@example.com>\nSubject: buy now\nMessage-ID: <held@example.com>\n\nspam\n"},
		{"auto-reply", "bob@example.org", "From: bob@example.org\nSubject: Out of office\nAuto-Submitted: auto-replied\n\naway\n"},
		{"bounce", "", "From: MAILER-DAEMON@example.org\nSubject: Undelivered Mail\n\nfailed\n"},
		{"from a list", "ann@example.org", "From: ann@example.org\nList-Id: <other.example.org>\nSubject: fwd\n\nx\n"},
		{"moderator", "boss@elsewhere.example", "From: Boss <boss@ELSEWHERE.example>\nSubject: news\nMessage-ID: <news@elsewhere.example>\n\nhello all\n"},
	} {
		if got := e.deliver(tc.from, []string{"team@example.test"}, tc.msg)["team@example.test"]; got.code != 250 {
			t.Errorf("%s: answer %v, want 250", tc.name, got)
		}
	}
	var sender, reason string
	var raw []byte
	err := e.pool.QueryRow(context.Background(), "SELECT sender, reason, raw FROM held_posts").Scan(&sender, &reason, &raw)
	if err != nil || sender != "dan@example.com" || !strings.Contains(reason, "not a member") || !strings.Contains(string(raw), "<held@example.com>") {
		t.Errorf("held post: %s, %q, %v", sender, reason, err)
	}
	if n := e.count("held_posts"); n != 1 {
		t.Errorf("%d posts held, want the non-member's only", n)
	}
	if n := e.count("posts"); n != 1 {
		t.Fatalf("%d posts accepted, want the moderator's only", n)
	}
	e.waitPosts(1)
	var to []string
	for _, m := range relay.Messages() {
		if slices.Equal(m.To, []string{"dan@example.com"}) || slices.Equal(m.To, []string{"boss@elsewhere.example"}) {
			continue // the notice that the post is held, the moderator's decision mail (moderation_test.go)
		}
		if id := m.Parsed(t).Header.Get("Message-Id"); id != "<news@elsewhere.example>" {
			t.Errorf("copy of %s sent", id)
		}
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if want := []string{"ann@example.org", "bob@Example.org", "cat@example.net"}; !slices.Equal(to, want) {
		t.Errorf("moderator's post sent to %v, want %v", to, want)
	}
}

// TestDistributionResumes: a relay that fails in the middle of a post
// stops the job; the retry starts after the last member the relay took,
// so every member gets the post once. A member the relay refuses for good
// is skipped and counted.
func TestDistributionResumes(t *testing.T) {
	sink := startSink(t)
	e := startMail(t, lists.Relay{Addr: sink.addr, Insecure: true})
	// Members in email_key order: ann, bob, cat. The second copy fails
	// once (the relay is down), the third for good.
	sink.failOnce["bob@Example.org"] = true
	sink.refuse["cat@example.net"] = true
	msg := "From: Boss <boss@elsewhere.example>\nSubject: news\nMessage-ID: <resume@elsewhere.example>\n\nhello\n"
	if got := e.deliver("boss@elsewhere.example", []string{"team@example.test"}, msg)["team@example.test"]; got.code != 250 {
		t.Fatalf("answer %v", got)
	}
	e.waitPosts(1)
	if got, want := sink.delivered(), []string{"ann@example.org", "bob@Example.org"}; !slices.Equal(got, want) {
		t.Errorf("delivered to %v, want %v, each once", got, want)
	}
	var sent, failed int
	if err := e.pool.QueryRow(context.Background(), "SELECT sent_count, failed_count FROM posts").Scan(&sent, &failed); err != nil || sent != 2 || failed != 1 {
		t.Errorf("post counted %d sent, %d refused (%v); want 2, 1", sent, failed, err)
	}
	if sink.connections() != 2 {
		t.Errorf("%d connections to the relay, want 2 (one per run, reused for its copies)", sink.connections())
	}
}

// sink is a plain SMTP server that can fail recipients: a temporary
// failure at the end of DATA, once, or a refusal for good at RCPT.
type sink struct {
	addr     string
	mu       sync.Mutex
	failOnce map[string]bool
	refuse   map[string]bool
	got      []string
	conns    int
}

func startSink(t *testing.T) *sink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{addr: ln.Addr().String(), failOnce: map[string]bool{}, refuse: map[string]bool{}}
	srv := smtp.NewServer(s)
	srv.Domain = "sink"
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns++
	return &sinkSession{s: s}, nil
}

func (s *sink) delivered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *sink) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

type sinkSession struct {
	s  *sink
	to string
}

func (ss *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.refuse[to] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.to = to
	return nil
}

func (ss *sinkSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	ss.s.mu.Lock()
	defer ss.s.mu.Unlock()
	if ss.s.failOnce[ss.to] {
		delete(ss.s.failOnce, ss.to)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	ss.s.got = append(ss.s.got, ss.to)
	return nil
}

func (ss *sinkSession) Reset()        { ss.to = "" }
func (ss *sinkSession) Logout() error { return nil }

// TestPostTwoLists: one LMTP transaction to two lists gets one answer per
// list (RFC 2033 §4.2): the post is too large for one, taken by the other.
func TestPostTwoLists(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	if _, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "all"}}); err != nil {
		t.Fatal(err)
	}
	big := "From: ann@example.org\nSubject: big\nMessage-ID: <big@example.org>\n\n" + strings.Repeat("0123456789abcdef\n", 300)
	got := e.deliver("ann@example.org", []string{"team@example.test", "all@example.test"}, big)
	if got["team@example.test"].code != 552 || got["all@example.test"].code != 250 {
		t.Errorf("answers %v, want 552 for team (4 KiB at most), 250 for all", got)
	}
	// ann is not a member of all: held there.
	if n := e.count("held_posts"); n != 1 {
		t.Errorf("%d posts held, want 1", n)
	}
}
