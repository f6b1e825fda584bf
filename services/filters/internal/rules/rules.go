// Package rules is the filters service's rule model: a customer's ordered
// rules on incoming mail, their validation (errors naming the rule and
// the field), their compilation to the personal Sieve script that
// Pigeonhole runs on delivery, and the platform's own scripts around it.
// It is pure: no database, no network, so that the service, the mail store
// agent and the "run now" job share one model.
package rules

import (
	"fmt"
	"net/mail"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Match says how a rule's conditions combine.
type Match string

// The ways conditions combine.
const (
	All Match = "all" // every condition holds (Sieve allof)
	Any Match = "any" // at least one holds (Sieve anyof)
)

// Field is what a condition looks at.
type Field string

// The fields a condition can test.
const (
	From    Field = "from"    // the From address
	ToCc    Field = "to_cc"   // any To or Cc address
	Subject Field = "subject" // the decoded Subject
	Header  Field = "header"  // the decoded header named by Condition.Header
	Size    Field = "size"    // the message size in bytes
	Body    Field = "body"    // the decoded text of the body
)

// Op is how a condition compares.
type Op string

// The comparisons. Text comparisons ignore ASCII case, as Sieve's default
// comparator i;ascii-casemap does.
const (
	Is       Op = "is"       // equal
	Contains Op = "contains" // substring
	Matches  Op = "matches"  // wildcard: * any run, ? one character
	Regex    Op = "regex"    // POSIX extended regular expression
	Over     Op = "over"     // size above Value
	Under    Op = "under"    // size below Value
)

// Condition is one test of a rule.
type Condition struct {
	Field Field
	// Header names the header for Field Header (like "List-Id").
	Header string
	Op     Op
	// Value is the text compared, or for Size a number of bytes with an
	// optional K, M or G suffix (1024-based, as in Sieve).
	Value string
	// Negate inverts the test (Sieve "not").
	Negate bool
}

// Kind is what an action does.
type Kind string

// The actions.
const (
	Move     Kind = "move"      // file into Folder (created when missing) instead of the inbox
	Copy     Kind = "copy"      // file a copy into Folder, and keep going
	MarkRead Kind = "mark_read" // set \Seen
	Flag     Kind = "flag"      // set \Flagged
	Forward  Kind = "forward"   // send a copy to Address, keeping the message
	Reject   Kind = "reject"    // refuse the message with Message; ends the rules
	Delete   Kind = "delete"    // drop the message; ends the rules
	Stop     Kind = "stop"      // apply no further rules
)

// Action is one thing a rule does when its conditions hold.
type Action struct {
	Kind Kind
	// Folder for Move and Copy: an IMAP name, "/" between levels.
	Folder string
	// Address for Forward.
	Address string
	// Message for Reject, the text the sender gets back.
	Message string
}

// Rule is one of an address's filters.
type Rule struct {
	Name       string
	Enabled    bool
	Match      Match
	Conditions []Condition
	Actions    []Action
}

// Limits on what a customer may store; each is a cap on what they can
// push at the mail server, which runs every rule on every delivery.
const (
	MaxRules       = 200  // rules per address
	MaxConditions  = 20   // conditions per rule
	MaxActions     = 10   // actions per rule
	MaxName        = 100  // characters of a rule's name
	MaxValue       = 1000 // bytes of a condition's value
	MaxHeader      = 76   // bytes of a header name
	MaxMessage     = 5000 // bytes of a reject message
	MaxFolder      = 255  // bytes of a folder name
	MaxFolderDepth = 10   // levels of a folder name
	MaxAddress     = 254  // bytes of a forward address (RFC 5321)
	MaxSize        = 1 << 40
)

// Violation is one thing wrong with a rule list: Field is its path, like
// "rules[2].conditions[0].value", Description says what is wrong and names
// the rule.
type Violation struct {
	Field       string
	Description string
}

// Error is every violation found in a rule list; the service turns it into
// an InvalidArgument with one field violation each.
type Error []Violation

func (e Error) Error() string {
	var b strings.Builder
	for i, v := range e {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(v.Field + ": " + v.Description)
	}
	return b.String()
}

// Validate checks a whole rule list, in order, and returns an Error
// listing every violation, or nil.
func Validate(rules []Rule) error {
	var e Error
	if len(rules) > MaxRules {
		e = append(e, Violation{"rules", fmt.Sprintf("%d rules, at most %d", len(rules), MaxRules)})
		return e
	}
	for i, r := range rules {
		e = append(e, r.violations(fmt.Sprintf("rules[%d]", i), i)...)
	}
	if len(e) == 0 {
		return nil
	}
	return e
}

// Validate checks one rule at position i of its list (for the error's
// field path) and returns an Error, or nil.
func (r Rule) Validate(i int) error {
	if e := r.violations(fmt.Sprintf("rules[%d]", i), i); len(e) > 0 {
		return e
	}
	return nil
}

func (r Rule) violations(path string, i int) Error {
	var e Error
	who := fmt.Sprintf("rule %d", i+1)
	if strings.TrimSpace(r.Name) != "" && utf8.ValidString(r.Name) {
		who += " " + strconv.Quote(r.Name)
	}
	bad := func(field, format string, args ...any) {
		e = append(e, Violation{path + field, who + ": " + fmt.Sprintf(format, args...)})
	}
	switch n := utf8.RuneCountInString(r.Name); {
	case strings.TrimSpace(r.Name) == "":
		bad(".name", "a name is required")
	case n > MaxName:
		bad(".name", "name of %d characters, at most %d", n, MaxName)
	default:
		if err := text(r.Name, false); err != nil {
			bad(".name", "%v", err)
		}
	}
	switch r.Match {
	case All, Any:
	default:
		bad(".match", "match %q: must be all or any", r.Match)
	}
	if len(r.Conditions) > MaxConditions {
		bad(".conditions", "%d conditions, at most %d", len(r.Conditions), MaxConditions)
	} else {
		for j, c := range r.Conditions {
			if err := c.check(); err != nil {
				bad(fmt.Sprintf(".conditions[%d]%s", j, err.field), "%s", err.msg)
			}
		}
	}
	switch {
	case len(r.Actions) == 0:
		bad(".actions", "at least one action is required")
	case len(r.Actions) > MaxActions:
		bad(".actions", "%d actions, at most %d", len(r.Actions), MaxActions)
	default:
		for j, a := range r.Actions {
			if err := a.check(); err != nil {
				bad(fmt.Sprintf(".actions[%d]%s", j, err.field), "%s", err.msg)
				continue
			}
			switch a.Kind {
			case Stop, Reject, Delete:
				if j < len(r.Actions)-1 {
					bad(fmt.Sprintf(".actions[%d].kind", j), "%s ends the rules: it must be the last action", a.Kind)
				}
			}
			if a.Kind == Reject {
				// Pigeonhole refuses to reject a message it also delivers.
				for _, b := range r.Actions {
					if b.Kind == Move || b.Kind == Copy || b.Kind == Forward {
						bad(fmt.Sprintf(".actions[%d].kind", j), "reject cannot be combined with %s", b.Kind)
						break
					}
				}
			}
		}
	}
	return e
}

type fieldError struct{ field, msg string }

func (c Condition) check() *fieldError {
	switch c.Field {
	case From, ToCc, Subject, Body:
		if c.Header != "" {
			return &fieldError{".header", fmt.Sprintf("a header name only goes with field header, not %s", c.Field)}
		}
	case Header:
		if err := headerName(c.Header); err != nil {
			return &fieldError{".header", err.Error()}
		}
	case Size:
		if c.Op != Over && c.Op != Under {
			return &fieldError{".op", fmt.Sprintf("op %q: size takes over or under", c.Op)}
		}
		if _, err := ParseSize(c.Value); err != nil {
			return &fieldError{".value", err.Error()}
		}
		return nil
	default:
		return &fieldError{".field", fmt.Sprintf("field %q: must be one of from, to_cc, subject, header, size, body", c.Field)}
	}
	switch c.Op {
	case Is, Contains, Matches, Regex:
	case Over, Under:
		return &fieldError{".op", fmt.Sprintf("op %q only goes with field size", c.Op)}
	default:
		return &fieldError{".op", fmt.Sprintf("op %q: must be one of is, contains, matches, regex", c.Op)}
	}
	if c.Field == Body && c.Op != Contains {
		// Body tests are costly; contains is what the product offers.
		return &fieldError{".op", fmt.Sprintf("op %q: body takes contains", c.Op)}
	}
	if len(c.Value) > MaxValue {
		return &fieldError{".value", fmt.Sprintf("value of %d bytes, at most %d", len(c.Value), MaxValue)}
	}
	if c.Value == "" && c.Op != Is {
		return &fieldError{".value", "a value is required"}
	}
	if err := text(c.Value, false); err != nil {
		return &fieldError{".value", err.Error()}
	}
	if c.Op == Regex {
		if err := CheckRegex(c.Value); err != nil {
			return &fieldError{".value", err.Error()}
		}
	}
	return nil
}

func (a Action) check() *fieldError {
	extra := func(field, name, v string) *fieldError {
		if v != "" {
			return &fieldError{"." + field, fmt.Sprintf("%s only goes with %s", field, name)}
		}
		return nil
	}
	switch a.Kind {
	case Move, Copy:
		if err := CheckFolder(a.Folder); err != nil {
			return &fieldError{".folder", err.Error()}
		}
		if e := extra("address", "forward", a.Address); e != nil {
			return e
		}
		return extra("message", "reject", a.Message)
	case Forward:
		if err := checkAddress(a.Address); err != nil {
			return &fieldError{".address", err.Error()}
		}
		if e := extra("folder", "move and copy", a.Folder); e != nil {
			return e
		}
		return extra("message", "reject", a.Message)
	case Reject:
		if strings.TrimSpace(a.Message) == "" {
			return &fieldError{".message", "a message is required"}
		}
		if len(a.Message) > MaxMessage {
			return &fieldError{".message", fmt.Sprintf("message of %d bytes, at most %d", len(a.Message), MaxMessage)}
		}
		if err := text(strings.ReplaceAll(a.Message, "\r\n", "\n"), true); err != nil {
			return &fieldError{".message", err.Error()}
		}
		if e := extra("folder", "move and copy", a.Folder); e != nil {
			return e
		}
		return extra("address", "forward", a.Address)
	case MarkRead, Flag, Delete, Stop:
		if e := extra("folder", "move and copy", a.Folder); e != nil {
			return e
		}
		if e := extra("address", "forward", a.Address); e != nil {
			return e
		}
		return extra("message", "reject", a.Message)
	default:
		return &fieldError{".kind", fmt.Sprintf("kind %q: must be one of move, copy, mark_read, flag, forward, reject, delete, stop", a.Kind)}
	}
}

// text reports what a Sieve string (see platform/sieve) cannot hold:
// bytes that are not UTF-8, NUL, CR, and LF outside multi-line text; and
// other control characters, which no one types.
func text(s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for i, r := range s {
		if r == '\t' || r == '\n' && multiline {
			continue
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("control character %s at byte %d", strconv.QuoteRune(r), i)
		}
	}
	return nil
}

// headerName checks an RFC 5322 field name: printable ASCII but colon.
func headerName(h string) error {
	if h == "" {
		return fmt.Errorf("a header name is required")
	}
	if len(h) > MaxHeader {
		return fmt.Errorf("header name of %d bytes, at most %d", len(h), MaxHeader)
	}
	for i := 0; i < len(h); i++ {
		if h[i] <= ' ' || h[i] > '~' || h[i] == ':' {
			return fmt.Errorf("header name %q: character %q not allowed", h, h[i])
		}
	}
	return nil
}

// ParseSize reads a size condition's value: digits with an optional K, M
// or G (1024-based), as Sieve writes sizes.
func ParseSize(v string) (int64, error) {
	if v == "" {
		return 0, fmt.Errorf("a size is required, like 500K or 10M")
	}
	mult := int64(1)
	switch v[len(v)-1] {
	case 'k', 'K':
		mult = 1 << 10
	case 'm', 'M':
		mult = 1 << 20
	case 'g', 'G':
		mult = 1 << 30
	}
	digits := v
	if mult > 1 {
		digits = v[:len(v)-1]
	}
	n, err := strconv.ParseUint(digits, 10, 63)
	if err != nil || digits == "" || digits[0] == '+' {
		return 0, fmt.Errorf("size %q: digits with an optional K, M or G, like 500K", v)
	}
	if n > uint64(MaxSize/mult) {
		return 0, fmt.Errorf("size %q: at most 1024G", v)
	}
	return int64(n) * mult, nil
}

// CheckFolder checks a folder name a rule files into: an IMAP mailbox
// name with "/" between levels, each level non-empty and not "." or "..",
// no control characters, no IMAP wildcards "*" and "%", no leading "~"
// (a home directory for Dovecot), at most MaxFolder bytes and
// MaxFolderDepth levels.
func CheckFolder(f string) error {
	switch {
	case f == "":
		return fmt.Errorf("a folder is required")
	case len(f) > MaxFolder:
		return fmt.Errorf("folder name of %d bytes, at most %d", len(f), MaxFolder)
	case !utf8.ValidString(f):
		return fmt.Errorf("folder name not valid UTF-8")
	case f[0] == '~':
		return fmt.Errorf("folder %q: must not start with ~", f)
	}
	for i, r := range f {
		if unicode.IsControl(r) || r == '*' || r == '%' || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("folder %q: character %s at byte %d not allowed", f, strconv.QuoteRune(r), i)
		}
	}
	levels := strings.Split(f, "/")
	if len(levels) > MaxFolderDepth {
		return fmt.Errorf("folder %q: %d levels, at most %d", f, len(levels), MaxFolderDepth)
	}
	for _, l := range levels {
		switch {
		case l == "":
			return fmt.Errorf("folder %q: empty level (leading, trailing or double /)", f)
		case l == "." || l == "..":
			return fmt.Errorf("folder %q: level %q not allowed", f, l)
		case strings.TrimSpace(l) != l:
			return fmt.Errorf("folder %q: level %q starts or ends with a space", f, l)
		}
	}
	return nil
}

