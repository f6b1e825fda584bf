// Package dmarc reads, checks and writes DMARC policy records (RFC 7489
// and its successor RFC 9989, DMARCbis) and finds the record that applies
// to a domain by the DNS tree walk of RFC 9989, without a public suffix
// list.
package dmarc

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
)

// Action is what a policy asks receivers to do with failing mail.
type Action string

const (
	None       Action = "none"
	Quarantine Action = "quarantine"
	Reject     Action = "reject"
)

// Record is a parsed DMARC policy record. Tags absent from the record are
// empty; their defaults are the receivers' business.
type Record struct {
	P, SP, NP   Action
	ADKIM, ASPF string // "r" or "s"
	PSD         string // "y", "n" or "u"
	T           string // "y" or "n"
	FO          string
	RUA, RUF    []string
	// Tags are the record's tags in order, as written, unknown ones too.
	Tags []Tag
}

// Tag is one tag=value of a record.
type Tag struct{ Name, Value string }

// TagError is a problem with one tag of a record. Warnings do not stop
// receivers from using the record.
type TagError struct {
	Tag     string // "" when about the record as a whole
	Warning bool
	Msg     string
}

func (e *TagError) Error() string {
	if e.Tag == "" {
		return e.Msg
	}
	return e.Tag + ": " + e.Msg
}

// Removed are the tags RFC 9989 removed: receivers following it ignore
// them.
var removed = map[string]string{
	"pct": "the t=y tag replaces it for testing a policy",
	"rf":  "failure reports have one format",
	"ri":  "receivers send aggregate reports daily",
}

var known = map[string]bool{
	"v": true, "p": true, "sp": true, "np": true, "psd": true, "t": true,
	"adkim": true, "aspf": true, "fo": true, "rua": true, "ruf": true,
}

