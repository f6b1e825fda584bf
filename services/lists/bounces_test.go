package lists_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The bounce addresses of the test list for alice@example.net, the
// member the testdata's bounces are about, and for someone who is none.
const (
	aliceVERP    = "team-bounces+alice=example.net@example.test"
	strangerVERP = "team-bounces+zed=example.net@example.test"
	bareBounces  = "team-bounces@example.test"
)

// bounceMail reads a bounce of internal/bounces' testdata.
func bounceMail(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("internal", "bounces", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

// bounce delivers the testdata bounce name to rcpt over LMTP from the
// null sender, as an MTA returns it, and wants it taken.
func (e *mailEnv) bounce(rcpt, name string) {
	e.t.Helper()
	if got := e.deliver("", []string{rcpt}, bounceMail(e.t, name))[rcpt]; got.code != 250 {
		e.t.Fatalf("%s to %s: answer %v, want 250", name, rcpt, got)
	}
}

// member returns the member whose address is email, nil when none is.
func (e *mailEnv) member(email string) *listsv1.Member {
	e.t.Helper()
	resp, err := e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list.GetName(), Filter: `email = "` + email + `"`})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(resp.GetMembers()) == 0 {
		return nil
	}
	return resp.GetMembers()[0]
}

func (e *mailEnv) addMember(email string) *listsv1.Member {
	e.t.Helper()
	resp, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: e.list.GetName(), Member: &listsv1.Member{Email: email}, Silent: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetMember()
}

