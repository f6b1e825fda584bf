package rules_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

func ok() rules.Rule {
	return rules.Rule{
		Name: "Work", Enabled: true, Match: rules.All,
		Conditions: []rules.Condition{{Field: rules.From, Op: rules.Contains, Value: "@work.example"}},
		Actions:    []rules.Action{{Kind: rules.Move, Folder: "Work/Inbound"}},
	}
}

func TestValidateAccepts(t *testing.T) {
	r := ok()
	r.Conditions = append(r.Conditions,
		rules.Condition{Field: rules.Header, Header: "List-Id", Op: rules.Regex, Value: `^<[a-z]+\.example\.org>$`},
		rules.Condition{Field: rules.Size, Op: rules.Over, Value: "10M", Negate: true},
		rules.Condition{Field: rules.Body, Op: rules.Contains, Value: `"; discard; "`},
		rules.Condition{Field: rules.Subject, Op: rules.Is, Value: ""})
	r.Actions = []rules.Action{{Kind: rules.MarkRead}, {Kind: rules.Copy, Folder: "Ärchiv/2026 Q1"}, {Kind: rules.Forward, Address: "boss@example.com"}, {Kind: rules.Stop}}
	if err := rules.Validate([]rules.Rule{r, {Name: "Go away", Match: rules.Any, Actions: []rules.Action{{Kind: rules.Reject, Message: "No.\nReally."}}}}); err != nil {
		t.Fatal(err)
	}
}

