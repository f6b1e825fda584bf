package lists_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestModeratorUsers: a user named as a moderator is looked up in
// accounts when the moderators are saved (someone who is not a member of
// the organization is refused, naming the field); their login email,
// stored beside them and never shown, gets the decision mails and the
// -owner mail, and their posts pass the posting policy as a moderator's.
func TestModeratorUsers(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_MODERATE, listsv1.Language_LANGUAGE_EN)
	boss := &listsv1.Moderator{Email: "boss@elsewhere.example"}
	stranger := "users/0193d2a5-0000-7000-8000-0000000000ff"
	update := func(paths []string, l *listsv1.List) (*listsv1.List, error) {
		l.Name = e.list.GetName()
		resp, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: l, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		return resp.GetList(), err
	}
	_, err := update([]string{"moderators"}, &listsv1.List{Moderators: []*listsv1.Moderator{boss, {User: stranger}}})
	wantCode(t, err, codes.InvalidArgument, "list.moderators[1].user")
	_, err = e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "other", Moderators: []*listsv1.Moderator{{User: stranger}}}})
	wantCode(t, err, codes.InvalidArgument, "list.moderators[0].user")

	// Named in capitals: stored as accounts names users.
	l, err := update([]string{"moderators"}, &listsv1.List{Moderators: []*listsv1.Moderator{boss, {User: "users/" + strings.ToUpper(strings.TrimPrefix(modUser, "users/"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if m := l.GetModerators(); len(m) != 2 || m[1].GetUser() != modUser || m[1].GetEmail() != "" {
		t.Errorf("moderators %v, want boss and %s without an address", m, modUser)
	}
	if got := e.storedEmail(t, "team"); got != modEmail {
		t.Errorf("stored login %q, want %q", got, modEmail)
	}

	// The decision mail reaches both moderators.
	e.send("zoe@example.com", "team-join@example.test", "From: zoe@example.com\nSubject: join\n\n")
	got := e.next(3)
	got.to(t, "boss@elsewhere.example", "asks to join")
	got.to(t, modEmail, "asks to join")
	got.to(t, "zoe@example.com", "")

	// So does mail to -owner.
	e.send("zoe@example.com", "team-owner@example.test", "From: zoe@example.com\nTo: team-owner@example.test\nSubject: hello\n\nWho runs this?\n")
	var to []string
	for _, m := range waitMessages(t, e.relay, e.seen+2)[e.seen:] {
		to = append(to, m.To...)
	}
	e.seen += 2
	slices.Sort(to)
	if want := []string{"boss@elsewhere.example", modEmail}; !slices.Equal(to, want) {
		t.Errorf("-owner mail forwarded to %v, want %v", to, want)
	}

	// Announcements: the user's post is sent, a member's held.
	if _, err := update([]string{"posting_policy"}, &listsv1.List{PostingPolicy: listsv1.PostingPolicy_POSTING_POLICY_MODERATORS}); err != nil {
		t.Fatal(err)
	}
	for _, from := range []string{"mod@Example.ORG", "ann@example.org"} {
		if got := e.deliver(from, []string{"team@example.test"}, "From: "+from+"\nSubject: news\n\nhello\n")["team@example.test"]; got.code != 250 {
			t.Fatalf("post from %s: %v", from, got)
		}
	}
	if p, h := e.count("posts"), e.count("held_posts"); p != 1 || h != 1 {
		t.Errorf("%d posts sent and %d held, want the moderator's sent and the member's held", p, h)
	}
}

// storedEmail is the login email stored for modUser among the moderators
// of the list localPart ("" when none).
func (e *mailEnv) storedEmail(t *testing.T, localPart string) string {
	t.Helper()
	var email *string
	err := e.pool.QueryRow(context.Background(), `SELECT m->>'user_email' FROM lists, jsonb_array_elements(moderators) m
WHERE local_key = $1 AND m->>'user' = $2`, localPart, modUser).Scan(&email)
	if err != nil {
		t.Fatal(err)
	}
	if email == nil {
		return ""
	}
	return *email
}

// TestModeratorUsersFollowAccounts: accounts' events keep the moderators
// named as users true: a released login is forgotten (the user stays a
// moderator, reachable again once the moderators are saved), a member
// removed from the organization leaves its lists' moderators, a deleted
// user every list's; each change is a lists.list.updated event, and an
// event applied again changes nothing.
func TestModeratorUsersFollowAccounts(t *testing.T) {
	e := startMail(t, lists.Relay{})
	for _, lp := range []string{"team", "other"} {
		name := e.list.GetName()
		if lp == "other" {
			created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: lp}})
			if err != nil {
				t.Fatal(err)
			}
			name = created.GetList().GetName()
		}
		_, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{
			List:       &listsv1.List{Name: name, Moderators: []*listsv1.Moderator{{Email: "boss@elsewhere.example"}, {User: modUser}}},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"moderators"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	publish := consume(t, e)
	updates := func() int {
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE subject LIKE '%lists.list.updated'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := updates()
	id := uuid.NewString()
	publish(accountsevents.UserLoginReleased, id, &accountsv1.LoginReleased{User: modUser, ReleasedEmail: modEmail, Actor: "users/" + uuid.NewString()})
	waitUntil(t, "login forgotten", func() bool { return e.storedEmail(t, "team") == "" && e.storedEmail(t, "other") == "" })
	if n := updates() - before; n != 2 {
		t.Errorf("%d list updates after the login's release, want 2", n)
	}
	got, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: e.list.GetName()})
	if err != nil || len(got.GetList().GetModerators()) != 2 {
		t.Fatalf("moderators after the login's release: %v, %v", got.GetList().GetModerators(), err)
	}

	// Another organization's member is not ours; ours leaves team and other.
	memberOf := func(org string) *accountsv1.Member {
		return &accountsv1.Member{Name: "organizations/" + org + "/members/" + strings.TrimPrefix(modUser, "users/"), User: modUser}
	}
	publish(accountsevents.MemberDeleted, uuid.NewString(), &accountsv1.MemberDeleted{Member: memberOf(uuid.NewString()), Actor: "users/" + uuid.NewString()})
	publish(accountsevents.MemberDeleted, uuid.NewString(), &accountsv1.MemberDeleted{Member: memberOf(e.org.String()), Actor: "users/" + uuid.NewString()})
	waitUntil(t, "moderator removed", func() bool {
		got, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: e.list.GetName()})
		return err == nil && len(got.GetList().GetModerators()) == 1 && got.GetList().GetModerators()[0].GetEmail() == "boss@elsewhere.example"
	})
	var left int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM lists WHERE moderators @> $1`, `[{"user": "`+modUser+`"}]`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d lists still moderated by %s (%v)", left, modUser, err)
	}

	// A deleted user leaves every list; the same event again does nothing.
	if _, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{
		List:       &listsv1.List{Name: e.list.GetName(), Moderators: []*listsv1.Moderator{{User: modUser}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"moderators"}},
	}); err != nil {
		t.Fatal(err)
	}
	before = updates()
	id = uuid.NewString()
	publish(accountsevents.UserDeleted, id, &accountsv1.UserDeleted{User: modUser})
	waitUntil(t, "user deleted", func() bool {
		got, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: e.list.GetName()})
		return err == nil && len(got.GetList().GetModerators()) == 0
	})
	publish(accountsevents.UserDeleted, uuid.NewString(), &accountsv1.UserDeleted{User: modUser})
	publish(accountsevents.UserLoginReleased, uuid.NewString(), &accountsv1.LoginReleased{User: "users/" + uuid.NewString(), ReleasedEmail: "x@example.org"})
	// The last event applied shows the earlier ones were: the consumer
	// takes them in order.
	var applied int
	waitUntil(t, "events applied", func() bool {
		err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM applied_events WHERE consumer = 'lists-people'`).Scan(&applied)
		return err == nil && applied == 6
	})
	if n := updates() - before; n != 1 {
		t.Errorf("%d list updates after the user's deletion (twice), want 1", n)
	}
}

// consume runs the service's subscriptions against an in-process NATS,
// as a process does, and returns what publishes an accounts event.
func consume(t *testing.T, e *mailEnv) func(subject, id string, m proto.Message) {
	t.Helper()
	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := events.EnsureStream(ctx, js, "LISTSTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	for _, sub := range lists.Subscriptions(log) {
		c := &events.Consumer{JS: js, Pool: e.pool, Stream: "LISTSTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		go c.Run(ctx)
	}
	return func(subject, id string, m proto.Message) {
		t.Helper()
		data, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "mp."+subject, data, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
}

// waitUntil polls ok for up to 10 seconds.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}
