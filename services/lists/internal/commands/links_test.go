package commands

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecisionLinks(t *testing.T) {
	accept, reject, discard := DecisionLinks("team-request@example.com", tok1)
	want := []string{
		"mailto:team-request@example.com?subject=accept%20" + tok1,
		"mailto:team-request@example.com?subject=reject%20" + tok1,
		"mailto:team-request@example.com?subject=discard%20" + tok1,
	}
	if diff := cmp.Diff(want, []string{accept, reject, discard}); diff != "" {
		t.Errorf("DecisionLinks (-want +got):\n%s", diff)
	}
}

func TestDecisionLinksEscaping(t *testing.T) {
	accept, _, _ := DecisionLinks("a+b%c?d&e=f/g#h@example.com", tok1)
	const want = "mailto:a%2Bb%25c%3Fd%26e%3Df%2Fg%23h@example.com?subject=accept%20" + tok1
	if accept != want {
		t.Errorf("accept = %q, want %q", accept, want)
	}
}

// mailFromLink writes the mail a client sends when a link is clicked: the
// link's To and Subject, the body the moderator types, and whatever the
// client adds.
func mailFromLink(t *testing.T, link, from, body string) []byte {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme != "mailto" {
		t.Fatalf("parse %q: %v", link, err)
	}
	to, err := url.PathUnescape(u.Opaque)
	if err != nil {
		t.Fatalf("unescape %q: %v", u.Opaque, err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatalf("query of %q: %v", link, err)
	}
	return crlf("From: " + from + "\nTo: " + to + "\nSubject: " + q.Get("subject") + "\n\n" + body)
}

func TestDecisionLinksRoundTrip(t *testing.T) {
	const requestAddr = "team-request@example.com"
	tok := NewToken()
	accept, reject, discard := DecisionLinks(requestAddr, tok)
	tests := []struct {
		name, link, body string
		want             Command
	}{
		{"accept", accept, "", Command{Verb: Accept, Token: tok}},
		{"accept with a signature", accept, "\n-- \nMod\n", Command{Verb: Accept, Token: tok}},
		{"discard", discard, "Sent from my phone\n", Command{Verb: Discard, Token: tok}},
		{"reject without reason", reject, "", Command{Verb: Reject, Token: tok}},
		{"reject with a reason", reject, "Off topic here.\nTry the other list.\n-- \nMod\n", Command{Verb: Reject, Token: tok, Reason: "Off topic here. Try the other list."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mailFromLink(t, tt.link, "mod@example.org", tt.body)
			if !strings.Contains(string(m), "To: "+requestAddr+"\r\n") {
				t.Errorf("mail is not to %s:\n%s", requestAddr, m)
			}
			req, err := Parse(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(req.Commands) == 0 {
				t.Fatalf("no command in %q", m)
			}
			got := req.Commands[0]
			got.Line, got.InSubject = "", false
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
		})
	}
}
