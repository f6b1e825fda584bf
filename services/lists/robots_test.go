package lists_test

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// robotEnv is a mail env whose relay's messages are read one by one.
type robotEnv struct {
	*mailEnv
	relay *smtptest.Server
	seen  int
}

func startRobots(t *testing.T, policy listsv1.SubscriptionPolicy, lang listsv1.Language) *robotEnv {
	t.Helper()
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	_, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{
		List: &listsv1.List{Name: e.list.GetName(), SubscriptionPolicy: policy, Language: lang,
			WelcomeMessage: "Be kind.", GoodbyeMessage: "Come back soon.", ModeratorPassword: "correct horse battery"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"subscription_policy", "language", "welcome_message", "goodbye_message", "moderator_password"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &robotEnv{mailEnv: e, relay: relay}
}

// sent is a letter the list sent, decoded.
type sent struct {
	to, from, subject, body string
	header                  mail.Header
}

// next waits for the next n letters (in any order) and returns them.
func (e *robotEnv) next(n int) letters {
	e.t.Helper()
	ms := waitMessages(e.t, e.relay, e.seen+n)[e.seen:]
	e.seen += n
	var out letters
	for _, m := range ms {
		r, err := mail.CreateReader(strings.NewReader(string(m.Data)))
		if err != nil {
			e.t.Fatalf("letter does not parse: %v\n%s", err, m.Data)
		}
		p, err := r.NextPart()
		if err != nil {
			e.t.Fatal(err)
		}
		b, _ := io.ReadAll(p.Body)
		subj, err := r.Header.Subject()
		if err != nil {
			e.t.Fatal(err)
		}
		from, _ := r.Header.AddressList("From")
		if len(m.To) != 1 || len(from) != 1 {
			e.t.Fatalf("letter to %v from %v", m.To, from)
		}
		if strings.HasPrefix(m.From, "team-bounces+") {
			// A post's copy (VERP), not a letter.
		} else if m.From != "team-bounces@example.test" {
			e.t.Errorf("letter's envelope sender %s, want the -bounces address", m.From)
		} else if got := r.Header.Get("Auto-Submitted"); got != "auto-replied" {
			e.t.Errorf("letter's Auto-Submitted %q", got)
		}
		out = append(out, sent{to: m.To[0], from: from[0].Address, subject: subj, body: strings.ReplaceAll(string(b), "\r\n", "\n"), header: r.Header})
	}
	return out
}

type letters []sent

// to returns the one letter to addr whose subject has word.
func (ls letters) to(t *testing.T, addr, word string) sent {
	t.Helper()
	var found []sent
	for _, l := range ls {
		if l.to == addr && strings.Contains(l.subject, word) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d letters to %s about %q, want 1: %v", len(found), addr, word, ls)
	}
	return found[0]
}

// quiet checks that nothing more was sent within a while.
func (e *robotEnv) quiet() {
	e.t.Helper()
	time.Sleep(300 * time.Millisecond) // nothing to poll for: absence
	if n := len(e.relay.Messages()); n != e.seen {
		e.t.Fatalf("%d letters sent, want %d", n, e.seen)
	}
}

func (e *robotEnv) send(envelope, rcpt, msg string) {
	e.t.Helper()
	if got := e.deliver(envelope, []string{rcpt}, msg)[rcpt]; got.code != 250 {
		e.t.Fatalf("mail to %s: answer %v, want 250", rcpt, got)
	}
}

func (e *robotEnv) members() []string {
	e.t.Helper()
	resp, err := e.mailEnv.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list.GetName()})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, m := range resp.GetMembers() {
		out = append(out, m.GetEmail())
	}
	return out
}

func says(t *testing.T, l sent, words ...string) {
	t.Helper()
	for _, w := range words {
		if !strings.Contains(l.subject+"\n"+l.body, w) {
			t.Errorf("letter to %s does not say %q:\n%s\n\n%s", l.to, w, l.subject, l.body)
		}
	}
}

var tokenRE = regexp.MustCompile(`confirm ([0-9a-z]{32})`)

