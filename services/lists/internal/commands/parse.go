package commands

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // bodies and subjects in ISO-8859-*, Windows-125*, ...
	gomail "github.com/emersion/go-message/mail"
)

// MaxCommands is how many command lines Parse reads, the Subject's
// included; the rest of a mail is not read (Request.Truncated).
const MaxCommands = 10

// Verb is a command a -request mail can give.
type Verb string

// The commands. Join and Leave have the aliases subscribe and unsubscribe.
const (
	Join    Verb = "join"    // join [address]: subscribe the sender or address
	Leave   Verb = "leave"   // leave [address]: unsubscribe the sender or address
	Confirm Verb = "confirm" // confirm TOKEN: confirm what TOKEN was sent for
	Help    Verb = "help"    // help: the list's help text
	Accept  Verb = "accept"  // accept EMAIL|TOKEN: a moderator accepts a subscription or post
	Reject  Verb = "reject"  // reject EMAIL|TOKEN [reason]: a moderator refuses, telling why
	Discard Verb = "discard" // discard EMAIL|TOKEN: a moderator drops it silently
)

var verbs = map[string]Verb{
	"join": Join, "subscribe": Join,
	"leave": Leave, "unsubscribe": Leave,
	"confirm": Confirm, "help": Help,
	"accept": Accept, "reject": Reject, "discard": Discard,
}

// Problem says why a line cannot be done as written; the results mail
// explains it in the list's language.
type Problem string

// The problems of a command line.
const (
	UnknownCommand   Problem = "unknown_command"    // the first word is no command
	MissingArgument  Problem = "missing_argument"   // confirm, accept, reject, discard without one
	TooManyArguments Problem = "too_many_arguments" // words after a command that takes no more
	BadAddress       Problem = "bad_address"        // the argument is no valid email address
	BadToken         Problem = "bad_token"          // confirm's argument is no token NewToken makes
	BadTarget        Problem = "bad_target"         // accept/reject/discard's argument is neither address nor token
)

// Command is one command line of a mail.
type Command struct {
	Verb Verb // empty when Problem is UnknownCommand
	// Address is the email address the command names (addr-spec only):
	// join's and leave's optional one, or what accept, reject and discard
	// decide on when it is a subscription by address.
	Address string
	// Token is confirm's token, or what accept, reject and discard decide on
	// when a moderator answers a decision mail; lower-cased.
	Token string
	// Reason is what reject tells the author; may be empty.
	Reason string
	// Problem is why the command cannot be done as written; empty when it
	// can.
	Problem Problem
	// Line is the line as written (trimmed), for the results mail.
	Line string
	// InSubject says the command came from the Subject.
	InSubject bool
}

// Request is what a mail to a list's -request address asks.
type Request struct {
	// Header is the mail's header, for the sender, Message-ID and Automatic.
	Header gomail.Header
	// Subject is the decoded Subject as written.
	Subject string
	// Commands are the command lines in order, the Subject's first; an
	// identical command given twice (a "Re: confirm TOKEN" Subject and the
	// same line in the body) is kept once.
	Commands []Command
	// Approved is the password of an Approved: (or Approve:) header or body
	// line, which lets a moderator's accept act without a token; empty when
	// none. Checking it is the service's job.
	Approved string
	// Truncated says command lines followed the MaxCommands-th, unread.
	Truncated bool
}

// approvedHeaders are the fields Mailman reads a moderator password from.
var approvedHeaders = []string{"Approved", "Approve", "X-Approved", "X-Approve"}

