package runnow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/client"
	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
)

const (
	alice    = "alice@example.org"
	bob      = "bob@example.org"
	carl     = "carl@example.org"
	password = dovecottest.UserPassword
)

var master = Login{dovecottest.PersonalMaster, dovecottest.PersonalSecret}

// mailDovecot runs deploy/mail/dovecot's configuration with the two master
// users.
func mailDovecot(t testing.TB) *dovecottest.Dovecot {
	t.Helper()
	return dovecottest.StartMail(t, nil).Dovecot
}

// session logs in to d as address through the master user.
func session(t testing.TB, d *dovecottest.Dovecot, address string) *client.Client {
	t.Helper()
	c, err := Dial(context.Background(), d.Addr, address, master, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Logout() })
	return c
}

// seed appends msgs to address's folder.
func seed(t testing.TB, d *dovecottest.Dovecot, address, folder string, msgs ...string) {
	t.Helper()
	var ms []dovecottest.Message
	for _, m := range msgs {
		ms = append(ms, dovecottest.Message{Folder: folder, Raw: []byte(m)})
	}
	d.Seed(t, address, password, []string{folder}, ms)
}

func msg(id, from, subject, headers, body string) string {
	return "From: " + from + "\r\nTo: " + alice + "\r\nSubject: " + subject + "\r\nMessage-ID: <" + id + "@example.net>\r\n" +
		"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n" + headers + "\r\n" + body + "\r\n"
}

// where is a mailbox as folder -> "message-id flags" lines, sorted.
func where(t testing.TB, d *dovecottest.Dovecot, address string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, s := range d.Messages(t, address, password) {
		m, err := mail.ReadMessage(bytes.NewReader(s.Raw))
		if err != nil {
			t.Fatal(err)
		}
		line := strings.TrimSuffix(strings.TrimPrefix(m.Header.Get("Message-Id"), "<"), "@example.net>")
		if len(s.Flags) > 0 {
			line += " " + strings.Join(s.Flags, ",")
		}
		out[s.Folder] = append(out[s.Folder], line)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// TestMasterLogin: the filters service's master user opens any address's
// IMAP session with SASL PLAIN (authorization id = the address); a wrong
// password opens nothing. There is no "address*master" login: an address
// with "*" in its local part logs in as itself.
func TestMasterLogin(t *testing.T) {
	d := mailDovecot(t)
	seed(t, d, alice, "INBOX", msg("one", "x@example.net", "one", "", "Hi."))

	c := session(t, d, alice)
	st, err := c.Select("INBOX", true)
	if err != nil || st.Messages != 1 {
		t.Fatalf("alice's INBOX through the master user: %v %v", st, err)
	}
	if _, err := Dial(context.Background(), d.Addr, alice, Login{master.User, "wrong"}, 10*time.Second); err == nil {
		t.Fatal("a wrong master password logged in")
	}
	if line, _ := d.Login(alice+"*"+master.User, master.Password); strings.HasPrefix(line, "a1 OK") {
		t.Fatalf("LOGIN address*master opened a session: %q", line)
	}
	if line, err := d.Login("a*b@example.org", password); err != nil || !strings.HasPrefix(line, "a1 OK") {
		t.Fatalf("an address with * in its local part: %q %v", line, err)
	}
}

// TestMasterServices: each master user opens the services it needs, as any
// address, and no other: the filters' masters IMAP and ManageSieve, the
// imports' master IMAP only; none opens SMTP submission (Postfix's SASL
// asks Dovecot's auth as smtp or submission), where a leaked master
// password would send mail as any customer.
func TestMasterServices(t *testing.T) {
	// No 2 s delay after each refusal below (auth_failure_delay).
	d := dovecottest.StartMail(t, func(conf string) string { return conf + "\nauth_failure_delay = 0\n" }).Dovecot
	seed(t, d, alice, "INBOX", msg("one", "x@example.net", "one", "", "Hi."))
	type master struct {
		Login
		sieve bool
	}
	for _, ms := range []master{
		{Login{dovecottest.PersonalMaster, dovecottest.PersonalSecret}, true},
		{Login{dovecottest.PlatformMaster, dovecottest.PlatformSecret}, true},
		{Login{dovecottest.ImportsMaster, dovecottest.ImportsSecret}, false},
	} {
		t.Run(ms.User, func(t *testing.T) {
			c, err := Dial(context.Background(), d.Addr, alice, ms.Login, 30*time.Second)
			if err != nil {
				t.Fatalf("IMAP as alice: %v", err)
			}
			st, err := c.Select("INBOX", true)
			c.Logout()
			if err != nil || st.Messages != 1 {
				t.Fatalf("alice's INBOX: %v %v", st, err)
			}
			_, err = d.ManageSieveAs(alice, ms.User, ms.Password, "LISTSCRIPTS")
			if ms.sieve && err != nil {
				t.Errorf("ManageSieve as alice: %v", err)
			}
			if !ms.sieve && err == nil {
				t.Error("ManageSieve opened for a master user without it")
			}
			for service, want := range map[string]bool{"imap": true, "sieve": ms.sieve, "smtp": false, "submission": false, "pop3": false} {
				if got := d.AuthTestAs(t, service, alice, ms.User, ms.Password); got != want {
					t.Errorf("auth as alice for %s: %v, want %v", service, got, want)
				}
			}
			// A master user is not an address either.
			if d.AuthTest(t, "smtp", ms.User, ms.Password) {
				t.Error("the master user's own login opened smtp")
			}
		})
	}
	// The address's own login is untouched by the master passdbs.
	for _, service := range []string{"imap", "smtp", "submission"} {
		if !d.AuthTest(t, service, alice, password) {
			t.Errorf("alice's own password refused for %s", service)
		}
	}
}

var testRules = []rules.Rule{
	{Name: "invoices", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "invoice"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Finance/Invoices"}, {Kind: rules.Flag}}},
	{Name: "lists", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Header, Header: "List-Id", Op: rules.Contains, Value: "talk"}},
		Actions:    []rules.Action{{Kind: rules.Copy, Folder: "Lists"}, {Kind: rules.Forward, Address: "archive@example.net"}}},
	{Name: "boss", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Is, Value: "boss@example.net"}},
		Actions:    []rules.Action{{Kind: rules.MarkRead}}},
	{Name: "pest", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Matches, Value: "pest@*"}},
		Actions:    []rules.Action{{Kind: rules.Delete}}},
	{Name: "refuse", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Is, Value: "refuse me"}},
		Actions:    []rules.Action{{Kind: rules.Reject, Message: "No."}}},
}

