package post

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"sort"
	"strings"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// maxDepth bounds MIME nesting: real clients nest four or five levels
// (mixed > related > alternative > text); a deeper message is an attack
// on the parser or broken.
const maxDepth = 20

// A segment of a copy's body: bytes every copy shares, or a footer slot
// rendered per member.
type segment struct {
	static []byte
	slot   *slot
}

// slot is where a footer goes and how it is written there.
type slot struct {
	l      *List
	html   bool // the HTML footer (else the text one)
	sep    bool // text appended to a body: preceded by the "-- " line
	qp     bool // quoted-printable (else written as is, 7bit/8bit)
	flowed bool // format=flowed (RFC 3676): no trailing spaces in footer lines
}

func (s segment) render(dst []byte, member, unsub string) []byte {
	if s.slot == nil {
		return append(dst, s.static...)
	}
	f := s.slot.footer(member, unsub)
	if !s.slot.qp {
		return append(dst, f...)
	}
	var b bytes.Buffer
	w := quotedprintable.NewWriter(&b)
	w.Write([]byte(f)) // writes to a bytes.Buffer do not fail
	w.Close()
	return append(dst, b.Bytes()...)
}

// footer is the slot's text for one member, CRLF line endings, ending in
// CRLF.
func (s *slot) footer(member, unsub string) string {
	var f string
	if s.html {
		f = s.l.footerHTML()
		if strings.Contains(f, "${") {
			f = strings.NewReplacer(PlaceholderMember, html.EscapeString(member), PlaceholderUnsubscribe, html.EscapeString(unsub)).Replace(f)
		}
		return "\r\n" + toCRLF(f) + "\r\n"
	}
	f = s.l.FooterText
	if strings.Contains(f, "${") {
		f = strings.NewReplacer(PlaceholderMember, member, PlaceholderUnsubscribe, unsub).Replace(f)
	}
	lines := strings.Split(strings.ReplaceAll(f, "\r\n", "\n"), "\n")
	var b strings.Builder
	if s.sep {
		// The signature separator (RFC 3676 §4.3): clients show what
		// follows as a signature and leave it out of quoted replies.
		b.WriteString("-- \r\n")
	}
	for _, ln := range lines {
		if s.flowed {
			ln = strings.TrimRight(ln, " ")
		}
		b.WriteString(ln)
		b.WriteString("\r\n")
	}
	return b.String()
}

func (l *List) footerHTML() string {
	if l.FooterHTML != "" || l.FooterText == "" {
		return l.FooterHTML
	}
	return "<pre>" + html.EscapeString(l.FooterText) + "</pre>"
}

// entity is one MIME entity of the raw message: its parsed header and
// where its header and body lie in raw.
type entity struct {
	h                        *textproto.Header
	hdrStart, bodyStart, end int
	top                      bool
}

// editor collects the splices that put footers into raw.
type editor struct {
	raw   []byte
	l     *List
	edits []edit
}

type edit struct {
	from, to int
	segs     []segment
}

func (e *editor) splice(from, to int, segs ...segment) {
	e.edits = append(e.edits, edit{from, to, segs})
}

func (e *editor) segments(start int) []segment {
	sort.SliceStable(e.edits, func(i, j int) bool { return e.edits[i].from < e.edits[j].from })
	var out []segment
	pos := start
	for _, ed := range e.edits {
		if ed.from > pos {
			out = append(out, segment{static: e.raw[pos:ed.from]})
		}
		out = append(out, ed.segs...)
		pos = ed.to
	}
	if pos < len(e.raw) {
		out = append(out, segment{static: e.raw[pos:]})
	}
	return out
}

