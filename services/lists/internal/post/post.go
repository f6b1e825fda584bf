// Package post turns a message posted to a discussion list into the copies
// the list distributes: pure transformation, bytes in and bytes out, no I/O.
//
// Prepare parses a post once and applies what every copy shares: the list
// headers of RFC 2369 and RFC 2919, the subject prefix, the reply-to mode,
// and the removal of what must not be distributed. (*Post).For then writes
// one member's copy cheaply: its one-click List-Unsubscribe (RFC 8058) and
// the footer, the only parts that differ per member. VERP and UnVERP name
// the member in the return path so a bounce identifies them; Recipients
// decides who gets a copy.
//
// The semantics follow GNU Mailman 3 where it is good; the choices a reader
// would question are documented where they are made.
package post

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// ReplyMode says where replies to a post go, and from whom the copies
// appear to come.
type ReplyMode int

const (
	// ReplyToSender leaves From and Reply-To as the author wrote them:
	// a reply goes to the author, a reply-all to the author and the list.
	ReplyToSender ReplyMode = iota
	// ReplyToList sets Reply-To to the list (before any Reply-To the
	// author set, which is kept, as Mailman 3 does when it does not first
	// strip Reply-To). From stays the author's, visible to all.
	ReplyToList
	// ReplyViaList is the DMARC-safe mode (RFC 7489 §3.1 alignment):
	// From is rewritten to "Author via List" <list@>, so the copy no longer
	// claims to come from the author's domain, whose DMARC policy the
	// list's changes would fail. Reply-To is the list and the author is
	// added to Cc, so the source address stays visible and a reply-all
	// still reaches them (Mailman 3's munge_from with replies to the list).
	ReplyViaList
)

func (m ReplyMode) String() string {
	switch m {
	case ReplyToSender:
		return "to-sender"
	case ReplyToList:
		return "to-list"
	case ReplyViaList:
		return "via-list"
	}
	return fmt.Sprintf("ReplyMode(%d)", int(m))
}

// List is what Prepare needs to know about a list. Robot addresses are
// derived from Address (local-request@, -join@, -leave@, -owner@), the
// names the lists service reserves.
type List struct {
	// Address is the posting address, team@example.com. It never changes.
	Address string
	// Name is the display name ("Team"), used in List-Id and in From when
	// ReplyTo is ReplyViaList. Empty: the local part of Address.
	Name string
	// Prefix is the subject prefix ("[team]"), added once. Empty: none.
	Prefix string
	// ReplyTo is the reply-to mode.
	ReplyTo ReplyMode
	// Announce marks a list where only moderators post: List-Post is "NO"
	// (RFC 2369 §3.4).
	Announce bool
	// FooterText is appended to plain-text bodies after a "-- " line.
	// FooterHTML is inserted into HTML bodies before </body>; when empty it
	// is FooterText, escaped, in a <pre>. Both may name ${member} (the
	// member's address) and ${unsubscribe_url} (the one given to For);
	// without them every copy's body is the same and For only copies it.
	FooterText, FooterHTML string
	// HelpURL, SubscribeURL and ArchiveURL are https: URIs added to
	// List-Help, List-Subscribe and List-Archive when set.
	HelpURL, SubscribeURL, ArchiveURL string
}

// The per-member placeholders footers may hold.
const (
	PlaceholderMember      = "${member}"
	PlaceholderUnsubscribe = "${unsubscribe_url}"
)

// ID is the list identifier of RFC 2919 in its angle brackets,
// "<team.example.com>": the address with "@" replaced by ".", unique and
// stable because the address never changes. Lower-cased so that
// differently written addresses give one identifier.
func (l List) ID() string {
	return "<" + strings.ToLower(strings.Replace(l.Address, "@", ".", 1)) + ">"
}

func (l List) name() string {
	if l.Name != "" {
		return l.Name
	}
	local, _, _ := strings.Cut(l.Address, "@")
	return local
}

// robot is the list's robot address with the given suffix: team-request@.
func (l List) robot(suffix string) string {
	local, domain, _ := strings.Cut(l.Address, "@")
	return local + "-" + suffix + "@" + domain
}