func seedTest(t *testing.T, d *dovecottest.Dovecot) {
	seed(t, d, alice, "INBOX",
		msg("inv", "shop@example.net", "Your invoice", "", "Pay."),
		msg("list", "x@example.net", "hello", "List-Id: Talk <talk.lists.example>\r\n", "Hi all."),
		msg("boss", "boss@example.net", "Now", "", "Come."),
		msg("pest", "pest@example.com", "buy", "", "Buy."),
		msg("refuse", "x@example.net", "refuse me", "", "x"),
		msg("plain", "x@example.net", "plain", "", "nothing"),
	)
}

// TestRun applies rules to the INBOX: a move into a folder created for it
// with its flag, a copy, a flag on the message where it is, a delete;
// forward and reject leave the message alone; nothing is marked read by
// reading it.
func TestRun(t *testing.T) {
	d := mailDovecot(t)
	seedTest(t, d)
	var reports []Progress
	p, err := Run(context.Background(), session(t, d, alice), Job{Rules: testRules, Folder: "INBOX", Batch: 2}, nil,
		func(p Progress, e []Entry) error {
			if len(e) > 0 {
				t.Errorf("entries outside a dry run: %v", e)
			}
			reports = append(reports, p)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"INBOX":            {`boss \Seen`, "list", "plain", "refuse"},
		"Finance/Invoices": {`inv \Flagged`},
		"Lists":            {"list"},
	}
	if diff := cmp.Diff(want, where(t, d, alice)); diff != "" {
		t.Errorf("mailbox (-want +got):\n%s", diff)
	}
	got := fmt.Sprintf("total=%d done=%d matched=%d changed=%d failed=%d folders=%d/%d", p.Total, p.Done, p.Matched, p.Changed, p.Failed, p.FoldersDone(), len(p.Folders))
	if w := "total=6 done=6 matched=5 changed=4 failed=0 folders=1/1"; got != w {
		t.Errorf("progress %s, want %s", got, w)
	}
	if len(reports) < 4 {
		t.Errorf("%d reports for 3 batches and the plan", len(reports))
	}
}

// TestDryRun changes nothing (no flag, not even \Seen, no folder) and
// lists what would happen to each message the rules act on.
func TestDryRun(t *testing.T) {
	d := mailDovecot(t)
	seedTest(t, d)
	before := where(t, d, alice)
	var entries []Entry
	p, err := Run(context.Background(), session(t, d, alice), Job{Rules: testRules, Folder: "INBOX", DryRun: true}, nil,
		func(_ Progress, e []Entry) error { entries = append(entries, e...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, where(t, d, alice)); diff != "" {
		t.Errorf("a dry run changed the mailbox (-before +after):\n%s", diff)
	}
	var got []string
	for _, e := range entries {
		if e.Folder != "INBOX" || e.UID == 0 {
			t.Errorf("entry %+v", e)
		}
		got = append(got, e.MessageID+" "+e.From+" | "+e.Subject+": "+strings.Join(e.Actions, "; "))
	}
	want := []string{
		`<inv@example.net> shop@example.net | Your invoice: add flags \Flagged; move to "Finance/Invoices"`,
		`<list@example.net> x@example.net | hello: copy to "Lists"; forward to archive@example.net: not applied to stored mail`,
		`<boss@example.net> boss@example.net | Now: add flags \Seen`,
		`<pest@example.net> pest@example.com | buy: delete (expunged, as discard drops it on delivery)`,
		`<refuse@example.net> x@example.net | refuse me: reject: not applied to stored mail (the message stays)`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if p.Matched != 5 || p.Changed != 0 {
		t.Errorf("matched %d, changed %d", p.Matched, p.Changed)
	}
}

// TestSubfolders walks a folder and, on request, those under it; a
// message the run moves into a folder it walks later is not evaluated
// again (its copy is made once).
func TestSubfolders(t *testing.T) {
	rs := []rules.Rule{{Name: "tick", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "tick"}},
		Actions:    []rules.Action{{Kind: rules.Copy, Folder: "Archive"}, {Kind: rules.Move, Folder: "Work/Sub"}}}}
	for _, sub := range []bool{false, true} {
		t.Run(fmt.Sprint("subfolders=", sub), func(t *testing.T) {
			d := mailDovecot(t)
			seed(t, d, alice, "Work", msg("w", "x@example.net", "tick w", "", "x"))
			seed(t, d, alice, "Work/Sub", msg("s", "x@example.net", "tick s", "", "x"))
			seed(t, d, alice, "Other", msg("o", "x@example.net", "tick o", "", "x"))
			if _, err := Run(context.Background(), session(t, d, alice), Job{Rules: rs, Folder: "Work", Subfolders: sub}, nil,
				func(Progress, []Entry) error { return nil }); err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"Archive": {"w"}, "Work/Sub": {"s", "w"}, "Other": {"o"}}
			if sub {
				want["Archive"] = []string{"s", "w"}
			}
			got := where(t, d, alice)
			delete(got, "Spam")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mailbox (-want +got):\n%s", diff)
			}
		})
	}
}

