package bounces

import (
	"html"
	"regexp"
	"strings"
	"time"
)

// A textFormat recognizes one family of plain-text bounces by the words
// its software always writes, and reads the failures out of it. The shapes
// come from the MTAs' own templates, as catalogued by Sisimai's Lhost
// modules and Mailman's flufl.bounce detectors.
type textFormat struct {
	name  string
	marks []string // lower-cased; any one identifies the format
	parse func(lines []string, lower string) []Failure
}

func textFormats() []textFormat {
	return []textFormat{
		// qmail-send's template (qmail-send.c), and Yahoo's, which grew
		// from it.
		{"qmail", []string{"this is the qmail-send program", "sorry, we were unable to deliver your message to the following address"}, parseAngle},
		// Postfix's bounce(8) templates without DSN: "This is the mail
		// system at host ..." (older: "This is the Postfix program").
		{"postfix", []string{"this is the mail system at host", "this is the postfix program at host"}, parseAngle},
		// Exim's bounce and warning messages without a DSN part.
		{"exim", []string{"this message was created automatically by mail delivery software"}, parseExim},
		// Sendmail's text report.
		{"sendmail", []string{"----- the following addresses had permanent fatal errors -----", "----- the following addresses had transient non-fatal errors -----"}, parseSendmail},
		// Exchange 2007 and later, Office 365.
		{"exchange", []string{"delivery has failed to these recipients or", "delivery is delayed to these recipients or", "diagnostic information for administrators"}, parseExchange},
		// Exchange 2000/2003.
		{"exchange2003", []string{"the following recipient(s) could not be reached", "the following recipient(s) cannot be reached"}, parseExchange2003},
		// Gmail, the current and the older wording.
		{"gmail", []string{"wasn't delivered to", "delivery to the following recipient", "there was a problem delivering your message to", "there was a temporary problem delivering your message to"}, parseGmail},
	}
}

// warnings are the words of reports saying delivery is late, not lost.
var warnings = []string{
	"this is a warning only",         // Postfix
	"this is a warning message only", // Sendmail
	"has not yet been delivered",     // Exim
	"delivery is delayed to these",   // Exchange
	"has been delayed",               // Gmail
	"temporary problem delivering",   // Gmail
	"transient non-fatal errors",     // Sendmail
}

// originalMarks start the copy of the returned message in text reports;
// nothing after them is read, or its addresses would look like failures.
var originalMarks = []string{
	"--- below this line is a copy of the message", // qmail, Yahoo
	"------ this is a copy of the message",         // Exim
	"original message headers:",                    // Exchange
	"----- original message follows -----",         // Sendmail
	"----- unsent message follows -----",           // Sendmail
	"----- original message -----",                 // Gmail
	"------ original message ------",
	"------- original message -------",
}

// parseText reads s, the text of a bounce without a DSN, with the first
// format whose marks it holds. date is the bounce's Date.
func parseText(s string, date time.Time) []Failure {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lower := strings.ToLower(s)
	cut := len(s)
	for _, m := range originalMarks {
		if i := strings.Index(lower, m); i >= 0 && i < cut {
			cut = i
		}
	}
	s, lower = s[:cut], lower[:cut]
	lines := strings.Split(s, "\n")
	for _, f := range textFormats() {
		for _, m := range f.marks {
			if !strings.Contains(lower, m) {
				continue
			}
			fs := f.parse(lines, lower)
			for i := range fs {
				fs[i].Reported = date
			}
			if len(fs) > 0 {
				return fs
			}
			break
		}
	}
	return nil
}

