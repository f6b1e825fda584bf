// Package postfixtest runs a private Postfix instance for tests: its own
// configuration, queue and log in a temporary directory, SMTP on a
// loopback port, configured with deploy/mail/postfix/main.cf.fragment as
// shipped. Postfix starts only as root.
package postfixtest

import (
	"context"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Require returns the path of postfix, which Debian installs in /usr/sbin.
// It skips the test when Postfix is missing (fails it under CI=true, which
// installs Postfix) or when the test does not run as root.
func Require(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("postfix")
	if err != nil {
		path, err = exec.LookPath("/usr/sbin/postfix")
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("postfix not found; CI needs it (apt-get install postfix)")
		}
		t.Skip("postfix not found (apt-get install postfix)")
	}
	if os.Geteuid() != 0 {
		t.Skip("postfix start needs root")
	}
	return path
}

// Fragment returns deploy/mail/postfix/main.cf.fragment with the mailboxes
// service's socketmap, policy and milter at the given addresses, and
// virtual_transport (Dovecot's LMTP) replaced by store, a Postfix transport
// such as "lmtp:inet:127.0.0.1:2424".
func Fragment(t testing.TB, socketmap, policy, milter, store string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "deploy", "mail", "postfix", "main.cf.fragment"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range []struct{ from, to string }{
		{"127.0.0.1:9101", socketmap}, {"127.0.0.1:9102", policy}, {"127.0.0.1:9103", milter},
		{"virtual_transport = lmtp:unix:private/dovecot-lmtp", "virtual_transport = " + store},
	} {
		if !strings.Contains(conf, r.from) {
			t.Fatalf("main.cf.fragment has no %q", r.from)
		}
		conf = strings.ReplaceAll(conf, r.from, r.to)
	}
	return conf
}

// Instance is a running Postfix.
type Instance struct {
	// Addr is its SMTP server's address (port 25's smtpd: no AUTH).
	Addr string
	// Submission is its submission port's address when Options.SASL was
	// given: SMTP AUTH through Dovecot, authenticated clients only.
	Submission string
	dir        string
}

// Options are what an instance may add to the fragment's settings.
type Options struct {
	// Addr is the SMTP server's address (port 25's); empty: a free
	// loopback port. Set it to tell Dovecot (submission_host) before
	// Postfix starts.
	Addr string
	// SASL is the address of Dovecot's auth listener (dovecottest's
	// SASLAddr): the fragment's smtpd_sasl_path becomes inet:SASL, and a
	// submission port takes SMTP AUTH, as master.cf's submission service
	// does in production (without TLS: on loopback, Postfix offers AUTH
	// in the clear and Go's net/smtp accepts it).
	SASL string
}

// Log returns what Postfix logged so far.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(filepath.Join(in.dir, "maillog"))
	return string(b)
}

// Start starts a Postfix instance with conf appended to its main.cf and
// stops it when the test ends, logging Postfix's log if the test failed or
// runs verbose. It is the final destination of nothing but conf's virtual
// domains; address verification polls every second (not 3) to keep tests
// short.
func Start(t testing.TB, conf string) *Instance {
	t.Helper()
	return StartOptions(t, conf, Options{})
}

// StartOptions is Start with opts.
func StartOptions(t testing.TB, conf string, opts Options) *Instance {
	t.Helper()
	postfix := Require(t)
	if opts.SASL != "" {
		const path = "smtpd_sasl_path = private/auth"
		if !strings.Contains(conf, path) {
			t.Fatalf("postfixtest: the configuration has no %q to point at %s", path, opts.SASL)
		}
		conf = strings.ReplaceAll(conf, path, "smtpd_sasl_path = inet:"+opts.SASL)
	}
	// Postfix's processes, running as the postfix user, need to reach the
	// queue: not a t.TempDir, which is private to root.
	dir, err := os.MkdirTemp("", "mailplane-postfix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The master takes its lock in data_directory, which must be the
	// postfix user's; postfix start makes the queue's subdirectories.
	if err := os.Mkdir(filepath.Join(dir, "queue"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	addr := opts.Addr
	if addr == "" {
		addr = freeport.Addr(t)
	}
	main := `compatibility_level = 3.6
queue_directory = ` + dir + `/queue
data_directory = ` + dir + `/data
maillog_file = ` + dir + `/maillog
maillog_file_prefixes = ` + dir + `
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.mailplane.test
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
smtpd_peername_lookup = no
address_verify_poll_delay = 1s
`
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte(main+conf), 0o644); err != nil {
		t.Fatal(err)
	}
	master, err := os.ReadFile("/etc/postfix/master.cf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), master, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	postconf := filepath.Join(filepath.Dir(postfix), "postconf")
	// No chroot (the queue directory holds no copy of /etc), no SMTP on
	// port 25, and the test's port instead.
	run(postconf, "-c", dir, "-F", "*/*/chroot = n")
	run(postconf, "-c", dir, "-M#", "smtp/inet")
	run(postconf, "-c", dir, "-Me", addr+"/inet = "+addr+" inet n - n - - smtpd")
	in := &Instance{Addr: addr, dir: dir}
	if opts.SASL != "" {
		// Debian's commented-out submission entry, but TLS.
		in.Submission = freeport.Addr(t)
		run(postconf, "-c", dir, "-Me", in.Submission+"/inet = "+in.Submission+" inet n - n - - smtpd"+
			" -o syslog_name=postfix/submission -o smtpd_sasl_auth_enable=yes"+
			" -o smtpd_client_restrictions=permit_sasl_authenticated,reject")
	}
	run(postfix, "-c", dir, "start")
	t.Cleanup(func() {
		exec.Command(postfix, "-c", dir, "stop").Run()
		// Stop only signals the master: wait until it is gone before the
		// directory goes (status fails once it is).
		for range 100 {
			if exec.Command(postfix, "-c", dir, "status").Run() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("Postfix's log:\n%s", in.Log())
		}
	})
	// The master opens the SMTP ports a moment after start returns.
	for _, a := range []string{addr, in.Submission} {
		if a == "" {
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := net.Dial("tcp", a)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Postfix does not listen on %s: %v", a, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return in
}
