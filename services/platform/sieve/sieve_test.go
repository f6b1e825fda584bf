package sieve_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/sieve"
)

func TestQuote(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{"", `""`, false},
		{"Away", `"Away"`, false},
		{`He said "hi" \o/`, `"He said \"hi\" \\o/"`, false},
		{`\`, `"\\"`, false},
		{`"`, `"\""`, false},
		{`ends in a backslash\`, `"ends in a backslash\\"`, false},
		{`"; discard; "`, `"\"; discard; \""`, false},
		{"tab\there, and ünïcødé ✈", "\"tab\there, and ünïcødé ✈\"", false},
		{"text:", `"text:"`, false},
		{"two\nlines", "", true},
		{"CRLF\r\nin it", "", true},
		{"CR\r", "", true},
		{"NUL\x00", "", true},
		{"not UTF-8 \xff", "", true},
	} {
		got, err := sieve.Quote(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Quote(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestText(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		err      bool
	}{
		{"", "text:\n\n.\n", false},
		{"Away until Monday.", "text:\nAway until Monday.\n.\n", false},
		{"one line\n", "text:\none line\n.\n", false},
		{"Hello,\n.\n..\n.hidden\nBye.\n", "text:\nHello,\n..\n...\n..hidden\nBye.\n.\n", false},
		{"a\r\n\r\nb", "text:\na\n\nb\n.\n", false},
		{`Quotes "stay" \as they are`, "text:\n" + `Quotes "stay" \as they are` + "\n.\n", false},
		{"text:\n.\n;\ndiscard;", "text:\ntext:\n..\n;\ndiscard;\n.\n", false},
		{"bare CR\rhere", "", true},
		{"NUL\x00", "", true},
		{"not UTF-8 \xc3", "", true},
	} {
		got, err := sieve.Text(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Text(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzQuote: whatever Quote accepts reads back, by Sieve's rules, as
// exactly the string given, ending where the quoted string ends; it refuses
// only what a one-line string cannot hold.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "Away", `"\`, `\"`, `a\`, "\"; discard; \"", "ü\t✈", "a\nb", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := sieve.Quote(s)
		if bad := !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\r\n"); bad != (err != nil) {
			t.Fatalf("Quote(%q) error %v; want an error: %v", s, err, bad)
		}
		if err != nil {
			return
		}
		got, rest, ok := unquote(q)
		if !ok || rest != "" || got != s {
			t.Fatalf("Quote(%q) = %q, which reads back as %q (ok %v), leaving %q", s, q, got, ok, rest)
		}
	})
}

// FuzzText: whatever Text accepts reads back, by Sieve's rules, as the
// string given (CRLF as LF, with a final line break), ending where the
// multi-line string ends; it refuses only what one cannot hold.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "Away", ".", "..", ".\n.", "a\n.\nb", "\n\n", "text:\n.\n;", "a\r\nb", "a\rb", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		txt, err := sieve.Text(s)
		lf := strings.ReplaceAll(s, "\r\n", "\n")
		if bad := !utf8.ValidString(s) || strings.ContainsAny(lf, "\x00\r"); bad != (err != nil) {
			t.Fatalf("Text(%q) error %v; want an error: %v", s, err, bad)
		}
		if err != nil {
			return
		}
		want := lf
		if !strings.HasSuffix(want, "\n") {
			want += "\n"
		}
		got, rest, ok := untext(txt)
		if !ok || rest != "" || got != want {
			t.Fatalf("Text(%q) = %q, which reads back as %q (ok %v), leaving %q", s, txt, got, ok, rest)
		}
	})
}

// unquote reads a quoted string at the start of s as RFC 5228 does: a
// backslash takes the next character as it is, and the first unescaped
// double quote ends the string.
func unquote(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, false
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i == len(s) {
				return "", "", false
			}
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// untext reads a multi-line string at the start of s as RFC 5228 does:
// after "text:", lines up to one holding only "."; a line starting with
// "." loses that dot.
func untext(s string) (value, rest string, ok bool) {
	s, ok = strings.CutPrefix(s, "text:\n")
	if !ok {
		return "", s, false
	}
	var b strings.Builder
	for {
		line, after, found := strings.Cut(s, "\n")
		if !found {
			return "", "", false
		}
		s = after
		if line == "." {
			return b.String(), s, true
		}
		b.WriteString(strings.TrimPrefix(line, ".") + "\n")
	}
}

func TestVacationScript(t *testing.T) {
	now := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	const require = `require ["vacation", "date", "relational"];` + "\n\n"
	for _, tt := range []struct {
		name string
		v    sieve.Vacation
		want string
	}{
		{"ended", sieve.Vacation{Message: "Away", End: at("2025-07-01T12:00:00Z"), Days: 7}, ""},
		{"no dates, no subject", sieve.Vacation{Message: "Away until Monday.", Days: 7},
			require + "vacation :days 7 text:\nAway until Monday.\n.\n;\n"},
		{"interval 0 is the default", sieve.Vacation{Message: "Away"},
			require + "vacation :days 7 text:\nAway\n.\n;\n"},
		{"quotes and backslashes in the subject", sieve.Vacation{Subject: `He said "hi" \o/`, Message: `Quotes "stay" \as they are`, Days: 1},
			require + `vacation :days 1 :subject "He said \"hi\" \\o/" text:` + "\n" + `Quotes "stay" \as they are` + "\n.\n;\n"},
		{"lines starting with a dot", sieve.Vacation{Message: "Hello,\n.\n..\n.hidden\nBye.\n", Days: 30},
			require + "vacation :days 30 text:\nHello,\n..\n...\n..hidden\nBye.\n.\n;\n"},
		{"CRLF and blank lines", sieve.Vacation{Message: "a\r\n\r\nb", Days: 7},
			require + "vacation :days 7 text:\na\n\nb\n.\n;\n"},
		{"start only", sieve.Vacation{Message: "x", Start: at("2025-07-02T08:30:00+02:00"), Days: 7},
			require + `if currentdate :zone "+0000" :value "ge" "iso8601" "2025-07-02T06:30:00Z" {` + "\nvacation :days 7 text:\nx\n.\n;\n}\n"},
		{"end only", sieve.Vacation{Message: "x", End: at("2025-07-15T00:00:00Z"), Days: 7},
			require + `if currentdate :zone "+0000" :value "lt" "iso8601" "2025-07-15T00:00:00Z" {` + "\nvacation :days 7 text:\nx\n.\n;\n}\n"},
		{"start and end", sieve.Vacation{Subject: "Away", Message: "x", Start: at("2025-06-01T00:00:00Z"), End: at("2025-07-15T00:00:00.9Z"), Days: 7},
			require + `if allof (currentdate :zone "+0000" :value "ge" "iso8601" "2025-06-01T00:00:00Z",` + "\n" +
				`          currentdate :zone "+0000" :value "lt" "iso8601" "2025-07-15T00:00:00Z") {` + "\n" +
				`vacation :days 7 :subject "Away" text:` + "\nx\n.\n;\n}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.v.Script(now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestVacationScriptRefuses(t *testing.T) {
	for _, v := range []sieve.Vacation{
		{Subject: "two\nlines", Message: "x"},
		{Subject: "x", Message: "NUL\x00"},
		{Message: "bare\rCR"},
	} {
		if got, err := v.Script(time.Now()); err == nil {
			t.Errorf("%+v: script %q, want an error", v, got)
		}
	}
}
