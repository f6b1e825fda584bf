package post

import (
	"bytes"
	"errors"
	"io"
	"mime"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gomessage "github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

func testList() List {
	return List{
		Address:      "team@example.com",
		Name:         "Team",
		Prefix:       "[team]",
		FooterText:   "Team mailing list\nLeave: ${unsubscribe_url}",
		FooterHTML:   `<p>Team mailing list &middot; <a href="${unsubscribe_url}">leave</a></p>`,
		HelpURL:      "https://lists.example.com/team/help",
		ArchiveURL:   "https://lists.example.com/team/archive",
		SubscribeURL: "https://lists.example.com/team/join",
	}
}

const unsub = "https://lists.example.com/u/abc123?x=1&y=2"

func load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// part is a leaf of a parsed copy: its media type and decoded text.
type part struct {
	typ, text string
}

// parse checks that a copy parses with net/mail and go-message, reads
// every part, and returns the top header and the leaves.
func parse(t *testing.T, out []byte) (mail.Header, []part) {
	t.Helper()
	if _, err := netmail.ReadMessage(bytes.NewReader(out)); err != nil {
		t.Fatalf("net/mail: %v\n%s", err, out)
	}
	m, err := gomessage.Read(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("go-message: %v\n%s", err, out)
	}
	var parts []part
	err = m.Walk(func(path []int, e *gomessage.Entity, err error) error {
		if err != nil {
			return err
		}
		if mr := e.MultipartReader(); mr != nil {
			return nil
		}
		typ, _, err := e.Header.ContentType()
		if err != nil {
			return err
		}
		b, err := io.ReadAll(e.Body)
		if err != nil {
			return err
		}
		parts = append(parts, part{typ, string(b)})
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v\n%s", err, out)
	}
	for _, ln := range bytes.Split(out, []byte("\r\n")) {
		if bytes.ContainsAny(ln, "\r\n") {
			t.Fatalf("bare CR or LF in line %q", ln)
		}
		if len(ln) > 998 {
			t.Fatalf("line of %d bytes", len(ln))
		}
	}
	return mail.Header{Header: m.Header}, parts
}

func TestPrepareFooters(t *testing.T) {
	tests := []struct {
		file string
		// texts and htmls: substrings each text/plain and text/html leaf
		// must hold, in the order of the leaves.
		want    []part
		subject string
		wrapped bool
	}{
		{
			file:    "thunderbird-flowed.eml",
			subject: "[team] Meeting notes",
			want:    []part{{"text/plain", "the dates.\r\n\r\nJane\r\n-- \r\nTeam mailing list\r\nLeave: " + unsub + "\r\n"}},
		},
		{
			file:    "thunderbird-alternative.eml",
			subject: "[team] Grüße aus Zürich",
			want: []part{
				{"text/plain", "Grüße aus Zürich!\r\n-- \r\nTeam mailing list\r\nLeave: " + unsub},
				{"text/html", `<p>Grüße aus <b>Zürich</b>!</p>` + "\r\n  \r\n<p>Team mailing list &middot; <a href=\"https://lists.example.com/u/abc123?x=1&amp;y=2\">leave</a></p>\r\n</body>"},
			},
		},
		{
			file:    "outlook-reply.eml",
			subject: "AW: [team] Prüfung am Montag",
			want: []part{
				{"text/plain", "ich komme gerne. Grüße\r\nJürgen\r\n\r\nVon: Jane Doe <jane@example.org>\r\nGesendet: Montag, 3. März 2025 18:00\r\nAn: team@example.com\r\nBetreff: [team] Prüfung am Montag\r\n\r\n> Wer kommt?\r\n-- \r\nTeam mailing list"},
				{"text/html", "Grüße Jürgen</div>\r\n\r\n<p>Team mailing list"},
			},
		},
		{
			file:    "apple-html-only.eml",
			subject: "[team] RE: Pranzo",
			want:    []part{{"text/html", "Ci vediamo alle 13? 🍝\r\n\r\n<p>Team mailing list &middot;"}},
		},
		{
			file:    "apple-mixed.eml",
			subject: "[team] Fwd: Agenda",
			want: []part{
				{"text/plain", "See the attached agenda.\r\n-- \r\nTeam mailing list"},
				{"application/pdf", "%PDF-1.4"},
			},
		},
		{
			file:    "mixed-attachment-first.eml",
			subject: "[team] scan",
			want: []part{
				{"image/png", "\x89PNG"},
				{"text/plain", "Team mailing list\r\nLeave: " + unsub + "\r\n"},
			},
		},
		{
			file:    "pgp-signed.eml",
			subject: "Re: [team] Signed release",
			wrapped: true,
			want: []part{
				{"text/plain", "The release is signed.\r\n"},
				{"application/pgp-signature", "-----BEGIN PGP SIGNATURE-----"},
				{"text/plain", "Team mailing list"},
			},
		},
		{
			file:    "smime-signed.eml",
			subject: "[team] RE: Rapport",
			wrapped: true,
			want: []part{
				{"text/plain", "Voici le rapport. Ci-joint. à bientôt\r\n"},
				{"text/html", "<p>Voici le rapport. à bientôt</p></body></html>"},
				{"application/pkcs7-signature", ""},
				{"text/plain", "Team mailing list"},
			},
		},
		{
			file:    "smime-opaque.eml",
			subject: "[team] opaque",
			wrapped: true,
			want: []part{
				{"application/pkcs7-mime", ""},
				{"text/plain", "Team mailing list"},
			},
		},
		{
			file:    "latin1-base64.eml",
			subject: "SV: [Team] Fika",
			want:    []part{{"text/plain", "Hej på er alla!\r\n-- \r\nTeam mailing list"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := load(t, tt.file)
			p, err := Prepare(raw, testList())
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.For("bob@example.net", unsub)
			if err != nil {
				t.Fatal(err)
			}
			h, parts := parse(t, out)
			if s, _ := h.Subject(); s != tt.subject || p.Subject != tt.subject {
				t.Errorf("subject %q (Post.Subject %q), want %q", s, p.Subject, tt.subject)
			}
			if len(parts) != len(tt.want) {
				t.Fatalf("%d parts %v, want %d\n%s", len(parts), parts, len(tt.want), out)
			}
			for i, w := range tt.want {
				if parts[i].typ != w.typ || !strings.Contains(parts[i].text, w.text) {
					t.Errorf("part %d: %s %q, want %s holding %q", i+1, parts[i].typ, parts[i].text, w.typ, w.text)
				}
				if w.typ == "text/plain" && strings.Count(parts[i].text, "Team mailing list") > 1 {
					t.Errorf("part %d: footer twice", i+1)
				}
			}
			footers := strings.Count(string(out), "Team mailing list") // QP leaves this ASCII phrase readable
			if footers == 0 {
				t.Errorf("no footer in\n%s", out)
			}
			mt, _, _ := h.ContentType()
			if tt.wrapped {
				if mt != "multipart/mixed" {
					t.Errorf("wrapped post: Content-Type %s", mt)
				}
				checkSignedUnchanged(t, crlf(raw), out)
			}
		})
	}
}

// checkSignedUnchanged finds the original body in the copy, byte for byte.
func checkSignedUnchanged(t *testing.T, raw, out []byte) {
	t.Helper()
	_, bs := splitHeader(raw)
	body := raw[bs:]
	if !bytes.Contains(out, body) {
		t.Errorf("signed body changed:\n%s", out)
	}
	// And the original Content-Type moved, unchanged, into the first part.
	h, _ := readHeader(raw[:bs])
	ct, _ := h.Raw("Content-Type")
	if len(ct) == 0 || !bytes.Contains(out, ct) {
		t.Errorf("Content-Type %q not kept in the wrapped part", ct)
	}
}

func TestPrepareHeaders(t *testing.T) {
	raw := load(t, "thunderbird-flowed.eml")
	p, err := Prepare(raw, testList())
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.For("bob@example.net", unsub)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parse(t, out)
	want := map[string]string{
		"List-Id":               "Team <team.example.com>",
		"List-Help":             "<mailto:team-request@example.com?subject=help>, <https://lists.example.com/team/help>",
		"List-Post":             "<mailto:team@example.com>",
		"List-Subscribe":        "<mailto:team-join@example.com>, <https://lists.example.com/team/join>",
		"List-Unsubscribe":      "<" + unsub + ">, <mailto:team-leave@example.com>",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
		"List-Owner":            "<mailto:team-owner@example.com>",
		"List-Archive":          "<https://lists.example.com/team/archive>",
		"Precedence":            "list",
		"Message-Id":            "<8e1f0c2a-1b2c-4d5e-9f00-1234567890ab@example.org>",
		"From":                  "Jane Doe <jane@example.org>",
		"Received":              "from mx.example.org (mx.example.org [192.0.2.1]) by mail.example.com (Postfix) with ESMTPS id 4B1C2 for <team@example.com>; Tue, 4 Mar 2025 10:00:00 +0100 (CET)",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"DKIM-Signature", "Return-Path", "Delivered-To", "Reply-To"} {
		if h.Has(k) {
			t.Errorf("%s kept: %q", k, h.Get(k))
		}
	}
	if p.Author != "jane@example.org" || p.MessageID != "8e1f0c2a-1b2c-4d5e-9f00-1234567890ab@example.org" || len(p.To) != 1 || p.To[0] != "team@example.com" {
		t.Errorf("post %+v", p)
	}

	// Without an unsubscribe URL: the mailto: only, no one-click.
	out, err = p.For("bob@example.net", "")
	if err != nil {
		t.Fatal(err)
	}
	h, _ = parse(t, out)
	if got := h.Get("List-Unsubscribe"); got != "<mailto:team-leave@example.com>" || h.Has("List-Unsubscribe-Post") {
		t.Errorf("no URL: List-Unsubscribe %q, Post %q", got, h.Get("List-Unsubscribe-Post"))
	}

	// An announcement list: List-Post: NO; no URLs: mailto: only.
	l := List{Address: "news@example.com", Announce: true}
	p, err = Prepare(raw, l)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = p.For("bob@example.net", "")
	h, parts := parse(t, out)
	for k, v := range map[string]string{"List-Post": "NO", "List-Id": "news <news.example.com>", "List-Help": "<mailto:news-request@example.com?subject=help>", "Subject": "Meeting notes"} {
		if got := h.Get(k); got != v {
			t.Errorf("announce: %s %q, want %q", k, got, v)
		}
	}
	if h.Has("List-Archive") {
		t.Error("List-Archive without an archive")
	}
	// No footer: the body is the post's, byte for byte.
	_, bs := splitHeader(crlf(raw))
	if !bytes.HasSuffix(out, crlf(raw)[bs:]) || strings.Contains(parts[0].text, "-- ") {
		t.Errorf("body changed without a footer:\n%s", out)
	}
}

func TestSubjectPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello", "[team] Hello"},
		{"Re: [team] Hello", "Re: [team] Hello"},
		{"[team] Re: Hello", "[team] Re: Hello"},
		{"RE: Hello", "[team] RE: Hello"},
		{"AW: [team] Hallo", "AW: [team] Hallo"},
		{"aw: AW: [Team] Hallo", "aw: AW: [Team] Hallo"},
		{"Re[2]: [team] x", "Re[2]: [team] x"},
		{"SV: Re: Fwd: [team] x", "SV: Re: Fwd: [team] x"},
		{"Fwd: x", "[team] Fwd: x"},
		{"Regards: x", "[team] Regards: x"},
		{"", "[team] (no subject)"},
		{"   ", "[team] (no subject)"},
		{"=?UTF-8?B?UmU6IFt0ZWFtXSBHcsO8w59l?=", "Re: [team] Grüße"},
		{"=?utf-8?q?=C3=9Cbung?=", "[team] Übung"},
		{"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "[team] テスト"},
		{"[other] news", "[team] [other] news"},
	}
	for _, tt := range tests {
		raw := "From: a@example.org\r\nSubject: " + tt.in + "\r\n\r\nbody\r\n"
		p, err := Prepare([]byte(raw), List{Address: "team@example.com", Prefix: "[team]"})
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		out, err := p.For("b@example.org", "")
		if err != nil {
			t.Fatal(err)
		}
		h, _ := parse(t, out)
		got, err := h.Subject()
		if err != nil || got != tt.want || p.Subject != tt.want {
			t.Errorf("%q: subject %q (%v), Post.Subject %q, want %q", tt.in, got, err, p.Subject, tt.want)
		}
		rawSubj, _ := h.Header.Header.Raw("Subject")
		if !isASCII(string(rawSubj)) {
			t.Errorf("%q: subject not encoded: %q", tt.in, rawSubj)
		}
	}
}

func TestReplyTo(t *testing.T) {
	const raw = "From: Jane Doe <jane@example.org>\r\nTo: team@example.com\r\nCc: bob@example.net\r\nReply-To: jane.home@example.org\r\nSubject: x\r\n\r\nhi\r\n"
	tests := []struct {
		mode              ReplyMode
		from, replyTo, cc string
	}{
		{ReplyToSender, "Jane Doe <jane@example.org>", "jane.home@example.org", "bob@example.net"},
		{ReplyToList, "Jane Doe <jane@example.org>", "Team <team@example.com>, jane.home@example.org", "bob@example.net"},
		{ReplyViaList, "Jane Doe via Team <team@example.com>", "Team <team@example.com>, jane.home@example.org", "bob@example.net, Jane Doe <jane@example.org>"},
	}
	for _, tt := range tests {
		l := List{Address: "team@example.com", Name: "Team", ReplyTo: tt.mode}
		p, err := Prepare([]byte(raw), l)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := p.For("bob@example.net", "")
		h, _ := parse(t, out)
		for k, want := range map[string]string{"From": tt.from, "Reply-To": tt.replyTo, "Cc": tt.cc} {
			as, err := h.AddressList(k)
			if err != nil {
				t.Fatalf("%v %s: %v", tt.mode, k, err)
			}
			var got []string
			for _, a := range as {
				s := a.Address
				if a.Name != "" {
					s = a.Name + " <" + a.Address + ">"
				}
				got = append(got, s)
			}
			if g := strings.Join(got, ", "); g != want {
				t.Errorf("%v: %s %q, want %q", tt.mode, k, g, want)
			}
		}
		if p.Author != "jane@example.org" || strings.Join(p.Cc, ",") != "bob@example.net" {
			t.Errorf("%v: Author %q Cc %q: the post's own", tt.mode, p.Author, p.Cc)
		}
	}

	// Via the list with a non-ASCII name and none at all.
	for in, want := range map[string]string{
		"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>": "Jürgen via Team",
		"From: j@example.de":                           "j at example.de via Team",
	} {
		p, err := Prepare([]byte(in+"\r\nSubject: x\r\n\r\nhi\r\n"), List{Address: "team@example.com", Name: "Team", ReplyTo: ReplyViaList})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := p.For("bob@example.net", "")
		h, _ := parse(t, out)
		as, err := h.AddressList("From")
		if err != nil || len(as) != 1 || as[0].Name != want || as[0].Address != "team@example.com" {
			t.Errorf("%s: From %v (%v), want %q <team@example.com>", in, as, err, want)
		}
	}
}

func TestPrepareStrips(t *testing.T) {
	raw := load(t, "outlook-reply.eml")
	raw = append([]byte("Approved: secret\r\nBcc: hidden@example.org\r\nList-Id: other <other.example.net>\r\nPrecedence: bulk\r\n"), raw...)
	p, err := Prepare(raw, testList())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := p.For("bob@example.net", unsub)
	if bytes.Contains(out, []byte("secret")) || bytes.Contains(out, []byte("hidden@")) || bytes.Contains(out, []byte("other.example.net")) {
		t.Errorf("stripped header distributed:\n%s", out)
	}
	h, _ := parse(t, out)
	if h.Has("Disposition-Notification-To") || h.Get("Precedence") != "list" || len(h.Values("List-Id")) != 1 {
		t.Errorf("headers: %v", h.Map())
	}
	if got := h.Get("Thread-Topic"); got != "[team] Prüfung am Montag" {
		t.Errorf("other fields lost: Thread-Topic %q", got)
	}
}

func TestPersonalFooter(t *testing.T) {
	raw := load(t, "thunderbird-alternative.eml")
	l := testList()
	l.FooterText = "You are ${member}. Leave: ${unsubscribe_url}"
	l.FooterHTML = "<p>You are ${member}</p>"
	p, err := Prepare(raw, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"bob@example.net", "<script>@example.net"} {
		out, err := p.For(m, unsub)
		if err != nil {
			t.Fatal(err)
		}
		_, parts := parse(t, out)
		if !strings.Contains(parts[0].text, "You are "+m+". Leave: "+unsub) {
			t.Errorf("text footer for %s: %q", m, parts[0].text)
		}
		if esc := "<p>You are " + strings.ReplaceAll(strings.ReplaceAll(m, "<", "&lt;"), ">", "&gt;") + "</p>"; !strings.Contains(parts[1].text, esc) {
			t.Errorf("html footer for %s: %q", m, parts[1].text)
		}
	}
	// A footer not in the part's charset: the part is re-encoded in UTF-8.
	l = testList()
	l.FooterText = "Équipe ${member}"
	p, err = Prepare(load(t, "thunderbird-flowed.eml"), l)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := p.For("bob@example.net", "")
	h, parts := parse(t, out)
	if !strings.Contains(parts[0].text, "the dates.\r\n\r\nJane\r\n-- \r\nÉquipe bob@example.net\r\n") {
		t.Errorf("non-ASCII footer: %q", parts[0].text)
	}
	if ct, params, _ := h.ContentType(); ct != "text/plain" || params["charset"] != "utf-8" || params["format"] != "flowed" || h.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Errorf("re-encoded part: %v %v %s", ct, params, h.Get("Content-Transfer-Encoding"))
	}
}

func TestForErrors(t *testing.T) {
	p, err := Prepare(load(t, "thunderbird-flowed.eml"), testList())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ member, url, want string }{
		{"", "", "member"},
		{"a@b\r\nBcc: x@y", "", "member"},
		{"a@b", "http://x.example/u", "https"},
		{"a@b", "https://x.example/u>, <mailto:evil@x", "not allowed"},
		{"a@b", "https://x.example/" + strings.Repeat("a", 1000), "longer"},
	} {
		if _, err := p.For(c.member, c.url); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("For(%q, %q): %v, want an error about %s", c.member, c.url, err, c.want)
		}
	}
}

