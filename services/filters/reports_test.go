package filters_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	"github.com/mailplane/mailplane/services/filters/filtersreport"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"google.golang.org/protobuf/proto"
)

// reportEnv makes this test binary `mailplane report` when Dovecot runs
// it through the deployed wrapper (TestSpamReportsFromDovecot).
const reportEnv = "MAILPLANE_FILTERS_TEST_REPORT"

func TestMain(m *testing.M) {
	if os.Getenv(reportEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "report" {
		if err := filtersreport.Command(context.Background(), os.Args[2:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// reportDovecot starts a Dovecot configured with the deployed
// 90-mailplane-sieve.conf, its report scripts and its mailplane-report
// wrapper, which runs this test binary as `mailplane report` against
// reportTo. It returns the Dovecot and the wrapper's path.
func reportDovecot(t *testing.T, reportTo string) (*dovecottest.Dovecot, string) {
	t.Helper()
	d := dovecottest.New(t)
	d.LMTP, d.Sieve = true, true
	const deploy = "../../deploy/mail/dovecot/"
	for _, dir := range []string{"sieve", "sieve-pipe", "bin"} {
		if err := os.Mkdir(filepath.Join(d.Dir, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"report-spam.sieve", "report-ham.sieve"} {
		b, err := os.ReadFile(deploy + "sieve/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, "sieve", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(d.Dir, "sieve"), 0o777) // the mail user writes the .svbin files
	// The mail user runs the program: a copy of this binary it can reach.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(d.Dir, "bin", "mailplane")
	copyFile(t, self, bin)
	wrapper := filepath.Join(d.Dir, "sieve-pipe", "mailplane-report")
	writeWrapper(t, wrapper, bin, reportTo, "5s")
	deployed, err := os.ReadFile(deploy + "conf.d/90-mailplane-sieve.conf")
	if err != nil {
		t.Fatal(err)
	}
	conf := "namespace inbox {\n  inbox = yes\n}\n" + strings.ReplaceAll(string(deployed), "/etc/dovecot/", d.Dir+"/") + `
postmaster_address = postmaster@example.org
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = home=` + d.Vmail + `/%u
}
`
	if raceEnabled {
		// The race detector's runtime reserves far more address space
		// than the deployed limit leaves; a plain build runs under it.
		conf += "service imap {\n  vsz_limit = 0\n}\n"
	}
	d.Start(t, conf)
	return d, wrapper
}

// writeWrapper writes the deployed mailplane-report with this test's
// binary, listener and timeout.
func writeWrapper(t *testing.T, path, bin, reportTo, timeout string) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/mail/dovecot/sieve-pipe/mailplane-report")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"exec /usr/local/bin/mailplane", reportEnv+"=1 exec "+bin,
		"mailplane-filters-reports:9105", reportTo,
		"--report-timeout=5s", "--report-timeout="+timeout,
	).Replace(string(b))
	if s == string(b) || !strings.Contains(s, bin) || !strings.Contains(s, reportTo) {
		t.Fatalf("the deployed wrapper changed shape:\n%s", b)
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// spamReports are the SpamReported events recorded so far, in order.
func (e *env) spamReports() []*filtersv1.SpamReported {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM outbox WHERE subject LIKE '%' || $1 ORDER BY seq`, filtersevents.SpamReportRecorded)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []*filtersv1.SpamReported
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			e.t.Fatal(err)
		}
		var ev filtersv1.SpamReported
		if err := proto.Unmarshal(b, &ev); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, &ev)
	}
	return out
}

// TestSpamReportsFromDovecot: a real Dovecot with the deployed
// configuration runs the deployed wrapper and `mailplane report` when a
// message is moved into Spam over IMAP (a spam report), out of it (a
// not-spam report) or appended to it (spam); the service records each
// with its event, without the body. Past the hourly cap, with the
// service answering nothing, or with it gone, the IMAP move still
// succeeds.
func TestSpamReportsFromDovecot(t *testing.T) {
	e := start(t, true)
	addr := e.announce(mailboxesevents.AddressCreated, "", "alice")
	e.known(addr)
	const alice = "alice@example.test"
	d, wrapper := reportDovecot(t, e.svc.ReportAddr())

	msg := "From: Eve <eve@example.net>\r\nTo: " + alice + "\r\nSubject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from Eve\r\n" +
		"Message-ID: <one@example.net>\r\nX-Spam-Status: No, score=1.2\r\nX-Rspamd-Score: 1.2\r\n\r\nsecret body\r\n"
	if answers, err := d.Deliver("eve@example.net", []string{alice}, msg); err != nil || len(answers) != 1 || !strings.HasPrefix(answers[0], "250") {
		t.Fatalf("deliver: %q %v", answers, err)
	}
	conn, c, err := d.Session(alice, "secret")
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
	appendSpam := func(tag, subject string) {
		t.Helper()
		m := "From: x@example.net\r\nSubject: " + subject + "\r\nMessage-ID: <" + tag + "@example.net>\r\n\r\nbuy\r\n"
		if err := c.PrintfLine("%s APPEND Spam {%d}", tag, len(m)); err != nil {
			t.Fatal(err)
		}
		if line, err := c.ReadLine(); err != nil || !strings.HasPrefix(line, "+") {
			t.Fatalf("APPEND: %q %v", line, err)
		}
		if _, err := io.WriteString(conn, m+"\r\n"); err != nil {
			t.Fatal(err)
		}
		for {
			line, err := c.ReadLine()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(line, tag+" ") {
				if !strings.HasPrefix(line, tag+" OK") {
					t.Fatalf("APPEND: %q", line)
				}
				return
			}
		}
	}
	verdicts := func() []string {
		var out []string
		for _, r := range e.spamReports() {
			out = append(out, r.GetVerdict().String()+" "+r.GetMessageId())
		}
		return out
	}
	// Each report is recorded before the IMAP command answers (the pipe
	// runs within it).
	run("b1 MOVE 1 Spam")
	run("b2 SELECT Spam")
	run("b3 MOVE 1 INBOX")
	appendSpam("b4", "offer")
	want := []string{"SPAM_VERDICT_SPAM <one@example.net>", "SPAM_VERDICT_HAM <one@example.net>", "SPAM_VERDICT_SPAM <b4@example.net>"}
	if got := verdicts(); !slices.Equal(got, want) {
		t.Fatalf("reports %q, want %q", got, want)
	}
	first := e.spamReports()[0]
	if first.GetAddress() != addr || first.GetLogin() != alice || first.GetSubject() != "Grüße from Eve" || first.GetFrom() != "Eve <eve@example.net>" ||
		len(first.GetSha256()) != 64 || first.GetSizeBytes() < int64(len(msg)) || first.GetReportTime() == nil || first.GetId() == "" {
		t.Errorf("report %v", first)
	}
	var headers []string
	for _, h := range first.GetSpamHeaders() {
		headers = append(headers, h.GetName()+": "+h.GetValue())
	}
	if want := []string{"X-Spam-Status: No, score=1.2", "X-Rspamd-Score: 1.2"}; !slices.Equal(headers, want) {
		t.Errorf("spam headers %q, want %q", headers, want)
	}
	if ham := e.spamReports()[1]; ham.GetSha256() != first.GetSha256() {
		t.Errorf("the same message hashed %s, then %s", first.GetSha256(), ham.GetSha256())
	}
	var rows int
	var bodies bool
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*), bool_or(to_jsonb(r)::text LIKE '%secret body%') FROM spam_reports r`).Scan(&rows, &bodies); err != nil || rows != 3 || bodies {
		t.Errorf("spam_reports: %d rows, a body kept: %v (%v)", rows, bodies, err)
	}

	// Past the cap (3 an hour here): moved, not recorded.
	run("b5 SELECT INBOX")
	run("b6 MOVE 1 Spam")
	if got := verdicts(); len(got) != 3 {
		t.Errorf("past the cap: %q", got)
	}

	// A service that accepts and never answers, then one that is gone:
	// the moves succeed all the same.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	bin := filepath.Join(d.Dir, "bin", "mailplane")
	writeWrapper(t, wrapper, bin, hung.Addr().String(), "1s")
	run("b7 SELECT Spam")
	run("b8 MOVE 1 INBOX")
	hung.Close()
	writeWrapper(t, wrapper, bin, hung.Addr().String(), "1s")
	run("b9 MOVE 1 INBOX")
	run("b10 LOGOUT")
	if got := verdicts(); len(got) != 3 {
		t.Errorf("with the service hung or gone: %q", got)
	}
	for _, s := range []string{"from Eve", "offer"} {
		found, err := d.Find(alice, "secret", s)
		if err != nil || len(found) != 1 || found[0].Mailbox != "INBOX" {
			t.Errorf("%s: %v %v", s, found, err)
		}
	}
}

// TestSpamReportRefusals: the report listener answers 400 naming the
// field of a bad report, 404 for an address it does not know, and
// records neither.
func TestSpamReportRefusals(t *testing.T) {
	e := start(t, true)
	addr := e.announce(mailboxesevents.AddressCreated, "", "bob")
	e.known(addr)
	post := func(body string) (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+e.svc.ReportAddr()+filtersreport.Path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	hash := strings.Repeat("ab", 32)
	for _, c := range []struct {
		body string
		code int
		says string
	}{
		{`{"login":"bob@example.test","verdict":"maybe","sha256":"` + hash + `"}`, 400, "verdict"},
		{`{"login":"bob@example.test","verdict":"spam","sha256":"` + hash + `","subject":"` + strings.Repeat("x", 1000) + `"}`, 400, "subject"},
		{`{"login":"bob@example.test","verdict":"spam","sha256":"` + hash + `","body":"x"}`, 400, "body"},
		{`not json`, 400, "body"},
		{`{"login":"nobody@example.test","verdict":"spam","sha256":"` + hash + `"}`, 404, "nobody@example.test"},
		{`{"login":"BOB@example.test","verdict":"ham","sha256":"` + hash + `"}`, 204, ""},
	} {
		code, says := post(c.body)
		if code != c.code || !strings.Contains(says, c.says) {
			t.Errorf("%.60s: %d %q, want %d naming %s", c.body, code, says, c.code, c.says)
		}
	}
	if got := e.spamReports(); len(got) != 1 || got[0].GetLogin() != "bob@example.test" || got[0].GetVerdict() != filtersv1.SpamVerdict_SPAM_VERDICT_HAM {
		t.Errorf("recorded %v", got)
	}
}
