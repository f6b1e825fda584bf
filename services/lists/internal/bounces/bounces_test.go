package bounces

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The samples in testdata are written for these tests, in the shapes the
// formats have: RFC 3464's and RFC 6533's examples for DSNs, the MTAs'
// bounce templates (Postfix bounce(8), qmail-send, Exim, Sendmail) and the
// catalogue of real bounces kept by Sisimai (set-of-emails, e.g.
// email-exchange2007-05.eml) and Mailman's flufl.bounce tests for the
// vendors' texts. Addresses use reserved example domains.
func TestParse(t *testing.T) {
	tests := []struct {
		file string
		want []Failure
	}{
		// RFC 3464: a failed and a delivered recipient; Original-Recipient
		// wins over the forwarded Final-Recipient; Arrival-Date is the date.
		{"dsn-failed.eml", []Failure{{
			Recipient: "alice@example.net", Permanent: true, Status: "5.1.1",
			Diagnostic: "550 5.1.1 <alice@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
			Reported:   date("Tue, 04 Mar 2025 10:15:01 +0100"),
		}}},
		// A Postfix delay warning: Action delayed, 4.4.1, temporary.
		{"dsn-delayed.eml", []Failure{{
			Recipient: "erin@slow.example", Permanent: false, Status: "4.4.1",
			Diagnostic: "connect to mx.slow.example[198.51.100.7]:25: Connection timed out",
			Reported:   date("Wed, 05 Mar 2025 09:58:12 +0000"),
		}}},
		// RFC 6533: utf-8 address type with \x{} escapes; the X.400
		// recipient has no address a list can know and is left out;
		// Last-Attempt-Date is the date.
		{"dsn-global.eml", []Failure{{
			Recipient: "jörg@example.de", Permanent: true, Status: "5.1.1",
			Diagnostic: `550 5.1.1 Mailbox "jörg" unknown`,
			Reported:   date("Thu, 06 Mar 2025 08:29:58 +0100"),
		}}},
		// A DSN reporting only a success is no bounce.
		{"dsn-success.eml", nil},
		// No blank lines between blocks; comments after Action and Status.
		{"dsn-no-blank-lines.eml", []Failure{
			{Recipient: "frank@legacy.example", Permanent: true, Status: "5.2.1", Reported: date("Sat, 08 Mar 2025 06:59:00 -0500")},
			{Recipient: "grace@legacy.example", Permanent: true, Status: "5.2.2", Diagnostic: "552 5.2.2 Mailbox full", Reported: date("Sat, 08 Mar 2025 06:59:00 -0500")},
		}},
		// Office 365: the DSN has no Diagnostic-Code; the text's "Remote
		// Server returned '...'" (quoted-printable, soft line break) fills it.
		{"o365-dsn.eml", []Failure{{
			Recipient: "heidi@contoso.example", Permanent: true, Status: "5.1.10",
			Diagnostic: "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient heidi@contoso.example not found by SMTP address lookup",
			Reported:   date("Mon, 10 Mar 2025 09:12:43 +0000"),
		}}},
		// qmail: a local "(#5.1.1)" and a remote "Remote host said:"; the
		// returned copy's Cc line is not read.
		{"qmail.eml", []Failure{
			{Recipient: "ivan@qmail.example", Permanent: true, Status: "5.1.1", Diagnostic: "Sorry, no mailbox here by that name. (#5.1.1)", Reported: date("Tue, 11 Mar 2025 16:20:31 +0000")},
			{Recipient: "judy@remote.example", Permanent: true, Status: "5.7.1", Diagnostic: "550 5.7.1 <judy@remote.example>: Relay access denied", Reported: date("Tue, 11 Mar 2025 16:20:31 +0000")},
		}},
		// Yahoo: qmail's shape, a bare 554 without enhanced code.
		{"yahoo.eml", []Failure{{
			Recipient: "kim@yahoo.example", Permanent: true, Status: "5.0.0",
			Diagnostic: "554 delivery error: dd This user doesn't have a yahoo.example account (kim@yahoo.example) [0] - mta1001.mail.example [RCPT_TO]",
			Reported:   date("Wed, 12 Mar 2025 03:04:05 +0000"),
		}}},
		// Exim without DSN: a remote rejection and a local failure.
		{"exim.eml", []Failure{
			{Recipient: "leo@remote.example", Permanent: true, Status: "5.1.1", Diagnostic: "550 5.1.1 <leo@remote.example>: Recipient address rejected: User unknown", Reported: date("Thu, 13 Mar 2025 11:22:33 +0000")},
			{Recipient: "mia@exim.example", Permanent: true, Status: "5.0.0", Diagnostic: "Unrouteable address", Reported: date("Thu, 13 Mar 2025 11:22:33 +0000")},
		}},
		// Exim's delay warning: temporary.
		{"exim-delay.eml", []Failure{{
			Recipient: "nina@down.example", Permanent: false, Status: "4.0.0", Diagnostic: "Connection timed out",
			Reported: date("Fri, 14 Mar 2025 11:22:33 +0000"),
		}}},
		// Postfix without DSN: continuation lines that repeat the address.
		{"postfix-text.eml", []Failure{
			{Recipient: "olga@old.example", Permanent: true, Status: "5.1.1", Diagnostic: "550 5.1.1 <olga@old.example>: Recipient address rejected: User unknown in local recipient table", Reported: date("Sat, 15 Mar 2025 10:00:00 +0100")},
			{Recipient: "pete@old.example", Permanent: true, Status: "5.0.0", Diagnostic: "mail for old.example loops back to myself", Reported: date("Sat, 15 Mar 2025 10:00:00 +0100")},
		}},
		// Sendmail: one "(reason: ...)", one reply found in the transcript.
		{"sendmail.eml", []Failure{
			{Recipient: "quinn@sendmail.example", Permanent: true, Status: "5.1.1", Diagnostic: "550 5.1.1 <quinn@sendmail.example>... User unknown", Reported: date("Sun, 16 Mar 2025 18:45:12 -0800")},
			{Recipient: "rita@remote.example", Permanent: true, Status: "5.7.1", Diagnostic: "550 5.7.1 <rita@remote.example>... Relaying denied", Reported: date("Sun, 16 Mar 2025 18:45:12 -0800")},
		}},
		// Exchange 2007-2016 text only: "#550 ... ##".
		{"exchange2007.eml", []Failure{{
			Recipient: "sam@fabrikam.example", Permanent: true, Status: "5.1.1",
			Diagnostic: "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",
			Reported:   date("Mon, 17 Mar 2025 08:00:00 +0100"),
		}}},
		// Exchange's delay notice: temporary.
		{"exchange-delayed.eml", []Failure{{
			Recipient: "tina@far.example", Permanent: false, Status: "4.4.7",
			Diagnostic: "400 4.4.7 Message delayed",
			Reported:   date("Tue, 18 Mar 2025 08:00:00 +0100"),
		}}},
		// Exchange 2003: the code in "<host #5.1.1>"; the attached
		// original is not read.
		{"exchange2003.eml", []Failure{{
			Recipient: "uma@oldex.example", Permanent: true, Status: "5.1.1",
			Diagnostic: "The e-mail account does not exist at the organization this message was sent to. Check the e-mail address, or contact the recipient directly to find out the correct address. <oldex.example #5.1.1>",
			Reported:   date("Wed, 19 Mar 2025 10:00:00 +0100"),
		}}},
		// Gmail's "Address not found".
		{"gmail.eml", []Failure{{
			Recipient: "victor@gmail.example", Permanent: true, Status: "5.1.1",
			Diagnostic: "550 5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser",
			Reported:   date("Thu, 20 Mar 2025 02:03:04 -0700"),
		}}},
		// Gmail's older delay warning: temporary.
		{"gmail-old.eml", []Failure{{
			Recipient: "wendy@busy.example", Permanent: false, Status: "4.2.2",
			Diagnostic: "452 4.2.2 Mailbox full",
			Reported:   date("Fri, 21 Mar 2025 02:03:04 -0700"),
		}}},
		// An HTML-only report, entities decoded.
		{"html-only.eml", []Failure{{
			Recipient: "xena@htmlmail.example", Permanent: true, Status: "5.2.2",
			Diagnostic: "552 5.2.2 STOREDRV.Deliver; mailbox full",
			Reported:   date("Sat, 22 Mar 2025 12:00:00 +0000"),
		}}},
		// Not bounces: an out-of-office reply (null return path,
		// Auto-Submitted, "could not be delivered" and a "<addr>:" in its
		// words), a person quoting a bounce, a feedback report.
		{"out-of-office.eml", nil},
		{"ordinary.eml", nil},
		{"arf.eml", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			msg, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			// Mail arrives with CRLF line ends; the files have LF. Both must read the same.
			crlf := bytes.ReplaceAll(msg, []byte("\n"), []byte("\r\n"))
			for name, m := range map[string][]byte{"LF": msg, "CRLF": crlf} {
				got, err := Parse(m)
				if err != nil {
					t.Fatalf("%s: Parse: %v", name, err)
				}
				if !equal(got, tt.want) {
					t.Errorf("%s: Parse =\n%s\nwant\n%s", name, show(got), show(tt.want))
				}
			}
		})
	}
}

