package rules_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/mailplane/mailplane/services/filters/internal/rules"
)

var (
	fields = []rules.Field{rules.From, rules.ToCc, rules.Subject, rules.Header, rules.Size, rules.Body}
	ops    = []rules.Op{rules.Is, rules.Contains, rules.Matches, rules.Regex, rules.Over, rules.Under}
	kinds  = []rules.Kind{rules.Move, rules.Copy, rules.MarkRead, rules.Flag, rules.Forward, rules.Reject, rules.Delete, rules.Stop}
)

// fuzzRules builds a two-rule list from fuzzed parts: a rule with one
// condition and one action, then a fixed one, so that what the first emits
// must leave the second intact.
func fuzzRules(name, value, header, folder, message string, field, op, kind uint8, negate bool) []rules.Rule {
	a := rules.Action{Kind: kinds[int(kind)%len(kinds)]}
	switch a.Kind {
	case rules.Move, rules.Copy:
		a.Folder = folder
	case rules.Forward:
		a.Address = message
	case rules.Reject:
		a.Message = message
	}
	return []rules.Rule{{
		Name: name, Enabled: true, Match: rules.Any,
		Conditions: []rules.Condition{{Field: fields[int(field)%len(fields)], Header: header, Op: ops[int(op)%len(ops)], Value: value, Negate: negate}},
		Actions:    []rules.Action{a},
	}, {
		Name: "sentinel", Enabled: true, Match: rules.All,
		Actions: []rules.Action{{Kind: rules.Move, Folder: "Sentinel"}},
	}}
}

// FuzzCompile checks that whatever validates compiles to a script of the
// expected shape: outside strings and comments only the words the compiler
// writes, balanced brackets, and exactly the two rules' "if"s, so no input
// added or ended a command.
func FuzzCompile(f *testing.F) {
	f.Add("r", `"; discard; "`, "X-A", "A/B", "text:\n.\nx", uint8(0), uint8(1), uint8(0), false)
	f.Add("r\"}\nstop;", `\\"\`, "List-Id", "a\"/b\\", "bob@example.com", uint8(3), uint8(3), uint8(4), true)
	f.Add("# x", `(a|b)*[[:alpha:]]`, "X", "x", ".\n.\r\n..", uint8(4), uint8(4), uint8(5), false)
	f.Fuzz(func(t *testing.T, name, value, header, folder, message string, field, op, kind uint8, negate bool) {
		rs := fuzzRules(name, value, header, folder, message, field, op, kind, negate)
		script, err := rules.Compile(rs)
		if err != nil {
			if rules.Validate(rs) == nil {
				t.Fatalf("valid rules did not compile: %v", err)
			}
			return
		}
		checkShape(t, script, 2)
	})
}

// words the compiler writes outside strings.
var words = map[string]bool{
	"require": true, "if": true, "allof": true, "anyof": true, "not": true, "true": true,
	"address": true, "header": true, "body": true, "size": true,
	":all": true, ":is": true, ":contains": true, ":matches": true, ":regex": true, ":over": true, ":under": true, ":text": true,
	"fileinto": true, ":create": true, ":copy": true, "addflag": true, "redirect": true, "reject": true, "discard": true, "stop": true,
}

// checkShape lexes script as Sieve does (quoted strings with backslash
// escapes, "text:" multi-line strings ended by a lone ".", "#" comments)
// and checks what is left.
func checkShape(t *testing.T, script string, ifs int) {
	t.Helper()
	var rest strings.Builder
	for i := 0; i < len(script); {
		switch c := script[i]; {
		case c == '"':
			j := i + 1
			for ; j < len(script) && script[j] != '"'; j++ {
				if script[j] == '\\' {
					j++
				}
			}
			if j >= len(script) {
				t.Fatalf("unterminated string at %d:\n%s", i, script)
			}
			rest.WriteString(" S ")
			i = j + 1
		case c == '#':
			j := strings.IndexByte(script[i:], '\n')
			if j < 0 {
				j = len(script) - i
			}
			i += j
		case strings.HasPrefix(script[i:], "text:\n"):
			j := strings.Index(script[i:], "\n.\n")
			if j < 0 {
				t.Fatalf("unterminated text at %d:\n%s", i, script)
			}
			rest.WriteString(" S ")
			i += j + 3
		default:
			rest.WriteByte(c)
			i++
		}
	}
	var opens, ifsSeen int
	for _, tok := range strings.Fields(strings.NewReplacer("{", " { ", "}", " } ", "(", " ( ", ")", " ) ", "[", " [ ", "]", " ] ", ",", " , ", ";", " ; ").Replace(rest.String())) {
		switch tok {
		case "{", "(", "[":
			opens++
		case "}", ")", "]":
			opens--
			if opens < 0 {
				t.Fatalf("unbalanced %s:\n%s", tok, script)
			}
		case "S", ",", ";":
		case "if":
			ifsSeen++
		default:
			if !words[tok] && strings.Trim(tok, "0123456789") != "" {
				t.Fatalf("unexpected word %q:\n%s", tok, script)
			}
		}
	}
	if opens != 0 || ifsSeen != ifs {
		t.Fatalf("%d unclosed brackets, %d ifs (want %d):\n%s", opens, ifsSeen, ifs, script)
	}
}

// TestCompileFuzzedInPigeonhole compiles with sievec rule sets built from
// hostile strings, as the fuzz target does, and checks they parse in
// Pigeonhole: the fuzz target cannot run sievec at its speed.
func TestCompileFuzzedInPigeonhole(t *testing.T) {
	hostile := []string{`"`, `\`, `\"`, "\";\ndiscard;", `"; discard; "`, "text:", ".", "}", "{", "#", "/*", "*/", "$", "${x}",
		"(a|b)+", `[[:digit:]]{2,3}`, "ä✈", "a\tb", "x@y.example", "Work/Sub", "*?", `\*`, "10K"}
	rnd := rand.New(rand.NewPCG(13, 5228))
	pick := func() string {
		var b strings.Builder
		for range 1 + rnd.IntN(3) {
			b.WriteString(hostile[rnd.IntN(len(hostile))])
		}
		return b.String()
	}
	var all []rules.Rule
	for tries := 0; len(all) < 60; tries++ {
		if tries > 100000 {
			t.Fatalf("only %d valid rules in %d tries", len(all), tries)
		}
		rs := fuzzRules(pick(), pick(), []string{"X-A", "List-Id", "Subject"}[rnd.IntN(3)], pick(), pick(), uint8(rnd.IntN(6)), uint8(rnd.IntN(6)), uint8(rnd.IntN(8)), rnd.IntN(2) == 0)
		if rules.Validate(rs[:1]) == nil {
			all = append(all, rs[0])
		}
	}
	// One script of many rules, then each alone: both must parse.
	script, err := rules.Compile(all)
	if err != nil {
		t.Fatal(err)
	}
	checkShape(t, script, len(all))
	sievec(t, script)
	for i := range 10 {
		script, err := rules.Compile(all[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		sievec(t, script)
	}
}
