package rules_test

import (
	"testing"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

// golden is a representative rule set and the script it compiles to.
var golden = []rules.Rule{
	{Name: "Work", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Contains, Value: "@work.example"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Work/Inbound"}, {Kind: rules.MarkRead}, {Kind: rules.Stop}}},
	{Name: "Old", Enabled: false, Match: rules.All, Actions: []rules.Action{{Kind: rules.Delete}}},
	{Name: `Big "or" lists \ #`, Enabled: true, Match: rules.Any,
		Conditions: []rules.Condition{
			{Field: rules.Size, Op: rules.Over, Value: "5M"},
			{Field: rules.Header, Header: "List-Id", Op: rules.Regex, Value: `^<[a-z]+\.example\.org>$`},
			{Field: rules.ToCc, Op: rules.Matches, Value: "*@lists.example", Negate: true},
			{Field: rules.Subject, Op: rules.Is, Value: `"; discard; "`},
			{Field: rules.Body, Op: rules.Contains, Value: "unsubscribe"},
		},
		Actions: []rules.Action{{Kind: rules.Copy, Folder: "Lists"}, {Kind: rules.Flag}, {Kind: rules.Forward, Address: "boss@example.com"}}},
	{Name: "No", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Is, Value: "pest@spam.example"}},
		Actions:    []rules.Action{{Kind: rules.Reject, Message: "Go away.\n.\nReally."}}},
	{Name: "All the rest", Enabled: true, Match: rules.All, Actions: []rules.Action{{Kind: rules.Delete}}},
}

const goldenScript = `# Mailplane: this address's filters, written by the filters service; edits here are overwritten.
require ["body", "copy", "fileinto", "imap4flags", "mailbox", "regex", "reject"];

# rule 1: Work
if address :all :contains "from" "@work.example" {
    addflag "\\Seen";
    fileinto :create "Work/Inbound";
    stop;
}

# rule 2: Old (disabled)

# rule 3: Big "or" lists \ #
if anyof (size :over 5242880,
        header :regex "List-Id" "^<[a-z]+\\.example\\.org>$",
        not address :all :matches ["to", "cc"] "*@lists.example",
        header :is "subject" "\"; discard; \"",
        body :text :contains "unsubscribe") {
    addflag "\\Flagged";
    fileinto :copy :create "Lists";
    redirect :copy "boss@example.com";
}

# rule 4: No
if address :all :is "from" "pest@spam.example" {
    reject text:
Go away.
..
Really.
.
;
    stop;
}

# rule 5: All the rest
if true {
    discard;
    stop;
}
`

func TestCompileGolden(t *testing.T) {
	got, err := rules.Compile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != goldenScript {
		t.Fatalf("got\n%s\nwant\n%s", got, goldenScript)
	}
	sievec(t, got)
}

func TestCompileEmpty(t *testing.T) {
	got, err := rules.Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	sievec(t, got)
}

func TestCompileInvalid(t *testing.T) {
	if _, err := rules.Compile([]rules.Rule{{Name: "x", Match: rules.All}}); err == nil {
		t.Fatal("compiled a rule without actions")
	}
}
