package install

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/sieve"
	"github.com/mailplane/mailplane/services/platform/smtptest"
)

const (
	alice    = "alice@example.org"
	password = "alice-password"
)

// mailDovecot runs a Dovecot with LMTP and ManageSieve, configured with
// deploy/mail/dovecot/conf.d/90-mailplane-sieve.conf (paths moved into the
// instance, auto-replies to a loopback relay), every
// address's password "alice-password", and a userdb query of the same
// shape as mailplane-sql.conf.ext's. It returns the instance, its
// configuration (to start it again) and an installer for it.
func mailDovecot(t *testing.T) (*dovecottest.Dovecot, string, *Installer) {
	t.Helper()
	d, conf, in, _ := mailDovecotWith(t, nil)
	return d, conf, in
}

// mailDovecotWith is mailDovecot with edit applied to the deployed
// configuration first.
func mailDovecotWith(t *testing.T, edit func(string) string) (*dovecottest.Dovecot, string, *Installer, *smtptest.Server) {
	t.Helper()
	url := os.Getenv(pgtest.EnvURL)
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MAILPLANE_TEST_DATABASE_URL is not set; CI needs it")
		}
		t.Skip("MAILPLANE_TEST_DATABASE_URL is not set (Dovecot's userdb is a pgsql query)")
	}
	pgc, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	d := dovecottest.New(t)
	d.LMTP, d.Sieve = true, true
	relay := smtptest.StartRelay(t)

	deployed, err := os.ReadFile("../../../../deploy/mail/dovecot/conf.d/90-mailplane-sieve.conf")
	if err != nil {
		t.Fatal(err)
	}
	// The report scripts, and a mailplane-report that records its
	// arguments, one file per report.
	for _, dir := range []string{"sieve", "sieve-pipe", "reports"} {
		if err := os.Mkdir(filepath.Join(d.Dir, dir), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(d.Dir, dir), 0o777) // past the umask: the mail user writes .svbin and reports
	}
	for _, name := range []string{"report-spam.sieve", "report-ham.sieve"} {
		b, err := os.ReadFile("../../../../deploy/mail/dovecot/sieve/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, "sieve", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report := "#!/bin/sh\ncat >/dev/null\necho \"$*\" > " + filepath.Join(d.Dir, "reports") + "/$(date +%s%N).$$\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "sieve-pipe", "mailplane-report"), []byte(report), 0o755); err != nil {
		t.Fatal(err)
	}
	dovecottest.WriteMasters(t, d.Dir)
	sqlConf := "driver = pgsql\nconnect = " + dovecottest.PGConnect(pgc) + "\n" +
		`user_query = SELECT '` + d.Vmail + `/' || '%u' AS home, ` +
		`CASE WHEN '%{master_user}' = 'mailplane-platform' THEN 'file:~/sieve-platform' END AS sieve` + "\n" +
		// doveadm -A iterates over the addresses: here, alice.
		`iterate_query = SELECT '` + alice + `' AS user` + "\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "sql.conf.ext"), []byte(sqlConf), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"/etc/dovecot/", d.Dir+"/",
		"submission_host = 127.0.0.1:25", "submission_host = "+relay.Addr,
	).Replace(string(deployed))
	if edit != nil {
		conf = edit(conf)
	}
	// Debian's 10-mail.conf makes the inbox namespace, which the deployed
	// file adds the Spam folder to.
	conf = "namespace inbox {\n  inbox = yes\n}\n" + conf + `
postmaster_address = postmaster@example.org
auth_master_user_separator = *
passdb {
  driver = static
  args = password=` + password + `
}
userdb {
  driver = sql
  args = ` + d.Dir + `/sql.conf.ext
}
`
	d.Start(t, conf)
	in := &Installer{
		Addr:     d.SieveAddr,
		Personal: Login{"mailplane-personal", "personal-secret"},
		Platform: Login{"mailplane-platform", "platform-secret"},
		Timeout:  10 * time.Second,
	}
	return d, conf, in, relay
}

// message is a message from sender to alice with the extra header lines.
func message(from, subject, headers string) string {
	return "From: " + from + "\r\nTo: " + alice + "\r\nSubject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.net>\r\n" + headers + "\r\nHello.\r\n"
}

