package filtersreport

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	long := strings.Repeat("a", 5000)
	msg := "Received: from x\r\n\tby y\r\nmalformed line\r\nFrom: =?UTF-8?B?w4lsb2TDqWU=?= <e@example.net>\r\n" +
		"Subject: " + long + "\r\nX-Spam-Flag: YES\r\nX-Spamd-Result: default: True [9.0 / 15.0];\r\n SYMBOL(1.0)\r\n" +
		"Message-ID: <m@example.net>\r\nX-Spam-Bad: a\x00b\r\n\r\nX-Spam-Not-A-Header: body\r\n" + long + "\r\n"
	rep, err := Describe(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(msg))
	if rep.SHA256 != hex.EncodeToString(sum[:]) || rep.Size != int64(len(msg)) {
		t.Errorf("hash %s size %d, want %x %d", rep.SHA256, rep.Size, sum, len(msg))
	}
	if rep.From != "Élodée <e@example.net>" || rep.MessageID != "<m@example.net>" || len(rep.Subject) != MaxField {
		t.Errorf("from %q, message-id %q, subject of %d bytes", rep.From, rep.MessageID, len(rep.Subject))
	}
	want := []Header{{"X-Spam-Flag", "YES"}, {"X-Spamd-Result", "default: True [9.0 / 15.0]; SYMBOL(1.0)"}, {"X-Spam-Bad", "a b"}}
	if len(rep.SpamHeaders) != len(want) {
		t.Fatalf("spam headers %q, want %q", rep.SpamHeaders, want)
	}
	for i := range want {
		if rep.SpamHeaders[i] != want[i] {
			t.Errorf("spam header %d: %q, want %q", i, rep.SpamHeaders[i], want[i])
		}
	}
	rep.Verdict, rep.Login = Spam, "a@example.org"
	if err := rep.Check(); err != nil {
		t.Errorf("Check of what Describe wrote: %v", err)
	}
	// No header section at all, and nothing.
	for _, m := range []string{"", "\r\n\r\nbody", strings.Repeat("X-Spam-A: b\r\n", 100)} {
		rep, err := Describe(strings.NewReader(m))
		if err != nil || rep.Size != int64(len(m)) || len(rep.SpamHeaders) > MaxSpamHeaders {
			t.Errorf("Describe(%.20q): %+v %v", m, rep, err)
		}
	}
}

func TestCheckNamesTheField(t *testing.T) {
	ok := Report{Login: "a@example.org", Verdict: Ham, SHA256: strings.Repeat("0", 64)}
	for field, edit := range map[string]func(*Report){
		"verdict":              func(r *Report) { r.Verdict = "maybe" },
		"login":                func(r *Report) { r.Login = "nobody" },
		"subject":              func(r *Report) { r.Subject = strings.Repeat("x", MaxField+1) },
		"from":                 func(r *Report) { r.From = "a\nb" },
		"sha256":               func(r *Report) { r.SHA256 = "xyz" },
		"size":                 func(r *Report) { r.Size = -1 },
		"spamHeaders":          func(r *Report) { r.SpamHeaders = make([]Header, MaxSpamHeaders+1) },
		"spamHeaders[0].name":  func(r *Report) { r.SpamHeaders = []Header{{"X-Spam: x", "y"}} },
		"spamHeaders[0].value": func(r *Report) { r.SpamHeaders = []Header{{"X-Spam", "\x00"}} },
	} {
		r := ok
		edit(&r)
		var fe *FieldError
		if err := r.Check(); !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := ok.Check(); err != nil {
		t.Errorf("a good report: %v", err)
	}
}
