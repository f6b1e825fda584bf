package commands

import "strings"

// DecisionLinks returns the mailto: links (RFC 6068) of a moderator's three
// answers to the decision that token stands for: each opens a mail to
// requestAddr (the list's -request address) whose Subject is
// "accept TOKEN", "reject TOKEN" or "discard TOKEN", which Parse reads back.
// A reject's reason is what the moderator writes in the body. Nothing but
// To and Subject is set, which every client honours; the Subject's space
// is %20, never "+" (RFC 6068 §5), and everything outside the unreserved
// characters is percent-encoded, so a client cannot misread the link.
func DecisionLinks(requestAddr, token string) (accept, reject, discard string) {
	link := func(v Verb) string {
		return "mailto:" + escape(requestAddr, addrSafe) + "?subject=" + escape(string(v)+" "+token, "")
	}
	return link(Accept), link(Reject), link(Discard)
}

// addrSafe are the characters RFC 6068 §2 lets an addr-spec keep unencoded
// besides the unreserved ones (some-delims and "@"); "+" is not among them
// here because some clients read it as a space.
const addrSafe = "!$'()*,;:@"

// escape percent-encodes s's UTF-8 bytes except RFC 3986's unreserved
// characters and those in safe.
func escape(s, safe string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