// fromLink is the mail a client writes when the moderator clicks link
// (RFC 6068): To and Subject from the link, the moderator's body.
func fromLink(t *testing.T, link, from, body string) (to, msg string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "mailto" {
		t.Fatalf("link %q: %v", link, err)
	}
	to, err = url.PathUnescape(u.Opaque)
	if err != nil {
		t.Fatal(err)
	}
	subj := u.Query().Get("subject")
	return to, fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%d@elsewhere.example>\n\n%s", from, to, mime.QEncoding.Encode("utf-8", subj), time.Now().UnixNano(), body)
}

var linkRE = regexp.MustCompile(`mailto:\S+`)

// TestJoinConfirmed: a -join mail gets a confirmation in the list's
// language (French) from the -confirm+TOKEN address; the reply a client
// writes (Outlook's "RE:", HTML alternative, quoted text, signature)
// subscribes the sender, who is welcomed; the token then is spent.
func TestJoinConfirmed(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_FR)
	e.send("zoe@example.com", "team-join@example.test", "From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>\nTo: team-join@example.test\nSubject: hi\nMessage-ID: <j1@example.com>\n\nplease\n")
	c := e.next(1).to(t, "zoe@example.com", "")
	says(t, c, "Confirmez votre abonnement à team@example.test", "zoe@example.com", "expire le")
	m := tokenRE.FindStringSubmatch(c.subject)
	if m == nil || c.from != "team-confirm+"+m[1]+"@example.test" {
		t.Fatalf("confirmation from %s, subject %q: want confirm TOKEN from the -confirm+TOKEN address", c.from, c.subject)
	}
	if got := e.members(); slices.Contains(got, "zoe@example.com") {
		t.Fatalf("member before confirming: %v", got)
	}
	// Asked again: a new confirmation, the same request (one event).
	e.send("zoe@example.com", "team-join@example.test", "From: zoe@example.com\nSubject: again\n\n")
	e.next(1).to(t, "zoe@example.com", "Confirm")
	if n := e.events("lists.subscription_request.created"); n != 1 {
		t.Errorf("%d requests created, want 1", n)
	}
	reply := fmt.Sprintf(`From: =?UTF-8?Q?Zo=C3=AB?= <zoe@example.com>
To: team-request@example.test
Subject: RE: %s
Message-ID: <r1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset=utf-8

Oui !

-- 
Zoë
--b
Content-Type: text/html; charset=utf-8

<p>Oui !</p>
--b--
`, mime.QEncoding.Encode("utf-8", c.subject))
	e.send("zoe@example.com", "team-request@example.test", reply)
	got := e.next(2)
	says(t, got.to(t, "zoe@example.com", "Bienvenue"), "zoe@example.com est maintenant abonné", "Be kind.", "team-leave@example.test")
	// The results: the Subject's confirm done, "Oui !" no command, the
	// signature not read.
	res := got.to(t, "zoe@example.com", "Résultat")
	says(t, res, "confirm "+m[1]+"\nFait.", "> Oui !\nCe n'est pas une commande")
	if strings.Contains(res.body, "Zoë") {
		t.Errorf("the signature was read:\n%s", res.body)
	}
	if ids, _ := res.header.MsgIDList("In-Reply-To"); !slices.Equal(ids, []string{"r1@example.com"}) {
		t.Errorf("results In-Reply-To %v, want the reply's Message-ID", ids)
	}
	if got := e.members(); !slices.Contains(got, "zoe@example.com") {
		t.Fatalf("members %v, want zoe", got)
	}

	// Spent: the same confirmation again changes nothing and says so.
	e.send("zoe@example.com", "team-confirm+"+m[1]+"@example.test", "From: zoe@example.com\nSubject: Re: confirm\n\nok\n")
	says(t, e.next(1).to(t, "zoe@example.com", "Résultat"), "inconnu, déjà utilisé ou expiré")
	e.quiet()
	if n := e.events("lists.subscription_request.confirmed"); n != 1 {
		t.Errorf("%d requests confirmed, want 1", n)
	}
}

