package commands

import (
	"strings"

	gomail "github.com/emersion/go-message/mail"
)

// listHeaders are the fields a mailing list adds to what it relays
// (RFC 2369's List-* and RFC 2919's List-Id).
var listHeaders = []string{
	"List-Id", "List-Unsubscribe", "List-Post", "List-Help",
	"List-Subscribe", "List-Owner", "List-Archive",
}

// Automatic reports whether a mail was sent by a machine, so that the list
// must never answer it: answering could start a loop between two robots, or
// mail someone who never wrote. It is true when any of these holds:
//
//   - Auto-Submitted is present with a value other than "no" (RFC 3834 §5:
//     auto-generated and auto-replied mail, which RFC 3834 §2 says
//     responders must not answer).
//   - Precedence is bulk, junk or list (RFC 2076's field, which RFC 3834 §2
//     names as one a responder may decline to answer).
//   - A List-Id (RFC 2919) or RFC 2369 List-* field is present: the mail
//     was relayed by a list (a list subscribed to ours, or ours to another);
//     RFC 3834 §2 lets a responder decline whatever shows an answer is not
//     wanted, and a list's members never asked for our answer.
//   - It is a report: Content-Type multipart/report (RFC 6522), the form of
//     delivery status notifications (RFC 3464) and disposition
//     notifications (RFC 8098).
//   - Return-Path is the null path <> (RFC 5321 §4.5.5: bounces are sent
//     with it; RFC 3834 §2: never respond to a null address).
//   - X-Autoreply or X-Autorespond is present: not standard, but what
//     vacation programs that predate RFC 3834 still write.
//   - The From, Sender or Return-Path address is a robot's (RobotSender).
//
// The service must also check the SMTP envelope sender, which the header
// does not carry: RobotSender("") is true for the null reverse-path.
func Automatic(h gomail.Header) bool {
	if v, ok := fieldValue(h, "Auto-Submitted"); ok && v != "no" {
		return true
	}
	if v, _ := fieldValue(h, "Precedence"); v == "bulk" || v == "junk" || v == "list" {
		return true
	}
	for _, k := range listHeaders {
		if h.Has(k) {
			return true
		}
	}
	if t, _, err := h.ContentType(); err == nil && t == "multipart/report" {
		return true
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") {
		return true
	}
	if h.Has("Return-Path") && RobotSender(bareAddress(h.Get("Return-Path"))) {
		return true
	}
	for _, k := range []string{"From", "Sender"} {
		if !h.Has(k) {
			continue
		}
		addrs, err := h.AddressList(k)
		if err != nil {
			// An unparsable field still names its sender to a reader.
			if RobotSender(bareAddress(h.Get(k))) {
				return true
			}
			continue
		}
		for _, a := range addrs {
			if RobotSender(a.Address) {
				return true
			}
		}
	}
	return false
}

// fieldValue returns a structured field's value, lower-cased, without
// parameters or comments: "Auto-Replied; owner-email=x (vacation)" gives
// "auto-replied".
func fieldValue(h gomail.Header, k string) (string, bool) {
	if !h.Has(k) {
		return "", false
	}
	v := h.Get(k)
	v, _, _ = strings.Cut(v, ";")
	v, _, _ = strings.Cut(v, "(")
	return strings.ToLower(strings.TrimSpace(v)), true
}

// bareAddress takes the address out of "Name <a@b>", "<a@b>" or "a@b".
func bareAddress(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	}
	return strings.TrimSpace(s)
}

// robotLocals are local parts that only machines send from.
var robotLocals = map[string]bool{
	"mailer-daemon": true, "mailerdaemon": true, "postmaster": true,
	"listserv": true, "majordomo": true, "mailman": true, "sympa": true,
	"noreply": true, "no-reply": true, "no_reply": true,
	"donotreply": true, "do-not-reply": true, "do_not_reply": true,
	"bounce": true, "bounces": true,
}

// robotPrefixes and robotSuffixes mark the addresses of list managers:
// owner-list and list-request are the forms RFC 3834 §2 cites, the others
// are what Mailman (and this service) send from. A *-owner or *-admin
// suffix is not among them: "product-owner@" and "it-admin@" are people.
var (
	robotPrefixes = []string{"owner-", "bounce-", "bounces-", "noreply-", "no-reply-"}
	robotSuffixes = []string{"-request", "-bounces", "-confirm", "-noreply", "-no-reply"}
)

// RobotSender reports whether addr (an addr-spec, or the SMTP envelope's
// reverse-path) is a machine's: the null reverse-path "" or "<>" of a bounce
// (RFC 5321 §4.5.5), MAILER-DAEMON, postmaster (RFC 5321 §4.5.1's mailbox,
// which in practice sends bounces, never commands), list managers
// (listserv, majordomo, mailman, owner-*, *-request, *-bounces,
// *-confirm, RFC 3834 §2's examples among them) and no-reply
// addresses. The local part's +detail is ignored: list-bounces+x@ is
// list-bounces@.
func RobotSender(addr string) bool {
	addr = strings.TrimSpace(addr)
	if addr == "" || addr == "<>" {
		return true
	}
	local := addr
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		local = addr[:i]
	}
	local = strings.Trim(strings.ToLower(local), `"<>`)
	local, _, _ = strings.Cut(local, Delimiter)
	if robotLocals[local] {
		return true
	}
	for _, p := range robotPrefixes {
		if strings.HasPrefix(local, p) {
			return true
		}
	}
	for _, s := range robotSuffixes {
		if strings.HasSuffix(local, s) {
			return true
		}
	}
	return false
}
