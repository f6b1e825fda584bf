package lists_test

import (
	"context"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc/codes"
)

// strangerPost is a post to team@example.test from someone who is not a
// member, which the posting policy holds.
func strangerPost(from, subject string) string {
	return fmt.Sprintf("From: %s\nTo: team@example.test\nSubject: %s\nMessage-ID: <%s@example.com>\n\nHello list.\n", from, subject, uuid.NewString())
}

// hold delivers a stranger's post over LMTP and returns its held post,
// the newest.
func (e *mailEnv) hold(envelope, from, subject string) *listsv1.HeldPost {
	e.t.Helper()
	if got := e.deliver(envelope, []string{"team@example.test"}, strangerPost(from, subject))["team@example.test"]; got.code != 250 {
		e.t.Fatalf("post from %s: answer %v, want 250", from, got)
	}
	resp, err := e.moderation().ListHeldPosts(e.admin, &listsv1.ListHeldPostsRequest{Parent: e.list.GetName(), PageSize: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.GetHeldPosts()) != 1 || !strings.HasSuffix(resp.GetHeldPosts()[0].GetSubject(), subject) {
		e.t.Fatalf("newest held post %v, want %q's", resp.GetHeldPosts(), subject)
	}
	return resp.GetHeldPosts()[0]
}

func (e *mailEnv) moderation() listsv1.ModerationServiceClient {
	return listsv1.NewModerationServiceClient(e.srv.Conn)
}

// notices counts the notice jobs queued: the mails to held posts'
// authors, whether sent yet or not.
func (e *mailEnv) notices() int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = 'list_letter' AND args->>'letter' IN ('held_post_pending', 'held_post_rejected')").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitMessages waits until the relay took n messages and returns them.
func waitMessages(t *testing.T, relay *smtptest.Server, n int) []smtptest.Message {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		ms := relay.Messages()
		if len(ms) == n {
			return ms
		}
		if len(ms) > n || time.Now().After(deadline) {
			var to [][]string
			for _, m := range ms {
				to = append(to, m.To)
			}
			t.Fatalf("relay took %d messages (to %v), want %d", len(ms), to, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// notice checks that m is a notice to to whose subject and body say
// what the words say, and returns its body.
func notice(t *testing.T, m smtptest.Message, to string, words ...string) string {
	t.Helper()
	msg := m.Parsed(t)
	var r io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	text := msg.Header.Get("Subject") + "\n" + string(b)
	if !slices.Equal(m.To, []string{to}) {
		t.Errorf("notice to %v, want %s", m.To, to)
	}
	if m.From != "team-bounces@example.test" {
		t.Errorf("notice from %s, want the -bounces address", m.From)
	}
	if got := msg.Header.Get("Auto-Submitted"); got != "auto-replied" {
		t.Errorf("notice Auto-Submitted %q, want auto-replied", got)
	}
	for _, w := range words {
		if !strings.Contains(text, w) {
			t.Errorf("notice to %s does not say %q:\n%s", to, w, text)
		}
	}
	return text
}

// TestModeration: a stranger's post is held, listed with its reason, and
// its author told; accepted, it reaches the members; rejected, its
// author gets the moderator's reason and the members nothing; discarded,
// nobody hears of it. A robot author is never written to.
func TestModeration(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	mod := e.moderation()

	// Held, listed, told.
	before := time.Now()
	h := e.hold("zed@example.com", "Zed <zed@example.com>", "Cheap flights")
	if h.GetSender() != "zed@example.com" || !strings.Contains(h.GetReason(), "not a member") || h.GetSizeBytes() < 50 ||
		!strings.HasPrefix(h.GetName(), e.list.GetName()+"/heldPosts/") {
		t.Errorf("held post %v", h)
	}
	if ttl := h.GetExpireTime().AsTime().Sub(h.GetCreateTime().AsTime()); ttl != lists.DefaultHeldPostTTL {
		t.Errorf("expires %v after it was held, want %v", ttl, lists.DefaultHeldPostTTL)
	}
	if h.GetCreateTime().AsTime().Before(before.Add(-time.Minute)) {
		t.Errorf("create_time %v, want about now", h.GetCreateTime().AsTime())
	}
	ms := waitMessages(t, relay, 2)
	notice(t, to(t, ms, "zed@example.com"), "zed@example.com", "awaits approval", "Cheap flights", "not a member", "deleted if no moderator")
	decision(t, to(t, ms, "boss@elsewhere.example"), "zed@example.com", "Cheap flights")

	// Accepted: distributed to every member, as a member's post is.
	if _, err := mod.AcceptHeldPost(e.admin, &listsv1.AcceptHeldPostRequest{Name: h.GetName()}); err != nil {
		t.Fatal(err)
	}
	e.waitPosts(1)
	ms = waitMessages(t, relay, 5)
	var copies []string
	for _, m := range ms[2:] {
		if subj := m.Parsed(t).Header.Get("Subject"); !strings.Contains(subj, "Cheap flights") {
			t.Errorf("copy with subject %q", subj)
		}
		copies = append(copies, m.To...)
	}
	slices.Sort(copies)
	if want := []string{"ann@example.org", "bob@Example.org", "cat@example.net"}; !slices.Equal(copies, want) {
		t.Errorf("accepted post sent to %v, want %v", copies, want)
	}
	_, err := mod.AcceptHeldPost(e.admin, &listsv1.AcceptHeldPostRequest{Name: h.GetName()})
	wantCode(t, err, codes.NotFound, "held post")

	// Rejected: the author gets the reason; no post exists to send.
	h = e.hold("yan@example.com", "yan@example.com", "Off topic")
	waitMessages(t, relay, 7)
	if _, err := mod.RejectHeldPost(e.admin, &listsv1.RejectHeldPostRequest{Name: h.GetName(), Reason: "Please keep to the team's work."}); err != nil {
		t.Fatal(err)
	}
	ms = waitMessages(t, relay, 8)
	notice(t, ms[7], "yan@example.com", "rejected", "Off topic", "Please keep to the team's work.")
	if n := e.count("posts"); n != 1 {
		t.Errorf("%d posts, want the accepted one only", n)
	}

	// Discarded: nothing more is queued for anyone.
	h = e.hold("xi@example.com", "xi@example.com", "Spam")
	if _, err := mod.DiscardHeldPost(e.admin, &listsv1.DiscardHeldPostRequest{Name: h.GetName()}); err != nil {
		t.Fatal(err)
	}
	// A robot author is never told: its mail is not even held (the LMTP
	// path drops it), and queueNotice would skip it.
	if got := e.deliver("wu@example.com", []string{"team@example.test"}, strangerPost("no-reply@example.com", "Your invoice"))["team@example.test"]; got.code != 250 {
		t.Fatalf("robot's post: answer %v, want 250 (taken and dropped)", got)
	}
	if n := e.notices(); n != 4 {
		t.Errorf("%d notices queued, want 4 (three held, one rejected; none for the discard or the robot)", n)
	}
	waitMessages(t, relay, 10) // the discarded post's held notice and decision mail
	if n := e.count("posts"); n != 1 {
		t.Errorf("%d posts, want the accepted one only", n)
	}
	if n := e.count("held_posts"); n != 0 {
		t.Errorf("%d held posts, want none", n)
	}
}

// to returns the one message of ms to addr.
func to(t *testing.T, ms []smtptest.Message, addr string) smtptest.Message {
	t.Helper()
	var found []smtptest.Message
	for _, m := range ms {
		if slices.Equal(m.To, []string{addr}) {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d messages to %s, want 1", len(found), addr)
	}
	return found[0]
}

// decision checks that m asks the moderators about sender's post with
// subject, with the three mailto: links, from the -request address.
func decision(t *testing.T, m smtptest.Message, sender, subject string) {
	t.Helper()
	text := notice(t, m, "boss@elsewhere.example", sender, subject, "mailto:team-request@example.test?subject=accept%20",
		"mailto:team-request@example.test?subject=reject%20", "mailto:team-request@example.test?subject=discard%20")
	if from := m.Parsed(t).Header.Get("From"); !strings.Contains(from, "team-request@example.test") {
		t.Errorf("decision mail from %q, want the -request address:\n%s", from, text)
	}
}

// TestHeldPostsPagedAndExpired: held posts are listed newest first over
// pages; one older than the TTL is deleted by the expiry, the others
// stay.
func TestHeldPostsPagedAndExpired(t *testing.T) {
	e := startMail(t, lists.Relay{}) // notices are logged
	mod := e.moderation()
	var names []string
	for _, s := range []string{"one", "two", "three"} {
		names = append(names, e.hold("zed@example.com", "zed@example.com", s).GetName())
	}
	var got []string
	for token := ""; ; {
		resp, err := mod.ListHeldPosts(e.admin, &listsv1.ListHeldPostsRequest{Parent: e.list.GetName(), PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTotalSize() != 3 {
			t.Errorf("total_size %d, want 3", resp.GetTotalSize())
		}
		for _, h := range resp.GetHeldPosts() {
			got = append(got, h.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{names[2], names[1], names[0]}; !slices.Equal(got, want) {
		t.Errorf("held posts %v, want newest first %v", got, want)
	}

	// "one" was held fifteen days ago.
	id := names[0][strings.LastIndexByte(names[0], '/')+1:]
	if _, err := e.pool.Exec(context.Background(), "UPDATE held_posts SET create_time = now() - interval '15 days' WHERE id = $1", id); err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.ExpireHeldPosts(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("expired %d, %v; want 1", n, err)
	}
	resp, err := mod.ListHeldPosts(e.admin, &listsv1.ListHeldPostsRequest{Parent: e.list.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, h := range resp.GetHeldPosts() {
		got = append(got, h.GetName())
	}
	if want := []string{names[2], names[1]}; !slices.Equal(got, want) {
		t.Errorf("after expiry %v, want %v", got, want)
	}
}

// TestModerationAccess: members may not moderate (PermissionDenied);
// another organization's callers find nothing (NotFound); bad input names
// its field.
func TestModerationAccess(t *testing.T) {
	e := startMail(t, lists.Relay{})
	mod := e.moderation()
	h := e.hold("zed@example.com", "zed@example.com", "Hello")
	calls := map[string]func(ctx context.Context) error{
		"list": func(ctx context.Context) error {
			_, err := mod.ListHeldPosts(ctx, &listsv1.ListHeldPostsRequest{Parent: e.list.GetName()})
			return err
		},
		"accept": func(ctx context.Context) error {
			_, err := mod.AcceptHeldPost(ctx, &listsv1.AcceptHeldPostRequest{Name: h.GetName()})
			return err
		},
		"reject": func(ctx context.Context) error {
			_, err := mod.RejectHeldPost(ctx, &listsv1.RejectHeldPostRequest{Name: h.GetName(), Reason: "no"})
			return err
		},
		"discard": func(ctx context.Context) error {
			_, err := mod.DiscardHeldPost(ctx, &listsv1.DiscardHeldPostRequest{Name: h.GetName()})
			return err
		},
	}
	for _, tc := range []struct {
		who  string
		ctx  context.Context
		want codes.Code
	}{
		{"member", e.as(e.org, "member"), codes.PermissionDenied},
		{"another organization's admin", e.as(uuid.Must(uuid.NewV7()), "admin"), codes.NotFound},
	} {
		for name, call := range calls {
			t.Run(tc.who+"/"+name, func(t *testing.T) { wantCode(t, call(tc.ctx), tc.want, "") })
		}
	}
	if n := e.count("held_posts"); n != 1 {
		t.Errorf("%d held posts, want the one, untouched", n)
	}

	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"empty reason", "reason", func() error {
			_, err := mod.RejectHeldPost(e.admin, &listsv1.RejectHeldPostRequest{Name: h.GetName(), Reason: "  "})
			return err
		}},
		{"long reason", "reason", func() error {
			_, err := mod.RejectHeldPost(e.admin, &listsv1.RejectHeldPostRequest{Name: h.GetName(), Reason: strings.Repeat("é", 1001)})
			return err
		}},
		{"bad name", "name", func() error {
			_, err := mod.DiscardHeldPost(e.admin, &listsv1.DiscardHeldPostRequest{Name: e.list.GetName() + "/heldPosts/x"})
			return err
		}},
		{"bad parent", "parent", func() error {
			_, err := mod.ListHeldPosts(e.admin, &listsv1.ListHeldPostsRequest{Parent: "organizations/x"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), codes.InvalidArgument, tc.field) })
	}
	// Another list's held post is not found through this one's name.
	other := strings.Replace(h.GetName(), "/heldPosts/", "/heldPosts/", 1)
	other = other[:strings.Index(other, "/lists/")] + "/lists/" + uuid.Must(uuid.NewV7()).String() + other[strings.Index(other, "/heldPosts/"):]
	_, err := mod.DiscardHeldPost(e.admin, &listsv1.DiscardHeldPostRequest{Name: other})
	wantCode(t, err, codes.NotFound, "list")
}
