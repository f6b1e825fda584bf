package rules_test

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pigeonhole finds a Pigeonhole tool (Debian: dovecot-sieve); without it
// the test is skipped, except in CI, which must run it.
func pigeonhole(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; CI needs it (apt-get install dovecot-sieve)", name)
		}
		t.Skipf("%s is not installed (apt-get install dovecot-sieve)", name)
	}
	return bin
}

// sievec compiles script with Pigeonhole's compiler, editheader enabled as
// the platform's Dovecot has it, and fails the test when it does not.
func sievec(t testing.TB, script string) {
	t.Helper()
	bin := pigeonhole(t, "sievec")
	dir := sieveDir(t)
	file := filepath.Join(dir, "script.sieve")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"), "-x", "+editheader", file, filepath.Join(dir, "script.svbin"))
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sievec: %v\n%s\nscript:\n%s", err, out, script)
	}
}

// sieveTest runs the scripts in sieve-test on mail (CRLF or LF lines),
// before scripts first as sieve_before does, executing their actions
// (-e: stored in a maildir under dir, outgoing mail printed, and the
// checks only execution makes, like vacation not answering automatic
// mail), and returns its log and dir.
func sieveTest(t testing.TB, mail string, before []string, script string) (log, dir string) {
	t.Helper()
	bin := pigeonhole(t, "sieve-test")
	dir = sieveDir(t)
	args := []string{"-e", "-c", filepath.Join(dir, "dovecot.conf"), "-x", "+editheader", "-f", "sender@other.example", "-r", "anna@example.com"}
	for i, s := range before {
		f := filepath.Join(dir, "before"+strconv.Itoa(i)+".sieve")
		if err := os.WriteFile(f, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-s", f)
	}
	for name, text := range map[string]string{"script.sieve": script, "mail.eml": mail} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args = append(args, filepath.Join(dir, "script.sieve"), filepath.Join(dir, "mail.eml"))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A script failing at run time (conflicting actions) exits 1 and keeps
	// the message: the callers check for that outcome.
	if err := cmd.Run(); err != nil && !strings.Contains(stderr.String(), "final result: failed; resolved with successful implicit keep") {
		t.Fatalf("sieve-test: %v\n%s%s\nscript:\n%s", err, stdout.String(), stderr.String(), script)
	}
	return strings.ReplaceAll(stdout.String()+stderr.String(), "\r\n", "\n"), dir
}

// sieveDir is a directory for Pigeonhole's tools, which drop root
// privileges to the mail user: it must reach and write the directory.
func sieveDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "mailplane-rules-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if u, err = user.Lookup("dovecot"); err != nil {
			t.Skipf("Pigeonhole runs as root and needs the dovecot user: %v", err)
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
		"\nmail_location = maildir:" + filepath.Join(dir, "Maildir") + ":LAYOUT=fs\n" +
		// The platform's folders have "/" between levels.
		"namespace inbox {\n  inbox = yes\n  separator = /\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
