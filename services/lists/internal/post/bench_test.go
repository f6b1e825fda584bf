package post

import (
	"strings"
	"testing"
)

// bigAlternative is a 20 KB multipart/alternative post as Thunderbird
// writes it.
func bigAlternative() []byte {
	para := "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
	var text, html strings.Builder
	for text.Len() < 9000 {
		text.WriteString(para)
		html.WriteString("<p>" + strings.TrimSuffix(para, "\r\n") + "</p>\r\n")
	}
	return []byte("From: Jane Doe <jane@example.org>\r\nTo: team@example.com\r\nSubject: Re: [team] Long\r\n" +
		"Message-ID: <long@example.org>\r\nMIME-Version: 1.0\r\nDKIM-Signature: v=1; d=example.org; b=x\r\n" +
		"Content-Type: multipart/alternative; boundary=\"----b\"\r\n\r\n" +
		"------b\r\nContent-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + text.String() +
		"\r\n------b\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<html><body>\r\n" + html.String() +
		"</body></html>\r\n\r\n------b--\r\n")
}

func benchFor(b *testing.B, l List) {
	raw := bigAlternative()
	p, err := Prepare(raw, l)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.For("bob@example.net", "https://lists.example.com/u/0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFor: footers the same for every member (the body is copied).
func BenchmarkFor(b *testing.B) {
	l := testList()
	l.FooterText = "Team mailing list\nLeave: https://lists.example.com/team"
	l.FooterHTML = `<p>Team mailing list</p>`
	benchFor(b, l)
}

// BenchmarkForPersonal: footers naming the member and their unsubscribe
// URL (rendered per copy).
func BenchmarkForPersonal(b *testing.B) { benchFor(b, testList()) }

func BenchmarkPrepare(b *testing.B) {
	raw := bigAlternative()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Prepare(raw, testList()); err != nil {
			b.Fatal(err)
		}
	}
}
