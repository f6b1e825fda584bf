package mailboxes

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

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestCheckAutoReply(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(d)) }
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	for _, tt := range []struct {
		name  string
		in    *mailboxesv1.AutoReply
		want  *AutoReply
		field string
	}{
		{"off, nothing else: the default interval", &mailboxesv1.AutoReply{}, &AutoReply{IntervalDays: 7}, ""},
		{"on with a message", &mailboxesv1.AutoReply{Enabled: true, Subject: " Away ", Message: "Back soon.\r\nAnna", IntervalDays: 3},
			&AutoReply{Enabled: true, Subject: "Away", Message: "Back soon.\nAnna", IntervalDays: 3}, ""},
		{"dates", &mailboxesv1.AutoReply{Enabled: true, Message: "x", StartTime: ts(time.Hour), EndTime: ts(48 * time.Hour)},
			&AutoReply{Enabled: true, Message: "x", StartTime: at(time.Hour), EndTime: at(48 * time.Hour), IntervalDays: 7}, ""},
		{"started in the past", &mailboxesv1.AutoReply{Enabled: true, Message: "x", StartTime: ts(-time.Hour)},
			&AutoReply{Enabled: true, Message: "x", StartTime: at(-time.Hour), IntervalDays: 7}, ""},
		{"off with an ended period", &mailboxesv1.AutoReply{Message: "x", StartTime: ts(-48 * time.Hour), EndTime: ts(-time.Hour)},
			&AutoReply{Message: "x", StartTime: at(-48 * time.Hour), EndTime: at(-time.Hour), IntervalDays: 7}, ""},
		{"30 days", &mailboxesv1.AutoReply{IntervalDays: 30}, &AutoReply{IntervalDays: 30}, ""},
		{"31 days", &mailboxesv1.AutoReply{IntervalDays: 31}, nil, "autoReply.intervalDays"},
		{"negative interval", &mailboxesv1.AutoReply{IntervalDays: -1}, nil, "autoReply.intervalDays"},
		{"on without a message", &mailboxesv1.AutoReply{Enabled: true, Message: " \n "}, nil, "autoReply.message"},
		{"201-character subject", &mailboxesv1.AutoReply{Subject: strings.Repeat("é", 201)}, nil, "autoReply.subject"},
		{"200-character subject", &mailboxesv1.AutoReply{Subject: strings.Repeat("é", 200)}, &AutoReply{Subject: strings.Repeat("é", 200), IntervalDays: 7}, ""},
		{"two-line subject", &mailboxesv1.AutoReply{Subject: "a\nBcc: x@y"}, nil, "autoReply.subject"},
		{"control character in the message", &mailboxesv1.AutoReply{Message: "a\x00b"}, nil, "autoReply.message"},
		{"10001-character message", &mailboxesv1.AutoReply{Message: strings.Repeat("a", 10001)}, nil, "autoReply.message"},
		{"end before start", &mailboxesv1.AutoReply{StartTime: ts(2 * time.Hour), EndTime: ts(time.Hour)}, nil, "autoReply.endTime"},
		{"end at start", &mailboxesv1.AutoReply{StartTime: ts(time.Hour), EndTime: ts(time.Hour)}, nil, "autoReply.endTime"},
		{"on with an ended period", &mailboxesv1.AutoReply{Enabled: true, Message: "x", EndTime: ts(-time.Minute)}, nil, "autoReply.endTime"},
		{"invalid time", &mailboxesv1.AutoReply{StartTime: &timestamppb.Timestamp{Nanos: -1}}, nil, "autoReply.startTime"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkAutoReply(tt.in, now)
			if f := fieldOf(err); f != tt.field {
				t.Fatalf("error %v on field %q, want field %q", err, f, tt.field)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// fieldOf is the field an InvalidArgument error names, "" for nil.
func fieldOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := err.(*errs.Error); ok && e.Kind == errs.InvalidArgument && len(e.Fields) > 0 {
		return e.Fields[0].Field
	}
	return "not a field error: " + err.Error()
}

func TestVacationSieve(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	const require = `require ["vacation", "date", "relational"];` + "\n\n"
	for _, tt := range []struct {
		name string
		ar   *AutoReply
		want string
	}{
		{"off", &AutoReply{Message: "Away", IntervalDays: 7}, ""},
		{"nil", nil, ""},
		{"ended", &AutoReply{Enabled: true, Message: "Away", EndTime: at("2025-07-01T12:00:00Z"), IntervalDays: 7}, ""},
		{"no dates, no subject", &AutoReply{Enabled: true, Message: "Away until Monday.", IntervalDays: 7},
			require + "vacation :days 7 text:\nAway until Monday.\n.\n;\n"},
		{"interval 0 is the default", &AutoReply{Enabled: true, Message: "Away"},
			require + "vacation :days 7 text:\nAway\n.\n;\n"},
		{"quotes and backslashes in the subject", &AutoReply{Enabled: true, Subject: `He said "hi" \o/`, Message: `Quotes "stay" \as they are`, IntervalDays: 1},
			require + `vacation :days 1 :subject "He said \"hi\" \\o/" text:` + "\n" + `Quotes "stay" \as they are` + "\n.\n;\n"},
		{"lines starting with a dot", &AutoReply{Enabled: true, Message: "Hello,\n.\n..\n.hidden\nBye.\n", IntervalDays: 30},
			require + "vacation :days 30 text:\nHello,\n..\n...\n..hidden\nBye.\n.\n;\n"},
		{"CRLF and blank lines", &AutoReply{Enabled: true, Message: "a\r\n\r\nb", IntervalDays: 7},
			require + "vacation :days 7 text:\na\n\nb\n.\n;\n"},
		{"start only", &AutoReply{Enabled: true, Message: "x", StartTime: at("2025-07-02T08:30:00+02:00"), IntervalDays: 7},
			require + `if currentdate :zone "+0000" :value "ge" "iso8601" "2025-07-02T06:30:00Z" {` + "\nvacation :days 7 text:\nx\n.\n;\n}\n"},
		{"end only", &AutoReply{Enabled: true, Message: "x", EndTime: at("2025-07-15T00:00:00Z"), IntervalDays: 7},
			require + `if currentdate :zone "+0000" :value "lt" "iso8601" "2025-07-15T00:00:00Z" {` + "\nvacation :days 7 text:\nx\n.\n;\n}\n"},
		{"start and end", &AutoReply{Enabled: true, Subject: "Away", Message: "x", StartTime: at("2025-06-01T00:00:00Z"), EndTime: at("2025-07-15T00:00:00.9Z"), IntervalDays: 7},
			require + `if allof (currentdate :zone "+0000" :value "ge" "iso8601" "2025-06-01T00:00:00Z",` + "\n" +
				`          currentdate :zone "+0000" :value "lt" "iso8601" "2025-07-15T00:00:00Z") {` + "\n" +
				`vacation :days 7 :subject "Away" text:` + "\nx\n.\n;\n}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, vacationSieve(tt.ar, now)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// TestVacationSieveRuns runs the scripts in Pigeonhole's sieve-test (Debian:
// dovecot-sieve), when installed: they compile, answer within their dates
// only, and the answer is the message as written.
func TestVacationSieveRuns(t *testing.T) {
	bin, err := exec.LookPath("sieve-test")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sieve-test is not installed; CI needs it (apt-get install dovecot-sieve)")
		}
		t.Skip("sieve-test is not installed (apt-get install dovecot-sieve)")
	}
	dir := sieveDir(t)
	now := time.Now()
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	const message = "I am away.\n.\n..\nSay \"hi\" \\ later.\n"
	for _, tt := range []struct {
		name   string
		ar     *AutoReply
		render time.Time
		answer bool
	}{
		{"no dates", &AutoReply{Enabled: true, Subject: `Away "now" \o/`, Message: message, IntervalDays: 3}, now, true},
		{"within the dates", &AutoReply{Enabled: true, Subject: `Away "now" \o/`, Message: message, StartTime: at(-time.Hour), EndTime: at(time.Hour), IntervalDays: 3}, now, true},
		{"before the start", &AutoReply{Enabled: true, Subject: `Away "now" \o/`, Message: message, StartTime: at(time.Hour), IntervalDays: 3}, now, false},
		// Rendered earlier: the mail server's clock decides.
		{"after the end", &AutoReply{Enabled: true, Subject: `Away "now" \o/`, Message: message, EndTime: at(-time.Minute), IntervalDays: 3}, now.Add(-time.Hour), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			script := filepath.Join(dir, "vacation.sieve")
			if err := os.WriteFile(script, []byte(vacationSieve(tt.ar, tt.render)), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-c", filepath.Join(dir, "dovecot.conf"), "-C", "-f", "bob@other.example", "-r", "anna@example.com",
				script, filepath.Join(dir, "mail.eml"))
			cmd.Env = append(os.Environ(), "HOME="+dir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("sieve-test: %v\n%s%s", err, stdout.String(), stderr.String())
			}
			out := strings.ReplaceAll(stdout.String(), "\r\n", "\n")
			if got := strings.Contains(out, "send vacation message"); got != tt.answer {
				t.Fatalf("answered %v, want %v:\n%s", got, tt.answer, out)
			}
			if !tt.answer {
				return
			}
			for _, want := range []string{
				"=> seconds : " + strconv.Itoa(3*24*3600),
				`=> subject : Away "now" \o/`,
				"START MESSAGE\n" + message + "\nEND MESSAGE",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("no %q in\n%s", want, out)
				}
			}
		})
	}
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
	mail := "From: bob@other.example\nTo: anna@example.com\nSubject: Hello\nMessage-ID: <" + uuid.NewString() + "@other.example>\n\nHi Anna\n"
	for name, text := range map[string]string{"dovecot.conf": conf, "mail.eml": mail} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
