package mailboxes

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// allowedMixes are the sets of scripts one label may mix, after UTS #39's
// "highly restrictive" level: Japanese, Chinese with Bopomofo and Korean
// writing, each with Latin. Anything else mixing scripts (Latin "pаypal"
// with a Cyrillic "а") is refused.
var allowedMixes = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// checkScripts refuses a domain (in Unicode) having a label that mixes
// scripts, the trick of look-alike domains. Digits, the hyphen and other
// characters common to all scripts count for none.
func checkScripts(domain string) error {
	for _, label := range strings.Split(domain, ".") {
		seen := map[string]bool{}
		for _, r := range label {
			if s := scriptOf(r); s != "" {
				seen[s] = true
			}
		}
		if len(seen) < 2 || slices.ContainsFunc(allowedMixes, func(mix []string) bool {
			for s := range seen {
				if !slices.Contains(mix, s) {
					return false
				}
			}
			return true
		}) {
			continue
		}
		names := make([]string, 0, len(seen))
		for s := range seen {
			names = append(names, s)
		}
		slices.Sort(names)
		return fmt.Errorf("the label %q mixes scripts (%s); each label must be written in one script", label, strings.Join(names, ", "))
	}
	return nil
}

// scriptOf names r's Unicode script, or "" for characters of every script
// (digits, the hyphen, combining marks).
func scriptOf(r rune) string {
	switch {
	case r < 0x80:
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return "Latin"
		}
		return ""
	case unicode.In(r, unicode.Common, unicode.Inherited):
		return ""
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return ""
}

// atext are the characters RFC 5322 allows in a dot-atom besides letters and
// digits.
const atext = "!#$%&'*+-/=?^_`{|}~"

// checkLocalPart checks a local part is an RFC 5321 dot-string of at most 64
// bytes. Quoted local parts, legal but refused by most software, are not
// accepted.
func checkLocalPart(s string) error {
	switch {
	case s == "":
		return errors.New("is required")
	case s == "*":
		return errors.New(`"*" stands for the catch-all; create a catch-all address instead`)
	case len(s) > 64:
		return errors.New("must be at most 64 bytes")
	case s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, ".."):
		return errors.New("must not start or end with a dot, nor have two in a row")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || strings.ContainsRune(atext, c)) {
			return errors.New("may hold only letters, digits, dots and " + atext)
		}
	}
	return nil
}

// localKey folds a local part for uniqueness: "Anna.Smith" and "anna.smith"
// are one address.
func localKey(s string) string { return strings.ToLower(s) }

// Names handled as hosting providers do: postmaster and abuse must receive
// mail (RFC 2142), so they cannot be no-reply; mailer-daemon is the mail
// system's own sender and cannot be an address at all.
var (
	mustReceive = map[string]bool{"postmaster": true, "abuse": true}
	forbidden   = map[string]bool{"mailer-daemon": true}
)