// footers puts the list's footers into the body and returns it as
// segments. Where each goes:
//
//   - text/plain: appended after a "-- " line; text/html: before </body>
//     (appended when there is none). Parts attached (Content-Disposition:
//     attachment) are never bodies.
//   - multipart/alternative: every alternative (RFC 2046 §5.1.4: each is
//     the same content); multipart/related: its root, the first part
//     (RFC 2387 §3.2).
//   - multipart/mixed and other multiparts: the first part when it is a
//     body, else a new part at the end.
//   - multipart/signed (RFC 1847 §2.1), multipart/encrypted,
//     application/pkcs7-mime (RFC 8551) and any other entity: never
//     touched; at the top level the message is wrapped in a new
//     multipart/mixed whose first part is the original entity, byte for
//     byte, and whose second is the footer.
//
// A text part keeps its bytes and transfer encoding when it is 7bit or
// 8bit US-ASCII or UTF-8 and the footer fits that (RFC 2045 §2.7, §2.8);
// otherwise it is decoded (base64, quoted-printable; charset to UTF-8) and
// re-encoded as quoted-printable UTF-8 (RFC 2045 §6.7) with the footer. A
// part whose charset or encoding is unknown is left alone, and the footer
// goes to a part of its own.
func (p *Post) footers(raw []byte, h *textproto.Header, bodyStart int) ([]segment, error) {
	if p.l.FooterText == "" && p.l.FooterHTML == "" {
		return []segment{{static: raw[bodyStart:]}}, nil
	}
	e := &editor{raw: raw, l: &p.l}
	top := entity{h: h, hdrStart: 0, bodyStart: bodyStart, end: len(raw), top: true}
	placed, err := e.place(top, 0)
	if err != nil {
		return nil, err
	}
	if !placed {
		e.wrap(top)
	}
	return e.segments(bodyStart), nil
}

// place puts footers into ent and reports whether it found a body for
// them.
func (e *editor) place(ent entity, depth int) (bool, error) {
	if depth > maxDepth {
		return false, fmt.Errorf("MIME structure nested deeper than %d levels", maxDepth)
	}
	mt, params, err := contentType(ent.h)
	if err != nil {
		return false, err
	}
	attached := strings.HasPrefix(strings.ToLower(strings.TrimSpace(ent.h.Get("Content-Disposition"))), "attachment")
	switch {
	case mt == "text/plain" && !attached:
		return e.text(ent, params, false)
	case mt == "text/html" && !attached:
		return e.text(ent, params, true)
	case mt == "multipart/signed" || mt == "multipart/encrypted" || !strings.HasPrefix(mt, "multipart/"):
		return false, nil
	}
	b := params["boundary"]
	if b == "" || len(b) > 70 {
		return false, fmt.Errorf("%s: boundary parameter missing or longer than 70 characters (RFC 2046 §5.1.1)", mt)
	}
	parts, closeAt, closed := splitMultipart(e.raw, ent.bodyStart, ent.end, b)
	if len(parts) == 0 {
		return false, fmt.Errorf("%s: no part delimited by boundary %q", mt, b)
	}
	child := func(i int) (entity, error) {
		s, end := parts[i][0], parts[i][1]
		_, bs := splitHeader(e.raw[s:end])
		ph, err := readHeader(e.raw[s : s+bs])
		if err != nil {
			return entity{}, fmt.Errorf("%s part %d header: %w", mt, i+1, err)
		}
		return entity{h: &ph, hdrStart: s, bodyStart: s + bs, end: end}, nil
	}
	switch mt {
	case "multipart/alternative":
		any := false
		for i := range parts {
			c, err := child(i)
			if err != nil {
				return false, err
			}
			ok, err := e.place(c, depth+1)
			if err != nil {
				return false, err
			}
			any = any || ok
		}
		return any, nil
	case "multipart/related":
		c, err := child(0)
		if err != nil {
			return false, err
		}
		return e.place(c, depth+1)
	}
	c, err := child(0)
	if err != nil {
		return false, err
	}
	if ok, err := e.place(c, depth+1); ok || err != nil {
		return ok, err
	}
	// A new part at the end (RFC 2046 §5.1.3: parts after the first are
	// shown after it).
	add := []segment{{static: []byte("\r\n--" + b + "\r\n" + e.footerPartHeader() + "\r\n")}, {slot: e.standalone()}}
	if closed {
		e.splice(closeAt, closeAt, add...)
	} else {
		add = append(add, segment{static: []byte("\r\n--" + b + "--\r\n")})
		e.splice(ent.end, ent.end, add...)
	}
	return true, nil
}

// standalone is the slot of a footer in a part of its own: text when the
// list has a text footer, else HTML.
func (e *editor) standalone() *slot {
	return &slot{l: e.l, html: e.l.FooterText == "", qp: true}
}

func (e *editor) footerPartHeader() string {
	t := "text/plain"
	if e.l.FooterText == "" {
		t = "text/html"
	}
	return "Content-Type: " + t + "; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: inline\r\n"
}

