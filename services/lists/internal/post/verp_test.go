package post

import (
	"bufio"
	"bytes"
	netmail "net/mail"
	"slices"
	"testing"

	"github.com/emersion/go-message/textproto"
)

func TestVERP(t *testing.T) {
	tests := []struct{ member, verp, back string }{
		{"jane@example.org", "team-bounces+jane=example.org@example.com", "jane@example.org"},
		{"Jane.Doe@Example.ORG", "team-bounces+Jane.Doe=example.org@example.com", "Jane.Doe@example.org"},
		{"jane+tag@example.org", "team-bounces+jane+tag=example.org@example.com", "jane+tag@example.org"},
		{"a=b@example.org", "team-bounces+a=b=example.org@example.com", "a=b@example.org"},
		{"100%@example.org", "team-bounces+100%25=example.org@example.com", "100%@example.org"},
		{`"john doe"@example.org`, "team-bounces+john%20doe=example.org@example.com", `"john doe"@example.org`},
		{`"a..b"@example.org`, "team-bounces+a.%2Eb=example.org@example.com", `"a..b"@example.org`},
	}
	for _, tt := range tests {
		v := VERP("team-bounces@example.com", tt.member)
		if v != tt.verp {
			t.Errorf("VERP(%q) = %q, want %q", tt.member, v, tt.verp)
		}
		if _, err := netmail.ParseAddress(v); err != nil {
			t.Errorf("VERP(%q) = %q: not an address: %v", tt.member, v, err)
		}
		back, ok := UnVERP(v)
		if !ok || back != tt.back {
			t.Errorf("UnVERP(%q) = %q, %v, want %q", v, back, ok, tt.back)
		}
	}
	for _, bad := range []string{"", "team-bounces@example.com", "team-bounces+jane@example.com", "team-bounces+=example.org@example.com", "team-bounces+jane=@example.com", "+jane=x@example.com", "team-bounces+a%2=x@example.com", "team-bounces+a%zz=x@example.com", "nodomain"} {
		if m, ok := UnVERP(bad); ok {
			t.Errorf("UnVERP(%q) = %q, true; want false", bad, m)
		}
	}
}

func TestRecipients(t *testing.T) {
	members := []string{"jane@example.org", "bob@example.net", "Carol@Example.com", "dave@example.com", "bob@EXAMPLE.NET", "erin@example.com"}
	tests := []struct {
		name     string
		author   string
		wantsOwn bool
		to, cc   []string
		want     []string
	}{
		{"author left out", "jane@EXAMPLE.org", false, []string{"team@example.com"}, nil,
			[]string{"bob@example.net", "Carol@Example.com", "dave@example.com", "erin@example.com"}},
		{"author wants own", "jane@example.org", true, []string{"team@example.com"}, nil,
			[]string{"jane@example.org", "bob@example.net", "Carol@Example.com", "dave@example.com", "erin@example.com"}},
		{"To and Cc got it directly", "x@example.org", false, []string{"team@example.com", "dave@example.com"}, []string{"carol@example.com", "Carol@example.COM"},
			[]string{"jane@example.org", "bob@example.net", "erin@example.com"}},
		{"local part is exact", "JANE@example.org", false, nil, []string{"Erin@example.com"},
			[]string{"jane@example.org", "bob@example.net", "Carol@Example.com", "dave@example.com", "erin@example.com"}},
	}
	for _, tt := range tests {
		got := Recipients(members, tt.author, tt.wantsOwn, tt.to, tt.cc)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzPrepare feeds Prepare anything: it must fail with an error or give a
// post whose copies are well-formed headers followed by a body.
func FuzzPrepare(f *testing.F) {
	for _, name := range []string{"thunderbird-flowed.eml", "thunderbird-alternative.eml", "outlook-reply.eml", "apple-html-only.eml", "apple-mixed.eml", "mixed-attachment-first.eml", "pgp-signed.eml", "smime-signed.eml", "smime-opaque.eml", "latin1-base64.eml"} {
		f.Add(load(f, name))
	}
	f.Add([]byte("From: a@b.example\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\n--x--"))
	f.Add([]byte("From: a@b.example\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/html\r\n\r\n<body></body>\r\n--x"))
	f.Add([]byte("From: a@b.example\r\nSubject: =?utf-8?b?w6k=?=\r\nContent-Transfer-Encoding: base64\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n8NLJ18XU\r\n"))
	l := testList()
	l.FooterText = "footer ${member}"
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := Prepare(raw, l)
		if err != nil {
			return
		}
		out, err := p.For("bob@example.net", "https://lists.example.com/u/1")
		if err != nil {
			t.Fatalf("For: %v", err)
		}
		h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(out)))
		if err != nil {
			t.Fatalf("copy header: %v\n%q", err, out)
		}
		if got := h.Get("List-Id"); got != "Team <team.example.com>" {
			t.Fatalf("List-Id %q", got)
		}
		if n := len(h.Values("List-Unsubscribe")); n != 1 {
			t.Fatalf("%d List-Unsubscribe", n)
		}
		if h.Has("Dkim-Signature") {
			t.Fatal("DKIM-Signature kept")
		}
	})
}