func (l List) check() error {
	a, err := mail.ParseAddress(l.Address)
	if err != nil || a.Address != l.Address || a.Name != "" {
		return fmt.Errorf("list address %q: not a bare addr-spec", l.Address)
	}
	if strings.ContainsAny(l.Address, "<>,\"() ") {
		return fmt.Errorf("list address %q: not a dot-atom address", l.Address)
	}
	if l.ReplyTo < ReplyToSender || l.ReplyTo > ReplyViaList {
		return fmt.Errorf("list reply-to mode %d: unknown", l.ReplyTo)
	}
	for _, f := range []struct{ name, v string }{{"name", l.Name}, {"prefix", l.Prefix}} {
		if strings.ContainsAny(f.v, "\r\n") {
			return fmt.Errorf("list %s %q: contains a line break", f.name, f.v)
		}
	}
	for _, u := range []struct{ name, v string }{{"help URL", l.HelpURL}, {"subscribe URL", l.SubscribeURL}, {"archive URL", l.ArchiveURL}} {
		if err := checkURI(u.v); u.v != "" && err != nil {
			return fmt.Errorf("list %s: %w", u.name, err)
		}
	}
	return nil
}

// checkURI refuses what cannot stand between the angle brackets of an
// RFC 2369 header: only https: URIs, without spaces, brackets or commas
// (commas separate the URIs; a literal one must be %2C, RFC 2369 §2).
func checkURI(u string) error {
	if !strings.HasPrefix(u, "https://") || len(u) == len("https://") {
		return fmt.Errorf("%q: not an https: URI", u)
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == '"' {
			return fmt.Errorf("%q: character %q not allowed (percent-encode it)", u, c)
		}
	}
	return nil
}

// Post is a post prepared for distribution: what every copy shares, built
// once. It is read-only after Prepare, so For may be called concurrently.
type Post struct {
	// Author is the address in the original From.
	Author string
	// To and Cc are the addresses the author wrote (group names dropped),
	// for Recipients.
	To, Cc []string
	// MessageID is the Message-ID, without angle brackets; the author's,
	// or one made from the post's hash when it had none.
	MessageID string
	// Subject is the subject as distributed, decoded.
	Subject string

	l        List
	header   []byte // shared header fields, each ending in CRLF, no blank line
	body     []segment
	size     int  // bytes of the static segments
	personal bool // a footer names the member: segments must be rendered per copy
}

// Headers removed from every post before distribution, and why.
var stripped = []string{
	// DKIM signatures are always broken by what the list does: List-Id
	// and List-* are often oversigned, the subject gets its prefix, the
	// body its footer, From may be rewritten. A broken signature counts as
	// none (RFC 6376 §6.1), yet clients and filters flag it as tampering;
	// the outbound MTA signs the copy with the list domain's key. ARC sets
	// (RFC 8617) are kept: they are meant to travel through intermediaries
	// that change the message, and the outbound MTA can add its own.
	"DKIM-Signature",
	// Trace fields of the final delivery to the list, not of the post:
	// Return-Path is replaced by the copy's own (RFC 5321 §4.4), and a
	// Delivered-To naming the list would make the recipient's MTA see a
	// loop. Received fields are kept: RFC 5321 §4.4 forbids removing them
	// and MTAs count them to stop loops.
	"Return-Path", "Delivered-To", "X-Original-To",
	// Never distributed (RFC 5322 §3.6.3).
	"Bcc",
	// A moderator password must never reach the members.
	"Approved", "Approve", "X-Approved", "X-Approve",
	// Read receipts and urgency requests would ask every member to answer
	// the author (Mailman 3 removes the same).
	"Disposition-Notification-To", "Return-Receipt-To", "X-Confirm-Reading-To", "X-PMRQC", "Urgent",
	// Replaced by this list's own (a post forwarded from another list
	// carries that list's).
	"List-Id", "List-Help", "List-Post", "List-Subscribe", "List-Unsubscribe",
	"List-Unsubscribe-Post", "List-Owner", "List-Archive", "Precedence",
}