// wrap makes the top-level entity the first part of a new multipart/mixed
// and the footer its second (the Mailman 3 way of footing a signed
// post): the entity's Content-* fields move, unchanged, into the first
// part's header; its body bytes are not touched.
func (e *editor) wrap(top entity) {
	var inner []byte
	for fs := top.h.Fields(); fs.Next(); {
		if strings.HasPrefix(strings.ToLower(fs.Key()), "content-") {
			r, err := fs.Raw()
			if err != nil {
				continue // not writable anyway
			}
			inner = append(inner, r...)
			fs.Del()
		}
	}
	b := boundary(e.raw)
	top.h.Set("Content-Type", mime.FormatMediaType("multipart/mixed", map[string]string{"boundary": b}))
	if !top.h.Has("Mime-Version") {
		top.h.Set("Mime-Version", "1.0")
	}
	e.splice(top.bodyStart, top.bodyStart, segment{static: append(append([]byte("--"+b+"\r\n"), inner...), "\r\n"...)})
	e.splice(top.end, top.end,
		segment{static: []byte("\r\n--" + b + "\r\n" + e.footerPartHeader() + "\r\n")},
		segment{slot: e.standalone()},
		segment{static: []byte("\r\n--" + b + "--\r\n")})
}

// boundary makes a boundary that does not occur in raw, from its hash so
// the same post gives the same copy. "=_" cannot occur in
// quoted-printable text (RFC 2045 §6.7).
func boundary(raw []byte) string {
	sum := sha256.Sum256(raw)
	b := "=_list_" + hex.EncodeToString(sum[:12])
	for bytes.Contains(raw, []byte(b)) {
		sum = sha256.Sum256([]byte(b))
		b = "=_list_" + hex.EncodeToString(sum[:12])
	}
	return b
}

// text puts the footer into a text/plain or text/html entity.
func (e *editor) text(ent entity, params map[string]string, isHTML bool) (bool, error) {
	tmpl := e.l.FooterText
	if isHTML {
		tmpl = e.l.footerHTML()
	}
	if tmpl == "" {
		return false, nil
	}
	cte := strings.ToLower(strings.TrimSpace(ent.h.Get("Content-Transfer-Encoding")))
	cs := strings.ToLower(params["charset"])
	utf8 := cs == "" || cs == "us-ascii" || cs == "utf-8" || cs == "utf8"
	s := &slot{l: e.l, html: isHTML, sep: !isHTML, flowed: strings.EqualFold(params["format"], "flowed")}
	body := e.raw[ent.bodyStart:ent.end]
	fits := isASCII(tmpl) || cte == "8bit" && (cs == "utf-8" || cs == "utf8")
	if (cte == "" || cte == "7bit" || cte == "8bit") && utf8 && fits {
		// Kept as written; the footer added in the same encoding.
		at := ent.end
		if isHTML {
			at = ent.bodyStart + closingBody(body)
		}
		var segs []segment
		if !isHTML && len(body) > 0 && !bytes.HasSuffix(body, []byte("\r\n")) {
			segs = append(segs, segment{static: []byte("\r\n")})
		}
		e.splice(at, at, append(segs, segment{slot: s})...)
		return true, nil
	}
	text, err := decode(body, cte, cs)
	if err != nil {
		return false, nil // unknown encoding or charset: footer elsewhere
	}
	text = crlf(text)
	if len(text) > 0 && !bytes.HasSuffix(text, []byte("\r\n")) {
		text = append(text, "\r\n"...)
	}
	s.qp = true
	params["charset"] = "utf-8"
	mt, _, _ := contentType(ent.h)
	ent.h.Set("Content-Type", mime.FormatMediaType(mt, params))
	ent.h.Set("Content-Transfer-Encoding", "quoted-printable")
	var segs []segment
	if !ent.top {
		var hb bytes.Buffer
		if err := textproto.WriteHeader(&hb, *ent.h); err != nil {
			return false, fmt.Errorf("%s part header: %w", mt, err)
		}
		segs = append(segs, segment{static: hb.Bytes()})
	}
	// Quoted-printable is line by line, so pieces encoded apart and ending
	// in a line break concatenate to the encoding of the whole.
	if isHTML {
		at := closingBody(text)
		before, after := text[:at], text[at:]
		if len(before) > 0 && !bytes.HasSuffix(before, []byte("\r\n")) {
			before = append(before[:len(before):len(before)], "\r\n"...)
		}
		segs = append(segs, segment{static: qp(before)}, segment{slot: s}, segment{static: qp(after)})
	} else {
		segs = append(segs, segment{static: qp(text)}, segment{slot: s})
	}
	from := ent.hdrStart
	if ent.top {
		from = ent.bodyStart
	}
	e.splice(from, ent.end, segs...)
	return true, nil
}

