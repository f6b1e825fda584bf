package filters_test

import (
	"context"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/filters"
	internal "github.com/mailplane/mailplane/services/filters/internal"
	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/metrictest"
	"github.com/mailplane/mailplane/services/platform/sieve"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// The tests in this file run the service with its real compiler and
// ManageSieve installer against a real Dovecot configured from
// deploy/mail/dovecot (dovecottest.StartMail: skipped without Dovecot or
// PostgreSQL, failed under CI=true), and deliver real mail over LMTP.

// internalCompiler is the service's own compiler.
var internalCompiler = internal.RulesCompiler{}

// startDovecot runs the service, its jobs working, installing into m.
func startDovecot(t *testing.T, m *dovecottest.Mail) *env {
	t.Helper()
	return startConfig(t, true, filters.Config{MaxRules: 50, ManageSieve: manageSieve(m)})
}

// manageSieve is the installer's configuration for m.
func manageSieve(m *dovecottest.Mail) filters.ManageSieve {
	return filters.ManageSieve{
		Addr:     m.SieveAddr,
		Personal: install.Login{User: dovecottest.PersonalMaster, Password: dovecottest.PersonalSecret},
		Platform: install.Login{User: dovecottest.PlatformMaster, Password: dovecottest.PlatformSecret},
		Timeout:  10 * time.Second,
	}
}

// nothingPending waits until every change is installed.
func (e *env) nothingPending() {
	e.t.Helper()
	e.eventually("every change installed", func() bool {
		var n int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs`).Scan(&n) == nil && n == 0
	})
}

// verifyDomain publishes mailboxes' event for the mail service with
// domain: the organization's own, which the mention leaves unmarked.
func (e *env) verifyDomain(domain string) {
	e.t.Helper()
	data, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: e.ms, Domain: domain}})
	if _, err := e.js.Publish(e.ctx, "mp."+mailboxesevents.MailServiceCreated, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
}

// autoReply publishes mailboxes' auto-reply event for address (local
// part local) with its rendered script.
func (e *env) autoReply(address, local, script string) {
	e.t.Helper()
	a := &mailboxesv1.Address{Name: address, LocalPart: local, Email: local + "@example.test"}
	data, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: a, Login: local + "@example.test", VacationSieve: script})
	if _, err := e.js.Publish(e.ctx, "mp."+mailboxesevents.AutoReplyUpdated, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
}

// mail is a message from sender to login with the extra header lines.
func mail(login, from, subject, headers string) string {
	return "From: " + from + "\r\nTo: " + login + "\r\nSubject: " + subject + "\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "." + uuid.NewString() + "@example.net>\r\n" + headers + "\r\nHello.\r\n"
}

// deliverTo delivers a message over LMTP, failing t unless accepted.
func deliverTo(t *testing.T, m *dovecottest.Mail, login, from, subject, headers string) {
	t.Helper()
	answers, err := m.Deliver(from, []string{login}, mail(login, from, subject, headers))
	if err != nil || len(answers) != 1 || !strings.HasPrefix(answers[0], "250") {
		t.Fatalf("deliver %q to %s: %q %v", subject, login, answers, err)
	}
}

// placed returns the mailbox and flags (but \Recent) of the one message
// of login whose subject contains subject.
func placed(t *testing.T, m *dovecottest.Mail, login, subject string) (string, []string) {
	t.Helper()
	found, err := m.Find(login, dovecottest.UserPassword, subject)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("%q is in %d places: %v", subject, len(found), found)
	}
	var flags []string
	for _, f := range found[0].Flags {
		if f != `\Recent` {
			flags = append(flags, f)
		}
	}
	return found[0].Mailbox, flags
}

// repliedTo returns the recipients of the auto-replies so far, sorted.
func repliedTo(m *dovecottest.Mail) []string {
	var to []string
	for _, msg := range m.Relay.Messages() {
		to = append(to, msg.To...)
	}
	slices.Sort(to)
	return to
}

func settingsMask(paths ...string) *fieldmaskpb.FieldMask {
	return &fieldmaskpb.FieldMask{Paths: paths}
}

// TestServiceInDovecot: rules made through the API, the default platform
// filters, block and allow lists, the mention and mailboxes' auto-reply,
// installed by the service's own jobs; real mail delivered over LMTP
// ends in the folder, with the flags, each is meant for, and each sender
// gets one auto-reply; a customer's own ManageSieve login sees and breaks
// nothing of the platform's; turning the spam filter off changes where
// spam goes and keeps the customer's rules.
func TestServiceInDovecot(t *testing.T) {
	m := dovecottest.StartMail(t, nil)
	e := startDovecot(t, m)
	e.verifyDomain("example.test")
	addr := e.announce(mailboxesevents.AddressCreated, "", "anna")
	const anna = "anna@example.test"
	e.known(addr)
	invoice := &filtersv1.Rule{DisplayName: "invoices",
		Conditions: []*filtersv1.Condition{{Field: filtersv1.Field_FIELD_SUBJECT, Operator: filtersv1.Operator_OPERATOR_CONTAINS, Value: "invoice"}},
		Actions:    []*filtersv1.Action{{Kind: filtersv1.ActionKind_ACTION_KIND_MARK_FLAGGED}, moveTo("Invoices")}}
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: invoice}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings", BlockedSenders: []string{"blocked.example"},
			AllowedSenders: []string{"friend@allowed.example"}, ExternalMention: true},
		UpdateMask: settingsMask("blocked_senders", "allowed_senders", "external_mention"),
	}); err != nil {
		t.Fatal(err)
	}
	away, err := sieve.Vacation{Subject: "Away", Message: "Back on Monday.\n"}.Script(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.autoReply(addr, "anna", away)
	e.eventually("the mention and the auto-reply installed", func() bool {
		before, _ := m.SieveFile(t, anna, "sieve-platform", install.BeforeName)
		vacation, _ := m.SieveFile(t, anna, "sieve-platform", install.VacationName)
		return strings.Contains(before, "X-Mailplane-External") && strings.Contains(vacation, "Back on Monday.")
	})
	e.nothingPending()

	deliveries := []struct {
		from, subject, headers string
		mailbox                string
		flags                  []string
	}{
		{"eve@outside.example", "spam one", "X-Spam-Flag: YES\r\n", "Spam", nil},
		{"bob@outside.example", "invoice two", "", "Invoices", []string{`\Flagged`}},
		{"news@letters.example", "news three", "List-Unsubscribe: <mailto:leave@letters.example>\r\n", "Newsletters", nil},
		{"no-reply@service.example", "notice four", "Auto-Submitted: auto-generated\r\n", "Notifications", nil},
		{"x@blocked.example", "blocked five", "", "Spam", nil},
		{"friend@allowed.example", "allowed six", "X-Spam-Flag: YES\r\n", "INBOX", nil},
		{"colleague@example.test", "inside seven", "", "INBOX", nil},
		{"bob@outside.example", "outside eight", "", "INBOX", nil},
		{"carol@outside.example", "outside nine", "", "INBOX", nil},
		{"rspamd@outside.example", "rspamd ten", "X-Spam: yes\r\nX-Spamd-Result: default: True [16.00 / 15.00]\r\n", "Spam", nil},
		{"ham@outside.example", "ham eleven", "X-Spam-Status: No, score=-2.1\r\n", "INBOX", nil},
	}
	for _, d := range deliveries {
		deliverTo(t, m, anna, d.from, d.subject, d.headers)
	}
	for _, d := range deliveries {
		mailbox, flags := placed(t, m, anna, d.subject)
		if mailbox != d.mailbox || !slices.Equal(flags, d.flags) {
			t.Errorf("%q: in %s with %v, want %s with %v", d.subject, mailbox, flags, d.mailbox, d.flags)
		}
	}
	// The mention: a tag and a header on mail from outside only.
	tagged, err := m.Search(anna, dovecottest.UserPassword, `HEADER X-Mailplane-External ""`)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"inside seven", "outside eight"} {
		found, err := m.Find(anna, dovecottest.UserPassword, "[External] "+s)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.HasPrefix(s, "outside"); (len(found) == 1) != want {
			t.Errorf("%q tagged [External]: %v, want %v", s, found, want)
		}
	}
	// Every delivery but the spam, the blocked one and the colleague's.
	if len(tagged) != len(deliveries)-4 {
		t.Errorf("%d messages with X-Mailplane-External, want %d: %v", len(tagged), len(deliveries)-4, tagged)
	}
	// One answer per sender; none to spam, lists or automated mail.
	want := []string{"bob@outside.example", "carol@outside.example", "colleague@example.test", "friend@allowed.example", "ham@outside.example"}
	if got := repliedTo(m); !slices.Equal(got, want) {
		t.Errorf("auto-replies to %v, want one to each of %v", got, want)
	}

	// The customer's own ManageSieve client sees its own storage only;
	// a script it stores under a platform script's name changes nothing.
	answers, err := m.ManageSieve(anna, dovecottest.UserPassword, "LISTSCRIPTS", dovecottest.PutScript(install.BeforeName, "keep;\n"), `SETACTIVE "before"`, "LISTSCRIPTS")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`"mailplane" ACTIVE`, "OK"}; !slices.Equal(trimOK(answers[0]), want) {
		t.Errorf("the customer's scripts: %q, want %q", answers[0], want)
	}
	for _, a := range answers[1:3] {
		if !strings.HasPrefix(a[len(a)-1], "OK") {
			t.Errorf("the customer's own script refused: %q", a)
		}
	}
	deliverTo(t, m, anna, "eve@outside.example", "spam twelve", "X-Spam-Flag: YES\r\n")
	if mailbox, _ := placed(t, m, anna, "spam twelve"); mailbox != "Spam" {
		t.Errorf("spam in %s after the customer stored a script named before", mailbox)
	}

	// A platform change reinstalls: the spam filter off, the customer's
	// rules kept (reactivated: the service owns the active script).
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings", AntiSpam: false},
		UpdateMask:     settingsMask("anti_spam"),
	}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the spam filter removed", func() bool {
		before, _ := m.SieveFile(t, anna, "sieve-platform", install.BeforeName)
		return !strings.Contains(before, "X-Spam-Flag")
	})
	e.nothingPending()
	deliverTo(t, m, anna, "eve@outside.example", "spam thirteen", "X-Spam-Flag: YES\r\n")
	deliverTo(t, m, anna, "bob@outside.example", "invoice fourteen", "X-Spam-Flag: YES\r\n")
	deliverTo(t, m, anna, "x@blocked.example", "blocked fifteen", "")
	for _, c := range []struct{ subject, mailbox string }{{"spam thirteen", "INBOX"}, {"invoice fourteen", "Invoices"}, {"blocked fifteen", "Spam"}} {
		if mailbox, _ := placed(t, m, anna, c.subject); mailbox != c.mailbox {
			t.Errorf("with the spam filter off, %q in %s, want %s", c.subject, mailbox, c.mailbox)
		}
	}
}

// trimOK drops the text after a final OK.
func trimOK(lines []string) []string {
	out := slices.Clone(lines)
	if n := len(out); n > 0 && strings.HasPrefix(out[n-1], "OK") {
		out[n-1] = "OK"
	}
	return out
}

// TestVacationSkipsAutomatedMail: Pigeonhole's vacation, as installed,
// never answers mail marked bulk, list or junk (Precedence), automatic
// (Auto-Submitted), or from a list; the ad filter is off so that the
// auto-reply alone decides.
func TestVacationSkipsAutomatedMail(t *testing.T) {
	m := dovecottest.StartMail(t, nil)
	e := startDovecot(t, m)
	addr := e.announce(mailboxesevents.AddressCreated, "", "otto")
	const otto = "otto@example.test"
	e.known(addr)
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings"}, UpdateMask: settingsMask("ad_filter"),
	}); err != nil {
		t.Fatal(err)
	}
	away, err := sieve.Vacation{Subject: "Away", Message: "Back soon.\n"}.Script(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.autoReply(addr, "otto", away)
	e.eventually("the auto-reply installed", func() bool {
		v, _ := m.SieveFile(t, otto, "sieve-platform", install.VacationName)
		after, _ := m.SieveFile(t, otto, "sieve-platform", install.AfterName)
		return strings.Contains(v, "Back soon.") && !strings.Contains(after, "List-Unsubscribe")
	})
	e.nothingPending()
	for _, c := range []struct{ from, headers string }{
		{"bulk@outside.example", "Precedence: bulk\r\n"},
		{"list@outside.example", "Precedence: list\r\n"},
		{"junk@outside.example", "Precedence: junk\r\n"},
		{"generated@outside.example", "Auto-Submitted: auto-generated\r\n"},
		{"replied@outside.example", "Auto-Submitted: auto-replied\r\n"},
		{"listid@outside.example", "List-Id: <team.outside.example>\r\n"},
		{"person@outside.example", "Auto-Submitted: no\r\n"},
	} {
		deliverTo(t, m, otto, c.from, "to otto from "+path.Base(c.from), c.headers)
	}
	if got, want := repliedTo(m), []string{"person@outside.example"}; !slices.Equal(got, want) {
		t.Errorf("auto-replies to %v, want only %v", got, want)
	}
}

// invoiceRule files mail whose subject holds "invoice" into Invoices.
func invoiceRule() *filtersv1.Rule {
	return &filtersv1.Rule{DisplayName: "invoices",
		Conditions: []*filtersv1.Condition{{Field: filtersv1.Field_FIELD_SUBJECT, Operator: filtersv1.Operator_OPERATOR_CONTAINS, Value: "invoice"}},
		Actions:    []*filtersv1.Action{moveTo("Invoices")}}
}

// TestServiceKeepsChangesWhileDovecotIsDown: with Dovecot stopped the API
// still takes changes; the install job fails and waits; once Dovecot is
// back the sweep installs them and the mail goes where they say.
func TestServiceKeepsChangesWhileDovecotIsDown(t *testing.T) {
	m := dovecottest.StartMail(t, nil)
	e := startDovecot(t, m)
	addr := e.announce(mailboxesevents.AddressCreated, "", "dora")
	const dora = "dora@example.test"
	e.known(addr)
	e.nothingPending()

	m.Stop()
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: invoiceRule()}); err != nil {
		t.Fatalf("CreateRule with Dovecot down: %v", err)
	}
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings"}, UpdateMask: settingsMask("anti_spam"),
	}); err != nil {
		t.Fatalf("UpdateFilterSettings with Dovecot down: %v", err)
	}
	e.eventually("an install tried, failed and waiting to retry", func() bool {
		var n int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'install_scripts' AND state = 'retryable'`).Scan(&n) == nil && n > 0
	})
	var pending int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("%d changes pending while Dovecot is down (%v), want 1", pending, err)
	}

	m.Restart(t)
	// The job's retry comes 10 s after its failure; the sweep (every 5
	// minutes) at once.
	if _, err := e.svc.ReinstallPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.nothingPending()
	deliverTo(t, m, dora, "bob@outside.example", "invoice one", "")
	deliverTo(t, m, dora, "eve@outside.example", "spam two", "X-Spam-Flag: YES\r\n")
	for _, c := range []struct{ subject, mailbox string }{{"invoice one", "Invoices"}, {"spam two", "INBOX"}} {
		if mailbox, _ := placed(t, m, dora, c.subject); mailbox != c.mailbox {
			t.Errorf("%q in %s, want %s", c.subject, mailbox, c.mailbox)
		}
	}
}

