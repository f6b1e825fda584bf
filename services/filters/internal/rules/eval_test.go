package rules_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

// sameRules is a rule set touching every field, op and action kind.
var sameRules = []rules.Rule{
	{Name: "boss", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Is, Value: "BOSS@Work.example"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Work/Boss"}, {Kind: rules.Flag}, {Kind: rules.Stop}}},
	{Name: "off", Enabled: false, Match: rules.All, Actions: []rules.Action{{Kind: rules.Delete}}},
	{Name: "lists", Enabled: true, Match: rules.Any,
		Conditions: []rules.Condition{
			{Field: rules.Header, Header: "List-Id", Op: rules.Regex, Value: `<[a-z]+\.lists\.example>$`},
			{Field: rules.ToCc, Op: rules.Matches, Value: "*@lists.example"}},
		Actions: []rules.Action{{Kind: rules.Copy, Folder: "Lists"}, {Kind: rules.MarkRead}}},
	{Name: "big", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Size, Op: rules.Over, Value: "2K"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Big"}}},
	{Name: "euro", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Subject, Op: rules.Contains, Value: "rechnung über"}, {Field: rules.Body, Op: rules.Contains, Value: "iban", Negate: true}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Rechnungen"}, {Kind: rules.Forward, Address: "books@example.com"}}},
	{Name: "body", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.Body, Op: rules.Contains, Value: "winner"}},
		Actions:    []rules.Action{{Kind: rules.Delete}}},
	{Name: "pest", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Contains, Value: "pest"}},
		Actions:    []rules.Action{{Kind: rules.Reject, Message: "No thanks."}}},
}

var sameMessages = map[string]string{
	"boss":         "From: The Boss <boss@work.example>\nTo: anna@example.com\nSubject: Now\n\nCome.\n",
	"list":         "From: x@y.example\nTo: anna@example.com\nList-Id: Talk <talk.lists.example>\nSubject: hi\n\nhi\n",
	"list cc":      "From: x@y.example\nTo: anna@example.com\nCc: Talk <TALK@lists.example>\nSubject: hi\n\nhi\n",
	"big":          "From: x@y.example\nTo: anna@example.com\nSubject: big\n\n" + strings.Repeat("0123456789abcdef\n", 130),
	"encoded":      "From: shop@y.example\nTo: anna@example.com\nSubject: =?UTF-8?Q?Ihre_Rechnung_=C3=BCber_12_=E2=82=AC?=\n\nDanke.\n",
	"encoded iban": "From: shop@y.example\nTo: anna@example.com\nSubject: =?UTF-8?B?UkVDSE5VTkcgw7xiZXI=?=\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\nIB=\nAN: DE00\n",
	"multipart":    "From: x@y.example\nTo: anna@example.com\nSubject: prize\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nWW91IGFyZSBhIFdJTk5F\nUiE=\n--b\nContent-Type: image/png\n\nwinner\n--b--\n",
	"pest":         "From: pest@y.example\nTo: anna@example.com\nSubject: hi\n\nhi\n",
	"list pest":    "From: pest@y.example\nTo: talk@lists.example\nSubject: hi\n\nhi\n",
	"plain":        "From: x@y.example\nTo: anna@example.com\nSubject: Rechnung\n\nwin ner\n",
}

