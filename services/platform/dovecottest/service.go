package dovecottest

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/smtptest"
)

// The mail store's logins in a Mail: every address opens with
// UserPassword; the master users (deploy/mail's mailplane-masters.%s)
// with theirs: the filters service's two, the imports service's one.
const (
	UserPassword     = "user-password"
	PersonalMaster   = "mailplane-personal"
	PersonalSecret   = "personal-secret"
	PlatformMaster   = "mailplane-platform"
	PlatformSecret   = "platform-secret"
	ImportsMaster    = "mailplane-imports"
	ImportsSecret    = "imports-secret"
	deployedSieveDir = "deploy/mail/dovecot"
)

// Mail is a Dovecot as deploy/mail/dovecot configures it for Sieve:
// LMTP, ManageSieve, the platform's and the address's own Sieve storages
// told apart by the master user, the spam reports' scripts, auto-replies
// to Relay.
type Mail struct {
	*Dovecot
	// Conf is the configuration after the base one: Start(t, m.Conf)
	// runs the instance again after Stop.
	Conf string
	// Relay gets the auto-replies (submission_host).
	Relay *smtptest.Server
	// Reports is where the spam-report program writes one file per report
	// ("spam|ham <address>").
	Reports string
}

// StartMail runs a Mail with edit (nil: none) applied to the deployed
// 90-mailplane-sieve.conf first. Every address exists, with password
// UserPassword and its home in Vmail/<address>. The userdb is a pgsql
// query of the same shape as mailplane-sql.conf.ext's (its sieve and
// imapsieve_mailbox1_name fields for master users; keep them alike), so the test
// skips without MAILPLANE_TEST_DATABASE_URL (fails under CI=true).
func StartMail(t testing.TB, edit func(conf string) string) *Mail {
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
	d := New(t)
	d.LMTP, d.Sieve = true, true
	m := &Mail{Dovecot: d, Relay: smtptest.StartRelay(t), Reports: filepath.Join(d.Dir, "reports")}
	conf := m.sieveConf(t, m.Relay.Addr)
	sqlConf := "driver = pgsql\nconnect = " + PGConnect(pgc) + "\n" +
		`user_query = SELECT '` + d.Vmail + `/' || '%u' AS home, ` +
		`CASE WHEN '%{master_user}' = '` + PlatformMaster + `' THEN 'file:~/sieve-platform' END AS sieve, ` +
		`CASE WHEN '%{master_user}' <> '' THEN '' END AS imapsieve_mailbox1_name` + "\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "sql.conf.ext"), []byte(sqlConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		conf = edit(conf)
	}
	// Debian's 10-mail.conf makes the inbox namespace, which the deployed
	// file adds the Spam folder to.
	m.Conf = "namespace inbox {\n  inbox = yes\n}\n" + conf + `
postmaster_address = postmaster@example.org
# As 90-mailplane-auth.conf: any local part ("a*b", "o'neil") is a login.
auth_username_chars =
passdb {
  driver = static
  args = password=` + UserPassword + `
}
userdb {
  driver = sql
  args = ` + d.Dir + `/sql.conf.ext
}
`
	d.Start(t, m.Conf)
	return m
}

