package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mailplane/mailplane/services/platform/sieve"
)

// Compile returns the personal Sieve script (RFC 5228) running rules in
// order: each enabled rule an "if" whose test is its conditions and whose
// block is its actions; disabled rules only a comment. It requires just the
// extensions used. Every customer string goes through platform/sieve's
// escaping, and rules are validated first: an invalid list is an Error.
//
// Within a rule, mark_read and flag come first: imap4flags flags apply to
// the fileinto and keep actions that follow them, so a rule "move to X and
// mark read" files X read whatever order the customer listed them in.
// Forward keeps the message (redirect :copy), delete and reject end the
// rules (a later rule must not file what was deleted or refused).
func Compile(rules []Rule) (string, error) {
	if err := Validate(rules); err != nil {
		return "", err
	}
	var body strings.Builder
	need := map[string]bool{}
	for i, r := range rules {
		// A validated name holds no line break, so it cannot end the comment.
		fmt.Fprintf(&body, "\n# rule %d: %s", i+1, r.Name)
		if !r.Enabled {
			body.WriteString(" (disabled)\n")
			continue
		}
		body.WriteString("\n")
		test, err := ruleTest(r, need)
		if err != nil {
			return "", fmt.Errorf("rules[%d]: %w", i, err)
		}
		body.WriteString("if " + test + " {\n")
		for _, a := range ordered(r.Actions) {
			line, err := action(a, need)
			if err != nil {
				return "", fmt.Errorf("rules[%d]: %w", i, err)
			}
			body.WriteString(line)
		}
		body.WriteString("}\n")
	}
	var b strings.Builder
	b.WriteString("# Mailplane: this address's filters, written by the filters service; edits here are overwritten.\n")
	if len(need) > 0 {
		b.WriteString(requireLine(need))
	}
	b.WriteString(body.String())
	return b.String(), nil
}

// requireLine is the "require" command for the extensions in need, sorted
// so that the same rules give the same script.
func requireLine(need map[string]bool) string {
	var exts []string
	for e := range need {
		exts = append(exts, strconv.Quote(e))
	}
	slices.Sort(exts)
	return "require [" + strings.Join(exts, ", ") + "];\n"
}

// ordered returns the actions with the flag actions first, the others in
// their order.
func ordered(as []Action) []Action {
	out := make([]Action, 0, len(as))
	for _, a := range as {
		if a.Kind == MarkRead || a.Kind == Flag {
			out = append(out, a)
		}
	}
	for _, a := range as {
		if a.Kind != MarkRead && a.Kind != Flag {
			out = append(out, a)
		}
	}
	return out
}

func ruleTest(r Rule, need map[string]bool) (string, error) {
	if len(r.Conditions) == 0 {
		return "true", nil
	}
	tests := make([]string, len(r.Conditions))
	for j, c := range r.Conditions {
		t, err := condition(c, need)
		if err != nil {
			return "", fmt.Errorf("conditions[%d]: %w", j, err)
		}
		tests[j] = t
	}
	if len(tests) == 1 {
		return tests[0], nil
	}
	of := "allof"
	if r.Match == Any {
		of = "anyof"
	}
	return of + " (" + strings.Join(tests, ",\n        ") + ")", nil
}

func condition(c Condition, need map[string]bool) (string, error) {
	var t string
	if c.Field == Size {
		n, err := ParseSize(c.Value)
		if err != nil {
			return "", err
		}
		t = fmt.Sprintf("size :%s %d", c.Op, n)
	} else {
		v, err := sieve.Quote(c.Value)
		if err != nil {
			return "", err
		}
		match := ":" + string(c.Op)
		if c.Op == Regex {
			need["regex"] = true
		}
		switch c.Field {
		case From:
			t = "address :all " + match + ` "from" ` + v
		case ToCc:
			t = "address :all " + match + ` ["to", "cc"] ` + v
		case Subject:
			t = "header " + match + ` "subject" ` + v
		case Header:
			h, err := sieve.Quote(c.Header)
			if err != nil {
				return "", err
			}
			t = "header " + match + " " + h + " " + v
		case Body:
			need["body"] = true
			t = "body :text " + match + " " + v
		}
	}
	if c.Negate {
		t = "not " + t
	}
	return t, nil
}

func action(a Action, need map[string]bool) (string, error) {
	const in = "    "
	switch a.Kind {
	case Move, Copy:
		f, err := sieve.Quote(a.Folder)
		if err != nil {
			return "", err
		}
		need["fileinto"], need["mailbox"] = true, true
		if a.Kind == Copy {
			need["copy"] = true
			return in + "fileinto :copy :create " + f + ";\n", nil
		}
		return in + "fileinto :create " + f + ";\n", nil
	case MarkRead, Flag:
		need["imap4flags"] = true
		flag := `\Seen`
		if a.Kind == Flag {
			flag = `\Flagged`
		}
		f, _ := sieve.Quote(flag)
		return in + "addflag " + f + ";\n", nil
	case Forward:
		addr, err := sieve.Quote(a.Address)
		if err != nil {
			return "", err
		}
		need["copy"] = true
		return in + "redirect :copy " + addr + ";\n", nil
	case Reject:
		msg := strings.ReplaceAll(a.Message, "\r\n", "\n")
		var m string
		var err error
		if strings.Contains(msg, "\n") {
			// Text ends in the "." line; the ";" follows on its own line.
			m, err = sieve.Text(msg)
		} else {
			m, err = sieve.Quote(msg)
		}
		if err != nil {
			return "", err
		}
		need["reject"] = true
		return in + "reject " + m + ";\n" + in + "stop;\n", nil
	case Delete:
		return in + "discard;\n" + in + "stop;\n", nil
	case Stop:
		return in + "stop;\n", nil
	}
	return "", fmt.Errorf("action %q", a.Kind)
}