func equal(a, b []Failure) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Recipient != y.Recipient || x.Permanent != y.Permanent || x.Status != y.Status ||
			x.Diagnostic != y.Diagnostic || !x.Reported.Equal(y.Reported) {
			return false
		}
	}
	return true
}

func show(fs []Failure) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.Recipient + " permanent=" + map[bool]string{true: "yes", false: "no"}[f.Permanent] +
			" " + f.Status + " " + f.Reported.String() + "\n    " + f.Diagnostic + "\n")
	}
	if len(fs) == 0 {
		b.WriteString("  (none)\n")
	}
	return b.String()
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		wantErr bool
	}{
		{"empty", "", false},
		{"header without end", "From: MAILER-DAEMON@x.example\nSubject: failure notice", false},
		{"broken header line", "\x00\x01 not a header\n\nbody", true},
		{"report without boundary", "From: MAILER-DAEMON@x.example\nContent-Type: multipart/report; report-type=delivery-status\n\n--x\n", false},
		{"unknown charset", "From: MAILER-DAEMON@x.example\nContent-Type: text/plain; charset=x-nonsense\n\nHi. This is the qmail-send program at x.example.\n\n<a@x.example>:\nno mailbox (#5.1.1)\n", false},
		{"dsn without recipients", "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x.example\n", false},
		{"unterminated escape", "Content-Type: message/global-delivery-status\n\nFinal-Recipient: utf-8; a\\x{E9@x.example\nAction: failed\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.msg))
			if (err != nil) != tt.wantErr {
				t.Errorf("Parse error = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestParseUnknownCharsetStillRead(t *testing.T) {
	msg := "From: MAILER-DAEMON@x.example\nContent-Type: text/plain; charset=x-nonsense\n\nHi. This is the qmail-send program at x.example.\n\n<a@x.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n"
	got, err := Parse([]byte(msg))
	if err != nil || len(got) != 1 || got[0].Recipient != "a@x.example" || got[0].Status != "5.1.1" {
		t.Fatalf("Parse = %+v, %v; want a@x.example 5.1.1", got, err)
	}
}

func TestIsBounce(t *testing.T) {
	tests := []struct {
		name   string
		fields [][2]string
		want   bool
	}{
		{"dsn content type", [][2]string{{"From", "x@example.com"}, {"Content-Type", `multipart/report; report-type="delivery-status"; boundary=b`}}, true},
		{"global dsn", [][2]string{{"Content-Type", "multipart/report; report-type=global-delivery-status; boundary=b"}}, true},
		{"mailer-daemon", [][2]string{{"From", "Mail Delivery System <MAILER-DAEMON@mx.example.com>"}}, true},
		{"bare mailer-daemon", [][2]string{{"From", "MAILER-DAEMON"}}, true},
		{"postmaster", [][2]string{{"From", "postmaster@example.com"}}, true},
		{"exchange sender", [][2]string{{"From", "Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.example>"}}, true},
		{"exim failed recipients", [][2]string{{"From", "root@example.com"}, {"X-Failed-Recipients", "a@example.com"}}, true},
		{"auto-replied report", [][2]string{{"From", "mta@example.com"}, {"Auto-Submitted", "auto-replied"}, {"Content-Type", "multipart/report; report-type=x-custom; boundary=b"}}, true},
		{"null sender, bounce subject", [][2]string{{"Return-Path", "<>"}, {"From", "mta@example.com"}, {"Subject", "Undeliverable: hello"}}, true},
		{"encoded bounce subject", [][2]string{{"Auto-Submitted", "auto-generated"}, {"From", "mta@example.com"}, {"Subject", "=?utf-8?q?Unzustellbar=3A_Hallo?="}}, true},
		{"out of office", [][2]string{{"Return-Path", "<>"}, {"From", "Yara <yara@example.com>"}, {"Auto-Submitted", "auto-replied"}, {"Subject", "Automatic reply: hello"}}, false},
		{"person writes undeliverable", [][2]string{{"From", "zoe@example.com"}, {"Subject", "Undeliverable mail again?"}}, false},
		{"auto-submitted no", [][2]string{{"From", "zoe@example.com"}, {"Auto-Submitted", "no"}, {"Subject", "failure notice"}}, false},
		{"feedback report", [][2]string{{"From", "fbl@isp.example"}, {"Content-Type", "multipart/report; report-type=feedback-report; boundary=b"}}, false},
		{"ordinary", [][2]string{{"From", "zoe@example.com"}, {"Subject", "hello"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h mail.Header
			for _, f := range tt.fields {
				h.Add(f[0], f[1])
			}
			if got := IsBounce(h); got != tt.want {
				t.Errorf("IsBounce = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFindStatus(t *testing.T) {
	tests := []struct{ in, want string }{
		{"550 5.1.1 user unknown", "5.1.1"},
		{"550-5.7.26 unauthenticated", "5.7.26"},
		{"host [10.4.5.6] said: 550 5.1.1 x", "5.1.1"}, // not the IP's 4.5.6
		{"connect to 192.0.2.1: timed out", ""},
		{"no mailbox (#5.1.1)", "5.1.1"},
		{"version 4.2.2.1 of something", ""},
		{"5.2.2", "5.2.2"},
	}
	for _, tt := range tests {
		if got := findStatus(tt.in); got != tt.want {
			t.Errorf("findStatus(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
