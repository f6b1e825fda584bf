package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
)

// Client connects to the IMAP port from a loopback address of its own (see
// Dial) and returns a go-imap client, not logged in, closed when t ends.
func (d *Dovecot) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := d.DialIMAP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Logout() })
	return c
}

// DialIMAP is Client without a test: the caller logs out.
func (d *Dovecot) DialIMAP() (*client.Client, error) {
	n := d.clients.Add(1) + 1
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(n>>8), byte(n))}}
	c, err := client.DialWithDialer(dialer, d.Addr)
	if err != nil {
		return nil, fmt.Errorf("dial imap %s: %w", d.Addr, err)
	}
	c.Timeout = time.Minute
	return c, nil
}

// Seed logs in as user and appends msgs (CRLF lines) to folder, creating
// it when missing.
func (d *Dovecot) Seed(t testing.TB, user, password, folder string, msgs ...string) {
	t.Helper()
	c := d.Client(t)
	if err := c.Login(user, password); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	if err := c.Create(folder); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create %s: %v", folder, err)
	}
	for _, m := range msgs {
		if err := c.Append(folder, nil, time.Time{}, bytes.NewBufferString(m)); err != nil {
			t.Fatalf("append to %s: %v", folder, err)
		}
	}
}

// Stored is a message as a mailbox holds it: the folder, the flags (sorted,
// without \Recent) and the Message-ID.
type Stored struct {
	Folder    string
	MessageID string
	Flags     []string
}

// Mailbox logs in as user and returns every message of every selectable
// folder, folder by folder in LIST order, by UID.
func (d *Dovecot) Mailbox(t testing.TB, user, password string) []Stored {
	t.Helper()
	c := d.Client(t)
	if err := c.Login(user, password); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	ch := make(chan *imap.MailboxInfo, 16)
	done := make(chan error, 1)
	go func() { done <- c.List("", "*", ch) }()
	var folders []string
	for mb := range ch {
		if !hasAttr(mb.Attributes, imap.NoSelectAttr) {
			folders = append(folders, mb.Name)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("list: %v", err)
	}
	var out []Stored
	for _, f := range folders {
		st, err := c.Select(f, true)
		if err != nil {
			t.Fatalf("examine %s: %v", f, err)
		}
		if st.Messages == 0 {
			continue
		}
		seq := new(imap.SeqSet)
		seq.AddRange(1, 0)
		msgs := make(chan *imap.Message, 16)
		go func() {
			done <- c.UidFetch(seq, []imap.FetchItem{imap.FetchUid, imap.FetchFlags, imap.FetchEnvelope}, msgs)
		}()
		for m := range msgs {
			var flags []string
			for _, fl := range m.Flags {
				if fl != imap.RecentFlag {
					flags = append(flags, fl)
				}
			}
			slices.Sort(flags)
			out = append(out, Stored{Folder: f, MessageID: m.Envelope.MessageId, Flags: flags})
		}
		if err := <-done; err != nil {
			t.Fatalf("fetch %s: %v", f, err)
		}
	}
	return out
}

func hasAttr(attrs []string, a string) bool {
	for _, x := range attrs {
		if strings.EqualFold(x, a) {
			return true
		}
	}
	return false
}

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
	conf = "namespace inbox {\n  inbox = yes\n}\n" + conf + `
postmaster_address = postmaster@example.org
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