// events counts the events written on subject.
func (e *robotEnv) events(subject string) int {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE subject = $1`, subject).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestModeratedJoinByMail: with a moderated list, a join tells the
// subscriber it waits and mails the moderator a decision with mailto:
// links; the mail a client writes from the accept link subscribes the
// address, the reject link's mail (the reason in the body) declines with
// the reason. The pending subscriptions are listed over the API with
// their reason meanwhile.
func TestModeratedJoinByMail(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_MODERATE, listsv1.Language_LANGUAGE_DE)
	e.send("zoe@example.com", "team-join@example.test", "From: zoe@example.com\nSubject: join\n\n")
	e.send("yan@example.com", "team-join@example.test", "From: yan@example.com\nSubject: join\n\n")
	got := e.next(4)
	says(t, got.to(t, "zoe@example.com", "wartet auf Freigabe"), "Moderator")
	accept := linkRE.FindAllString(got.to(t, "boss@elsewhere.example", "zoe@example.com").body, -1)
	reject := linkRE.FindAllString(got.to(t, "boss@elsewhere.example", "yan@example.com").body, -1)
	if len(accept) != 3 || len(reject) != 3 {
		t.Fatalf("decision links %v, %v: want accept, reject, discard", accept, reject)
	}
	resp, err := e.moderation().ListSubscriptionRequests(e.admin, &listsv1.ListSubscriptionRequestsRequest{Parent: e.list.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetSubscriptionRequests()) != 2 || resp.GetTotalSize() != 2 {
		t.Fatalf("requests %v", resp)
	}
	for _, r := range resp.GetSubscriptionRequests() {
		if r.GetState() != listsv1.SubscriptionRequest_STATE_AWAITING_MODERATOR || r.GetReason() != "awaits a moderator's approval" || r.GetVia() != "mail" {
			t.Errorf("request %v", r)
		}
	}

	// Accept by the link: the moderator's client sends it as is.
	to, msg := fromLink(t, accept[0], "Boss <boss@elsewhere.example>", "")
	e.send("boss@elsewhere.example", to, msg)
	got = e.next(2)
	says(t, got.to(t, "zoe@example.com", "Willkommen"), "Be kind.")
	says(t, got.to(t, "boss@elsewhere.example", "Ergebnis"), "Erledigt.")
	// Reject by the link, the reason written in the body above the
	// signature.
	to, msg = fromLink(t, reject[1], "boss@elsewhere.example", "Wir kennen Sie nicht.\n\n-- \nBoss\n")
	e.send("boss@elsewhere.example", to, msg)
	got = e.next(2)
	says(t, got.to(t, "yan@example.com", "abgelehnt"), "Wir kennen Sie nicht.")
	if strings.Contains(got.to(t, "yan@example.com", "abgelehnt").body, "Boss") {
		t.Error("the signature went into the reason")
	}
	if m := e.members(); !slices.Contains(m, "zoe@example.com") || slices.Contains(m, "yan@example.com") {
		t.Errorf("members %v", m)
	}
	// A decision is taken once: the accept link again is refused politely.
	to, msg = fromLink(t, accept[0], "boss@elsewhere.example", "")
	e.send("boss@elsewhere.example", to, msg)
	says(t, e.next(1).to(t, "boss@elsewhere.example", "Ergebnis"), "unbekannt, schon benutzt oder abgelaufen")
	if n := e.count("subscription_requests"); n != 0 {
		t.Errorf("%d requests left", n)
	}
	// Both decisions are in the organization's audit log, by the
	// moderator's address.
	var audited int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE subject = 'lists.audit.recorded'
AND position('mailto:boss@elsewhere.example'::bytea in payload) > 0`).Scan(&audited); err != nil {
		t.Fatal(err)
	}
	if audited != 2 {
		t.Errorf("%d audit records by the moderator's mail, want 2", audited)
	}
	for subject, want := range map[string]int{"lists.subscription_request.created": 2, "lists.subscription_request.confirmed": 0,
		"lists.subscription_request.accepted": 1, "lists.subscription_request.rejected": 1} {
		if n := e.events(subject); n != want {
			t.Errorf("%d %s events; want %d", n, subject, want)
		}
	}
	e.quiet()
}

