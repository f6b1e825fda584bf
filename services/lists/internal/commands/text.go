package commands

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// Bounds on what Parse reads, so that a hostile or broken mail costs little:
// the commands are in the first lines of the first text part, and nothing
// past these limits can hold them.
const (
	maxPartBytes = 256 << 10 // of one text part, decoded
	maxDepth     = 8         // multipart nesting
	maxParts     = 64        // parts looked at
	maxLineBytes = 998       // RFC 5322's line limit; longer lines are cut
)

// hrLine is the text an HTML <hr> becomes: Outlook's own plain-text reply
// separator, which ends the scan like it.
const hrLine = "________________________________"

// bodyFinder looks for the first text part of a message: the first
// text/plain part that is not an attachment, or failing one, the first
// text/html part.
type bodyFinder struct {
	parts int
	html  []byte
	seen  bool // an HTML part was kept
}

// firstText returns the lines of e's first text part, text/plain preferred,
// HTML reduced to text otherwise; none when the message has no text.
func firstText(e *message.Entity) ([]string, error) {
	var f bodyFinder
	lines, ok, err := f.find(e, 0)
	if err != nil || ok {
		return lines, err
	}
	if f.seen {
		return htmlLines(f.html), nil
	}
	return nil, nil
}

func (f *bodyFinder) find(e *message.Entity, depth int) ([]string, bool, error) {
	if mr := e.MultipartReader(); mr != nil {
		if depth >= maxDepth {
			return nil, false, nil
		}
		for f.parts < maxParts {
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
				return nil, false, fmt.Errorf("read MIME part %d: %w", f.parts+1, err)
			}
			f.parts++
			if lines, ok, err := f.find(p, depth+1); err != nil || ok {
				return lines, ok, err
			}
		}
		return nil, false, nil
	}
	if disp, _, _ := e.Header.ContentDisposition(); strings.EqualFold(disp, "attachment") {
		return nil, false, nil
	}
	t, params, err := e.Header.ContentType()
	if err != nil || t == "" {
		// RFC 2045 §5.2: no or a broken Content-Type means text/plain.
		t = "text/plain"
	}
	switch t {
	case "text/plain":
		b, err := readPart(e.Body)
		if err != nil {
			return nil, false, err
		}
		lines := splitLines(string(b))
		if strings.EqualFold(params["format"], "flowed") {
			lines = unflow(lines, strings.EqualFold(params["delsp"], "yes"))
		}
		return lines, true, nil
	case "text/html":
		if !f.seen {
			b, err := readPart(e.Body)
			if err != nil {
				return nil, false, err
			}
			f.html, f.seen = b, true
		}
	}
	return nil, false, nil
}

// readPart reads at most maxPartBytes of a decoded part. A decoding error
// after some text (a broken quoted-printable tail) keeps what was read.
func readPart(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxPartBytes))
	if err != nil && len(b) == 0 {
		return nil, fmt.Errorf("read text part: %w", err)
	}
	return b, nil
}

// splitLines splits text at line ends of any convention and cuts lines
// longer than maxLineBytes.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = truncate(l)
	}
	return lines
}

// unflow joins the soft line breaks of format=flowed text (RFC 3676 §4):
// a line ending in a space continues on the next, except the signature
// separator "-- "; a leading space is stuffing and removed; with DelSp=yes
// the space that marked the soft break is removed too. Lines of different
// quote depth are never joined.
func unflow(lines []string, delsp bool) []string {
	var out []string
	var cur strings.Builder
	open := false
	for _, l := range lines {
		if open && strings.HasPrefix(l, ">") {
			out = append(out, cur.String())
			cur.Reset()
			open = false
		}
		l = strings.TrimPrefix(l, " ")
		soft := l != "-- " && strings.HasSuffix(l, " ")
		if soft && delsp {
			l = l[:len(l)-1]
		}
		cur.WriteString(l)
		if cur.Len() > maxLineBytes {
			soft = false
		}
		if soft {
			open = true
			continue
		}
		out = append(out, truncate(cur.String()))
		cur.Reset()
		open = false
	}
	if open {
		out = append(out, truncate(cur.String()))
	}
	return out
}

func truncate(s string) string {
	if len(s) > maxLineBytes {
		return strings.ToValidUTF8(s[:maxLineBytes], "")
	}
	return s
}

// htmlLines reduces HTML to lines of text the way a reader sees them: block
// elements and <br> break lines, whitespace collapses, script, style and the
// head are dropped, a <blockquote> (the quoted message of a reply in Gmail,
// Apple Mail, Thunderbird, Outlook on the web) becomes a quoted line and an
// <hr> Outlook's separator, both of which end the scan.
func htmlLines(b []byte) []string {
	z := html.NewTokenizer(bytes.NewReader(b))
	var sb strings.Builder
	hidden := 0
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return splitLines(sb.String())
		case html.TextToken:
			if hidden == 0 {
				sb.WriteString(collapseSpace(string(z.Text())))
			}
		case html.StartTagToken, html.SelfClosingTagToken, html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			start := tt != html.EndTagToken
			switch a {
			case atom.Head, atom.Script, atom.Style, atom.Title, atom.Template:
				if tt == html.StartTagToken {
					hidden++
				} else if tt == html.EndTagToken && hidden > 0 {
					hidden--
				}
			case atom.Body:
				hidden = 0 // a <head> never closed hides nothing of the body
			case atom.Blockquote:
				if start {
					sb.WriteString("\n>\n")
				}
			case atom.Hr:
				sb.WriteString("\n" + hrLine + "\n")
			case atom.Br, atom.P, atom.Div, atom.Li, atom.Tr, atom.Table, atom.Ul,
				atom.Ol, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6,
				atom.Pre, atom.Dt, atom.Dd, atom.Section, atom.Article,
				atom.Header, atom.Footer, atom.Address:
				sb.WriteString("\n")
			}
		}
		if sb.Len() > maxPartBytes {
			return splitLines(sb.String())
		}
	}
}

// collapseSpace turns runs of HTML white space into one space, as a browser
// renders them (a non-breaking space stays).
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if isHTMLSpace(r) {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

func isHTMLSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f'
}