// sql runs a statement, as a test ages rows instead of waiting days.
func (e *mailEnv) sql(q string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// waitSweep waits until the periodic "sweep bounces" ran once, as it
// does when the replica starts: a test then sweeps by hand, and the next
// periodic run is an hour away.
func (e *mailEnv) waitSweep() {
	e.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		var done bool
		err := e.pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM river_job WHERE kind = 'periodic' AND args->>'name' = 'sweep bounces' AND state = 'completed')`).Scan(&done)
		if err != nil {
			e.t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("the periodic sweep did not run")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *mailEnv) setBounceSettings(b *listsv1.BounceSettings) {
	e.t.Helper()
	_, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: &listsv1.List{Name: e.list.GetName(), BounceSettings: b},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"bounce_settings"}}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// TestBouncesOverLMTP: bounces to the VERP address, standard and not,
// count against the member they name, at most once a day; temporary
// failures, mail that is no bounce and bounces about non-members are
// taken and dropped; nothing is ever answered.
func TestBouncesOverLMTP(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	e.addMember("alice@example.net")
	history := func() int { return e.count("member_bounces") }

	e.bounce(aliceVERP, "dsn-failed.eml")
	m := e.member("alice@example.net")
	if m.GetBounceScore() != 1 || !strings.Contains(m.GetLastBounceDiagnostic(), "5.1.1") || m.GetFirstBounceTime() == nil ||
		!m.GetFirstBounceTime().AsTime().Equal(m.GetLastBounceTime().AsTime()) || m.GetDelivery() != listsv1.Delivery_DELIVERY_ENABLED {
		t.Errorf("after a bounce: %v", m)
	}
	// The same day again, in other formats: recorded, not counted.
	for _, name := range []string{"qmail.eml", "postfix-text.eml", "exim.eml", "gmail.eml"} {
		e.bounce(aliceVERP, name)
	}
	e.bounce(bareBounces, "dsn-failed.eml") // names alice in its report
	if m := e.member("alice@example.net"); m.GetBounceScore() != 1 {
		t.Errorf("score %d after six bounces in a day, want 1", m.GetBounceScore())
	}
	if n := history(); n != 6 {
		t.Errorf("%d bounces recorded, want 6", n)
	}

	// Temporary failures, mail that is no bounce, and bounces of
	// strangers: taken, dropped.
	for _, name := range []string{"dsn-delayed.eml", "exim-delay.eml", "exchange-delayed.eml", "dsn-success.eml", "ordinary.eml", "out-of-office.eml"} {
		e.bounce(aliceVERP, name)
	}
	e.bounce(strangerVERP, "dsn-failed.eml")
	if got := e.deliver("", []string{aliceVERP}, "this is no mail\x00 at all\n")[aliceVERP]; got.code != 250 {
		t.Errorf("garbage: answer %v, want 250", got)
	}
	if n := history(); n != 6 {
		t.Errorf("%d bounces recorded after temporary ones and others', want 6", n)
	}

	// The next day counts.
	e.sql(`UPDATE members SET last_bounce_time = last_bounce_time - interval '1 day'`)
	e.bounce(aliceVERP, "dsn-failed.eml")
	if m := e.member("alice@example.net"); m.GetBounceScore() != 2 {
		t.Errorf("score %d on the next day, want 2", m.GetBounceScore())
	}
	// The history is capped.
	for range 20 {
		e.bounce(aliceVERP, "exim.eml")
	}
	if n := history(); n != 20 {
		t.Errorf("%d bounces kept, want the newest 20", n)
	}
	if ms := relay.Messages(); len(ms) != 0 {
		t.Errorf("the bounce robot answered %d mails", len(ms))
	}
}

// TestBounceThreshold: at the threshold delivery is disabled and the
// member gets no copy; the sweep mails the warnings an interval apart,
// then removes the member (consent record kept) and tells the
// moderators.
func TestBounceThreshold(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	e.waitSweep()
	e.setBounceSettings(&listsv1.BounceSettings{ScoreThreshold: 2, Warnings: 2, WarningIntervalDays: 7})
	e.addMember("alice@example.net")
	ctx := context.Background()

	e.bounce(aliceVERP, "dsn-failed.eml")
	e.sql(`UPDATE members SET last_bounce_time = last_bounce_time - interval '1 day'`)
	e.bounce(aliceVERP, "sendmail.eml")
	m := e.member("alice@example.net")
	if m.GetBounceScore() != 2 || m.GetDelivery() != listsv1.Delivery_DELIVERY_DISABLED_BY_BOUNCES || m.GetDeliveryDisabledTime() == nil {
		t.Fatalf("at the threshold: %v", m)
	}
	disabled, err := e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list.GetName(), Filter: "delivery = DELIVERY_DISABLED_BY_BOUNCES"})
	if err != nil || disabled.GetTotalSize() != 1 || disabled.GetMembers()[0].GetEmail() != "alice@example.net" {
		t.Errorf("members disabled: %v, %v; want alice", disabled, err)
	}
	_, err = e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list.GetName(), Filter: "delivery = OFF"})
	wantCode(t, err, codes.InvalidArgument, "filter")

	// No copy for alice.
	post := "From: Ann <ann@example.org>\nTo: team@example.test\nSubject: news\nMessage-ID: <news@example.org>\n\nhello\n"
	if got := e.deliver("ann@example.org", []string{"team@example.test"}, post)["team@example.test"]; got.code != 250 {
		t.Fatalf("post: %v", got)
	}
	e.waitPosts(1)
	var to []string
	for _, m := range waitMessages(t, relay, 2) {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	if want := []string{"bob@Example.org", "cat@example.net"}; !slices.Equal(to, want) {
		t.Errorf("copies to %v, want %v (not to alice)", to, want)
	}

	sweep := func(want int) {
		t.Helper()
		if n, err := e.svc.SweepBounces(ctx); err != nil || n != want {
			t.Fatalf("sweep: %d, %v; want %d", n, err, want)
		}
	}
	// The first warning at once, the second a week later; nothing between.
	sweep(1)
	ms := waitMessages(t, relay, 3)
	notice(t, ms[2], "alice@example.net", "warning 1 of 2", "team-owner@example.test", "5.1.1")
	sweep(0)
	e.sql(`UPDATE members SET last_warning_time = last_warning_time - interval '6 days'`)
	sweep(0)
	e.sql(`UPDATE members SET last_warning_time = last_warning_time - interval '1 day'`)
	sweep(1)
	ms = waitMessages(t, relay, 4)
	notice(t, ms[3], "alice@example.net", "warning 2 of 2")
	if m := e.member("alice@example.net"); m.GetBounceWarningsSent() != 2 {
		t.Errorf("warnings sent %d, want 2", m.GetBounceWarningsSent())
	}

	// A week after the last warning: removed, the moderator told.
	e.sql(`UPDATE members SET last_warning_time = last_warning_time - interval '7 days'`)
	sweep(1)
	ms = waitMessages(t, relay, 5)
	notice(t, ms[4], "boss@elsewhere.example", "alice@example.net was removed", "2 days")
	if e.member("alice@example.net") != nil {
		t.Error("alice is still a member")
	}
	var withdrawn string
	if err := e.pool.QueryRow(ctx, `SELECT withdrawn_by FROM consents`).Scan(&withdrawn); err != nil || withdrawn != "removed after bounces" {
		t.Errorf("consent record: %q, %v", withdrawn, err)
	}
	if n := e.count("member_bounces"); n != 0 {
		t.Errorf("%d bounces kept of an erased member", n)
	}
	if l, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: e.list.GetName()}); err != nil || l.GetList().GetMemberCount() != 3 {
		t.Errorf("member_count %d (%v), want 3", l.GetList().GetMemberCount(), err)
	}
	sweep(0)
}

// TestRelayRefusalCounted: a relay's permanent refusal of a copy counts
// as a bounce; a moderator enables delivery again, clearing the score.
func TestRelayRefusalCounted(t *testing.T) {
	sink := startSink(t)
	e := startMail(t, lists.Relay{Addr: sink.addr, Insecure: true})
	e.setBounceSettings(&listsv1.BounceSettings{ScoreThreshold: 1})
	sink.refuse["cat@example.net"] = true
	msg := "From: Boss <boss@elsewhere.example>\nSubject: news\nMessage-ID: <refused@elsewhere.example>\n\nhello\n"
	if got := e.deliver("boss@elsewhere.example", []string{"team@example.test"}, msg)["team@example.test"]; got.code != 250 {
		t.Fatalf("answer %v", got)
	}
	e.waitPosts(1)
	cat := e.member("cat@example.net")
	if cat.GetBounceScore() != 1 || cat.GetDelivery() != listsv1.Delivery_DELIVERY_DISABLED_BY_BOUNCES || !strings.Contains(cat.GetLastBounceDiagnostic(), "550 5.1.1") {
		t.Fatalf("cat after a refusal: %v", cat)
	}

	_, err := e.members.EnableMemberDelivery(e.as(e.org, "member"), &listsv1.EnableMemberDeliveryRequest{Name: cat.GetName()})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.members.EnableMemberDelivery(e.admin, &listsv1.EnableMemberDeliveryRequest{Name: e.list.GetName() + "/members/0193d2a5-0000-7000-8000-000000000001"})
	wantCode(t, err, codes.NotFound, "")
	resp, err := e.members.EnableMemberDelivery(e.admin, &listsv1.EnableMemberDeliveryRequest{Name: cat.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if m := resp.GetMember(); m.GetDelivery() != listsv1.Delivery_DELIVERY_ENABLED || m.GetBounceScore() != 0 || m.GetDeliveryDisabledTime() != nil || m.GetLastBounceTime() == nil {
		t.Errorf("enabled: %v", m)
	}
}

// TestBounceSettings: defaults are Mailman's; out of range is refused
// naming the field.
func TestBounceSettings(t *testing.T) {
	e := startMail(t, lists.Relay{})
	want := &listsv1.BounceSettings{ScoreThreshold: 5, InfoStaleDays: 7, Warnings: 3, WarningIntervalDays: 7}
	if got := e.list.GetBounceSettings(); got.String() != want.String() {
		t.Errorf("defaults %v, want %v", got, want)
	}
	_, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: &listsv1.List{Name: e.list.GetName(), BounceSettings: &listsv1.BounceSettings{ScoreThreshold: 1000}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"bounce_settings"}}})
	wantCode(t, err, codes.InvalidArgument, "list.bounceSettings.scoreThreshold")
}

// TestBounceEnabledByMail: a warning carries a -confirm+TOKEN address;
// the member's reply to it enables delivery again, once.
func TestBounceEnabledByMail(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	e.waitSweep()
	e.setBounceSettings(&listsv1.BounceSettings{ScoreThreshold: 1})
	e.addMember("alice@example.net")
	e.bounce(aliceVERP, "dsn-failed.eml")
	if n, err := e.svc.SweepBounces(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v", n, err)
	}
	warning := waitMessages(t, relay, 1)[0]
	notice(t, warning, "alice@example.net", "warning 1 of 3")
	from := warning.Parsed(t).Header.Get("From")
	confirm := from[strings.Index(from, "<")+1 : strings.LastIndex(from, ">")]
	if !strings.HasPrefix(confirm, "team-confirm+") {
		t.Fatalf("warning from %q, want the -confirm+TOKEN address", from)
	}
	reply := "From: alice@example.net\nTo: " + confirm + "\nSubject: Re: " + warning.Parsed(t).Header.Get("Subject") + "\nMessage-ID: <back@example.net>\n\nMy mailbox works again.\n"
	if got := e.deliver("alice@example.net", []string{confirm}, reply)[confirm]; got.code != 250 {
		t.Fatalf("reply: %v", got)
	}
	m := e.member("alice@example.net")
	if m.GetDelivery() != listsv1.Delivery_DELIVERY_ENABLED || m.GetBounceScore() != 0 {
		t.Errorf("after the reply: %v", m)
	}
	notice(t, waitMessages(t, relay, 2)[1], "alice@example.net", "team@example.test again")
}

// TestSweepMixed: one sweep handles every due member in its own way: a
// first warning, a next one, a removal, and leaves one not due.
func TestSweepMixed(t *testing.T) {
	e := startMail(t, lists.Relay{}) // letters are logged
	e.waitSweep()
	e.addMember("dan@example.net")
	for email, state := range map[string]struct {
		sent int
		ago  string
	}{"ann@example.org": {0, ""}, "bob@Example.org": {1, "8 days"}, "cat@example.net": {3, "7 days 1 hour"}, "dan@example.net": {1, "6 days"}} {
		var last any
		if state.ago != "" {
			last = state.ago
		}
		e.sql(`UPDATE members SET delivery = 2, delivery_disabled_time = now() - interval '30 days', bounce_score = 5, bounce_warnings_sent = $2,
  last_warning_time = now() - $3::interval WHERE email = $1`, email, state.sent, last)
	}
	if n, err := e.svc.SweepBounces(context.Background()); err != nil || n != 3 {
		t.Fatalf("sweep: %d, %v; want 3", n, err)
	}
	for email, want := range map[string]int32{"ann@example.org": 1, "bob@Example.org": 2, "dan@example.net": 1} {
		if m := e.member(email); m.GetBounceWarningsSent() != want {
			t.Errorf("%s: %d warnings sent, want %d", email, m.GetBounceWarningsSent(), want)
		}
	}
	if e.member("cat@example.net") != nil {
		t.Error("cat, warned thrice a week ago, is still a member")
	}
	if n, err := e.svc.SweepBounces(context.Background()); err != nil || n != 0 {
		t.Errorf("second sweep: %d, %v; want 0", n, err)
	}
}