// Prepare parses raw, a post as the list received it, and applies the
// changes every copy shares. It fails, naming the problem, when the header
// or the MIME structure is malformed, or when l is not a usable list.
//
// Line endings are normalized to CRLF (RFC 5322 §2.1) when raw holds bare
// LF, as a file or a local pipe may deliver it; a message arriving by
// SMTP or LMTP is already CRLF and its bytes are kept.
func Prepare(raw []byte, l List) (*Post, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	raw = crlf(raw)
	_, bodyStart := splitHeader(raw)
	h, err := readHeader(raw[:bodyStart])
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	hp := &mh.Header.Header // one header, mutated through both views
	p := &Post{l: l}

	from, err := mh.AddressList("From")
	if err != nil {
		return nil, fmt.Errorf("the From header: %w", err)
	}
	if len(from) == 0 {
		return nil, errors.New("the From header is missing")
	}
	p.Author = from[0].Address
	if p.To, err = addresses(mh, "To"); err != nil {
		return nil, err
	}
	if p.Cc, err = addresses(mh, "Cc"); err != nil {
		return nil, err
	}
	if p.MessageID, err = mh.MessageID(); err != nil || strings.ContainsAny(p.MessageID, "<> \t") {
		return nil, fmt.Errorf("Message-ID %q: malformed", hp.Get("Message-Id"))
	}
	if p.MessageID == "" {
		// Threading and duplicate suppression need one (RFC 5322 §3.6.4
		// says SHOULD); made from the content so a retried Prepare gives
		// the same.
		sum := sha256.Sum256(raw)
		_, domain, _ := strings.Cut(l.Address, "@")
		p.MessageID = hex.EncodeToString(sum[:16]) + "@" + domain
		hp.Set("Message-Id", "<"+p.MessageID+">")
	}

	for _, k := range stripped {
		hp.Del(k)
	}
	if err := p.subject(&mh); err != nil {
		return nil, err
	}
	if err := p.replyTo(&mh, from[0]); err != nil {
		return nil, err
	}

	body, err := p.footers(raw, hp, bodyStart)
	if err != nil {
		return nil, err
	}
	p.listHeaders(hp)

	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, *hp); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	p.header = bytes.TrimSuffix(b.Bytes(), []byte("\r\n"))
	p.personal = strings.Contains(l.FooterText+l.footerHTML(), "${")
	if !p.personal && len(body) > 1 {
		// Nothing varies per member: render the whole body once.
		var one []byte
		for _, s := range body {
			one = s.render(one, "", "")
		}
		body = []segment{{static: one}}
	}
	p.body = body
	for _, s := range body {
		p.size += len(s.static)
	}
	return p, nil
}

func addresses(h mail.Header, key string) ([]string, error) {
	as, err := h.AddressList(key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	out := make([]string, 0, len(as))
	for _, a := range as {
		if a.Address != "" {
			out = append(out, a.Address)
		}
	}
	return out, nil
}

// listHeaders adds the list fields every copy shares (RFC 2369, RFC 2919);
// List-Unsubscribe, which names the member, is written by For. They go
// on top of the header, where trace and list fields are prepended.
func (p *Post) listHeaders(h *textproto.Header) {
	l := p.l
	add := func(k string, vs ...string) {
		h.Add(k, strings.Join(vs, ", "))
	}
	// Precedence: list, non-standard (RFC 2076 §3.9) but what Mailman adds
	// and what vacation responders and auto-repliers look for, so they do
	// not answer the whole list.
	add("Precedence", "list")
	if l.ArchiveURL != "" {
		add("List-Archive", "<"+l.ArchiveURL+">")
	}
	add("List-Owner", "<mailto:"+l.robot("owner")+">")
	sub := []string{"<mailto:" + l.robot("join") + ">"}
	if l.SubscribeURL != "" {
		sub = append(sub, "<"+l.SubscribeURL+">")
	}
	add("List-Subscribe", sub...)
	if l.Announce {
		add("List-Post", "NO")
	} else {
		add("List-Post", "<mailto:"+l.Address+">")
	}
	help := []string{"<mailto:" + l.robot("request") + "?subject=help>"}
	if l.HelpURL != "" {
		help = append(help, "<"+l.HelpURL+">")
	}
	add("List-Help", help...)
	add("List-Id", phrase(l.name())+" "+l.ID())
}

// subject adds the list prefix once. The decoded subject, past any reply
// and forward markers ("Re:", "AW:", "SV:", "Fwd:", "Re[2]:"...), either
// holds the prefix already and is kept as written, or gets the prefix in
// front: "Re: [team] x" stays, "[team] Re: [team] x" never happens. A
// subject that gains the prefix is re-encoded (RFC 2047 Q encoding) when
// it is not ASCII.
func (p *Post) subject(h *mail.Header) error {
	s, err := h.Subject()
	if err != nil {
		return fmt.Errorf("the Subject header %q: %w", h.Get("Subject"), err)
	}
	// The decoded subject is stored (PostgreSQL refuses NUL and invalid
	// UTF-8 in text: the post would fail for good and the MTA retry it
	// for days) and written into notices' headers: controls become
	// spaces, bad bytes U+FFFD.
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	p.Subject = s
	if p.l.Prefix == "" {
		return nil
	}
	if hasPrefix(s, p.l.Prefix) {
		return nil
	}
	if strings.TrimSpace(s) == "" {
		s = "(no subject)"
	}
	p.Subject = p.l.Prefix + " " + strings.TrimSpace(s)
	h.SetSubject(p.Subject)
	return nil
}

// replyPrefixes are the reply and forward markers of common clients in
// the list's languages and their neighbours', compared case-insensitively.
var replyPrefixes = []string{"re", "aw", "sv", "vs", "antw", "ref", "rif", "r", "fwd", "fw", "wg", "tr", "enc", "rv", "odp", "doorst"}

// hasPrefix reports whether the list prefix follows the reply markers at
// the start of subject.
func hasPrefix(subject, prefix string) bool {
	s := strings.TrimSpace(subject)
	for {
		if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
			return true
		}
		rest, ok := trimReplyMarker(s)
		if !ok {
			return false
		}
		s = rest
	}
}

