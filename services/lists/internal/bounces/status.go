package bounces

import (
	"regexp"
	"strings"
)

var (
	// replyAndStatus is an SMTP reply with its enhanced code, "550 5.1.1"
	// or "550-5.1.1": the most trusted place for the code.
	replyAndStatus = regexp.MustCompile(`(?:^|[^\d.])[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|$)`)
	// statusCode is an enhanced code on its own (RFC 3463: class.subject.detail),
	// not part of an IP address or a version number; qmail and Exchange
	// write it "#5.1.1".
	statusCode = regexp.MustCompile(`(?:^|[^\d.])([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|$)`)
	// replyCode is a bare SMTP reply code at the start of a diagnostic or
	// after a space, "550 User unknown".
	replyCode = regexp.MustCompile(`(?:^|[\s'"])([45])\d\d(?:[\s-]|$)`)
)

// findStatus returns the RFC 3463 status code in s, "" when there is none.
func findStatus(s string) string {
	if m := replyAndStatus.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := statusCode.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// statusOf returns the status a diagnostic gives: its enhanced code, else
// one derived from its SMTP reply code ("550 ..." is "5.0.0"), else "".
func statusOf(diag string) string {
	if s := findStatus(diag); s != "" {
		return s
	}
	if m := replyCode.FindStringSubmatch(diag); m != nil {
		return m[1] + ".0.0"
	}
	return ""
}

func defaultStatus(permanent bool) string {
	if permanent {
		return "5.0.0"
	}
	return "4.0.0"
}

// classify completes a failure found in a text report: its status from
// the diagnostic, and whether it is permanent (the report's own word,
// overruled by a 4.x.x status).
func classify(rcpt, diag string, permanent bool) Failure {
	diag = strings.Join(strings.Fields(diag), " ")
	status := statusOf(diag)
	if strings.HasPrefix(status, "4.") {
		permanent = false
	}
	if want := defaultStatus(permanent)[:2]; !strings.HasPrefix(status, want) {
		// Missing, or at odds with the report: a warning-only report
		// quoting a 5xx code is still only a warning, and a 2.x.x code in
		// a failure's words is no success. The status says what
		// Permanent says.
		status = defaultStatus(permanent)
	}
	return Failure{Recipient: rcpt, Permanent: permanent, Status: status, Diagnostic: diag}
}