// Parse parses a DMARC policy record; it fails on any error Validate
// reports, not on warnings.
func Parse(txt string) (*Record, error) {
	rec, problems := parse(txt)
	var errs []error
	for _, p := range problems {
		if !p.Warning {
			errs = append(errs, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rec, nil
}

// Validate returns every problem of a DMARC policy record, each a
// *TagError naming its tag; warnings (unknown or removed tags, p not
// second) have Warning set.
func Validate(txt string) []error {
	_, problems := parse(txt)
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	return errs
}

// IsDMARC reports whether txt starts with v=DMARC1: receivers discard
// every other TXT record at _dmarc names.
func IsDMARC(txt string) bool {
	name, value, ok := strings.Cut(strings.SplitN(txt, ";", 2)[0], "=")
	return ok && strings.EqualFold(strings.Trim(name, " \t"), "v") && strings.Trim(value, " \t") == "DMARC1"
}

// parse reads what it can of txt, as a receiver would, with the
// problems it met. The record is nil when txt is not a DMARC record.
func parse(txt string) (*Record, []*TagError) {
	var problems []*TagError
	bad := func(tag, format string, args ...any) {
		problems = append(problems, &TagError{Tag: tag, Msg: fmt.Sprintf(format, args...)})
	}
	warn := func(tag, format string, args ...any) {
		problems = append(problems, &TagError{Tag: tag, Warning: true, Msg: fmt.Sprintf(format, args...)})
	}
	if !IsDMARC(txt) {
		bad("v", "the record must start with v=DMARC1 (exactly, upper case); receivers ignore it otherwise")
		return nil, problems
	}
	rec := &Record{}
	seen := map[string]bool{}
	for _, spec := range strings.Split(txt, ";") {
		spec = strings.Trim(spec, " \t")
		if spec == "" {
			continue // the final ";", or ";;" receivers skip
		}
		name, value, ok := strings.Cut(spec, "=")
		name, value = strings.ToLower(strings.Trim(name, " \t")), strings.Trim(value, " \t")
		switch {
		case !ok:
			bad("", "%q is not a tag=value pair", spec)
			continue
		case !isAlpha(name):
			bad("", "%q is not a tag name (letters only)", name)
			continue
		case value == "":
			bad(name, "the value is empty")
			continue
		case seen[name]:
			bad(name, "the tag appears twice")
			continue
		}
		if i := strings.IndexFunc(value, func(r rune) bool { return r < 0x20 || r > 0x7e }); i >= 0 {
			bad(name, "the value holds %q, not a printable ASCII character", []rune(value[i:])[0])
			continue
		}
		seen[name] = true
		rec.Tags = append(rec.Tags, Tag{name, value})
		if len(rec.Tags) == 1 {
			continue // v=DMARC1, checked above
		}
		if why, ok := removed[name]; ok {
			warn(name, "removed by RFC 9989 (%s); receivers following it ignore the tag", why)
			continue
		}
		if !known[name] {
			warn(name, "unknown tag; receivers ignore it")
			continue
		}
		lower := strings.ToLower(value)
		switch name {
		case "v":
			bad("v", "v= must be the first tag and appear once")
		case "p", "sp", "np":
			a := Action(lower)
			if a != None && a != Quarantine && a != Reject {
				bad(name, "%q is not a policy (none, quarantine or reject)", value)
				continue
			}
			switch name {
			case "p":
				rec.P = a
				if len(rec.Tags) != 2 {
					warn("p", "p= should come right after v=DMARC1: receivers of RFC 7489 require it")
				}
			case "sp":
				rec.SP = a
			case "np":
				rec.NP = a
			}
		case "psd":
			if lower != "y" && lower != "n" && lower != "u" {
				bad(name, "%q is not y, n or u", value)
				continue
			}
			rec.PSD = lower
		case "t":
			if lower != "y" && lower != "n" {
				bad(name, "%q is not y or n", value)
				continue
			}
			rec.T = lower
		case "adkim", "aspf":
			if lower != "r" && lower != "s" {
				bad(name, "%q is not r (relaxed) or s (strict)", value)
				continue
			}
			if name == "adkim" {
				rec.ADKIM = lower
			} else {
				rec.ASPF = lower
			}
		case "fo":
			if err := checkFO(lower); err != nil {
				bad(name, "%v", err)
				continue
			}
			rec.FO = lower
		case "rua", "ruf":
			uris, errs := parseURIs(value)
			for _, err := range errs {
				problems = append(problems, &TagError{Tag: name, Msg: err.Error()})
			}
			if name == "rua" {
				rec.RUA = uris
			} else {
				rec.RUF = uris
			}
		}
	}
	if rec.P == "" && !seen["p"] {
		warn("p", "p= is missing: receivers treat the record as p=none, and RFC 7489 receivers may ignore it")
	}
	return rec, problems
}

func isAlpha(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// checkFO checks a fo= value: colon-separated 0, 1, d, s, each at most
// once, 0 and 1 not together.
func checkFO(v string) error {
	seen := map[string]bool{}
	for _, o := range strings.Split(v, ":") {
		o = strings.Trim(o, " \t")
		switch o {
		case "0", "1", "d", "s":
		default:
			return fmt.Errorf("%q is not a failure option (0, 1, d or s, separated by colons)", o)
		}
		if seen[o] {
			return fmt.Errorf("%q appears twice", o)
		}
		seen[o] = true
	}
	if seen["0"] && seen["1"] {
		return fmt.Errorf("0 and 1 exclude each other")
	}
	return nil
}

// reportSize is the "!10m" suffix RFC 7489 allowed on report URIs; RFC
// 9989 keeps it as obsolete syntax that receivers ignore.
var reportSize = regexp.MustCompile(`![0-9]+[kmgt]?$`)

// parseURIs parses a comma-separated list of report URIs, the size
// suffixes removed.
func parseURIs(v string) ([]string, []error) {
	var uris []string
	var errs []error
	for _, u := range strings.Split(v, ",") {
		u = strings.Trim(u, " \t")
		u = reportSize.ReplaceAllString(u, "")
		if err := checkURI(u); err != nil {
			errs = append(errs, err)
			continue
		}
		uris = append(uris, u)
	}
	return uris, errs
}

func checkURI(u string) error {
	if u == "" {
		return fmt.Errorf("an empty address in the list")
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return fmt.Errorf("%q is not a URI (mailto:reports@example.com)", u)
	}
	switch strings.ToLower(p.Scheme) {
	case "mailto":
		addr := p.Opaque
		if addr == "" {
			return fmt.Errorf("%q names no address", u)
		}
		if i := strings.IndexByte(addr, '?'); i >= 0 {
			addr = addr[:i]
		}
		if a, err := url.PathUnescape(addr); err == nil {
			addr = a
		}
		if !validAddress(addr) {
			return fmt.Errorf("%q: %q is not a valid mail address", u, addr)
		}
	case "https", "http":
		if p.Host == "" {
			return fmt.Errorf("%q names no host", u)
		}
	}
	return nil
}

func validAddress(addr string) bool {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return false
	}
	_, domain, _ := strings.Cut(addr, "@")
	return strings.Contains(domain, ".") && !strings.ContainsAny(domain, "[]")
}

// MailtoDomain returns the domain of a mailto: report URI, "" for other
// URIs.
func MailtoDomain(uri string) string {
	p, err := url.Parse(uri)
	if err != nil || !strings.EqualFold(p.Scheme, "mailto") {
		return ""
	}
	addr, _, _ := strings.Cut(p.Opaque, "?")
	if a, err := url.PathUnescape(addr); err == nil {
		addr = a
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
}
