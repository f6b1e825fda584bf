package sieve_test

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/sieve"
)

// sieveTest runs script in Pigeonhole's sieve-test (Debian: dovecot-sieve)
// on a mail from bob to anna with the extra header lines, and returns what
// it says it would do. Without sieve-test the test is skipped, except in
// CI, which must run it.
func sieveTest(t *testing.T, script, headers string) string {
	t.Helper()
	bin, err := exec.LookPath("sieve-test")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sieve-test is not installed; CI needs it (apt-get install dovecot-sieve)")
		}
		t.Skip("sieve-test is not installed (apt-get install dovecot-sieve)")
	}
	dir := sieveDir(t)
	mail := "From: bob@other.example\nTo: anna@example.com\nSubject: Hello\n" + headers +
		"Message-ID: <" + uuid.NewString() + "@other.example>\n\nHi Anna\n"
	for name, text := range map[string]string{"script.sieve": script, "mail.eml": mail} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"), "-C", "-f", "bob@other.example", "-r", "anna@example.com",
		filepath.Join(dir, "script.sieve"), filepath.Join(dir, "mail.eml"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sieve-test: %v\n%s%s\nscript:\n%s", err, stdout.String(), stderr.String(), script)
	}
	return strings.ReplaceAll(stdout.String(), "\r\n", "\n")
}

// sieveDir is a directory for sieve-test, which drops root privileges to
// the mail user: it must reach and write the directory.
func sieveDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mailplane-sieve-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Debian's dovecot package creates this user; uid 0 may not own mail.
		if u, err = user.Lookup("dovecot"); err != nil {
			t.Skipf("sieve-test runs as root and needs the dovecot user: %v", err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	conf := "mail_uid = " + u.Uid + "\nmail_gid = " + u.Gid + "\nfirst_valid_uid = " + u.Uid + "\nfirst_valid_gid = " + u.Gid +
		"\nmail_location = maildir:" + filepath.Join(dir, "Maildir") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestQuoteInPigeonhole has Pigeonhole compare a header with quoted
// strings holding what could break out of them: each compiles, and
// matches the header holding the same text, and only it.
func TestQuoteInPigeonhole(t *testing.T) {
	for _, value := range []string{`"`, `\`, `\"`, `a\`, `"; discard; "`, `\\"\\`, "tab\tin it", "text:"} {
		q, err := sieve.Quote(value)
		if err != nil {
			t.Fatal(err)
		}
		script := `if header :is "x-test" ` + q + " { discard; }\n"
		if out := sieveTest(t, script, "X-Test: "+value+"\n"); !strings.Contains(out, "discard") {
			t.Errorf("header %q: not matched by %s:\n%s", value, q, out)
		}
		if out := sieveTest(t, script, "X-Test: "+value+"x\n"); strings.Contains(out, "discard") {
			t.Errorf("header %q: matched by %s:\n%s", value+"x", q, out)
		}
	}
}

// TestVacationInPigeonhole runs vacation scripts in Pigeonhole: they
// compile, answer within their dates only, and the answer is the message as
// written.
func TestVacationInPigeonhole(t *testing.T) {
	now := time.Now()
	const subject = `Away "now" \o/ ✈`
	const message = "I am away.\n.\n..\ntext:\n;\nSay \"hi\" \\ later.\n"
	for _, tt := range []struct {
		name   string
		v      sieve.Vacation
		render time.Time
		answer bool
	}{
		{"no dates", sieve.Vacation{Subject: subject, Message: message, Days: 3}, now, true},
		{"within the dates", sieve.Vacation{Subject: subject, Message: message, Start: now.Add(-time.Hour), End: now.Add(time.Hour), Days: 3}, now, true},
		{"before the start", sieve.Vacation{Subject: subject, Message: message, Start: now.Add(time.Hour), Days: 3}, now, false},
		// Rendered earlier: the mail server's clock decides.
		{"after the end", sieve.Vacation{Subject: subject, Message: message, End: now.Add(-time.Minute), Days: 3}, now.Add(-time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			script, err := tt.v.Script(tt.render)
			if err != nil {
				t.Fatal(err)
			}
			out := sieveTest(t, script, "")
			if got := strings.Contains(out, "send vacation message"); got != tt.answer {
				t.Fatalf("answered %v, want %v:\n%s", got, tt.answer, out)
			}
			if !tt.answer {
				return
			}
			for _, want := range []string{
				"=> seconds : " + strconv.Itoa(3*24*3600),
				"=> subject : " + subject,
				"START MESSAGE\n" + message + "\nEND MESSAGE",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in\n%s", want, out)
				}
			}
		})
	}
}