// TestValidateNames has each bad input refused with the rule and field
// named.
func TestValidateNames(t *testing.T) {
	for _, tt := range []struct {
		edit  func(*rules.Rule)
		field string
		desc  string
	}{
		{func(r *rules.Rule) { r.Conditions[0].Op = rules.Regex; r.Conditions[0].Value = "a(b" }, "rules[1].conditions[0].value", `rule 2 "Work": invalid regex`},
		{func(r *rules.Rule) { r.Conditions[0].Op = rules.Regex; r.Conditions[0].Value = `\d+` }, "rules[1].conditions[0].value", "not POSIX"},
		{func(r *rules.Rule) { r.Conditions[0].Op = rules.Regex; r.Conditions[0].Value = `a(?i)b` }, "rules[1].conditions[0].value", "invalid regex"},
		{func(r *rules.Rule) { r.Conditions[0].Op = rules.Regex; r.Conditions[0].Value = `a||b` }, "rules[1].conditions[0].value", "empty"},
		{func(r *rules.Rule) { r.Conditions[0].Value = "a\nb" }, "rules[1].conditions[0].value", "control character"},
		{func(r *rules.Rule) { r.Conditions[0].Value = strings.Repeat("a", rules.MaxValue+1) }, "rules[1].conditions[0].value", "at most"},
		{func(r *rules.Rule) { r.Conditions[0].Op = rules.Over }, "rules[1].conditions[0].op", "only goes with field size"},
		{func(r *rules.Rule) { r.Conditions[0].Field = rules.Size; r.Conditions[0].Value = "-3" }, "rules[1].conditions[0].op", "size takes over or under"},
		{func(r *rules.Rule) { r.Conditions[0] = rules.Condition{Field: rules.Size, Op: rules.Over, Value: "3X"} }, "rules[1].conditions[0].value", "digits"},
		{func(r *rules.Rule) {
			r.Conditions[0] = rules.Condition{Field: rules.Size, Op: rules.Over, Value: "99999999G"}
		}, "rules[1].conditions[0].value", "at most"},
		{func(r *rules.Rule) { r.Conditions[0].Field = rules.Header }, "rules[1].conditions[0].header", "required"},
		{func(r *rules.Rule) { r.Conditions[0].Field = rules.Header; r.Conditions[0].Header = "X Bad:" }, "rules[1].conditions[0].header", "not allowed"},
		{func(r *rules.Rule) { r.Conditions[0].Field = "date" }, "rules[1].conditions[0].field", `field "date"`},
		{func(r *rules.Rule) { r.Conditions[0].Field = rules.Body; r.Conditions[0].Op = rules.Regex }, "rules[1].conditions[0].op", "body takes contains"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "Work/*" }, "rules[1].actions[0].folder", "not allowed"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "Work/%" }, "rules[1].actions[0].folder", "not allowed"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "Work//x" }, "rules[1].actions[0].folder", "empty level"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "/Work" }, "rules[1].actions[0].folder", "empty level"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "a/../b" }, "rules[1].actions[0].folder", "not allowed"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "~root" }, "rules[1].actions[0].folder", "~"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "a\tb" }, "rules[1].actions[0].folder", "not allowed"},
		{func(r *rules.Rule) { r.Actions[0].Folder = strings.Repeat("a/", 11) + "a" }, "rules[1].actions[0].folder", "levels"},
		{func(r *rules.Rule) { r.Actions[0].Folder = "" }, "rules[1].actions[0].folder", "required"},
		{func(r *rules.Rule) {
			r.Actions[0] = rules.Action{Kind: rules.Forward, Address: "Bob <bob@example.com>"}
		}, "rules[1].actions[0].address", "plain address"},
		{func(r *rules.Rule) { r.Actions[0] = rules.Action{Kind: rules.Forward, Address: `"a\"b"@example.com`} }, "rules[1].actions[0].address", "plain address"},
		{func(r *rules.Rule) { r.Actions[0] = rules.Action{Kind: rules.Reject} }, "rules[1].actions[0].message", "required"},
		{func(r *rules.Rule) { r.Actions[0] = rules.Action{Kind: rules.Reject, Message: "x\x00"} }, "rules[1].actions[0].message", "control"},
		{func(r *rules.Rule) { r.Actions[0].Kind = "archive" }, "rules[1].actions[0].kind", `kind "archive"`},
		{func(r *rules.Rule) { r.Actions = append([]rules.Action{{Kind: rules.Stop}}, r.Actions...) }, "rules[1].actions[0].kind", "last action"},
		{func(r *rules.Rule) { r.Actions = append(r.Actions, rules.Action{Kind: rules.Reject, Message: "no"}) }, "rules[1].actions[1].kind", "cannot be combined with move"},
		{func(r *rules.Rule) { r.Actions = nil }, "rules[1].actions", "at least one"},
		{func(r *rules.Rule) { r.Actions = make([]rules.Action, rules.MaxActions+1) }, "rules[1].actions", "at most"},
		{func(r *rules.Rule) { r.Conditions = make([]rules.Condition, rules.MaxConditions+1) }, "rules[1].conditions", "at most"},
		{func(r *rules.Rule) { r.Match = "most" }, "rules[1].match", "all or any"},
		{func(r *rules.Rule) { r.Name = " " }, "rules[1].name", "rule 2: a name is required"},
		{func(r *rules.Rule) { r.Name = strings.Repeat("é", rules.MaxName+1) }, "rules[1].name", "at most"},
	} {
		r := ok()
		tt.edit(&r)
		err := rules.Validate([]rules.Rule{ok(), r})
		var e rules.Error
		if !errors.As(err, &e) {
			t.Errorf("want %s: %v, got %v", tt.field, tt.desc, err)
			continue
		}
		if e[0].Field != tt.field || !strings.Contains(e[0].Description, tt.desc) {
			t.Errorf("want %s: …%s…, got %v", tt.field, tt.desc, err)
		}
	}
	if err := rules.Validate(make([]rules.Rule, rules.MaxRules+1)); err == nil || !strings.Contains(err.Error(), "at most 200") {
		t.Errorf("201 rules: %v", err)
	}
}

// TestRegexAgreesWithPigeonhole has sievec compile every regex that
// CheckRegex accepts, among ones where Go and glibc part.
func TestRegexAgreesWithPigeonhole(t *testing.T) {
	accepted := 0
	for _, re := range []string{`a{`, `a{x}`, `{1}`, `${x}`, `^*`, `$*`, `a**`, `a*?`, `[\]]`, `[[.a.]]`, `[[:alpha:]]+`, `[]a]`, `[^]a]`,
		`a{2,3}`, `a{3,2}`, `(a|b)`, `()`, `a||b`, `\.`, `\{`, `x$`, `^x`, `a{256}`, `[a-`, `(`, `)`, `a)`, `*a`, `a|*`, `[[:foo:]]`, `ä+`, `.`, `a{1,}`} {
		err := rules.CheckRegex(re)
		t.Logf("%-12s %v", re, err)
		if err != nil {
			continue
		}
		accepted++
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(re)
		sievec(t, "require \"regex\";\nif header :regex \"subject\" \""+q+"\" { stop; }\n")
	}
	if accepted < 10 {
		t.Fatalf("only %d accepted", accepted)
	}
}