func warning(lower string) bool {
	for _, w := range warnings {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

var angleLine = regexp.MustCompile(`^<([^<>\s]+)>:\s*(.*)$`)

// parseAngle reads the "<address>: diagnostic" blocks qmail, Yahoo and
// Postfix write, the diagnostic running on until a blank line or the next
// address:
//
//	<user@example.com>:
//	192.0.2.1 does not like recipient.
//	Remote host said: 550 5.1.1 <user@example.com>: User unknown
//	Giving up on 192.0.2.1.
func parseAngle(lines []string, lower string) []Failure {
	permanent := !warning(lower)
	var fs []Failure
	for i := 0; i < len(lines); i++ {
		m := angleLine.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		rcpt := cleanAddress(m[1])
		if rcpt == "" {
			continue
		}
		diag := []string{m[2]}
		for i+1 < len(lines) && continues(lines[i+1]) {
			i++
			diag = append(diag, strings.TrimSpace(lines[i]))
		}
		fs = append(fs, classify(rcpt, remoteWords(strings.Join(diag, " ")), permanent))
	}
	return fs
}

// continues reports whether l goes on with the diagnostic above it:
// Postfix indents its continuation lines (which may begin with the
// address again); qmail writes them flush left, up to a blank line or the
// next address.
func continues(l string) bool {
	t := strings.TrimSpace(l)
	return t != "" && (indent(l) > 0 || !angleLine.MatchString(t))
}

// remoteWords keeps, of a diagnostic, what the remote server said: what
// follows "said:" or "says:", without the MTA's "(in reply to RCPT TO
// command)" or "Giving up on ..." after it.
func remoteWords(d string) string {
	d = strings.Join(strings.Fields(d), " ")
	l := strings.ToLower(d)
	for _, k := range []string{" said: ", " says: "} {
		if i := strings.LastIndex(l, k); i >= 0 {
			d, l = d[i+len(k):], l[i+len(k):]
			break
		}
	}
	for _, tail := range []string{" (in reply to ", " giving up on "} {
		if i := strings.Index(l, tail); i >= 0 {
			d, l = d[:i], l[:i]
		}
	}
	return strings.TrimSpace(d)
}

// parseExim reads Exim's list of addresses, each indented two spaces and
// followed by its more indented diagnostic:
//
//	The following address(es) failed:
//
//	  user@example.com
//	    host mx.example.com [192.0.2.1]: 550 5.1.1 User unknown
func parseExim(lines []string, lower string) []Failure {
	permanent := !warning(lower)
	var fs []Failure
	in := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimSpace(l)
		ll := strings.ToLower(t)
		if strings.Contains(ll, "address(es) failed") ||
			(strings.Contains(ll, "not yet been delivered") && strings.HasSuffix(ll, ":")) {
			in = true
			continue
		}
		if !in || t == "" {
			continue
		}
		if indent(l) == 0 {
			if len(fs) > 0 {
				in = false // the list is over
			}
			continue
		}
		rcpt := cleanAddress(strings.Fields(t)[0])
		if rcpt == "" || indent(l) > 2 {
			continue
		}
		var diag []string
		for i+1 < len(lines) && indent(lines[i+1]) > indent(l) {
			i++
			diag = append(diag, strings.TrimSpace(lines[i]))
		}
		d := strings.Join(diag, " ")
		if loc := replyStart.FindStringIndex(d); loc != nil {
			d = d[loc[0]:] // "SMTP error from ... RCPT TO:<...>: 550 ..."
		} else if j := strings.LastIndex(d, "]: "); j >= 0 {
			d = d[j+3:] // "host mx.example.com [192.0.2.1]: Connection timed out"
		}
		fs = append(fs, classify(rcpt, d, permanent))
	}
	return fs
}

// replyStart is where an SMTP reply begins in an MTA's sentence.
var replyStart = regexp.MustCompile(`\b[45]\d\d[ -]`)

func indent(l string) int {
	return len(l) - len(strings.TrimLeft(l, " \t"))
}

// parseSendmail reads Sendmail's address lists, their "(reason: ...)"
// lines, and the transcript for a reply naming the address:
//
//	   ----- The following addresses had permanent fatal errors -----
//	<user@example.com>
//	    (reason: 550 5.1.1 <user@example.com>... User unknown)
func parseSendmail(lines []string, lower string) []Failure {
	var fs []Failure
	for i := 0; i < len(lines); i++ {
		ll := strings.ToLower(lines[i])
		if !strings.Contains(ll, "----- the following addresses had") {
			continue
		}
		permanent := strings.Contains(ll, "permanent fatal") && !warning(ll)
		for i+1 < len(lines) && strings.TrimSpace(lines[i+1]) != "" {
			i++
			t := strings.TrimSpace(lines[i])
			if strings.HasPrefix(t, "(") {
				if r, ok := strings.CutPrefix(t, "(reason: "); ok && len(fs) > 0 && fs[len(fs)-1].Diagnostic == "" {
					f := &fs[len(fs)-1]
					*f = classify(f.Recipient, strings.TrimSuffix(r, ")"), f.Permanent)
				}
				continue
			}
			if rcpt := cleanAddress(t); rcpt != "" {
				fs = append(fs, classify(rcpt, "", permanent))
			}
		}
	}
	for j := range fs {
		if fs[j].Diagnostic == "" {
			if d := transcriptReply(lines, fs[j].Recipient); d != "" {
				fs[j] = classify(fs[j].Recipient, d, fs[j].Permanent)
			}
		}
	}
	return fs
}

var replyLine = regexp.MustCompile(`^(?:<<< )?([45]\d\d[ -].*)$`)

// transcriptReply finds, in a session transcript, the server's reply
// about rcpt: "<<< 550 5.1.1 <rcpt>... User unknown".
func transcriptReply(lines []string, rcpt string) string {
	r := strings.ToLower(rcpt)
	for _, l := range lines {
		if m := replyLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil && strings.Contains(strings.ToLower(l), r) {
			return m[1]
		}
	}
	return ""
}

// parseExchange reads Exchange's and Office 365's "Diagnostic information
// for administrators", where each address is followed by the remote
// server's reply:
//
//	user@example.com
//	Remote Server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'
//
// (Exchange 2007 writes the reply bare, or as "#550 5.1.1 ... ##"). Without
// that section, it reads the addresses listed under "Delivery has failed
// to these recipients or groups:".
func parseExchange(lines []string, lower string) []Failure {
	permanent := !warning(lower)
	var fs []Failure
	start := -1
	for i, l := range lines {
		if strings.Contains(strings.ToLower(l), "diagnostic information for administrators") {
			start = i + 1
			break
		}
	}
	if start >= 0 {
		for i := start; i < len(lines); i++ {
			t := strings.TrimSpace(lines[i])
			rcpt := cleanAddress(t)
			if rcpt == "" || strings.Contains(strings.ToLower(t), "generating server") {
				continue
			}
			d := ""
			for j := i + 1; j < len(lines); j++ {
				if u := strings.TrimSpace(lines[j]); u != "" {
					if cleanAddress(u) == "" {
						d, i = u, j
					}
					break
				}
			}
			fs = append(fs, classify(rcpt, exchangeWords(d), permanent))
		}
		if len(fs) > 0 {
			return fs
		}
	}
	in := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		ll := strings.ToLower(t)
		switch {
		case strings.Contains(ll, "to these recipients or"):
			in = true
		case in && t != "":
			if rcpt := mailtoAddress(t); rcpt != "" {
				fs = append(fs, classify(rcpt, "", permanent))
			}
		}
	}
	return fs
}