// Parse reads the commands of a mail to a list's -request address: from the
// Subject, and from the first lines of the first text part (text/plain
// preferred, else text/html reduced to text).
//
// In the Subject, reply and forward prefixes ("Re:", "AW:", "SV:", "RE:",
// "Fwd:") and bracketed tags are skipped. A Subject that is no command is
// ignored rather than reported (people write "Subscribe me please" or
// nothing); one that holds "confirm TOKEN" anywhere ("Re: Your confirmation
// is needed: confirm TOKEN") is a confirm. A Subject "reject TOKEN" without a
// reason takes the body's lines as the reason: that is the mail a
// DecisionLinks reject link produces, the moderator writing why in the body.
//
// In the body, blank lines are skipped; the scan ends at "stop" or "end", at
// a signature separator ("-- "), at a quoted line (">"), at a reply's
// attribution ("On ... wrote:", "Am ... schrieb ...:") or separator
// ("-----Original Message-----", Outlook's underscores, a "From:" header
// block), and after MaxCommands command lines. An "Approved: password" line
// is taken as Request.Approved, not as a command. Lines that are no command
// are reported (Problem UnknownCommand), never an error.
//
// Parse fails only on a mail it cannot read: a malformed header or MIME
// structure.
func Parse(msg []byte) (*Request, error) {
	e, err := message.Read(bytes.NewReader(msg))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, fmt.Errorf("parse mail header: %w", err)
	}
	h := gomail.Header{Header: e.Header}
	req := &Request{Header: h}
	req.Subject, err = h.Subject()
	if err != nil {
		req.Subject = h.Get("Subject") // an unknown charset: keep it as written
	}
	for _, k := range approvedHeaders {
		if v := strings.TrimSpace(h.Get(k)); v != "" {
			req.Approved = v
			break
		}
	}
	lines, err := firstText(e)
	if err != nil {
		return nil, fmt.Errorf("parse mail body: %w", err)
	}

	s := scanner{req: req, seen: map[string]bool{}}
	subject, ok := subjectCommand(req.Subject)
	if ok {
		s.add(subject)
	}
	if ok && subject.Verb == Reject && subject.Reason == "" && subject.Problem == "" {
		s.reason(lines)
		return req, nil
	}
	s.body(lines)
	return req, nil
}

// subjectCommand reads the Subject as a command line, if it is one.
func subjectCommand(subject string) (Command, bool) {
	line := cleanLine(StripPrefixes(subject))
	if line == "" {
		return Command{}, false
	}
	c := parseLine(line)
	c.InSubject = true
	if c.Problem != UnknownCommand {
		return c, true
	}
	// A confirm in the middle: "Your confirmation is needed: confirm TOKEN".
	words := strings.Fields(line)
	for i := 0; i+1 < len(words); i++ {
		if strings.EqualFold(words[i], "confirm") {
			if tok := strings.ToLower(words[i+1]); ValidToken(tok) {
				return Command{Verb: Confirm, Token: tok, Line: line, InSubject: true}, true
			}
		}
	}
	return Command{}, false
}

type scanner struct {
	req  *Request
	seen map[string]bool
}

// add appends c unless the same command was given already; it reports false
// once MaxCommands are taken.
func (s *scanner) add(c Command) bool {
	key := string(c.Verb) + "\x00" + strings.ToLower(c.Address) + "\x00" + c.Token + "\x00" + c.Reason + "\x00" + string(c.Problem)
	if c.Problem == UnknownCommand {
		key += "\x00" + c.Line
	}
	if s.seen[key] {
		return true
	}
	if len(s.req.Commands) >= MaxCommands {
		s.req.Truncated = true
		return false
	}
	s.seen[key] = true
	s.req.Commands = append(s.req.Commands, c)
	return true
}

// body reads command lines until the scan ends.
func (s *scanner) body(lines []string) {
	for _, raw := range lines {
		line := cleanLine(raw)
		if line == "" {
			continue
		}
		if endsScan(line) {
			return
		}
		if pw, ok := approvedLine(line); ok {
			if s.req.Approved == "" {
				s.req.Approved = pw
			}
			continue
		}
		if !s.add(parseLine(line)) {
			return
		}
	}
}

// reason takes the body's lines, up to where a scan would end, as the
// reason of the Subject's reject.
func (s *scanner) reason(lines []string) {
	var words []string
	n := 0
	for _, raw := range lines {
		line := cleanLine(raw)
		if line == "" {
			continue
		}
		if endsScan(line) || n == MaxCommands {
			break
		}
		if pw, ok := approvedLine(line); ok {
			if s.req.Approved == "" {
				s.req.Approved = pw
			}
			continue
		}
		words = append(words, line)
		n++
	}
	s.req.Commands[0].Reason = strings.Join(words, " ")
}