func TestPrepareErrors(t *testing.T) {
	deep := "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
	for i := 1; i <= 25; i++ {
		deep += "--b" + string(rune('0'+i%10)) + "\r\nContent-Type: multipart/mixed; boundary=b" + string(rune('0'+(i+1)%10)) + "x" + "\r\n\r\n"
	}
	tests := []struct {
		name, raw string
		l         List
		want      string
	}{
		{"no From", "Subject: x\r\n\r\nhi", testList(), "From header is missing"},
		{"bad From", "From: <<<\r\n\r\nhi", testList(), "From header"},
		{"bad To", "From: a@b.example\r\nTo: ,,<@>\r\n\r\nhi", testList(), "To:"},
		{"header line without colon", "From: a@b.example\r\nthis is not a header\r\n\r\nhi", testList(), "malformed MIME header line"},
		{"continuation first", " folded\r\nFrom: a@b.example\r\n\r\nhi", testList(), "header"},
		{"bad content type", "From: a@b.example\r\nContent-Type: text/plain; charset\r\n\r\nhi", testList(), "Content-Type"},
		{"no boundary", "From: a@b.example\r\nContent-Type: multipart/mixed\r\n\r\nhi", testList(), "boundary"},
		{"no parts", "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\nhi", testList(), "no part"},
		{"bad part header", "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nnot a header\r\n\r\nhi\r\n--x--\r\n", testList(), "part 1 header"},
		{"bad Message-ID", "From: a@b.example\r\nMessage-ID: no brackets\r\n\r\nhi", testList(), "Message-ID"},
		{"bad list address", "From: a@b.example\r\n\r\nhi", List{Address: "Team <team@example.com>"}, "list address"},
		{"bad list URL", "From: a@b.example\r\n\r\nhi", List{Address: "team@example.com", HelpURL: "javascript:alert(1)"}, "help URL"},
		{"bad reply mode", "From: a@b.example\r\n\r\nhi", List{Address: "team@example.com", ReplyTo: 7}, "reply-to mode"},
		{"prefix with newline", "From: a@b.example\r\n\r\nhi", List{Address: "team@example.com", Prefix: "[a]\r\nBcc: x@y"}, "line break"},
	}
	for _, tt := range tests {
		_, err := Prepare([]byte(tt.raw), tt.l)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error about %q", tt.name, err, tt.want)
		}
	}
	// Nesting: the boundaries above do not chain, so build a real one.
	var b strings.Builder
	b.WriteString("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=\"b0\"\r\n\r\n")
	for i := 1; i <= 25; i++ {
		b.WriteString("--b" + itoa(i-1) + "\r\nContent-Type: multipart/mixed; boundary=\"b" + itoa(i) + "\"\r\n\r\n")
	}
	if _, err := Prepare([]byte(b.String()), testList()); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
	_ = deep
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestBareLF(t *testing.T) {
	raw := "From: a@example.org\nSubject: x\n\nline one\nline two\n"
	p, err := Prepare([]byte(raw), testList())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := p.For("b@example.org", "")
	_, parts := parse(t, out)
	if !strings.Contains(parts[0].text, "line one\r\nline two\r\n-- \r\n") {
		t.Errorf("text %q", parts[0].text)
	}
}

