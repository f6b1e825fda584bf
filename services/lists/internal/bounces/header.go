package bounces

import (
	"strings"

	"github.com/emersion/go-message/mail"
)

// IsBounce is a quick look at a message's header: does it look like a
// bounce? It reads no body, so it is for routing and for gating the
// plain-text formats; Parse has the last word. It is true when:
//
//   - the Content-Type is a delivery report: multipart/report with
//     report-type delivery-status or global-delivery-status (RFC 3462,
//     RFC 6533), or a bare message/delivery-status;
//   - the header has X-Failed-Recipients (Exim writes it on every bounce);
//   - From is a mail system: a local part mailer-daemon, postmaster or
//     MicrosoftExchange… (Exchange's NDR sender), or the display name
//     "Mail Delivery System" / "Mail Delivery Subsystem";
//   - the message is automatic (Auto-Submitted other than "no", or the
//     null return path "<>") and either its Content-Type is
//     multipart/report of any type or its Subject is a bounce's
//     ("Undeliverable:", "Delivery Status Notification", "failure
//     notice", ...).
//
// An out-of-office reply (Auto-Submitted: auto-replied, a person's From,
// a plain or "Automatic reply:" subject) is not a bounce.
func IsBounce(h mail.Header) bool {
	t, params, _ := h.ContentType()
	t = strings.ToLower(t)
	report := t == "multipart/report"
	switch rt := strings.ToLower(params["report-type"]); {
	case report && (rt == "delivery-status" || rt == "global-delivery-status"):
		return true
	case t == "message/delivery-status", t == "message/global-delivery-status":
		return true
	}
	if h.Get("X-Failed-Recipients") != "" {
		return true
	}
	if fromMailSystem(h) {
		return true
	}
	auto := h.Get("Auto-Submitted")
	automatic := (auto != "" && !strings.EqualFold(strings.TrimSpace(auto), "no")) ||
		strings.TrimSpace(h.Get("Return-Path")) == "<>"
	return automatic && (report || bounceSubject(h))
}

func fromMailSystem(h mail.Header) bool {
	from, err := h.AddressList("From")
	if err != nil || len(from) == 0 {
		// Some mail systems write a From that is not RFC 5322 (MAILER-DAEMON
		// without a domain): look at the raw text.
		raw := strings.ToLower(h.Get("From"))
		return strings.Contains(raw, "mailer-daemon") || strings.Contains(raw, "mail delivery sub") ||
			strings.Contains(raw, "mail delivery system")
	}
	for _, a := range from {
		local, _, _ := strings.Cut(strings.ToLower(a.Address), "@")
		name := strings.ToLower(a.Name)
		switch {
		case local == "mailer-daemon", local == "postmaster", strings.HasPrefix(local, "microsoftexchange"),
			name == "mail delivery system", name == "mail delivery subsystem":
			return true
		}
	}
	return false
}

// bounceSubjects are how the Subjects of bounces begin or what they hold,
// lower-cased; in the languages lists speak too (Exchange translates).
var bounceSubjects = []string{
	"undeliverable",                   // Exchange, Office 365
	"undelivered mail",                // Postfix
	"delivery status notification",    // Gmail, Exchange
	"mail delivery failed",            // Exim
	"failure notice",                  // qmail, Yahoo
	"returned mail",                   // Sendmail
	"delivery failure",                // various
	"delayed mail",                    // Exchange delay
	"delivery delayed",                // Exchange delay
	"warning: could not send message", // Sendmail warning
	"warning: message",                // Exim delay ("Warning: message ... delayed")
	"unzustellbar",                    // Exchange, German
	"non remis",                       // Exchange, French
	"no se puede entregar",            // Exchange, Spanish
	"non recapitabile",                // Exchange, Italian
}

func bounceSubject(h mail.Header) bool {
	s, _ := h.Subject()
	s = strings.ToLower(s)
	for _, b := range bounceSubjects {
		if strings.Contains(s, b) {
			return true
		}
	}
	return false
}