func checkAddress(a string) error {
	if a == "" {
		return fmt.Errorf("an address is required")
	}
	if len(a) > MaxAddress {
		return fmt.Errorf("address of %d bytes, at most %d", len(a), MaxAddress)
	}
	p, err := mail.ParseAddress(a)
	if err != nil || p.Name != "" || p.Address != a || !strings.Contains(a, "@") {
		return fmt.Errorf("address %q: a plain address like anna@example.com", a)
	}
	if text(a, false) != nil || strings.ContainsAny(a, "\"\\ ") {
		return fmt.Errorf("address %q: a plain address like anna@example.com", a)
	}
	return nil
}

// CheckRegex checks a regex condition: Pigeonhole compiles it with POSIX
// regcomp (REG_EXTENDED, REG_ICASE, REG_NOSUB), so it must be an extended
// regular expression; Go's parser without Perl extensions (syntax.POSIX)
// reads close to that. Where glibc and Go part, it is refused, so that a
// rule never means one thing on delivery and another in "run now":
// backslash before a letter or digit (\d \w \b \1: Perl classes in one,
// GNU extensions or back-references in the other), a backslash inside
// brackets (literal in POSIX, an escape in Go), collating elements and
// equivalence classes ("[.", "[="), a "{" that is not a repeat count, a
// repeat after "^" or "$" or a non-ASCII character, empty groups and alternatives, nested repeats.
func CheckRegex(re string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid regex: "+format, args...)
	}
	prev := byte(0) // the last token outside brackets: 0 at the start
	for i := 0; i < len(re); i++ {
		switch c := re[i]; c {
		case '\\':
			if i+1 == len(re) {
				return bad("trailing backslash")
			}
			n := re[i+1]
			if n >= 'a' && n <= 'z' || n >= 'A' && n <= 'Z' || n >= '0' && n <= '9' {
				return bad("\\%c is not POSIX extended syntax", n)
			}
			i++
			prev = 'a'
		case '[':
			j := i + 1
			if j < len(re) && re[j] == '^' {
				j++
			}
			if j < len(re) && re[j] == ']' {
				j++
			}
			for ; j < len(re) && re[j] != ']'; j++ {
				switch {
				case re[j] == '\\':
					return bad("backslash inside brackets")
				case re[j] == '[' && j+1 < len(re) && (re[j+1] == '.' || re[j+1] == '='):
					return bad("collating elements and equivalence classes are not supported")
				case re[j] == '[' && j+1 < len(re) && re[j+1] == ':':
					k := strings.Index(re[j:], ":]")
					if k < 0 {
						return bad("unterminated character class")
					}
					j += k + 1
				}
			}
			if j >= len(re) {
				return bad("missing ]")
			}
			i = j
			prev = 'a'
		case '{':
			k := strings.IndexByte(re[i:], '}')
			if k < 0 || !repeatCount(re[i+1:i+k]) {
				return bad("{ at byte %d is not a repeat count like {2} or {2,5} (write \\{ for the character)", i)
			}
			if prev == 0 || prev == '(' || prev == '|' || prev == '^' || prev == '$' || prev >= 0x80 {
				return bad("repeat at byte %d follows nothing or a non-ASCII character", i)
			}
			i += k
			prev = '*'
		case '*', '+', '?':
			if prev == 0 || prev == '(' || prev == '|' || prev == '^' || prev == '$' {
				return bad("%c at byte %d follows nothing", c, i)
			}
			if prev >= 0x80 {
				// glibc in Dovecot's C locale repeats the last byte, Go the
				// last character.
				return bad("%c at byte %d repeats a non-ASCII character: write (ä)%c", c, i, c)
			}
			prev = '*'
		default:
			prev = c
		}
	}
	for _, s := range []string{"()", "(|", "|)", "||"} {
		if strings.Contains(re, s) {
			return bad("empty group or alternative %q", s)
		}
	}
	if strings.HasPrefix(re, "|") || strings.HasSuffix(re, "|") && !strings.HasSuffix(re, `\|`) {
		return bad("empty alternative")
	}
	if _, err := syntax.Parse(re, syntax.POSIX); err != nil {
		return bad("%w", err)
	}
	return nil
}

// repeatCount reports whether s is the inside of a POSIX repeat: n, n, or
// n,m, at most 255 (Go's own limit is 1000).
func repeatCount(s string) bool {
	lo, hi, comma := strings.Cut(s, ",")
	n, err := strconv.Atoi(lo)
	if err != nil || n > 255 || lo[0] == '+' || lo[0] == '-' {
		return false
	}
	if !comma || hi == "" {
		return true
	}
	m, err := strconv.Atoi(hi)
	return err == nil && m >= n && m <= 255 && hi[0] != '+' && hi[0] != '-'
}
