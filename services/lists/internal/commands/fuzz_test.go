package commands

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	f.Add(crlf("From: a@example.org\nSubject: Re: confirm " + tok1 + "\n\njoin\nhelp\n-- \nx\n"))
	f.Add(crlf("Subject: =?UTF-8?Q?AW:_join?=\nContent-Type: text/html\n\n<div>leave</div><blockquote>x</blockquote>"))
	f.Add(crlf("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain; format=flowed; delsp=yes\n\nreject " + tok2 + " a \nb\n--b--\n"))
	f.Add(crlf("Approved: pw\nSubject: reject " + tok1 + "\n\nwhy\n> quoted\n"))
	f.Add([]byte("Subject: x\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		req, err := Parse(msg)
		if err != nil {
			return
		}
		if len(req.Commands) > MaxCommands {
			t.Fatalf("%d commands", len(req.Commands))
		}
		for _, c := range req.Commands {
			if c.Line == "" || len(c.Line) > maxLineBytes+len(req.Subject) {
				t.Fatalf("command line %q", c.Line)
			}
			if c.Token != "" && !ValidToken(c.Token) {
				t.Fatalf("token %q is not valid", c.Token)
			}
			if (c.Verb == "") != (c.Problem == UnknownCommand) {
				t.Fatalf("verb %q with problem %q", c.Verb, c.Problem)
			}
			if c.Problem == "" && (c.Verb == Accept || c.Verb == Reject || c.Verb == Discard) && (c.Address == "") == (c.Token == "") {
				t.Fatalf("%s names %q and %q", c.Verb, c.Address, c.Token)
			}
		}
	})
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"team", "team-request", "team-bounces+a=b", "team-confirm+" + tok1, "TEAM-JOIN", "tea", "team+x", "teamé-owner"} {
		f.Add(s, "team")
	}
	f.Fuzz(func(t *testing.T, local, list string) {
		r, ok := ParseAddress(local, list)
		if !ok {
			return
		}
		if !strings.EqualFold(local[:len(list)], list) {
			t.Fatalf("%q is not of list %q", local, list)
		}
		if r.Detail != "" && r.Kind != KindBounces && r.Kind != KindConfirm {
			t.Fatalf("%+v has a detail", r)
		}
		// A robot without detail is one of those Robots reserves.
		if r.Detail == "" && !strings.Contains(local, Delimiter) {
			found := false
			for _, res := range Robots(list) {
				found = found || strings.EqualFold(res, local)
			}
			if !found {
				t.Fatalf("%q (%+v) is not reserved by Robots(%q)", local, r, list)
			}
		}
	})
}

func FuzzStripPrefixes(f *testing.F) {
	for _, s := range []string{"Re: AW: confirm x", "[a] Re[2]: x", "回复：join", "Re:", "[", "Re^9999999999999999999: x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := StripPrefixes(s)
		if len(got) > len(s) || !strings.HasSuffix(s, got) {
			t.Fatalf("StripPrefixes(%q) = %q, not a suffix", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("StripPrefixes(%q) = %q, invalid UTF-8", s, got)
		}
	})
}