// TestEvaluateAsPigeonhole runs each message through the compiled script
// in Pigeonhole and through Evaluate: both store it in the same folders
// with the same flags, forward it to the same addresses, or refuse it.
func TestEvaluateAsPigeonhole(t *testing.T) {
	script, err := rules.Compile(sameRules)
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range sameMessages {
		t.Run(name, func(t *testing.T) {
			m, err := rules.ReadMessage([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			want := rules.Evaluate(sameRules, m)
			out, dir := sieveTest(t, strings.ReplaceAll(raw, "\n", "\r\n"), nil, script)
			got := rules.Outcome{Reject: map[bool]string{true: "No thanks."}[strings.Contains(out, "reject action: rejected message")]}
			got.Failed = strings.Contains(out, "final result: failed")
			for _, f := range regexp.MustCompile(`Info: sieve: .*redirect action: forwarded to <([^>]*)>`).FindAllStringSubmatch(out, -1) {
				got.Forwards = append(got.Forwards, f[1])
			}
			got.Stores = maildir(t, filepath.Join(dir, "Maildir"))
			slices.SortFunc(want.Stores, func(a, b rules.Delivery) int { return strings.Compare(a.Folder, b.Folder) })
			t.Log(dump(got))
			if g, w := dump(got), dump(want); g != w {
				t.Fatalf("Pigeonhole %s, Evaluate %s:\n%s", g, w, out)
			}
			if name == "plain" && (len(want.Stores) != 1 || want.Stores[0].Folder != rules.Inbox) {
				t.Fatalf("plain: %s", dump(want))
			}
		})
	}
}

func dump(o rules.Outcome) string {
	var b strings.Builder
	for _, d := range o.Stores {
		b.WriteString(d.Folder + strings.Join(d.Flags, "") + " ")
	}
	return b.String() + "fwd=" + strings.Join(o.Forwards, ",") + " reject=" + o.Reject + " failed=" + map[bool]string{true: "yes"}[o.Failed]
}

// maildir lists the messages stored under root (LAYOUT=fs: INBOX at the
// top, folders as directories) with their flags, by folder.
func maildir(t *testing.T, root string) []rules.Delivery {
	var out []rules.Delivery
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		dir := filepath.Base(filepath.Dir(path))
		if dir != "new" && dir != "cur" {
			return nil
		}
		folder, _ := filepath.Rel(root, filepath.Dir(filepath.Dir(path)))
		if folder == "." {
			folder = rules.Inbox
		}
		var flags []string
		if _, info, ok := strings.Cut(d.Name(), ":2,"); ok {
			if strings.Contains(info, "F") {
				flags = append(flags, `\Flagged`)
			}
			if strings.Contains(info, "S") {
				flags = append(flags, `\Seen`)
			}
		}
		out = append(out, rules.Delivery{Folder: folder, Flags: flags})
		return nil
	})
	slices.SortFunc(out, func(a, b rules.Delivery) int { return strings.Compare(a.Folder, b.Folder) })
	if _, err := os.Stat(root); err != nil && len(out) > 0 {
		t.Fatal(err)
	}
	return out
}

// FuzzEvaluate feeds Evaluate any message against the test rules and a
// fuzzed condition: it must not panic, must decide the same twice, store
// a message at most once per folder, and a failed run keeps it in the
// INBOX alone.
func FuzzEvaluate(f *testing.F) {
	for _, raw := range sameMessages {
		f.Add(raw, "winner", uint8(0), uint8(1))
	}
	f.Add("Subject: =?x?Q?=ZZ?=\nContent-Type: multipart/mixed; boundary=\"\"\n\n--\n", "*\\", uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, raw, value string, field, op uint8) {
		m, err := rules.ReadMessage([]byte(raw))
		if err != nil {
			return
		}
		rs := append(fuzzRules("fuzz", value, "X-A", "F", "", field, op, 0, false)[:1], sameRules...)
		if rules.Validate(rs) != nil {
			rs = sameRules
		}
		o := rules.Evaluate(rs, m)
		if again := rules.Evaluate(rs, m); dump(again) != dump(o) {
			t.Fatalf("%s, then %s", dump(o), dump(again))
		}
		seen := map[string]bool{}
		for _, d := range o.Stores {
			if seen[d.Folder] {
				t.Fatalf("stored twice in %s: %s", d.Folder, dump(o))
			}
			seen[d.Folder] = true
		}
		if o.Failed && (len(o.Stores) != 1 || o.Stores[0].Folder != rules.Inbox || o.Reject != "") {
			t.Fatalf("failed but %s", dump(o))
		}
	})
}