// deliver delivers msg to alice, failing t unless it is accepted.
func deliver(t *testing.T, d *dovecottest.Dovecot, from, msg string) {
	t.Helper()
	answers, err := d.Deliver(from, []string{alice}, msg)
	if err != nil || len(answers) != 1 || !strings.HasPrefix(answers[0], "250") {
		t.Fatalf("deliver: %q %v", answers, err)
	}
}

// where returns the mailbox and flags of the one message with subject.
func where(t *testing.T, d *dovecottest.Dovecot, subject string) dovecottest.Found {
	t.Helper()
	found, err := d.Find(alice, password, subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("%q is in %d places: %v", subject, len(found), found)
	}
	return found[0]
}

// replies returns the recipients of the auto-replies the relay got so far.
func replies(relay *smtptest.Server) []string {
	var to []string
	for _, m := range relay.Messages() {
		to = append(to, m.To...)
	}
	slices.Sort(to)
	return to
}

var scripts = Scripts{
	Before: `require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" { fileinto :create "Spam"; stop; }
`,
	Personal: `require ["fileinto", "mailbox", "imap4flags"];
if header :contains "Subject" "invoice" { addflag "\\Flagged"; fileinto :create "Invoices"; }
`,
	After: `require ["fileinto", "mailbox"];
if exists "List-Id" { fileinto :create "Newsletters"; }
`,
}

