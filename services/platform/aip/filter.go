package aip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailplane/mailplane/services/platform/errs"
)

// MaxFilterLength caps a filter, in bytes: enough for every term a list
// allows, small enough that parsing one costs nothing.
const MaxFilterLength = 512

// Match says how a filter may compare a field.
type Match int

// The comparisons. A field allowing Prefix allows Equal as well.
const (
	Equal Match = iota + 1
	Prefix
)

// Term is one comparison of a filter: Field = "Value", or, when Prefix,
// Field = "Value*" (the field starts with Value).
type Term struct {
	Field  string
	Value  string
	Prefix bool
}

// Filter is a parsed filter: the AND of its terms, at most one per field.
type Filter []Term

// Get returns the term on field, if the filter has one.
func (f Filter) Get(field string) (Term, bool) {
	for _, t := range f {
		if t.Field == field {
			return t, true
		}
	}
	return Term{}, false
}

// String returns f in the canonical form ParseFilter reads.
func (f Filter) String() string {
	terms := make([]string, len(f))
	for i, t := range f {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `*`, `\*`).Replace(t.Value)
		if t.Prefix {
			v += "*"
		}
		terms[i] = t.Field + ` = "` + v + `"`
	}
	return strings.Join(terms, " AND ")
}

// ParseFilter parses a filter in a small subset of AIP-160: terms of the
// form `field = "value"` joined by AND, where a trailing * asks for a prefix
// (`local_part = "sal*"`) and \ escapes a quote, a backslash or a literal *.
// A value without spaces or quotes may go unquoted (`user = users/123`).
// Field names are proto names or their JSON form (localPart). fields lists
// the fields a list can be filtered on and how. The result is data for the
// service to turn into SQL parameters, never SQL text. Errors name filter
// and quote the offending term.
func ParseFilter(filter string, fields map[string]Match) (Filter, error) {
	if len(filter) > MaxFilterLength {
		return nil, errs.Field("filter", fmt.Sprintf("must be at most %d bytes", MaxFilterLength))
	}
	s := scanner{in: filter}
	var f Filter
	for {
		s.space()
		if s.done() {
			if len(f) == 0 {
				return nil, nil
			}
			return nil, s.fail("", "a term must follow AND")
		}
		start := s.pos
		t, err := s.term(fields)
		if err != nil {
			return nil, err
		}
		if _, dup := f.Get(t.Field); dup {
			return nil, s.fail(filter[start:s.pos], fmt.Sprintf("%s is filtered twice; one term per field", t.Field))
		}
		f = append(f, t)
		s.space()
		if s.done() {
			return f, nil
		}
		word := s.word()
		if word != "AND" {
			if word == "OR" || word == "NOT" || word == "and" {
				return nil, s.fail(word, "only AND (upper case) joins terms")
			}
			return nil, s.fail(filter[start:], "expected AND after a term")
		}
	}
}

// scanner walks a filter left to right.
type scanner struct {
	in  string
	pos int
}

func (s *scanner) done() bool { return s.pos >= len(s.in) }

func (s *scanner) space() {
	for !s.done() && (s.in[s.pos] == ' ' || s.in[s.pos] == '\t') {
		s.pos++
	}
}

// word reads up to the next space, quote or operator.
func (s *scanner) word() string {
	start := s.pos
	for !s.done() && !strings.ContainsRune(" \t\"=:<>!()", rune(s.in[s.pos])) {
		s.pos++
	}
	return s.in[start:s.pos]
}

func (s *scanner) fail(term, problem string) error {
	if term == "" {
		return errs.Field("filter", problem)
	}
	return errs.Field("filter", fmt.Sprintf("%q: %s", term, problem))
}

func (s *scanner) term(fields map[string]Match) (Term, error) {
	start := s.pos
	name := s.word()
	if name == "" {
		return Term{}, s.fail(s.rest(start), "expected a field name")
	}
	field := snakeCase(name)
	match, ok := fields[field]
	if !ok {
		return Term{}, s.fail(name, "unknown field; filterable: "+filterable(fields))
	}
	s.space()
	if s.done() || s.in[s.pos] != '=' {
		return Term{}, s.fail(s.rest(start), "expected = after the field name (no other operator is supported)")
	}
	s.pos++
	s.space()
	value, prefix, err := s.value()
	if err != nil {
		return Term{}, s.fail(s.rest(start), err.Error())
	}
	if prefix && match != Prefix {
		return Term{}, s.fail(s.in[start:s.pos], field+" takes an exact value, not a prefix")
	}
	if prefix && value == "" {
		return Term{}, s.fail(s.in[start:s.pos], "an empty prefix matches everything; leave the term out")
	}
	return Term{Field: field, Value: value, Prefix: prefix}, nil
}

// rest is the input from start, for quoting a term that did not parse.
func (s *scanner) rest(start int) string {
	end := min(len(s.in), start+40)
	return s.in[start:end]
}

// value reads a quoted or bare value and reports whether it ends with an
// unescaped *.
func (s *scanner) value() (string, bool, error) {
	if s.done() {
		return "", false, fmt.Errorf("expected a value after =")
	}
	quoted := s.in[s.pos] == '"'
	if quoted {
		s.pos++
	}
	var b strings.Builder
	prefix := false
	for {
		if s.done() {
			if quoted {
				return "", false, fmt.Errorf("missing closing quote")
			}
			break
		}
		c := s.in[s.pos]
		if quoted && c == '"' {
			s.pos++
			break
		}
		if !quoted && strings.IndexByte(" \t\"=:<>!()", c) >= 0 {
			break
		}
		if prefix {
			return "", false, fmt.Errorf("* may only end a value (escape a literal one as \\*)")
		}
		s.pos++
		switch c {
		case '\\':
			if s.done() || !strings.ContainsRune(`"\*`, rune(s.in[s.pos])) {
				return "", false, fmt.Errorf(`\ escapes only ", \ and *`)
			}
			b.WriteByte(s.in[s.pos])
			s.pos++
		case '*':
			prefix = true
		default:
			b.WriteByte(c)
		}
	}
	if !quoted && b.Len() == 0 && !prefix {
		return "", false, fmt.Errorf("expected a value after =")
	}
	return b.String(), prefix, nil
}

func filterable(fields map[string]Match) string {
	var names []string
	for f := range fields {
		names = append(names, f)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