// TestResume: a run stopped after a batch and started again from its last
// report copies every message once.
func TestResume(t *testing.T) {
	d := mailDovecot(t)
	var msgs []string
	for i := range 7 {
		msgs = append(msgs, msg(fmt.Sprint("m", i), "x@example.net", "copy me", "", "x"))
	}
	seed(t, d, alice, "INBOX", msgs...)
	rs := []rules.Rule{{Name: "copy", Enabled: true, Match: rules.All,
		Actions: []rules.Action{{Kind: rules.Copy, Folder: "Copies"}, {Kind: rules.Flag}}}}
	job := Job{Rules: rs, Folder: "INBOX", Batch: 3}
	crash := errors.New("crash")
	var saved Progress
	_, err := Run(context.Background(), session(t, d, alice), job, nil, func(p Progress, _ []Entry) error {
		saved = p
		if p.Done > 0 {
			return crash // after the first batch's checkpoint
		}
		return nil
	})
	if !errors.Is(err, crash) || saved.Done != 3 {
		t.Fatalf("first run: %v, %+v", err, saved)
	}
	p, err := Run(context.Background(), session(t, d, alice), job, &saved, func(Progress, []Entry) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	got := where(t, d, alice)
	if n := len(got["Copies"]); n != 7 || p.Done != 7 || p.Changed != 7 {
		t.Fatalf("after the resume: %d copies, progress %+v: %v", n, p, got)
	}
	for _, m := range got["INBOX"] {
		if !strings.HasSuffix(m, `\Flagged`) {
			t.Errorf("INBOX %s", m)
		}
	}
}

// sameRules cover every condition (each field, each op, negation, all and
// any) and every action that applies to stored mail.
var sameRules = []rules.Rule{
	{Name: "pest", Enabled: true, Match: rules.Any, Conditions: []rules.Condition{
		{Field: rules.From, Op: rules.Regex, Value: "^pest[0-9]*@"},
		{Field: rules.Header, Header: "X-Pest", Op: rules.Is, Value: "yes"}},
		Actions: []rules.Action{{Kind: rules.Delete}}},
	{Name: "boss", Enabled: true, Match: rules.All, Conditions: []rules.Condition{
		{Field: rules.From, Op: rules.Is, Value: "boss@work.example"},
		{Field: rules.Subject, Op: rules.Contains, Value: "later", Negate: true}},
		Actions: []rules.Action{{Kind: rules.Flag}, {Kind: rules.Stop}}},
	{Name: "lists", Enabled: true, Match: rules.Any, Conditions: []rules.Condition{
		{Field: rules.ToCc, Op: rules.Matches, Value: "*@lists.example"},
		{Field: rules.Header, Header: "List-Id", Op: rules.Contains, Value: "talk"}},
		Actions: []rules.Action{{Kind: rules.Move, Folder: "Lists/Talk"}, {Kind: rules.MarkRead}}},
	{Name: "invoices", Enabled: true, Match: rules.All, Conditions: []rules.Condition{
		{Field: rules.Subject, Op: rules.Regex, Value: "(invoice|rechnung)"}},
		Actions: []rules.Action{{Kind: rules.Copy, Folder: "Finance"}, {Kind: rules.Flag}}},
	{Name: "winners", Enabled: true, Match: rules.All, Conditions: []rules.Condition{
		{Field: rules.Body, Op: rules.Contains, Value: "winner"}},
		Actions: []rules.Action{{Kind: rules.Move, Folder: "Spam"}}},
	{Name: "big", Enabled: true, Match: rules.All, Conditions: []rules.Condition{
		{Field: rules.Size, Op: rules.Over, Value: "2K"}},
		Actions: []rules.Action{{Kind: rules.Copy, Folder: "Big"}, {Kind: rules.MarkRead}}},
	{Name: "small cc", Enabled: true, Match: rules.All, Conditions: []rules.Condition{
		{Field: rules.Size, Op: rules.Under, Value: "1K"},
		{Field: rules.ToCc, Op: rules.Contains, Value: "cc.example"}},
		Actions: []rules.Action{{Kind: rules.Move, Folder: "Small"}}},
	{Name: "off", Enabled: false, Match: rules.All,
		Actions: []rules.Action{{Kind: rules.Delete}}},
}

// sameMessages are the messages both paths get.
var sameMessages = []string{
	"From: The Boss <boss@work.example>\r\nSubject: Now\r\nMessage-ID: <boss@example.net>\r\n\r\nCome.\r\n",
	"From: The Boss <boss@work.example>\r\nSubject: later invoice\r\nMessage-ID: <boss-later@example.net>\r\n\r\nPay.\r\n",
	"From: x@y.example\r\nList-Id: Talk <talk.lists.example>\r\nSubject: hi\r\nMessage-ID: <list@example.net>\r\n\r\nhi\r\n",
	"From: x@y.example\r\nCc: Talk <TALK@lists.example>\r\nSubject: Your Invoice\r\nMessage-ID: <list-cc@example.net>\r\n\r\nhi\r\n",
	"From: shop@y.example\r\nSubject: =?UTF-8?Q?Ihre_Rechnung_=C3=BCber_12_=E2=82=AC?=\r\nMessage-ID: <encoded@example.net>\r\n\r\nDanke.\r\n",
	"From: x@y.example\r\nSubject: prize\r\nMessage-ID: <multipart@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nWW91IGFyZSBhIFdJTk5F\r\nUiE=\r\n--b--\r\n",
	"From: x@y.example\r\nSubject: big\r\nMessage-ID: <big@example.net>\r\n\r\n" + strings.Repeat("0123456789abcdef\r\n", 130),
	"From: pest7@y.example\r\nSubject: hi\r\nMessage-ID: <pest@example.net>\r\n\r\nhi\r\n",
	"From: x@y.example\r\nX-Pest: YES\r\nSubject: hi\r\nMessage-ID: <pest-header@example.net>\r\n\r\nhi\r\n",
	"From: x@y.example\r\nCc: a@cc.example\r\nSubject: s\r\nMessage-ID: <small@example.net>\r\n\r\nhi\r\n",
	"From: x@y.example\r\nCc: a@cc.example\r\nSubject: s\r\nMessage-ID: <small-not@example.net>\r\n\r\n" + strings.Repeat("long ", 200) + "\r\n",
	"From: x@y.example\r\nSubject: plain\r\nMessage-ID: <plain@example.net>\r\n\r\nnothing\r\n",
}

// TestSameAsDelivery is the promise of one rule model: the same rules,
// installed as Sieve and delivered over LMTP to bob, and applied by run-now
// to the same messages sitting in carl's INBOX, put the same messages in
// the same folders with the same flags.
func TestSameAsDelivery(t *testing.T) {
	if err := rules.Validate(sameRules); err != nil {
		t.Fatal(err)
	}
	d := mailDovecot(t)
	script, err := rules.Compile(sameRules)
	if err != nil {
		t.Fatal(err)
	}
	in := &install.Installer{Addr: d.SieveAddr, Personal: install.Login(master),
		Platform: install.Login{User: dovecottest.PlatformMaster, Password: dovecottest.PlatformSecret}, Timeout: 10 * time.Second}
	if err := in.Install(context.Background(), bob, install.Scripts{Personal: script}); err != nil {
		t.Fatal(err)
	}
	// Both get the messages over LMTP, as stored mail got there (with
	// Return-Path, Delivered-To and Received, which the size tests see):
	// carl has no script, so his stay in his INBOX for run-now.
	for _, m := range sameMessages {
		for _, to := range []string{carl, bob} {
			answers, err := d.Deliver("sender@example.net", []string{to}, "To: team@example.org\r\n"+m)
			if err != nil || len(answers) != 1 || !strings.HasPrefix(answers[0], "250") {
				t.Fatalf("deliver: %q %v", answers, err)
			}
		}
	}
	if _, err := Run(context.Background(), session(t, d, carl), Job{Rules: sameRules, Folder: "INBOX", Batch: 5}, nil,
		func(Progress, []Entry) error { return nil }); err != nil {
		t.Fatal(err)
	}
	delivered, ran := where(t, d, bob), where(t, d, carl)
	if diff := cmp.Diff(delivered, ran); diff != "" {
		t.Errorf("delivery and run-now differ (-delivered +run-now):\n%s", diff)
	}
	if len(delivered["Lists/Talk"]) == 0 || len(delivered["Finance"]) == 0 || len(delivered["Spam"]) == 0 || len(delivered["Big"]) == 0 || len(delivered["Small"]) == 0 {
		t.Errorf("a rule did nothing on delivery: %v", delivered)
	}
}

// TestPurge empties Spam of what was saved before the cutoff's day, and
// only Spam: with SAVEDATE the saved date counts, so a message that
// arrived 40 days ago but was saved in Spam today stays.
func TestPurge(t *testing.T) {
	d := mailDovecot(t)
	old := time.Now().AddDate(0, 0, -40)
	d.Seed(t, alice, password, []string{"Spam"}, []dovecottest.Message{
		{Folder: "Spam", Raw: []byte(msg("s1", "x@example.net", "spam", "", "x")), Date: old},
		{Folder: "Spam", Raw: []byte(msg("s2", "x@example.net", "spam", "", "x"))},
		{Folder: "INBOX", Raw: []byte(msg("i1", "x@example.net", "ham", "", "x")), Date: old},
	})
	c := session(t, d, alice)
	savedate, _ := c.Support("SAVEDATE")
	t.Logf("SAVEDATE: %v", savedate)
	n, err := Purge(c, "Spam", time.Now().AddDate(0, 0, -30))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"INBOX": {"i1"}, "Spam": {"s1", "s2"}}
	if !savedate {
		want["Spam"] = []string{"s2"} // BEFORE: the internal date
	}
	if diff := cmp.Diff(want, where(t, d, alice)); diff != "" || n != 2-len(want["Spam"]) {
		t.Fatalf("after a 30-day purge, %d purged (SAVEDATE %v) (-want +got):\n%s", n, savedate, diff)
	}
	// Saved before tomorrow: all of Spam, nothing else.
	if n, err := Purge(c, "Spam", time.Now().AddDate(0, 0, 1)); err != nil || n != len(want["Spam"]) {
		t.Fatalf("purge before tomorrow: %d %v", n, err)
	}
	if diff := cmp.Diff(map[string][]string{"INBOX": {"i1"}}, where(t, d, alice)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if n, err := Purge(c, "Nowhere", time.Now()); err != nil || n != 0 {
		t.Fatalf("a missing folder: %d %v", n, err)
	}
}
