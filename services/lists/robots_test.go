package lists_test

import (
	"fmt"
	"io"
	"mime"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
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
		if m.From != "team-bounces@example.test" {
			e.t.Errorf("letter's envelope sender %s, want the -bounces address", m.From)
		}
		if got := r.Header.Get("Auto-Submitted"); got != "auto-replied" {
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
}