// cleanLine trims white space, non-breaking spaces and a byte order mark.
func cleanLine(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '\ufeff' })
}

// approvedLine reads an "Approved: password" line.
func approvedLine(line string) (string, bool) {
	k, v, ok := strings.Cut(line, ":")
	if !ok {
		return "", false
	}
	k = strings.ToLower(strings.TrimSpace(k))
	if k != "approved" && k != "approve" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// attributionWords end a reply's attribution line ("On Mon, 1 Jan 2024,
// Alice wrote:") in the languages clients write it in.
var attributionWords = []string{
	"wrote", "schrieb", "écrit", "ecrit", "scritto", "escribió", "escribio",
	"escreveu", "skrev", "schreef", "napisał", "kirjoitti",
}

// replyHeaders start the header block Outlook puts above a quoted message.
var replyHeaders = []string{"from:", "von:", "de:", "de :", "da:", "van:", "från:", "fra:"}

// endsScan reports whether line ends the commands: stop, end, a signature,
// a quotation or what introduces one.
func endsScan(line string) bool {
	first, _, _ := strings.Cut(line, " ")
	switch strings.ToLower(first) {
	case "stop", "end":
		return true
	}
	if line == "--" || strings.HasPrefix(line, ">") {
		return true
	}
	if len(line) >= 5 && strings.Trim(line, "_") == "" {
		return true
	}
	if len(line) > 6 && strings.HasPrefix(line, "---") && strings.HasSuffix(line, "---") {
		return true
	}
	lower := strings.ToLower(line)
	for _, p := range replyHeaders {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	if _, isVerb := verbs[strings.ToLower(first)]; !isVerb && strings.HasSuffix(line, ":") {
		for _, w := range attributionWords {
			if strings.Contains(lower, w) {
				return true
			}
		}
	}
	return false
}

// parseLine reads one command line.
func parseLine(line string) Command {
	c := Command{Line: line}
	words := strings.Fields(line)
	v, ok := verbs[strings.ToLower(words[0])]
	if !ok {
		c.Problem = UnknownCommand
		return c
	}
	c.Verb = v
	args := words[1:]
	switch v {
	case Help:
		if len(args) > 0 {
			c.Problem = TooManyArguments
		}
	case Join, Leave:
		switch {
		case len(args) > 1:
			c.Problem = TooManyArguments
		case len(args) == 1:
			a := args[0]
			if len(a) > len("address=") && strings.EqualFold(a[:len("address=")], "address=") {
				a = a[len("address="):] // Mailman 3's form
			}
			c.Address, c.Problem = address(a)
		}
	case Confirm:
		switch {
		case len(args) == 0:
			c.Problem = MissingArgument
		case len(args) > 1:
			c.Problem = TooManyArguments
		default:
			c.Token = strings.ToLower(args[0])
			if !ValidToken(c.Token) {
				c.Token, c.Problem = "", BadToken
			}
		}
	case Accept, Reject, Discard:
		if len(args) == 0 {
			c.Problem = MissingArgument
			break
		}
		if len(args) > 1 {
			if v != Reject {
				c.Problem = TooManyArguments
				break
			}
			// The reason as written, spacing included.
			c.Reason = strings.TrimSpace(line[strings.Index(line, args[0])+len(args[0]):])
		}
		target := args[0]
		switch tok := strings.ToLower(target); {
		case strings.Contains(target, "@"):
			c.Address, c.Problem = address(target)
		case ValidToken(tok):
			c.Token = tok
		default:
			c.Problem = BadTarget
		}
	}
	return c
}

// address reads an address argument: a bare addr-spec, or one in angle
// brackets or after "mailto:" as HTML mail and copying from a client leave
// it.
func address(s string) (string, Problem) {
	if len(s) > len("mailto:") && strings.EqualFold(s[:len("mailto:")], "mailto:") {
		s = s[len("mailto:"):]
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || !strings.Contains(a.Address, "@") {
		return "", BadAddress
	}
	return a.Address, ""
}