// mailtoAddress reads the address of a line that is one, bare or as
// Exchange writes it: "Name<mailto:user@example.com>".
func mailtoAddress(t string) string {
	if i := strings.Index(strings.ToLower(t), "<mailto:"); i >= 0 {
		return cleanAddress(t[i+1:])
	}
	return cleanAddress(t)
}

// exchangeWords unwraps Exchange's ways of quoting a reply: "Remote Server
// returned '550 5.1.1 ...'", "'< #5.0.0 smtp;550 5.1.1 ...>'", "#550 ... ##".
func exchangeWords(d string) string {
	if i := strings.Index(strings.ToLower(d), "returned '"); i >= 0 {
		d = d[i+len("returned '"):]
		if j := strings.LastIndexByte(d, '\''); j >= 0 {
			d = d[:j]
		}
	}
	d = strings.TrimSpace(strings.Trim(strings.TrimSpace(d), "<>"))
	if i := strings.Index(strings.ToLower(d), "smtp;"); i >= 0 && strings.HasPrefix(d, "#") {
		d = d[i+len("smtp;"):]
	}
	return strings.TrimSpace(strings.Trim(d, "# "))
}

var exchange2003Line = regexp.MustCompile(`^\s+(\S+@\S+) on .*$`)

// parseExchange2003 reads Exchange 2000/2003's list:
//
//	The following recipient(s) could not be reached:
//
//	      user@example.com on 1/6/2003 10:00 AM
//	            The e-mail account does not exist at the organization ...
//	            <mx.example.com #5.1.1>
func parseExchange2003(lines []string, lower string) []Failure {
	permanent := !warning(lower)
	var fs []Failure
	for i := 0; i < len(lines); i++ {
		m := exchange2003Line.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		rcpt := cleanAddress(m[1])
		if rcpt == "" {
			continue
		}
		var diag []string
		for at := indent(lines[i]); i+1 < len(lines) && indent(lines[i+1]) > at && strings.TrimSpace(lines[i+1]) != ""; {
			i++
			diag = append(diag, strings.TrimSpace(lines[i]))
		}
		fs = append(fs, classify(rcpt, strings.Join(diag, " "), permanent))
	}
	return fs
}