func TestMissingMessageID(t *testing.T) {
	raw := []byte("From: a@example.org\r\nSubject: x\r\n\r\nhi\r\n")
	p1, err := Prepare(raw, testList())
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := Prepare(raw, testList())
	if p1.MessageID == "" || p1.MessageID != p2.MessageID || !strings.HasSuffix(p1.MessageID, "@example.com") {
		t.Errorf("Message-ID %q, %q", p1.MessageID, p2.MessageID)
	}
	out, _ := p1.For("b@example.org", "")
	h, _ := parse(t, out)
	if id, _ := h.MessageID(); id != p1.MessageID {
		t.Errorf("header Message-ID %q, want %q", id, p1.MessageID)
	}
}

func TestListID(t *testing.T) {
	for in, want := range map[string]string{"team@example.com": "<team.example.com>", "Dev.Team@Example.COM": "<dev.team.example.com>"} {
		if got := (List{Address: in}).ID(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"Team": "Team", "Team, Inc.": `"Team, Inc."`, "Équipe": mime.QEncoding.Encode("utf-8", "Équipe"), `a"b`: `"a\"b"`} {
		if got := phrase(in); got != want {
			t.Errorf("phrase(%q) = %q, want %q", in, got, want)
		}
	}
	_ = errors.New
}
