package accounts

import (
	"strings"
	"testing"
)

// TestNoticeNamesArePlainText: names people choose cannot add lines to an
// invitation (a header, a fake paragraph) nor reorder it with bidi
// controls.
func TestNoticeNamesArePlainText(t *testing.T) {
	subject, body, err := render("invitation", "en", map[string]string{
		"Organization": "Acme\r\nBcc: victim@example.com", "Inviter": "Eve\u202egnp.exe\u2066\u200f", "Role": "member",
		"Purpose": "line one\nClick https://evil.example", "Link": "https://app.mailplane.test/invitations/x", "Expires": "2026-01-01",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subject, "\r\n") || !strings.Contains(subject, "Acme  Bcc: victim@example.com") {
		t.Errorf("subject %q", subject)
	}
	for _, bad := range []string{"\r", "\nBcc", "\nClick", "\u202e", "\u2066", "\u200f"} {
		if strings.Contains(subject+body, bad) {
			t.Errorf("notice holds %q:\n%s\n%s", bad, subject, body)
		}
	}
	if !strings.Contains(body, "Evegnp.exe invites you") {
		t.Errorf("body:\n%s", body)
	}
}
