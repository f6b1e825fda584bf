package rules

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
)

// Message is a stored message for "run now": its header and its raw
// text, as the IMAP job fetches it.
type Message struct {
	Header mail.Header
	raw    []byte
	body   *string
}

// ReadMessage parses a raw message (header, blank line, body).
func ReadMessage(raw []byte) (*Message, error) {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return &Message{Header: m.Header, raw: raw}, nil
}

// Delivery is where a message is stored and with which flags.
type Delivery struct {
	Folder string
	Flags  []string // `\Seen`, `\Flagged`, sorted
}

// Outcome is what the rules do to a message, as Pigeonhole would on
// delivery.
type Outcome struct {
	// Stores is where the message ends up, in order; "INBOX" is where it
	// already is (the implicit keep). Empty when deleted or refused.
	Stores   []Delivery
	Forwards []string
	// Reject is the refusal's message, if refused.
	Reject string
	// Failed: the actions conflicted (a reject after a rule filed or
	// forwarded the message); Pigeonhole then only keeps it, and so does
	// Evaluate.
	Failed bool
	// Keep: the implicit keep stands (no move, delete or reject), and
	// KeepFlags are the flags it stores with. On delivery the keep is the
	// INBOX entry of Stores; run-now leaves the message where it is.
	Keep      bool
	KeepFlags []string
}

// Inbox is the folder of the implicit keep.
const Inbox = "INBOX"

// Evaluate runs validated rules on m as their compiled script runs in
// Pigeonhole: text compared ignoring ASCII case (i;ascii-casemap), headers
// decoded from RFC 2047, From and To/Cc by their addresses, body as the
// decoded text of its text parts, flags applying to the stores after them
// and to the implicit keep.
func Evaluate(rules []Rule, m *Message) Outcome {
	return Prepare(rules).Evaluate(m)
}

// Program is validated rules prepared for evaluating many messages: their
// patterns compiled once.
type Program struct {
	rules []Rule
	match [][]func(string) bool // per rule, per condition
}

// Prepare compiles the rules' patterns for Evaluate; rules must be
// validated.
func Prepare(rules []Rule) *Program {
	p := &Program{rules: rules, match: make([][]func(string) bool, len(rules))}
	for i, r := range rules {
		for _, c := range r.Conditions {
			p.match[i] = append(p.match[i], matcher(c.Op, c.Value))
		}
	}
	return p
}

// Evaluate decides what the program's rules do to m (see the function
// Evaluate).
func (p *Program) Evaluate(m *Message) Outcome {
	var out Outcome
	var flags []string
	keep := true
	store := func(folder string) {
		for _, d := range out.Stores {
			if d.Folder == folder {
				return // Pigeonhole stores once per folder
			}
		}
		out.Stores = append(out.Stores, Delivery{folder, slices.Clone(flags)})
	}
rules:
	for i, r := range p.rules {
		if !r.Enabled || !r.holds(m, p.match[i]) {
			continue
		}
		for _, a := range ordered(r.Actions) {
			switch a.Kind {
			case MarkRead, Flag:
				f := `\Seen`
				if a.Kind == Flag {
					f = `\Flagged`
				}
				if !slices.Contains(flags, f) {
					flags = append(flags, f)
					slices.Sort(flags)
				}
			case Move:
				store(a.Folder)
				keep = false
			case Copy:
				store(a.Folder)
			case Forward:
				if !slices.Contains(out.Forwards, a.Address) {
					out.Forwards = append(out.Forwards, a.Address)
				}
			case Reject:
				if len(out.Stores) > 0 || len(out.Forwards) > 0 {
					return Outcome{Stores: []Delivery{{Folder: Inbox}}, Failed: true, Keep: true}
				}
				out.Reject = a.Message
				return out
			case Delete:
				keep = false
				break rules
			case Stop:
				break rules
			}
		}
	}
	if keep {
		store(Inbox)
		out.Keep, out.KeepFlags = true, flags
	}
	return out
}

func (r Rule) holds(m *Message, match []func(string) bool) bool {
	if len(r.Conditions) == 0 {
		return true
	}
	for j, c := range r.Conditions {
		ok := c.holds(m, match[j]) != c.Negate
		if r.Match == Any && ok {
			return true
		}
		if r.Match == All && !ok {
			return false
		}
	}
	return r.Match == All
}

