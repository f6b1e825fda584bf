package lists_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
)

// nested is a message whose MIME parts nest depth deep.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("From: ann@example.org\nSubject: deep\nMIME-Version: 1.0\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\n\nhi\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\n", i)
	}
	return b.String()
}

// TestAttackLMTP: hostile mail over LMTP gets a clear answer per
// recipient (never a dropped connection), a refused one stores nothing,
// and the server takes the next post as before.
func TestAttackLMTP(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	post := "From: ann@example.org\nSubject: hi\n\nhello\n"
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("x%d@example.test", i)
	}
	many[0] = "team@example.test"
	stored := func() int {
		return e.count("posts") + e.count("held_posts") + e.count("subscription_requests") + e.count("members")
	}
	for _, tc := range []struct {
		name  string
		rcpts []string
		msg   string
		// ok: codes acceptable for the first recipient.
		ok []int
	}{
		{"NUL in the body", []string{"team@example.test"}, "From: ann@example.org\nSubject: nul\n\na\x00b\n", []int{250, 554}},
		// The subject is stored: NUL and bad UTF-8 would fail the insert
		// for good (a 451 the MTA retries for days).
		{"NUL in the subject", []string{"team@example.test"}, "From: ann@example.org\nSubject: a\x00b\n\nhi\n", []int{250}},
		{"encoded NUL and CRLF in the subject", []string{"team@example.test"}, "From: ann@example.org\nSubject: =?UTF-8?Q?a=00b=0D=0ABcc:_x@y.example?=\n\nhi\n", []int{250}},
		{"encoded bad UTF-8 in the subject", []string{"team@example.test"}, "From: ann@example.org\nSubject: =?UTF-8?B?/w==?=\n\nhi\n", []int{250}},
		{"raw Latin-1 in the subject", []string{"team@example.test"}, "From: ann@example.org\nSubject: caf\xe9\n\nhi\n", []int{250}},
		{"NUL in the Message-ID", []string{"team@example.test"}, "From: ann@example.org\nMessage-ID: <a\x00b@example.org>\nSubject: id\n\nhi\n", []int{250, 554}},
		{"bad UTF-8 in the Message-ID", []string{"team@example.test"}, "From: ann@example.org\nMessage-ID: <caf\xe9@example.org>\nSubject: id\n\nhi\n", []int{250, 554}},
		{"a stranger's Latin-1 name, held", []string{"team@example.test"}, "From: Ren\xe9 <rene@example.org>\nSubject: name\n\nhi\n", []int{250, 554}},
		{"joining with a Latin-1 name", []string{"team-join@example.test"}, "From: Ren\xe9 <rene@example.org>\nSubject: join\n\n", []int{250, 554}},
		{"joining with an encoded NUL name", []string{"team-join@example.test"}, "From: =?UTF-8?Q?R=00n=0D=0A?= <rene2@example.org>\nSubject: join\n\n", []int{250, 554}},
		{"joining with a name of 500 characters", []string{"team-join@example.test"}, "From: " + strings.Repeat("n", 500) + " <rene3@example.org>\nSubject: join\n\n", []int{250, 554}},
		{"commands in Latin-1 with NUL", []string{"team-request@example.test"}, "From: ann@example.org\nSubject: caf\xe9\x00\n\nhelp caf\xe9\x00\nwho\n", []int{250, 554}},
		{"a stranger's NUL subject, held", []string{"team@example.test"}, "From: zed@example.org\nSubject: =?UTF-8?Q?a=00b?=\n\nhi\n", []int{250}},
		{"bare CR", []string{"team@example.test"}, "From: ann@example.org\nSubject: a\rBcc: x@y.example\n\nhi\rthere\n", []int{250, 554}},
		{"control characters in From", []string{"team@example.test"}, "From: \"a\x01\x1b[2Jb\" <ann@example.org>\nSubject: ctl\n\nhi\n", []int{250, 554}},
		{"a thousand recipients", many, post, []int{250}},
		// Folded: go-smtp ends the connection on a line over 2000 bytes.
		{"a header of a megabyte", []string{"team-request@example.test"}, "From: ann@example.org\nX-Big: a" + strings.Repeat("\n aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1<<14) + "\n\nsubscribe\n", []int{552, 554}},
		{"MIME nested 2000 deep", []string{"team-request@example.test"}, nested(2000), []int{250, 552, 554}},
		// go-smtp closes on a command line over 2000 bytes: 500.
		{"a confirm token of 10 KB", []string{"team-confirm+" + strings.Repeat("A", 10<<10) + "@example.test"}, post, []int{500}},
		{"a confirm token of 1 KB", []string{"team-confirm+" + strings.Repeat("A", 1<<10) + "@example.test"}, post, []int{250, 501, 550}},
		{"a confirm token of garbage", []string{"team-confirm+%00..//@example.test"}, post, []int{250, 501, 550}},
		{"a VERP of garbage", []string{"team-bounces+garbage@example.test", "team-bounces+==@example.test", "team-bounces+a=b=c@example.test"}, "From: MAILER-DAEMON@x.example\nSubject: bounce\n\ngarbage\n", []int{250, 550}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := stored()
			got := e.deliver("ann@example.org", tc.rcpts, tc.msg)
			if len(got) == 0 {
				t.Fatal("no answer")
			}
			for _, r := range tc.rcpts[:1] {
				a := got[r]
				if !slicesContains(tc.ok, a.code) {
					t.Errorf("%.60s: %d %q, want one of %v", r, a.code, a.msg, tc.ok)
				}
				if a.code != 250 && stored() != before {
					t.Errorf("refused with %d but stored something", a.code)
				}
			}
			for r, a := range got {
				if a.code < 250 || a.code >= 600 {
					t.Errorf("%.60s: %d %q, want an LMTP answer", r, a.code, a.msg)
				}
			}
		})
	}
	if got := e.deliver("ann@example.org", []string{"team@example.test"}, firstPost)["team@example.test"]; got.code != 250 {
		t.Errorf("a post after the attack: %v", got)
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestAttackHeldFlood: posts forged in someone's name get that address
// at most 10 notices an hour, and a list holds at most 1000 posts for its
// moderators; past that a post is refused for now (452), nothing stored.
func TestAttackHeldFlood(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	for i := range 12 {
		e.hold("victim@example.org", "victim@example.org", fmt.Sprintf("flood %d", i))
	}
	if n := e.notices(); n != 10 {
		t.Errorf("%d notices to the forged author for 12 posts, want 10", n)
	}
	// The queue filled to one short of the cap (copies of a held post).
	e.sql(`INSERT INTO held_posts (id, list_id, sender, subject, raw, reason)
SELECT gen_random_uuid(), list_id, sender, subject, raw, reason FROM held_posts, generate_series(1, 1000 - 12 - 1) LIMIT 1000 - 12 - 1`)
	if got := e.deliver("x@example.org", []string{"team@example.test"}, strangerPost("x@example.org", "last"))["team@example.test"]; got.code != 250 {
		t.Errorf("the 1000th held post: %v, want 250", got)
	}
	got := e.deliver("y@example.org", []string{"team@example.test"}, strangerPost("y@example.org", "one too many"))["team@example.test"]
	if got.code != 452 || !strings.Contains(got.msg, "1000") {
		t.Errorf("the 1001st held post: %v, want 452 naming the cap", got)
	}
	if n := e.count("held_posts"); n != 1000 {
		t.Errorf("%d held posts, want 1000", n)
	}
	if got := e.deliver("ann@example.org", []string{"team@example.test"}, firstPost)["team@example.test"]; got.code != 250 {
		t.Errorf("a member's post while the queue is full: %v, want 250", got)
	}
}

// TestAttackRequestsFull: with 10000 subscriptions waiting, a join by
// mail is answered (not retried for ever) and stores nothing.
func TestAttackRequestsFull(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	e.sql(`INSERT INTO subscription_requests (id, list_id, email, email_key, via, state)
SELECT gen_random_uuid(), id, 'w' || i || '@example.org', 'w' || i || '@example.org', 'mail', 1 FROM lists, generate_series(1, 10000) i`)
	got := e.deliver("new@example.org", []string{"team-join@example.test"}, "From: new@example.org\nSubject: join\n\n")["team-join@example.test"]
	if got.code == 451 || got.code < 250 {
		t.Errorf("join with the queue full: %v, want an answer the MTA does not retry for ever", got)
	}
	if n := e.count("subscription_requests"); n != 10000 {
		t.Errorf("%d requests, want 10000", n)
	}
}