// TestHeldPostByMail: the held post's decision mail's accept link,
// clicked, distributes the post.
func TestHeldPostByMail(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_IT)
	e.send("zed@example.com", "team@example.test", strangerPost("zed@example.com", "Offerta"))
	got := e.next(2)
	says(t, got.to(t, "zed@example.com", "attende approvazione"), "non è iscritto")
	links := linkRE.FindAllString(got.to(t, "boss@elsewhere.example", "zed@example.com").body, -1)
	if len(links) != 3 {
		t.Fatalf("links %v", links)
	}
	to, msg := fromLink(t, links[0], "boss@elsewhere.example", "")
	e.send("boss@elsewhere.example", to, msg)
	e.waitPosts(1)
	got = e.next(4)
	says(t, got.to(t, "boss@elsewhere.example", "Risultato"), "Fatto.")
	for _, m := range []string{"ann@example.org", "bob@Example.org", "cat@example.net"} {
		got.to(t, m, "Offerta")
	}
}

// TestLeaveAndRevealNothing: a member asking to join is told, in their
// own mailbox, they are subscribed already; a stranger asking to leave
// is told they are not; both answers are 250, as any. A member leaving
// confirms by writing to the -confirm+TOKEN address and is seen off.
func TestLeaveAndRevealNothing(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_OPEN, listsv1.Language_LANGUAGE_ES)
	e.send("ann@example.org", "team-join@example.test", "From: ann@example.org\nSubject: x\n\n")
	e.send("nobody@example.com", "team-leave@example.test", "From: nobody@example.com\nSubject: x\n\n")
	got := e.next(2)
	says(t, got.to(t, "ann@example.org", "Ya estás suscrito"), "team-leave@example.test")
	says(t, got.to(t, "nobody@example.com", "No estás suscrito"))
	if n := len(e.members()); n != 3 {
		t.Fatalf("%d members, want the 3 of before", n)
	}

	e.send("bob@Example.org", "team-leave@example.test", "From: bob@Example.org\nSubject: bye\n\n")
	c := e.next(1).to(t, "bob@Example.org", "Confirma que dejas")
	if !strings.HasPrefix(c.from, "team-confirm+") {
		t.Fatalf("confirmation from %s", c.from)
	}
	e.send("bob@Example.org", c.from, "From: bob@Example.org\nSubject: ok\n\n")
	says(t, e.next(1).to(t, "bob@Example.org", "Has dejado"), "Come back soon.")
	if m := e.members(); slices.Contains(m, "bob@Example.org") {
		t.Fatalf("members %v", m)
	}
	var by string
	if err := e.pool.QueryRow(context.Background(), "SELECT given_by || ' / ' || withdrawn_by FROM consents").Scan(&by); err != nil || !strings.Contains(by, "confirmed by mail") {
		t.Errorf("consent %q, %v", by, err)
	}

	// Open: a join subscribes at once and welcomes.
	e.send("dan@example.com", "team-join@example.test", "From: Dan <dan@example.com>\nSubject: x\n\n")
	says(t, e.next(1).to(t, "dan@example.com", "Bienvenido"), "Be kind.")
	e.quiet()
}

// TestRobotsNeverLoop: mail from machines is taken and never answered;
// a flood of requests for one address gets at most the hour's rate of
// answers; a forged token gets a polite answer and changes nothing.
func TestRobotsNeverLoop(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_EN)
	for _, tc := range []struct{ envelope, msg string }{
		{"zoe@example.com", "From: zoe@example.com\nAuto-Submitted: auto-replied\nSubject: Out of office\n\n"},
		{"zoe@example.com", "From: zoe@example.com\nPrecedence: bulk\nSubject: news\n\n"},
		{"", "From: MAILER-DAEMON@example.com\nSubject: Undelivered\n\n"},
		{"other-request@example.net", "From: other-request@example.net\nSubject: confirm\n\n"},
		{"zoe@example.com", "From: zoe@example.com\nList-Id: <x.example.net>\nSubject: x\n\n"},
	} {
		for _, rcpt := range []string{"team-join@example.test", "team-request@example.test", "team-leave@example.test"} {
			e.send(tc.envelope, rcpt, tc.msg)
		}
	}
	e.quiet()

	e.send("eve@example.com", "team-confirm+0123456789abcdefghjkmnpqrstvwxyz@example.test", "From: eve@example.com\nSubject: x\n\n")
	says(t, e.next(1).to(t, "eve@example.com", "results"), "unknown, used already or expired")

	for range 15 {
		e.send("eve@example.com", "team-join@example.test", "From: victim@example.org\nSubject: x\n\n")
	}
	e.next(10)
	e.quiet()
	if n := e.count("members"); n != 3 {
		t.Errorf("%d members", n)
	}
}

