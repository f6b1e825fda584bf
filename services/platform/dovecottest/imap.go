package dovecottest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MailConfig is how StartMail runs deploy/mail/dovecot's configuration.
type MailConfig struct {
	// Deploy is the path of deploy/mail/dovecot from the test's package.
	Deploy string
	// Password opens every address (a static passdb).
	Password string
	// Masters are master users and their passwords, written to the
	// deployed mailplane-masters file.
	Masters map[string]string
	// Edit, if set, changes the deployed 90-mailplane-sieve.conf (paths
	// already moved into the instance) before Dovecot starts.
	Edit func(string) string
}

// StartMail starts d with LMTP and ManageSieve and deploy/mail/dovecot's
// conf.d/90-mailplane-sieve.conf, its paths moved into the instance, every
// address's home in Vmail (a static userdb: no database), every address
// opened by c.Password, and the master users of c.Masters. Auto-replies go
// to 127.0.0.1:9 (nowhere): a test of them uses its own relay through Edit.
// It returns the configuration it started, for a restart with Start.
func (d *Dovecot) StartMail(t testing.TB, c MailConfig) string {
	t.Helper()
	d.LMTP, d.Sieve = true, true
	deployed, err := os.ReadFile(filepath.Join(c.Deploy, "conf.d", "90-mailplane-sieve.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"sieve", "sieve-pipe"} {
		if err := os.Mkdir(filepath.Join(d.Dir, dir), 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(d.Dir, dir), 0o777) // past the umask: the mail user writes .svbin
	}
	for _, name := range []string{"report-spam.sieve", "report-ham.sieve"} {
		b, err := os.ReadFile(filepath.Join(c.Deploy, "sieve", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.Dir, "sieve", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "sieve-pipe", "mailplane-report"), []byte("#!/bin/sh\ncat >/dev/null\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var masters strings.Builder
	for u, p := range c.Masters {
		if strings.ContainsAny(u+p, ":\n") {
			t.Fatal(errors.New("a master user or password holds ':' or a newline"))
		}
		fmt.Fprintf(&masters, "%s:{PLAIN}%s\n", u, p)
	}
	if err := os.WriteFile(filepath.Join(d.Dir, "mailplane-masters"), []byte(masters.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer(
		"/etc/dovecot/", d.Dir+"/",
		"submission_host = 127.0.0.1:25", "submission_host = 127.0.0.1:9",
	).Replace(string(deployed))
	if c.Edit != nil {
		conf = c.Edit(conf)
	}
	// Debian's 10-mail.conf makes the inbox namespace, which the deployed
	// file adds the Spam folder to.
	// auth_username_chars as 90-mailplane-auth.conf has it: any local part.
	conf = "namespace inbox {\n  inbox = yes\n}\n" + conf + `
postmaster_address = postmaster@example.org
auth_username_chars =
passdb {
  driver = static
  args = password=` + c.Password + `
}
userdb {
  driver = static
  args = home=` + d.Vmail + `/%u
}
`
	d.Start(t, conf)
	return conf
}