// closingBody is where the HTML footer goes: before the last </body>, or
// at the end.
func closingBody(b []byte) int {
	if i := bytes.LastIndex(bytes.ToLower(b), []byte("</body")); i >= 0 {
		return i
	}
	return len(b)
}

func qp(b []byte) []byte {
	var out bytes.Buffer
	w := quotedprintable.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// decode undoes a part's transfer encoding and converts its charset to
// UTF-8.
func decode(body []byte, cte, cs string) ([]byte, error) {
	var r io.Reader = bytes.NewReader(body)
	switch cte {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	default:
		return nil, fmt.Errorf("transfer encoding %q unknown", cte)
	}
	switch cs {
	case "", "us-ascii", "utf-8", "utf8":
	default:
		cr, err := charset.Reader(cs, r)
		if err != nil {
			return nil, err
		}
		r = cr
	}
	return io.ReadAll(r)
}

func contentType(h *textproto.Header) (string, map[string]string, error) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}, nil // RFC 2045 §5.2
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return "", nil, fmt.Errorf("Content-Type %q: %w", v, err)
	}
	return mt, params, nil
}

// splitMultipart finds the parts of the multipart body raw[start:end]
// (RFC 2046 §5.1.1): each as [from, to), the CRLF before a delimiter
// belonging to the delimiter. closeAt is where the close delimiter's line
// begins, CRLF included; closed is false when it is missing (a truncated
// message), and then the last part runs to end.
func splitMultipart(raw []byte, start, end int, b string) (parts [][2]int, closeAt int, closed bool) {
	delim := "--" + b
	pos, partStart := start, -1
	for pos < end {
		lineEnd := end
		if i := bytes.IndexByte(raw[pos:end], '\n'); i >= 0 {
			lineEnd = pos + i + 1
		}
		line := raw[pos:lineEnd]
		if bytes.HasPrefix(line, []byte(delim)) {
			rest := line[len(delim):]
			isClose := bytes.HasPrefix(rest, []byte("--"))
			if isClose {
				rest = rest[2:]
			}
			if len(bytes.TrimRight(rest, " \t\r\n")) == 0 {
				prevEnd := pos
				if pos-2 >= start && string(raw[pos-2:pos]) == "\r\n" {
					prevEnd = pos - 2
				}
				if partStart >= 0 {
					prevEnd = max(prevEnd, partStart)
					parts = append(parts, [2]int{partStart, prevEnd})
				}
				if isClose {
					return parts, prevEnd, true
				}
				partStart = lineEnd
			}
		}
		pos = lineEnd
	}
	if partStart >= 0 {
		parts = append(parts, [2]int{partStart, end})
	}
	return parts, end, false
}

// splitHeader finds the end of the header in b: bodyStart is past the
// blank line (len(b) when there is none).
func splitHeader(b []byte) (hdrEnd, bodyStart int) {
	if bytes.HasPrefix(b, []byte("\r\n")) {
		return 0, 2
	}
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return len(b), len(b)
	}
	return i + 2, i + 4
}

// readHeader parses a header (RFC 5322 §2.2) ending in its blank line or
// at the end of b.
func readHeader(b []byte) (textproto.Header, error) {
	if !bytes.HasSuffix(b, []byte("\r\n\r\n")) && !bytes.Equal(b, []byte("\r\n")) {
		b = append(b[:len(b):len(b)], "\r\n\r\n"...)
		if bytes.HasSuffix(b, []byte("\r\n\r\n\r\n")) {
			b = b[:len(b)-2]
		}
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(b)))
	if err != nil && !errors.Is(err, io.EOF) {
		return h, err
	}
	for fs := h.Fields(); fs.Next(); {
		if _, err := fs.Raw(); err != nil {
			return h, err
		}
	}
	return h, nil
}

// crlf returns b with every bare LF (and bare CR) made CRLF; b itself
// when it has none.
func crlf(b []byte) []byte {
	bare := false
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') || c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			bare = true
			break
		}
	}
	if !bare {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/32)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case c == '\r' || c == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

func toCRLF(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return string(crlf([]byte(s)))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