// TestRequestCommands: one mail of commands answered in one results mail:
// help, a moderator's accept of an address with the password, a wrong
// password, an unknown line, until "end".
func TestRequestCommands(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_EN)
	e.send("boss@elsewhere.example", "team-request@example.test", `From: boss@elsewhere.example
Subject: =?UTF-8?Q?AW:_help?=
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8

<p>accept new@example.com</p><p>Approved: correct horse battery</p><p>frobnicate</p><p>end</p><p>accept late@example.com</p>
`)
	got := e.next(2)
	res := got.to(t, "boss@elsewhere.example", "results")
	says(t, res, "The commands of team@example.test", "> accept new@example.com\nDone.", "> frobnicate\nThis is no command")
	if strings.Contains(res.body, "late@") {
		t.Errorf("read past end:\n%s", res.body)
	}
	got.to(t, "new@example.com", "Welcome")

	e.send("eve@example.com", "team-request@example.test", "From: eve@example.com\nSubject: accept eve2@example.com\nApproved: guess\n\n")
	says(t, e.next(1).to(t, "eve@example.com", "results"), "Only a moderator may do this")
	if m := e.members(); !slices.Contains(m, "new@example.com") || slices.Contains(m, "eve2@example.com") {
		t.Errorf("members %v", m)
	}
}

// TestCreateMemberNotices: a moderator's add welcomes with the list's
// message, or the notice given, or says nothing when silent.
func TestCreateMemberNotices(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_FR)
	for _, r := range []*listsv1.CreateMemberRequest{
		{Member: &listsv1.Member{Email: "a@example.com"}},
		{Member: &listsv1.Member{Email: "b@example.com"}, Notice: "Bonjour B, voici la liste."},
		{Member: &listsv1.Member{Email: "c@example.com"}, Silent: true, Notice: "unsent"},
	} {
		r.Parent = e.list.GetName()
		if _, err := e.mailEnv.members.CreateMember(e.admin, r); err != nil {
			t.Fatal(err)
		}
	}
	got := e.next(2)
	says(t, got.to(t, "a@example.com", "Bienvenue"), "Be kind.")
	b := got.to(t, "b@example.com", "Bienvenue")
	says(t, b, "Bonjour B, voici la liste.")
	if strings.Contains(b.body, "Be kind.") {
		t.Error("the notice and the list's welcome both")
	}
	e.quiet()
	_, err := e.mailEnv.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: e.list.GetName(), Member: &listsv1.Member{Email: "d@example.com"}, Notice: strings.Repeat("x", 5001)})
	wantCode(t, err, codes.InvalidArgument, "notice")
}

