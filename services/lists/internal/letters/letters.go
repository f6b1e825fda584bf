// Package letters writes the mails a list sends on its own behalf
// (confirmations, welcomes, notices, moderators' decisions, command
// results) in the list's language.
//
// A letter is a Kind: a name, the keys its texts take, and a Text per
// language (a Subject and a Body, text/template strings over a Data map).
// Kinds are plain values declared beside their texts, so a feature adds
// its letters in a file of its own (a var of type Kind) without touching
// anyone else's; CheckKind tells a test whether every language of a kind
// renders with every key. Write renders one into a whole RFC 5322 mail
// marked as an automatic reply (RFC 3834).
package letters

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/template"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/google/uuid"
)

// Lang is a language a list writes in: its ISO 639-1 code.
type Lang string

// The languages of the lists (the proto's Language).
const (
	EN Lang = "en"
	FR Lang = "fr"
	DE Lang = "de"
	IT Lang = "it"
	ES Lang = "es"
)

// Langs are the languages every Kind has a Text in.
var Langs = []Lang{EN, FR, DE, IT, ES}

// Text is one language's words of a letter: text/template strings whose
// {{.Key}} fields come from Data. A fragment (a line of a results mail)
// has no Subject.
type Text struct{ Subject, Body string }

// Kind is one letter the list writes, in every language.
type Kind struct {
	// Name identifies it in logs and tests.
	Name string
	// Keys are the Data keys its texts use, each of them in every
	// language; Write refuses data lacking one.
	Keys []string
	// Text holds one Text per language of Langs.
	Text map[Lang]Text
}

// Data are the values of a letter's keys. Values are plain text; the
// body is text/plain, so nothing is escaped.
type Data map[string]string

// maxValue caps one value put in a letter: what people write (a
// subject, a reason) is cut there rather than mailed at any length.
const maxValue = 4000

// Render returns k's subject and body in lang (English when lang has
// none) with data. A key of Keys missing from data, or one the text uses
// that Keys does not declare, is an error.
func (k Kind) Render(lang Lang, data Data) (subject, body string, err error) {
	t, ok := k.Text[lang]
	if !ok {
		t = k.Text[EN]
	}
	for _, key := range k.Keys {
		if _, ok := data[key]; !ok {
			return "", "", fmt.Errorf("letter %s: no value for %s", k.Name, key)
		}
	}
	vals := make(map[string]string, len(k.Keys))
	for _, key := range k.Keys {
		v := data[key]
		if len(v) > maxValue {
			v = strings.ToValidUTF8(v[:maxValue], "") + "…"
		}
		vals[key] = v
	}
	exec := func(part, src string) (string, error) {
		tp, err := template.New(k.Name + "." + part).Option("missingkey=error").Parse(src)
		if err != nil {
			return "", fmt.Errorf("letter %s (%s) %s: %w", k.Name, lang, part, err)
		}
		var b strings.Builder
		if err := tp.Execute(&b, vals); err != nil {
			return "", fmt.Errorf("letter %s (%s) %s: %w", k.Name, lang, part, err)
		}
		return b.String(), nil
	}
	if subject, err = exec("subject", t.Subject); err != nil {
		return "", "", err
	}
	// A subject is one line whatever the values hold.
	subject = strings.Join(strings.Fields(subject), " ")
	if body, err = exec("body", t.Body); err != nil {
		return "", "", err
	}
	return subject, body, nil
}

// Header is who a letter goes from and to.
type Header struct {
	// From is the list robot it comes from: -owner when a reply should
	// reach the moderators, -request when it should reach the commands.
	From gomail.Address
	To   string
	// InReplyTo is the Message-ID (without angle brackets) of the mail
	// answered, if any; it threads the answer under it.
	InReplyTo string
	// Domain is the list's, for the Message-ID.
	Domain string
	Date   time.Time
}

// Write renders k in lang with data as a whole mail: From, To, Date,
// Message-ID, the Subject (RFC 2047-encoded when not ASCII), In-Reply-To
// and References when answering, Auto-Submitted: auto-replied (RFC 3834)
// and X-Auto-Response-Suppress: All (Exchange's), so that vacation
// programs stay quiet, and a UTF-8 quoted-printable text/plain body.
func Write(h Header, k Kind, lang Lang, data Data) ([]byte, error) {
	subject, body, err := k.Render(lang, data)
	if err != nil {
		return nil, err
	}
	if subject == "" {
		return nil, fmt.Errorf("letter %s: a fragment, not a letter", k.Name)
	}
	var mh gomail.Header
	date := h.Date
	if date.IsZero() {
		date = time.Now()
	}
	mh.SetDate(date)
	mh.SetAddressList("From", []*gomail.Address{&h.From})
	mh.SetAddressList("To", []*gomail.Address{{Address: h.To}})
	mh.SetMessageID(uuid.Must(uuid.NewV7()).String() + "@" + h.Domain)
	if id := strings.Trim(h.InReplyTo, "<> \t"); id != "" && !strings.ContainsAny(id, " \t\r\n<>") {
		mh.SetMsgIDList("In-Reply-To", []string{id})
		mh.SetMsgIDList("References", []string{id})
	}
	mh.SetSubject(subject)
	mh.Set("Auto-Submitted", "auto-replied")
	mh.Set("X-Auto-Response-Suppress", "All")
	mh.Set("Content-Language", string(lang))
	mh.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	mh.Set("Content-Transfer-Encoding", "quoted-printable")
	var buf bytes.Buffer
	w, err := gomail.CreateSingleInlineWriter(&buf, mh)
	if err != nil {
		return nil, fmt.Errorf("letter %s: %w", k.Name, err)
	}
	if _, err := io.WriteString(w, body); err != nil {
		return nil, fmt.Errorf("letter %s: %w", k.Name, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("letter %s: %w", k.Name, err)
	}
	return buf.Bytes(), nil
}

// Date formats t for a letter: ISO 8601 in UTC, which every language
// reads alike.
func Date(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// CheckKind reports what is wrong with k: a language of Langs without a
// text, a text that does not render with every key set, or one that
// leaves a key out; a fragment (no Subject) in one language and not in
// another. Tests call it for every Kind.
func CheckKind(k Kind) error {
	data := Data{}
	for _, key := range k.Keys {
		data[key] = "⟦" + key + "⟧"
	}
	fragment := k.Text[EN].Subject == ""
	for _, lang := range Langs {
		t, ok := k.Text[lang]
		if !ok {
			return fmt.Errorf("letter %s: no %s text", k.Name, lang)
		}
		if (t.Subject == "") != fragment {
			return fmt.Errorf("letter %s (%s): a subject where English has none, or none where it has one", k.Name, lang)
		}
		if strings.TrimSpace(t.Body) == "" {
			return fmt.Errorf("letter %s (%s): empty body", k.Name, lang)
		}
		subject, body, err := k.Render(lang, data)
		if err != nil {
			return err
		}
		for _, key := range k.Keys {
			if !strings.Contains(subject+body, data[key]) {
				return fmt.Errorf("letter %s (%s): %s not used", k.Name, lang, key)
			}
		}
		if lang != EN && t == k.Text[EN] {
			return fmt.Errorf("letter %s (%s): the English text, not a translation", k.Name, lang)
		}
	}
	for lang := range k.Text {
		if !slices.Contains(Langs, lang) {
			return fmt.Errorf("letter %s: text in unknown language %q", k.Name, lang)
		}
	}
	return nil
}