// sieveConf prepares what deploy/mail/dovecot's 90-mailplane-sieve.conf
// reads (the report scripts and their pipe, the master users' files) in
// m's directory and returns the file's text pointing there, with
// auto-replies submitted to submission (host:port).
func (m *Mail) sieveConf(t testing.TB, submission string) string {
	t.Helper()
	d := m.Dovecot
	deploy := findDeploy(t)
	deployed, err := os.ReadFile(filepath.Join(deploy, "conf.d", "90-mailplane-sieve.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"sieve", "sieve-pipe", "reports"} {
		if err := os.Mkdir(filepath.Join(d.Dir, dir), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(d.Dir, dir), 0o777) // past the umask: the mail user writes .svbin and reports
	}
	for _, name := range []string{"report-spam.sieve", "report-ham.sieve"} {
		b, err := os.ReadFile(filepath.Join(deploy, "sieve", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, "sieve", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report := "#!/bin/sh\ncat >/dev/null\necho \"$*\" > " + m.Reports + "/$(date +%s%N).$$\n"
	if err := os.WriteFile(filepath.Join(d.Dir, "sieve-pipe", "mailplane-report"), []byte(report), 0o755); err != nil {
		t.Fatal(err)
	}
	WriteMasters(t, d.Dir)
	const host = "submission_host = 127.0.0.1:25"
	if !strings.Contains(string(deployed), host) {
		t.Fatalf("90-mailplane-sieve.conf has no %q", host)
	}
	return strings.NewReplacer(
		"/etc/dovecot/", d.Dir+"/",
		host, "submission_host = "+submission,
	).Replace(string(deployed))
}

// WriteMasters writes the master users' passwd-files into dir as
// deploy/mail/dovecot has them, one per service: the filters' masters open
// IMAP and ManageSieve, the imports' master IMAP only, none anything else.
func WriteMasters(t testing.TB, dir string) {
	t.Helper()
	filters := PersonalMaster + ":{PLAIN}" + PersonalSecret + "\n" + PlatformMaster + ":{PLAIN}" + PlatformSecret + "\n"
	for service, lines := range map[string]string{
		"imap":  filters + ImportsMaster + ":{PLAIN}" + ImportsSecret + "\n",
		"sieve": filters,
	} {
		if err := os.WriteFile(filepath.Join(dir, "mailplane-masters."+service), []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Restart starts the instance again after Stop, with its configuration.
func (m *Mail) Restart(t testing.TB) {
	t.Helper()
	m.Start(t, m.Conf)
}

// SieveFile returns the text of address's stored script: storage "sieve"
// (the address's own) or "sieve-platform", name without ".sieve"; ok is
// false when there is none.
func (m *Mail) SieveFile(t testing.TB, address, storage, name string) (text string, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.Vmail, address, storage, name+".sieve"))
	if os.IsNotExist(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

// findDeploy returns deploy/mail/dovecot from the test's directory or the
// nearest parent that has it.
func findDeploy(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, deployedSieveDir)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no %s above the test's directory", deployedSieveDir)
		}
		dir = parent
	}
}

// ManageSieve logs in to the ManageSieve port as user (SASL PLAIN, no
// authorization id: the address's own login, as a customer's Sieve client
// does), sends each command (a PUTSCRIPT's script as a literal: see
// PutScript) and returns each one's answer: its lines, and its final
// "OK ..." or "NO ...".
func (d *Dovecot) ManageSieve(user, password string, cmds ...string) ([][]string, error) {
	return d.ManageSieveAs("", user, password, cmds...)
}

// ManageSieveAs is ManageSieve with as the authorization id (as a master
// user logs in for an address; "": user's own login).
func (d *Dovecot) ManageSieveAs(as, user, password string, cmds ...string) ([][]string, error) {
	n := d.clients.Add(1) + 1 // a loopback address of its own: see clients
	dialer := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	conn, err := dialer.Dial("tcp", d.SieveAddr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(conn)
	if _, err := sieveResponse(r); err != nil {
		return nil, fmt.Errorf("greeting: %w", err)
	}
	plain := base64.StdEncoding.EncodeToString([]byte(as + "\x00" + user + "\x00" + password))
	auth, err := sieveCommand(conn, r, `AUTHENTICATE "PLAIN" "`+plain+`"`)
	if err != nil {
		return nil, err
	}
	if last := auth[len(auth)-1]; !strings.HasPrefix(last, "OK") {
		return nil, fmt.Errorf("log in as %s: %s", user, last)
	}
	var answers [][]string
	for _, cmd := range cmds {
		a, err := sieveCommand(conn, r, cmd)
		if err != nil {
			return answers, fmt.Errorf("%s: %w", cmd, err)
		}
		answers = append(answers, a)
	}
	sieveCommand(conn, r, "LOGOUT")
	return answers, nil
}

// PutScript is the ManageSieve command storing script as name.
func PutScript(name, script string) string {
	script = strings.ReplaceAll(strings.ReplaceAll(script, "\r\n", "\n"), "\n", "\r\n")
	return fmt.Sprintf("PUTSCRIPT %s {%d+}\r\n%s", Quote(name), len(script), script)
}

func sieveCommand(w io.Writer, r *bufio.Reader, cmd string) ([]string, error) {
	if _, err := io.WriteString(w, cmd+"\r\n"); err != nil {
		return nil, err
	}
	return sieveResponse(r)
}

// sieveResponse reads lines up to OK, NO or BYE, that one included;
// literals ({n}) are read into their line.
func sieveResponse(r *bufio.Reader) ([]string, error) {
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return lines, err
		}
		line = strings.TrimRight(line, "\r\n")
		if i := strings.LastIndexByte(line, '{'); i >= 0 && strings.HasSuffix(line, "}") {
			if n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+")); err == nil && n >= 0 && n < 1<<20 {
				lit := make([]byte, n)
				if _, err := io.ReadFull(r, lit); err != nil {
					return lines, err
				}
				line = line[:i] + string(lit)
			}
		}
		lines = append(lines, line)
		word, _, _ := strings.Cut(line, " ")
		switch strings.ToUpper(word) {
		case "OK", "NO", "BYE":
			return lines, nil
		}
	}
}