// trimReplyMarker removes one "Re:", "AW:", "Re[2]:", "Re(2):" from s.
func trimReplyMarker(s string) (string, bool) {
	colon := strings.IndexAny(s, ":：")
	if colon <= 0 || colon > 10 {
		return s, false
	}
	w := s[:colon]
	if i := strings.IndexAny(w, "[("); i > 0 {
		w = w[:i]
	}
	for _, r := range replyPrefixes {
		if strings.EqualFold(strings.TrimSpace(w), r) {
			_, size := utf8Colon(s[colon:])
			return strings.TrimSpace(s[colon+size:]), true
		}
	}
	return s, false
}

func utf8Colon(s string) (rune, int) {
	if strings.HasPrefix(s, "：") {
		return '：', len("：")
	}
	return ':', 1
}

// replyTo applies the list's reply-to mode.
func (p *Post) replyTo(h *mail.Header, author *mail.Address) error {
	list := &mail.Address{Name: p.l.name(), Address: p.l.Address}
	switch p.l.ReplyTo {
	case ReplyToSender:
		return nil
	case ReplyToList, ReplyViaList:
		rt, err := h.AddressList("Reply-To")
		if err != nil {
			return fmt.Errorf("Reply-To: %w", err)
		}
		out := []*mail.Address{list}
		for _, a := range rt {
			if !sameAddress(a.Address, p.l.Address) && (p.l.ReplyTo == ReplyToList || !sameAddress(a.Address, author.Address)) {
				out = append(out, a)
			}
		}
		h.SetAddressList("Reply-To", out)
	}
	if p.l.ReplyTo != ReplyViaList {
		return nil
	}
	// DMARC-safe: the copy comes from the list; the author stays visible
	// in Cc (Mailman 3: "Jane Doe via Team"; an address without a name
	// shows as "jane at example.com").
	who := author.Name
	if who == "" {
		who = strings.Replace(author.Address, "@", " at ", 1)
	}
	h.SetAddressList("From", []*mail.Address{{Name: who + " via " + p.l.name(), Address: p.l.Address}})
	cc, err := h.AddressList("Cc")
	if err != nil {
		return fmt.Errorf("the Cc header: %w", err)
	}
	for _, a := range cc {
		if sameAddress(a.Address, author.Address) {
			return nil
		}
	}
	h.SetAddressList("Cc", append(cc, author))
	return nil
}

// phrase formats a display name as an RFC 5322 phrase: as is when it is
// atoms, quoted when it holds specials, RFC 2047-encoded when not ASCII.
func phrase(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
		if !(isAtext(c) || c == ' ') {
			plain = false
		}
	}
	if plain && s != "" && strings.TrimSpace(s) == s {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// isAtext reports whether c is an atext character (RFC 5322 §3.2.3).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
