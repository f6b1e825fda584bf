package post

import (
	"fmt"
	"strings"
)

// For writes member's copy of the post: the shared header with the
// member's List-Unsubscribe in front, and the body with the footer.
//
// unsubscribeURL is the member's one-click unsubscribe URI (RFC 8058 §3.1:
// https, and a POST of "List-Unsubscribe=One-Click" to it unsubscribes
// without further step); with it come List-Unsubscribe-Post and the
// mailto: of the list's -leave address, which RFC 8058 §3.1 lets a client
// fall back to. Empty: only the mailto:, and no List-Unsubscribe-Post,
// which RFC 8058 §3.1 requires an https URI for.
//
// When the footers name neither ${member} nor ${unsubscribe_url} the
// body is the same for every copy and For copies it: one allocation.
func (p *Post) For(member, unsubscribeURL string) ([]byte, error) {
	if member == "" || strings.ContainsAny(member, "\r\n") {
		return nil, fmt.Errorf("member %q: empty or holds a line break", member)
	}
	if unsubscribeURL != "" {
		if err := checkURI(unsubscribeURL); err != nil {
			return nil, fmt.Errorf("unsubscribe URL: %w", err)
		}
		if len(unsubscribeURL) > 900 {
			return nil, fmt.Errorf("unsubscribe URL: %d bytes, longer than a header line may be (RFC 5322 §2.1.1)", len(unsubscribeURL))
		}
	}
	leave := p.l.robot("leave")
	n := len(p.header) + p.size + len(unsubscribeURL) + len(leave) + 128
	if p.personal {
		n += 2 * (len(p.l.FooterText) + len(p.l.FooterHTML) + len(member) + len(unsubscribeURL))
	}
	out := make([]byte, 0, n)
	out = append(out, "List-Unsubscribe: "...)
	if unsubscribeURL != "" {
		out = append(out, '<')
		out = append(out, unsubscribeURL...)
		out = append(out, ">,\r\n "...)
	}
	out = append(out, "<mailto:"...)
	out = append(out, leave...)
	out = append(out, ">\r\n"...)
	if unsubscribeURL != "" {
		out = append(out, "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"...)
	}
	out = append(out, p.header...)
	out = append(out, "\r\n"...)
	for _, s := range p.body {
		out = s.render(out, member, unsubscribeURL)
	}
	return out, nil
}