// TestBulkToggleInDovecot: the spam and ad filters turned off for 1,000
// addresses at once (BatchUpdateFilterSettings) end installed for every
// one of them, as Dovecot stores them, and a sample's mail shows it.
func TestBulkToggleInDovecot(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 addresses installed twice: not with -short")
	}
	m := dovecottest.StartMail(t, nil)
	e := startDovecot(t, m)
	// Generous: 2,000 installs on a shared machine under -race.
	e.wait = 10 * time.Minute
	const n = 1000
	logins := make([]string, n)
	for i := range logins {
		local := "bulk" + strconv.Itoa(i)
		e.announce(mailboxesevents.AddressCreated, "", local)
		logins[i] = local + "@example.test"
	}
	e.eventually("1,000 addresses known", func() bool {
		var k int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM settings`).Scan(&k) == nil && k == n
	})
	e.nothingPending()
	for _, l := range logins {
		if before, _ := m.SieveFile(t, l, "sieve-platform", install.BeforeName); !strings.Contains(before, "X-Spam-Flag") {
			t.Fatalf("%s: the default spam filter not installed: %q", l, before)
		}
	}
	resp, err := e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AntiSpam: proto.Bool(false), AdFilter: proto.Bool(false)})
	if err != nil || resp.GetUpdatedCount() != n {
		t.Fatalf("batch off: %v %v", resp, err)
	}
	e.nothingPending()
	var wrong []string
	for _, l := range logins {
		before, ok1 := m.SieveFile(t, l, "sieve-platform", install.BeforeName)
		after, ok2 := m.SieveFile(t, l, "sieve-platform", install.AfterName)
		_, ok3 := m.SieveFile(t, l, "sieve", install.PersonalName)
		if !ok1 || !ok2 || !ok3 || strings.Contains(before, "X-Spam-Flag") || strings.Contains(after, "List-Unsubscribe") {
			wrong = append(wrong, l)
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("%d of %d addresses not installed with both filters off: %v", len(wrong), n, wrong[:min(len(wrong), 10)])
	}
	for _, l := range []string{logins[0], logins[n/2], logins[n-1]} {
		deliverTo(t, m, l, "eve@outside.example", "spam one", "X-Spam-Flag: YES\r\n")
		deliverTo(t, m, l, "news@letters.example", "news two", "List-Unsubscribe: <mailto:leave@letters.example>\r\n")
		for _, s := range []string{"spam one", "news two"} {
			if mailbox, _ := placed(t, m, l, s); mailbox != "INBOX" {
				t.Errorf("%s: %q in %s with both filters off", l, s, mailbox)
			}
		}
	}
}

// breakable is the service's compiler, whose personal script Dovecot
// refuses while broken is set: a compiler bug.
type breakable struct {
	mu     sync.Mutex
	broken bool
}

func (b *breakable) Compile(rs []*filters.Rule, st *filters.Settings) (filters.Scripts, error) {
	s, err := internalCompiler.Compile(rs, st)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.broken && err == nil {
		s[install.PersonalKey] += "if header :contains \"Subject\" {\n"
	}
	return s, err
}

func (b *breakable) set(broken bool) {
	b.mu.Lock()
	b.broken = broken
	b.mu.Unlock()
}

// TestRefusedScriptsNotRetried: scripts Dovecot does not compile cancel
// the job at once (no retries), mark the address failed (the sweep
// leaves it), count a refused install; the address's next change is
// installed, whichever way it comes (a rule, a batch of settings).
func TestRefusedScriptsNotRetried(t *testing.T) {
	m := dovecottest.StartMail(t, nil)
	compiler := &breakable{broken: true}
	metrics := metrictest.New()
	e := startConfig(t, true, filters.Config{MaxRules: 50, ManageSieve: manageSieve(m), Compiler: compiler, Meter: metrics.Meter})
	addr := e.announce(mailboxesevents.AddressCreated, "", "bert")
	e.known(addr)
	e.eventually("the install job cancelled", func() bool {
		var n int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'install_scripts' AND state = 'cancelled' AND attempt = 1`).Scan(&n) == nil && n == 1
	})
	var failure string
	if err := e.pool.QueryRow(context.Background(), `SELECT failure FROM pending_installs WHERE failed_time IS NOT NULL`).Scan(&failure); err != nil || !strings.Contains(failure, install.PersonalName) {
		t.Fatalf("the address's failure: %q %v, want one naming the script", failure, err)
	}
	if got := metrics.Sum(t, "mailplane.filters.installs"); got != 1 {
		t.Errorf("%d installs counted, want the refused one", got)
	}
	if n, err := e.svc.ReinstallPending(context.Background()); err != nil || n != 0 {
		t.Errorf("the sweep queued %d (%v), want none: the failure is not retried", n, err)
	}
	if st := e.installState(addr); st.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_FAILED || st.GetPendingSince() == nil {
		t.Errorf("after the refusal: %v since %v, want FAILED", st.GetInstallState(), st.GetPendingSince())
	}
	compiler.set(false)
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: invoiceRule()}); err != nil {
		t.Fatal(err)
	}
	e.nothingPending()
	deliverTo(t, m, "bert@example.test", "bob@outside.example", "invoice one", "")
	if mailbox, _ := placed(t, m, "bert@example.test", "invoice one"); mailbox != "Invoices" {
		t.Errorf("invoice in %s once the change after the failure was installed", mailbox)
	}

	// Refused again; then a batch of settings for the whole mail service
	// (the ad filter off) is the next change, and it is installed too.
	compiler.set(true)
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings", SpamFolder: "Junk"}}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the address failed again", func() bool {
		var n int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs WHERE failed_time IS NOT NULL`).Scan(&n) == nil && n == 1
	})
	compiler.set(false)
	if _, err := e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AdFilter: proto.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	e.nothingPending()
}