// TestInstallDeliver installs platform and personal scripts with an
// auto-reply, delivers real mail over LMTP and finds each message where the
// scripts put it, with its flags; each sender is answered once.
func TestInstallDeliver(t *testing.T) {
	d, _, in, relay := mailDovecotWith(t, nil)
	s := scripts
	var err error
	s.Vacation, err = sieve.Vacation{Subject: "Away", Message: "Back on Monday.\n"}.Script(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Install(context.Background(), alice, s); err != nil {
		t.Fatal(err)
	}

	// Spam stops before the auto-reply: eve is never answered.
	deliver(t, d, "eve@example.net", message("eve@example.net", "spam one", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "bob@example.net", message("bob@example.net", "invoice two", ""))
	deliver(t, d, "bob@example.net", message("bob@example.net", "news three", "List-Id: <news.example.net>\r\n"))
	deliver(t, d, "bob@example.net", message("bob@example.net", "plain four", ""))
	deliver(t, d, "carol@example.net", message("carol@example.net", "plain five", ""))
	deliver(t, d, "carol@example.net", message("carol@example.net", "plain six", ""))

	for _, c := range []struct {
		subject, mailbox string
		flags            []string
	}{
		{"spam one", "Spam", nil},
		{"invoice two", "Invoices", []string{`\Flagged`}},
		{"news three", "Newsletters", nil},
		{"plain four", "INBOX", nil},
		{"plain five", "INBOX", nil},
		{"plain six", "INBOX", nil},
	} {
		got := where(t, d, c.subject)
		var flags []string
		for _, f := range got.Flags {
			if f != `\Recent` {
				flags = append(flags, f)
			}
		}
		if got.Mailbox != c.mailbox || !slices.Equal(flags, c.flags) {
			t.Errorf("%q: in %s with %v, want %s with %v", c.subject, got.Mailbox, flags, c.mailbox, c.flags)
		}
	}
	if got, want := replies(relay), []string{"bob@example.net", "carol@example.net"}; !slices.Equal(got, want) {
		t.Errorf("auto-replies to %v, want one to each of %v", got, want)
	}
	for _, m := range relay.Messages() {
		msg := m.Parsed(t)
		body, _ := io.ReadAll(msg.Body)
		if m.From != "" || msg.Header.Get("Subject") != "Away" || !strings.Contains(msg.Header.Get("From"), alice) || !strings.Contains(string(body), "Back on Monday.") {
			t.Errorf("auto-reply from <%s>:\n%s", m.From, m.Data)
		}
	}

	// Turning the auto-reply off stops it at once: a new sender is not
	// answered.
	s.Vacation = ""
	if err := in.Install(context.Background(), alice, s); err != nil {
		t.Fatal(err)
	}
	deliver(t, d, "dave@example.net", message("dave@example.net", "plain seven", ""))
	if got := replies(relay); len(got) != 2 {
		t.Errorf("auto-replies after it was turned off: %v", got)
	}
}

// TestCustomerSeesOwnScriptsOnly: the address's own ManageSieve login
// lists the personal script only, and a script it stores under a platform
// script's name changes nothing of the platform's.
func TestCustomerSeesOwnScriptsOnly(t *testing.T) {
	d, _, in := mailDovecot(t)
	if err := in.Install(context.Background(), alice, scripts); err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", d.SieveAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &conn{r: bufio.NewReader(nc), w: nc}
	if _, err := c.response(); err != nil {
		t.Fatal(err)
	}
	if err := c.simple(`AUTHENTICATE "PLAIN" "` + b64("\x00"+alice+"\x00"+password) + `"`); err != nil {
		t.Fatal(err)
	}
	if err := c.putScript(BeforeName, "keep;\n"); err != nil {
		t.Fatal(err)
	}
	// The report scripts' pipe is for global scripts only.
	var se *ScriptError
	if err := c.putScript("pipe", `require "vnd.dovecot.pipe"; pipe "mailplane-report" ["spam", "x"];`+"\n"); !errors.As(err, &se) || !strings.Contains(se.Msg, "vnd.dovecot.pipe") {
		t.Errorf("the customer stored a script using pipe: %v", err)
	}
	if _, err := c.w.Write([]byte("LISTSCRIPTS\r\n")); err != nil {
		t.Fatal(err)
	}
	lines, err := c.response()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	if want := []string{`"before"`, `"mailplane" ACTIVE`}; !slices.Equal(lines, want) {
		t.Errorf("the customer's scripts: %q, want %q", lines, want)
	}
	deliver(t, d, "bob@example.net", message("bob@example.net", "spam one", "X-Spam-Flag: YES\r\n"))
	if got := where(t, d, "spam one"); got.Mailbox != "Spam" {
		t.Errorf("spam went to %s after the customer wrote a script named before", got.Mailbox)
	}
}

// TestInstallDovecotDown: with Dovecot stopped Install fails (the job
// retries it); once Dovecot is back the same Install succeeds and the
// scripts work.
func TestInstallDovecotDown(t *testing.T) {
	d, conf, in := mailDovecot(t)
	d.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Install(ctx, alice, scripts); err == nil {
		t.Fatal("Install succeeded with Dovecot stopped")
	}
	d.Start(t, conf)
	if err := in.Install(ctx, alice, scripts); err != nil {
		t.Fatalf("Install once Dovecot is back: %v", err)
	}
	deliver(t, d, "bob@example.net", message("bob@example.net", "invoice one", ""))
	if got := where(t, d, "invoice one"); got.Mailbox != "Invoices" {
		t.Errorf("invoice in %s", got.Mailbox)
	}
}

// TestInstallBadScript: a script Dovecot does not compile is a
// ScriptError naming it, and the scripts installed before stay.
func TestInstallBadScript(t *testing.T) {
	d, _, in := mailDovecot(t)
	if err := in.Install(context.Background(), alice, scripts); err != nil {
		t.Fatal(err)
	}
	bad := scripts
	bad.Personal = "if header :contains \"Subject\" {\n"
	err := in.Install(context.Background(), alice, bad)
	var se *ScriptError
	if !errors.As(err, &se) || se.Script != PersonalName {
		t.Fatalf("Install of a broken script: %v, want a ScriptError for %s", err, PersonalName)
	}
	deliver(t, d, "bob@example.net", message("bob@example.net", "invoice one", ""))
	if got := where(t, d, "invoice one"); got.Mailbox != "Invoices" {
		t.Errorf("invoice in %s after a broken script was refused", got.Mailbox)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// spamAt delivers n spam messages, which the before script files into Spam.
func spamAt(t *testing.T, d *dovecottest.Dovecot, in *Installer, n int) {
	t.Helper()
	if err := in.Install(context.Background(), alice, scripts); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		deliver(t, d, "eve@example.net", message("eve@example.net", fmt.Sprintf("spam %d", i), "X-Spam-Flag: YES\r\n"))
	}
	if found, err := d.Find(alice, password, "spam"); err != nil || len(found) != n {
		t.Fatalf("spam delivered: %v %v", found, err)
	}
}

// TestSpamAutoexpunge: the deployed autoexpunge, shortened to a second,
// empties Spam when the address's IMAP session ends. The spam is delivered
// under the deployed 30 days and Dovecot restarted with a second after:
// every session that ends (each LMTP delivery, each search) autoexpunges,
// so a second from the start raced spamAt's count under load.
func TestSpamAutoexpunge(t *testing.T) {
	d, conf, in := mailDovecot(t)
	if !strings.Contains(conf, "autoexpunge = 30d") {
		t.Fatal("the deployed configuration has no autoexpunge = 30d")
	}
	spamAt(t, d, in, 3)
	d.Stop()
	d.Start(t, strings.Replace(conf, "autoexpunge = 30d", "autoexpunge = 1s", 1))
	// autoexpunge runs as the session ends, after LOGOUT is answered, on
	// messages saved over a second before: polled, the bound only stops a
	// test that would never pass.
	deadline := time.Now().Add(time.Minute)
	for {
		if line, err := d.Login(alice, password); err != nil || !strings.Contains(line, "OK") {
			t.Fatalf("login: %q %v", line, err)
		}
		found, err := d.Find(alice, password, "spam")
		if err != nil {
			t.Fatal(err)
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Spam still holds %v", found)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestSpamSweep: the daily sweep (doveadm expunge -A mailbox Spam
// savedbefore 30d, here 1s) empties Spam of an address nobody logs in to,
// and leaves the INBOX alone.
func TestSpamSweep(t *testing.T) {
	d, _, in := mailDovecot(t)
	spamAt(t, d, in, 2)
	deliver(t, d, "bob@example.net", message("bob@example.net", "plain one", ""))
	time.Sleep(2 * time.Second)
	args := append(d.Doveadm(), "expunge", "-A", "mailbox", "Spam", "savedbefore", "1s")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	if found, err := d.Find(alice, password, "spam"); err != nil || len(found) != 0 {
		t.Errorf("Spam after the sweep: %v %v", found, err)
	}
	if got := where(t, d, "plain one"); got.Mailbox != "INBOX" {
		t.Errorf("plain one in %s", got.Mailbox)
	}
}

// TestInstallRefusesBeforeSending: an address that would break the SASL
// exchange, or a script past MaxScript, is refused without a connection
// (the address points nowhere: a dial would fail differently).
func TestInstallRefusesBeforeSending(t *testing.T) {
	in := &Installer{Addr: "127.0.0.1:1"}
	for _, c := range []struct {
		name    string
		address string
		s       Scripts
		script  string
	}{
		{"empty address", "", Scripts{}, ""},
		{"NUL in address", "a\x00b@example.org", Scripts{}, ""},
		{"CRLF in address", "a\r\nLOGOUT@example.org", Scripts{}, ""},
		{"big personal", alice, Scripts{Personal: strings.Repeat("#", MaxScript+1)}, PersonalName},
		{"big vacation", alice, Scripts{Vacation: strings.Repeat("#", MaxScript+1)}, VacationName},
	} {
		err := in.Install(context.Background(), c.address, c.s)
		var se *ScriptError
		switch {
		case err == nil:
			t.Errorf("%s: installed", c.name)
		case c.script != "" && (!errors.As(err, &se) || se.Script != c.script):
			t.Errorf("%s: %v, want a ScriptError for %s", c.name, err, c.script)
		case c.script == "" && !strings.Contains(err.Error(), "invalid address"):
			t.Errorf("%s: %v, want invalid address", c.name, err)
		}
	}
}

// reports returns the spam reports made so far, sorted.
func reports(t *testing.T, d *dovecottest.Dovecot) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(d.Dir, "reports", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.TrimSpace(string(b)))
	}
	slices.Sort(got)
	return got
}

// TestSpamReports: a message the customer moves into Spam over IMAP is a
// spam report, one moved out of it a not-spam report, one moved from Spam
// to the Trash no report.
func TestSpamReports(t *testing.T) {
	d, _, in := mailDovecot(t)
	if err := in.Install(context.Background(), alice, scripts); err != nil {
		t.Fatal(err)
	}
	deliver(t, d, "eve@example.net", message("eve@example.net", "spam one", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "eve@example.net", message("eve@example.net", "spam two", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "bob@example.net", message("bob@example.net", "plain three", ""))
	if got := reports(t, d); len(got) != 0 {
		t.Fatalf("reports from delivery: %v", got)
	}

	conn, c, err := d.Session(alice, password)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	run := func(cmd string) {
		t.Helper()
		tag, _, _ := strings.Cut(cmd, " ")
		if line, err := dovecottest.Command(c, cmd); err != nil || !strings.HasPrefix(line, tag+" OK") {
			t.Fatalf("%s: %q %v", cmd, line, err)
		}
	}
	run("b1 CREATE Trash")
	run("b2 SELECT INBOX")
	run(`b3 MOVE 1:* Spam`) // plain three: the customer says spam
	run("b4 SELECT Spam")
	// spam one and two came first, plain three last.
	run("b5 MOVE 1 INBOX") // spam one: not spam
	run("b6 MOVE 1 Trash") // spam two: deleted
	run("b7 LOGOUT")

	if got, want := reports(t, d), []string{"ham " + alice, "spam " + alice}; !slices.Equal(got, want) {
		t.Errorf("reports %q, want %q", got, want)
	}
	for subject, mailbox := range map[string]string{"spam one": "INBOX", "spam two": "Trash", "plain three": "Spam"} {
		if got := where(t, d, subject); got.Mailbox != mailbox {
			t.Errorf("%s in %s, want %s", subject, got.Mailbox, mailbox)
		}
	}
}

func TestFromMap(t *testing.T) {
	got, err := FromMap(map[string]string{"before": "b", "vacation": "v", "personal": "p", "after": "a"})
	if want := (Scripts{Before: "b", Vacation: "v", Personal: "p", After: "a"}); err != nil || got != want {
		t.Errorf("FromMap: %+v %v, want %+v", got, err, want)
	}
	if got, err := FromMap(map[string]string{"personal": "p", "mailplane": "x"}); err == nil {
		t.Errorf("FromMap with an unknown name: %+v", got)
	}
}

// TestCompiledRules installs the rules compiler's script as the personal
// one, under the platform's spam script, and finds each delivered message
// where the rules say, with their flags: a nested folder created on
// delivery, a copy, a flag, a negated condition, a stop, a delete.
func TestCompiledRules(t *testing.T) {
	d, _, in := mailDovecot(t)
	personal, err := rules.Compile([]rules.Rule{
		{Name: "Work", Enabled: true, Match: rules.All,
			Conditions: []rules.Condition{{Field: rules.From, Op: rules.Contains, Value: "@work.example"}},
			Actions:    []rules.Action{{Kind: rules.MarkRead}, {Kind: rules.Move, Folder: "Work/Inbound"}, {Kind: rules.Copy, Folder: "Work/v1.2"}, {Kind: rules.Stop}}},
		{Name: "Lists", Enabled: true, Match: rules.Any,
			Conditions: []rules.Condition{
				{Field: rules.Header, Header: "List-Id", Op: rules.Regex, Value: `^<[a-z]+\.example\.org>$`},
				{Field: rules.Subject, Op: rules.Contains, Value: `"; discard; "`},
			},
			Actions: []rules.Action{{Kind: rules.Flag}, {Kind: rules.Copy, Folder: "Lists"}}},
		{Name: "Off", Enabled: false, Match: rules.All, Actions: []rules.Action{{Kind: rules.Delete}}},
		{Name: "Pest", Enabled: true, Match: rules.All,
			Conditions: []rules.Condition{{Field: rules.From, Op: rules.Is, Value: "pest@spam.example"}},
			Actions:    []rules.Action{{Kind: rules.Delete}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := scripts
	s.Personal = personal
	if err := in.Install(context.Background(), alice, s); err != nil {
		t.Fatal(err)
	}
	deliver(t, d, "ann@work.example", message("ann@work.example", "work one", ""))
	deliver(t, d, "ann@work.example", message("ann@work.example", "work spam", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "news@lists.example", message("news@lists.example", "list two", "List-Id: <news.example.org>\r\n"))
	deliver(t, d, "x@example.net", message("x@example.net", `a "; discard; " three`, ""))
	deliver(t, d, "pest@spam.example", message("pest@spam.example", "pest four", ""))
	deliver(t, d, "bob@example.net", message("bob@example.net", "plain five", ""))

	for _, c := range []struct {
		subject string
		want    []string // mailbox and flags of each copy, sorted
	}{
		{"work one", []string{`Work/Inbound \Seen`, `Work/v1.2 \Seen`}},
		{"work spam", []string{"Spam"}},
		// The platform's after script files List-Id mail into Newsletters,
		// with the personal script's flag.
		{"list two", []string{`Lists \Flagged`, `Newsletters \Flagged`}},
		{`"; discard; "`, []string{`INBOX \Flagged`, `Lists \Flagged`}},
		{"pest four", nil},
		{"plain five", []string{"INBOX"}},
	} {
		found, err := d.Find(alice, password, c.subject)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range found {
			got = append(got, strings.TrimSpace(f.Mailbox+" "+strings.Join(slices.DeleteFunc(f.Flags, func(s string) bool { return s == `\Recent` }), " ")))
		}
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.subject, got, c.want)
		}
	}
}

// TestPlatformRules installs what the rules package writes for an address
// with every platform filter on (block list, spam, mention, auto-reply, ad
// filter) and a personal rule, delivers real mail, and finds each message
// where the platform says, with the answers the auto-reply sent.
func TestPlatformRules(t *testing.T) {
	d, _, in, relay := mailDovecotWith(t, nil)
	vacation, err := sieve.Vacation{Subject: "Away", Message: "Back on Monday.\n"}.Script(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before, after, err := rules.Platform{
		Block: []string{"pest.example"}, Allow: []string{"friend@spam.example"},
		Spam: true, SpamFolder: "Spam",
		Ads: true, NewsletterFolder: "Newsletters", NoticeFolder: "Notifications",
		Mention: true, Tag: "[EXT]", OwnDomains: []string{"example.org"},
	}.Scripts(vacation)
	if err != nil {
		t.Fatal(err)
	}
	personal, err := rules.Compile([]rules.Rule{{Name: "Invoices", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "invoice"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Invoices"}}}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromRules(before, after, personal)
	if err != nil {
		t.Fatal(err)
	}
	if s.Before == "" || s.Vacation == "" || s.After == "" {
		t.Fatalf("FromRules left a script out: %+v", s)
	}
	if err := in.Install(context.Background(), alice, s); err != nil {
		t.Fatal(err)
	}

	deliver(t, d, "x@pest.example", message("x@pest.example", "blocked one", ""))
	deliver(t, d, "eve@spam.example", message("eve@spam.example", "spam two", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "friend@spam.example", message("friend@spam.example", "allowed three", "X-Spam-Flag: YES\r\n"))
	deliver(t, d, "news@shop.example", message("news@shop.example", "news four", "List-Unsubscribe: <mailto:u@shop.example>\r\n"))
	deliver(t, d, "bob@example.net", message("bob@example.net", "invoice five", ""))
	deliver(t, d, "colleague@example.org", message("colleague@example.org", "internal six", ""))

	for _, c := range []struct{ subject, mailbox string }{
		{"blocked one", "Spam"},
		{"spam two", "Spam"},
		{"allowed three", "INBOX"},
		{"news four", "Newsletters"},
		{"invoice five", "Invoices"},
		{"internal six", "INBOX"},
	} {
		if got := where(t, d, c.subject); got.Mailbox != c.mailbox {
			t.Errorf("%q in %s, want %s", c.subject, got.Mailbox, c.mailbox)
		}
	}
	// The mention tags external mail that stays, never the organization's.
	if found, err := d.Find(alice, password, "[EXT] invoice five"); err != nil || len(found) != 1 {
		t.Errorf("external mail without the tag: %v %v", found, err)
	}
	if found, err := d.Find(alice, password, "[EXT] internal six"); err != nil || len(found) != 0 {
		t.Errorf("internal mail tagged: %v %v", found, err)
	}
	// Blocked and spam senders are never answered; the newsletter neither
	// (Pigeonhole does not answer list mail).
	if got, want := replies(relay), []string{"bob@example.net", "colleague@example.org", "friend@spam.example"}; !slices.Equal(got, want) {
		t.Errorf("auto-replies to %v, want %v", got, want)
	}
}