var gmailSentence = regexp.MustCompile(`(?i)(?:wasn't delivered to|problem delivering your message to)\s+(\S+@[^\s]+?)[.,]?(?:\s|$)`)

// parseGmail reads Gmail's reports, the current one,
//
//	Your message wasn't delivered to user@example.com because the address
//	couldn't be found, or is unable to receive mail.
//	...
//	The response from the remote server was:
//	550 5.1.1 The email account that you tried to reach does not exist.
//
// and the older "Delivery to the following recipient failed permanently:"
// with the address on an indented line.
func parseGmail(lines []string, lower string) []Failure {
	permanent := !warning(lower) && !strings.Contains(lower, "delivery incomplete")
	var rcpts []string
	text := strings.Join(lines, "\n")
	for _, m := range gmailSentence.FindAllStringSubmatch(text, -1) {
		if r := cleanAddress(m[1]); r != "" {
			rcpts = append(rcpts, r)
		}
	}
	for i, l := range lines {
		if !strings.Contains(strings.ToLower(l), "delivery to the following recipient") {
			continue
		}
		found := false
		for j := i + 1; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if t == "" {
				if found {
					break
				}
				continue
			}
			r := cleanAddress(t)
			if r == "" {
				break
			}
			rcpts, found = append(rcpts, r), true
		}
	}
	diag := ""
	for i, l := range lines {
		ll := strings.ToLower(l)
		if !strings.Contains(ll, "the response from the remote server was") &&
			!strings.Contains(ll, "the error that the other server returned was") &&
			!strings.Contains(ll, "the response was:") {
			continue
		}
		var d []string
		for j := i + 1; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if t == "" {
				if len(d) > 0 {
					break
				}
				continue
			}
			d = append(d, t)
		}
		diag = strings.Join(d, " ")
		break
	}
	var fs []Failure
	for _, r := range rcpts {
		fs = append(fs, classify(r, diag, permanent))
	}
	return fs
}

// htmlText is the text of an HTML part, good enough to find the words of
// a report: tags dropped, block ends as line breaks, entities decoded.
func htmlText(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		tag := strings.ToLower(strings.TrimLeft(s[i+1:i+j], "/"))
		for _, blk := range []string{"br", "p", "div", "tr", "li", "h1", "h2", "h3", "table", "pre"} {
			if tag == blk || strings.HasPrefix(tag, blk+" ") {
				b.WriteString("\n")
				break
			}
		}
		s = s[i+j+1:]
	}
	return html.UnescapeString(b.String())
}