// TestDeleteMemberNotices: a moderator's removal sees the member off with
// the list's goodbye, or the notice given, or says nothing when silent;
// each address is erased alike.
func TestDeleteMemberNotices(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_FR)
	names := map[string]string{}
	for _, a := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		m, err := e.mailEnv.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: e.list.GetName(), Member: &listsv1.Member{Email: a}, Silent: true})
		if err != nil {
			t.Fatal(err)
		}
		names[a] = m.GetMember().GetName()
	}
	_, err := e.mailEnv.members.DeleteMember(e.admin, &listsv1.DeleteMemberRequest{Name: names["a@example.com"], Notice: strings.Repeat("x", 5001)})
	wantCode(t, err, codes.InvalidArgument, "notice")
	for _, r := range []*listsv1.DeleteMemberRequest{
		{Name: names["a@example.com"]},
		{Name: names["b@example.com"], Notice: "Au revoir B, merci."},
		{Name: names["c@example.com"], Silent: true, Notice: "unsent"},
	} {
		if _, err := e.mailEnv.members.DeleteMember(e.admin, r); err != nil {
			t.Fatal(err)
		}
	}
	got := e.next(2)
	says(t, got.to(t, "a@example.com", "Vous avez quitté"), "Come back soon.")
	b := got.to(t, "b@example.com", "Vous avez quitté")
	says(t, b, "Au revoir B, merci.")
	if strings.Contains(b.body, "Come back soon.") {
		t.Error("the notice and the list's goodbye both")
	}
	e.quiet()
	for _, m := range e.members() {
		if _, ok := names[m]; ok {
			t.Errorf("%s still a member", m)
		}
	}
	var consents int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM consents WHERE withdrawn_by = 'removed by a moderator'`).Scan(&consents); err != nil || consents != 3 {
		t.Errorf("consent records: %d (%v), want 3", consents, err)
	}
}

// TestSubscriptionRequestsAPI: a request waiting for its subscriber is
// listed with that reason, cannot be accepted (only discarded); another
// organization sees nothing; members may not look.
func TestSubscriptionRequestsAPI(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM_THEN_MODERATE, listsv1.Language_LANGUAGE_EN)
	e.send("zoe@example.com", "team-join@example.test", "From: zoe@example.com\nSubject: x\n\n")
	c := e.next(1).to(t, "zoe@example.com", "Confirm")
	mod := e.moderation()
	resp, err := mod.ListSubscriptionRequests(e.admin, &listsv1.ListSubscriptionRequestsRequest{Parent: e.list.GetName()})
	if err != nil || len(resp.GetSubscriptionRequests()) != 1 {
		t.Fatalf("requests %v, %v", resp, err)
	}
	r := resp.GetSubscriptionRequests()[0]
	if r.GetReason() != "awaits the subscriber's confirmation" || r.GetEmail() != "zoe@example.com" ||
		r.GetExpireTime().AsTime().Sub(r.GetCreateTime().AsTime()) < 71*time.Hour {
		t.Errorf("request %v", r)
	}
	_, err = mod.AcceptSubscriptionRequest(e.admin, &listsv1.AcceptSubscriptionRequestRequest{Name: r.GetName()})
	wantCode(t, err, codes.FailedPrecondition, "confirm")
	_, err = mod.ListSubscriptionRequests(e.as(uuid.New(), "owner"), &listsv1.ListSubscriptionRequestsRequest{Parent: e.list.GetName()})
	wantCode(t, err, codes.NotFound, "")
	_, err = mod.ListSubscriptionRequests(e.as(e.org, "member"), &listsv1.ListSubscriptionRequestsRequest{Parent: e.list.GetName()})
	wantCode(t, err, codes.PermissionDenied, "")

	// Confirmed: now it waits for a moderator, and the API accepts it.
	e.send("zoe@example.com", c.from, "From: zoe@example.com\nSubject: ok\n\n")
	got := e.next(2)
	got.to(t, "zoe@example.com", "awaits approval")
	got.to(t, "boss@elsewhere.example", "asks to join")
	resp, _ = mod.ListSubscriptionRequests(e.admin, &listsv1.ListSubscriptionRequestsRequest{Parent: e.list.GetName()})
	if r := resp.GetSubscriptionRequests(); len(r) != 1 || r[0].GetState() != listsv1.SubscriptionRequest_STATE_AWAITING_MODERATOR {
		t.Fatalf("requests %v", r)
	}
	a, err := mod.AcceptSubscriptionRequest(e.admin, &listsv1.AcceptSubscriptionRequestRequest{Name: r.GetName()})
	if err != nil || a.GetMember().GetEmail() != "zoe@example.com" {
		t.Fatalf("accept: %v, %v", a, err)
	}
	e.next(1).to(t, "zoe@example.com", "Welcome")
	_, err = mod.RejectSubscriptionRequest(e.admin, &listsv1.RejectSubscriptionRequestRequest{Name: r.GetName(), Reason: "no"})
	wantCode(t, err, codes.NotFound, "subscription request")
}

// TestOwnerForwarded: mail to -owner reaches the moderators by email as
// it came, from the -bounces address; an auto-reply to -owner does not.
func TestOwnerForwarded(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_EN)
	msg := "From: Zoë <zoe@example.com>\nTo: team-owner@example.test\nSubject: =?UTF-8?Q?Caf=C3=A9?= question\nDKIM-Signature: v=1; d=example.com; b=x\nMessage-ID: <o1@example.com>\n\nWho runs this list?\n"
	e.send("zoe@example.com", "team-owner@example.test", msg)
	ms := waitMessages(t, e.relay, 1)
	if m := ms[0]; !slices.Equal(m.To, []string{"boss@elsewhere.example"}) || m.From != "team-bounces@example.test" ||
		strings.ReplaceAll(string(m.Data), "\r\n", "\n") != msg {
		t.Errorf("forwarded to %v from %s:\n%s", m.To, m.From, m.Data)
	}
	e.seen = 1
	e.send("zoe@example.com", "team-owner@example.test", "From: zoe@example.com\nAuto-Submitted: auto-replied\nSubject: Away\n\n")
	e.quiet()
}

// TestExpiredToken: a confirmation past its three days is refused
// politely and subscribes nobody; the hourly expiry then deletes the
// request and the token.
func TestExpiredToken(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM, listsv1.Language_LANGUAGE_IT)
	e.send("zoe@example.com", "team-join@example.test", "From: zoe@example.com\nSubject: x\n\n")
	c := e.next(1).to(t, "zoe@example.com", "Conferma")
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, "UPDATE tokens SET expire_time = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	e.send("zoe@example.com", "team-request@example.test", "From: zoe@example.com\nSubject: Re: "+mime.QEncoding.Encode("utf-8", c.subject)+"\n\n> Qualcuno, forse tu\n")
	says(t, e.next(1).to(t, "zoe@example.com", "Risultato"), "scaduto: non è cambiato nulla")
	if m := e.members(); slices.Contains(m, "zoe@example.com") {
		t.Fatalf("members %v", m)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE subscription_requests SET update_time = now() - interval '73 hours'"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.ExpireRequests(ctx); err != nil || n < 1 {
		t.Fatalf("expired %d, %v", n, err)
	}
	if n := e.count("subscription_requests") + e.count("tokens"); n != 0 {
		t.Errorf("%d requests and tokens left", n)
	}
}

// TestRobotMailRefused: what a robot cannot read is refused at LMTP with
// the right code, nothing done: too large, no From to answer, a MIME
// structure that does not parse.
func TestRobotMailRefused(t *testing.T) {
	e := startRobots(t, listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_OPEN, listsv1.Language_LANGUAGE_EN)
	for _, tc := range []struct {
		name, rcpt, msg string
		code            int
	}{
		{"too large", "team-request@example.test", "From: zoe@example.com\nSubject: help\n\n" + strings.Repeat("0123456789abcdef\n", 1<<16), 552},
		{"no From", "team-join@example.test", "Subject: join\n\n", 554},
		{"From without address", "team-leave@example.test", "From: Zoe\nSubject: x\n\n", 554},
		{"broken MIME", "team-request@example.test", "From: zoe@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\nhelp\n", 554},
		{"owner: larger than the list allows", "team-owner@example.test", "From: zoe@example.com\nSubject: x\n\n" + strings.Repeat("0123456789abcdef\n", 1<<8), 552},
	} {
		got := e.deliver("zoe@example.com", []string{tc.rcpt}, tc.msg)[tc.rcpt]
		if got.code != tc.code {
			t.Errorf("%s: answer %v, want %d", tc.name, got, tc.code)
		}
	}
	e.quiet()
	if n := len(e.members()); n != 3 {
		t.Errorf("%d members, want the 3 of before", n)
	}
}
