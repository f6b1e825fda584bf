package lists

import (
	"bytes"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

// TestNoticeMessage: whatever the author's subject and the moderator's
// reason hold (non-ASCII, line breaks, header-like text), the notice is
// one well-formed mail whose headers are its own.
func TestNoticeMessage(t *testing.T) {
	l := &list{localPart: "team", domain: "example.test", displayName: "Équipe"}
	now := time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		a    notice
		want []string
	}{
		{"held", notice{To: "ann@example.org", Subject: "Café", Reason: "the sender is not a member of the list", Expire: now.Add(DefaultHeldPostTTL)},
			[]string{"awaits approval", `"Café"`, "not a member", "2026-12-20 04:00 UTC"}},
		{"held, in the list's language", notice{To: "ann@example.org", Subject: "Café", Reason: "the sender is not a member of the list", Expire: now.Add(DefaultHeldPostTTL)},
			[]string{"attend une approbation", "« Café »", "n'est pas membre", "2026-12-20 04:00 UTC"}},
		{"rejected", notice{To: "ann@example.org", Subject: "x\r\nBcc: eve@example.com", Reason: "No.\r\nBcc: eve@example.com\n\nBye", Rejected: true},
			[]string{"was rejected", "No.", "Bye"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := *l
			if strings.Contains(tc.name, "language") {
				l.language = int16(listsv1.Language_LANGUAGE_FR)
			}
			args, ok, err := renderLetter(&l, heldNotice(&l, tc.a))
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			raw := args.Msg
			m, err := mail.ReadMessage(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("notice does not parse: %v\n%s", err, raw)
			}
			if m.Header.Get("Bcc") != "" || m.Header.Get("Auto-Submitted") != "auto-replied" || m.Header.Get("To") != "<ann@example.org>" ||
				!strings.Contains(m.Header.Get("From"), "team-owner@example.test") {
				t.Errorf("headers %v", m.Header)
			}
			b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
			text := subj + "\n" + string(b)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("notice does not say %q:\n%s", w, text)
				}
			}
		})
	}
}
