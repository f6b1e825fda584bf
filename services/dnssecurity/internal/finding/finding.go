// Package finding is what every check of the security diagnostic reports:
// a stable code for programs, a sentence for the customer, the record as
// seen and what to do about it.
package finding

// Severity says how bad a finding is. The zero value is OK.
type Severity int

const (
	OK Severity = iota
	Warning
	Error
	// Unknown: the check could not run (a DNS server timed out or failed).
	// It is never shown as an error: nothing is known to be wrong.
	Unknown
)

func (s Severity) String() string {
	switch s {
	case OK:
		return "ok"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "unknown"
}

// Finding is one observation of a check.
type Finding struct {
	// Code is stable across releases: "spf.plus_all", "dkim.key_too_short".
	// Frontends translate by it; tests assert it.
	Code     string
	Severity Severity
	// Message is a sentence a customer understands, with the names and
	// numbers of this case ("The SPF record makes 12 DNS lookups; receivers
	// stop at 10.").
	Message string
	// Record is the DNS record the finding is about, as published; empty
	// when there is none.
	Record string
	// Fix says what to do; empty when there is nothing to do.
	Fix string
}

// Worst returns the most severe of fs, OK when fs is empty. Unknown ranks
// below Error and above Warning: an area whose records could not all be
// read is not OK, but not known to be broken either.
func Worst(fs []Finding) Severity {
	rank := map[Severity]int{OK: 0, Warning: 1, Unknown: 2, Error: 3}
	w := OK
	for _, f := range fs {
		if rank[f.Severity] > rank[w] {
			w = f.Severity
		}
	}
	return w
}