func (c Condition) holds(m *Message, match func(string) bool) bool {
	var values []string
	switch c.Field {
	case Size:
		n, _ := ParseSize(c.Value)
		size := m.size()
		if c.Op == Over {
			return size > n
		}
		return size < n
	case From:
		values = addresses(m.Header, "From")
	case ToCc:
		values = append(addresses(m.Header, "To"), addresses(m.Header, "Cc")...)
	case Subject:
		values = headers(m.Header, "Subject")
	case Header:
		values = headers(m.Header, c.Header)
	case Body:
		values = []string{m.text()}
	}
	return slices.ContainsFunc(values, match)
}

// size is the message's size as Dovecot counts it on delivery: lines end
// in CRLF.
func (m *Message) size() int64 {
	n := int64(len(m.raw))
	for i, b := range m.raw {
		if b == '\n' && (i == 0 || m.raw[i-1] != '\r') {
			n++
		}
	}
	return n
}

// headers returns each field named name, unfolded and decoded from RFC
// 2047 words; an undecodable word stays as written.
func headers(h mail.Header, name string) []string {
	var dec mime.WordDecoder
	var out []string
	for _, v := range h[textproto.CanonicalMIMEHeaderKey(name)] {
		v = strings.TrimSpace(strings.NewReplacer("\r\n", "", "\n", "").Replace(v))
		if d, err := dec.DecodeHeader(v); err == nil {
			v = d
		}
		out = append(out, v)
	}
	return out
}

// addresses returns the addresses in the fields named name; a field that
// does not parse counts as one address, its whole text, as Pigeonhole
// takes it.
func addresses(h mail.Header, name string) []string {
	var out []string
	for _, v := range headers(h, name) {
		list, err := mail.ParseAddressList(v)
		if err != nil {
			out = append(out, v)
			continue
		}
		for _, a := range list {
			out = append(out, a.Address)
		}
	}
	return out
}

// matcher returns the comparison for op and value under i;ascii-casemap.
func matcher(op Op, value string) func(string) bool {
	v := asciiLower(value)
	switch op {
	case Is:
		return func(s string) bool { return asciiLower(s) == v }
	case Contains:
		return func(s string) bool { return strings.Contains(asciiLower(s), v) }
	case Matches:
		re := regexp.MustCompile("^(?s)" + wildcard(v) + "$")
		return func(s string) bool { return re.MatchString(asciiLower(s)) }
	case Regex:
		// Validated by CheckRegex. (?i) folds beyond ASCII, which
		// Pigeonhole's C-locale regcomp does not.
		re, err := regexp.Compile("(?i)" + value)
		if err != nil {
			return func(string) bool { return false }
		}
		return re.MatchString
	}
	return func(string) bool { return false }
}

// wildcard turns a Sieve :matches pattern into a regexp: "*" any run, "?"
// one character, "\" quotes the next.
func wildcard(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '\\':
			if i+1 < len(p) {
				i++
				b.WriteString(regexp.QuoteMeta(p[i : i+1]))
			}
		default:
			j := i + 1
			for j < len(p) && p[j] != '*' && p[j] != '?' && p[j] != '\\' {
				j++
			}
			b.WriteString(regexp.QuoteMeta(p[i:j]))
			i = j - 1
		}
	}
	return b.String()
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// maxBodyText caps what body tests read of a message.
const maxBodyText = 1 << 20

// text is the decoded text of m's text parts, as body :text sees it
// (charsets other than UTF-8 and ASCII are not converted).
func (m *Message) text() string {
	if m.body != nil {
		return *m.body
	}
	parsed, err := mail.ReadMessage(bytes.NewReader(m.raw))
	s := ""
	if err == nil {
		var b strings.Builder
		textParts(textproto.MIMEHeader(parsed.Header), parsed.Body, &b, 0)
		s = b.String()
	}
	m.body = &s
	return s
}

func textParts(h textproto.MIMEHeader, body io.Reader, b *strings.Builder, depth int) {
	if depth > 10 || b.Len() > maxBodyText {
		return
	}
	ct, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		ct = "text/plain"
	}
	if strings.HasPrefix(ct, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			textParts(p.Header, p, b, depth+1)
		}
	}
	if !strings.HasPrefix(ct, "text/") {
		return
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &newlineSkipper{bufio.NewReader(body)})
	}
	data, _ := io.ReadAll(io.LimitReader(body, maxBodyText))
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	b.Write(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")))
}

// newlineSkipper drops line breaks from base64 text.
type newlineSkipper struct{ r *bufio.Reader }

func (n *newlineSkipper) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		c, err := n.r.ReadByte()
		if err != nil {
			if i > 0 {
				return i, nil
			}
			return 0, err
		}
		if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
			p[i] = c
			i++
		}
	}
	return i, nil
}
