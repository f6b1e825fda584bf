package letters

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
)

// kinds are this file's package's letters; a Kind declared elsewhere is
// checked by its own test with CheckKind.
var kinds = []Kind{
	HeldPostPending, HeldPostRejected, ModeratePost,
	ConfirmJoin, ConfirmLeave, AlreadyMember, NotMember, JoinPending, JoinRejected, Welcome, Goodbye, ModerateJoin,
	Results, ResJoin, ResDone, ResBadToken, ResNotAllowed, ResNotPending, ResFailed, ResUnknown, ResMissing,
	ResTooMany, ResBadAddress, ResBadCode, ResTruncated, ResNone, Help, ReasonNotMember, ReasonAnnounce,
}

func TestKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range kinds {
		if seen[k.Name] {
			t.Errorf("two kinds named %s", k.Name)
		}
		seen[k.Name] = true
		if err := CheckKind(k); err != nil {
			t.Error(err)
		}
	}
}

func TestCheckKindFinds(t *testing.T) {
	ok := Text{"s {{.A}}", "b"}
	all := func(t Text) map[Lang]Text {
		return map[Lang]Text{EN: t, FR: {"f {{.A}}", "b"}, DE: {"d {{.A}}", "b"}, IT: {"i {{.A}}", "b"}, ES: {"e {{.A}}", "b"}}
	}
	for name, k := range map[string]Kind{
		"missing language": {Name: "x", Keys: []string{"A"}, Text: map[Lang]Text{EN: ok}},
		"undeclared key":   {Name: "x", Keys: []string{"A"}, Text: all(Text{"s {{.A}} {{.B}}", "b"})},
		"unused key":       {Name: "x", Keys: []string{"A", "C"}, Text: all(ok)},
		"untranslated":     {Name: "x", Keys: []string{"A"}, Text: all(Text{"f {{.A}}", "b"})},
		"bad template":     {Name: "x", Keys: []string{"A"}, Text: all(Text{"s {{.A}", "b"})},
	} {
		if err := CheckKind(k); err == nil {
			t.Errorf("%s: CheckKind found nothing", name)
		}
	}
	if err := CheckKind(Kind{Name: "x", Keys: []string{"A"}, Text: all(ok)}); err != nil {
		t.Errorf("a good kind: %v", err)
	}
}

func TestRenderMissingValue(t *testing.T) {
	if _, _, err := Welcome.Render(FR, Data{"List": "team@example.org"}); err == nil {
		t.Fatal("rendered without Email, Message, Post, Leave")
	}
}

// TestWrite parses every letter back: headers well-formed, the subject
// and body decode to what was rendered, in every language.
func TestWrite(t *testing.T) {
	date := time.Date(2026, 12, 6, 4, 30, 0, 0, time.UTC)
	for _, k := range kinds {
		if k.Text[EN].Subject == "" {
			continue
		}
		for _, lang := range Langs {
			data := Data{}
			for _, key := range k.Keys {
				// Values as people write them: non-ASCII, quotes,
				// newlines where a subject must not break.
				data[key] = "Zoë \"<x>\"\n" + key + " ünïcödé"
			}
			raw, err := Write(Header{From: gomail.Address{Name: "Équipe, «team»", Address: "team-owner@example.org"}, To: "ann@example.com",
				InReplyTo: "<abc@example.com>", Domain: "example.org", Date: date}, k, lang, data)
			if err != nil {
				t.Fatalf("%s %s: %v", k.Name, lang, err)
			}
			for _, l := range bytes.Split(raw, []byte("\r\n")) {
				if len(l) > 998 {
					t.Fatalf("%s %s: line of %d bytes", k.Name, lang, len(l))
				}
				for _, c := range l {
					if c >= 0x80 || c == '\n' {
						t.Fatalf("%s %s: not 7-bit clean: %q", k.Name, lang, l)
					}
				}
			}
			e, err := message.Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("%s %s: parse: %v", k.Name, lang, err)
			}
			h := gomail.Header{Header: e.Header}
			wantSubject, wantBody, _ := k.Render(lang, data)
			if s, err := h.Subject(); err != nil || s != wantSubject || strings.Contains(s, "\n") {
				t.Errorf("%s %s: subject %q, %v; want %q", k.Name, lang, s, err, wantSubject)
			}
			from, err := h.AddressList("From")
			if err != nil || len(from) != 1 || from[0].Address != "team-owner@example.org" || from[0].Name != "Équipe, «team»" {
				t.Errorf("%s %s: From %v, %v", k.Name, lang, from, err)
			}
			if d, err := h.Date(); err != nil || !d.Equal(date) {
				t.Errorf("%s %s: Date %v, %v", k.Name, lang, d, err)
			}
			if id, err := h.MessageID(); err != nil || !strings.HasSuffix(id, "@example.org") {
				t.Errorf("%s %s: Message-ID %q, %v", k.Name, lang, id, err)
			}
			if ids, err := h.MsgIDList("In-Reply-To"); err != nil || len(ids) != 1 || ids[0] != "abc@example.com" {
				t.Errorf("%s %s: In-Reply-To %v, %v", k.Name, lang, ids, err)
			}
			for k2, want := range map[string]string{"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All", "Content-Language": string(lang)} {
				if got := h.Get(k2); got != want {
					t.Errorf("%s %s: %s %q, want %q", k.Name, lang, k2, got, want)
				}
			}
			if ct, p, _ := h.ContentType(); ct != "text/plain" || p["charset"] != "utf-8" {
				t.Errorf("%s %s: Content-Type %s %v", k.Name, lang, ct, p)
			}
			body, _ := io.ReadAll(e.Body)
			if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != wantBody {
				t.Errorf("%s %s: body\n%s\nwant\n%s", k.Name, lang, got, wantBody)
			}
		}
	}
}

func TestWriteRefusesFragment(t *testing.T) {
	if _, err := Write(Header{To: "a@b.c", Domain: "b.c"}, ResDone, EN, Data{"Line": "x"}); err == nil {
		t.Fatal("a fragment was written as a letter")
	}
}

func TestRenderCapsValues(t *testing.T) {
	_, body, err := HeldPostRejected.Render(EN, Data{"List": "l", "Subject": "s", "Reason": strings.Repeat("é", 10000)})
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 2*maxValue {
		t.Fatalf("body of %d bytes: the reason was not capped", len(body))
	}
}
