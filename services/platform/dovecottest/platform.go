package dovecottest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5"
)

// StartPlatform runs a Dovecot as deploy/mail/dovecot configures the
// platform's, nothing stood in: 90-mailplane-auth.conf (logins with device
// passwords through mailboxes.dovecot_login, homes by mail service and
// address, mailplane-sql.conf.ext) over db, the mailboxes service's
// database; 90-mailplane-sieve.conf (Sieve on LMTP delivery, ManageSieve,
// the master users WriteMasters writes, spam reports to m.Reports) with
// auto-replies submitted to submission (host:port: the MTA, as port 25 is
// in production); and the auth service on loopback for the MTA's SASL
// (SASLAddr). Only the files' paths, the connect line and the /srv/vmail/
// prefix are changed. m.Relay is nil.
func StartPlatform(t testing.TB, db *pgx.ConnConfig, submission string) *Mail {
	t.Helper()
	d := New(t)
	d.LMTP, d.Sieve, d.SASL = true, true, true
	m := &Mail{Dovecot: d, Reports: filepath.Join(d.Dir, "reports")}
	sieve := m.sieveConf(t, submission)
	deploy := findDeploy(t)
	connect := "connect = " + PGConnect(db)
	sqlConf := filepath.Join(d.Dir, "mailplane-sql.conf.ext")
	copyConf(t, filepath.Join(deploy, "mailplane-sql.conf.ext"), sqlConf,
		edit{regexp.MustCompile(`(?m)^connect = .*$`), connect},
		edit{regexp.MustCompile(`'/srv/vmail/'`), "'" + d.Vmail + "/'"})
	auth := filepath.Join(d.Dir, "90-mailplane-auth.conf")
	copyConf(t, filepath.Join(deploy, "conf.d", "90-mailplane-auth.conf"), auth,
		edit{regexp.MustCompile(regexp.QuoteMeta("/etc/dovecot/mailplane-sql.conf.ext")), sqlConf})
	// Debian's 10-mail.conf makes the inbox namespace, which the deployed
	// file adds the Spam folder to.
	m.Conf = "namespace inbox {\n  inbox = yes\n}\n" + sieve + `
postmaster_address = postmaster@example.org
!include ` + auth + "\n"
	d.Start(t, m.Conf)
	return m
}

// edit replaces what re matches.
type edit struct {
	re   *regexp.Regexp
	with string
}

// copyConf copies the file from to to, applying edits, each of which must
// match.
func copyConf(t testing.TB, from, to string, edits ...edit) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		if !e.re.Match(b) {
			t.Fatalf("%s: nothing matches %s", from, e.re)
		}
		b = e.re.ReplaceAllLiteral(b, []byte(e.with))
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
