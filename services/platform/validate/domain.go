package validate

import (
	"errors"
	"strings"

	"golang.org/x/net/idna"
)

// Domain turns a domain as a person types it (Unicode or ASCII, any
// case, a trailing dot) into its ASCII form and its Unicode form for display.
func Domain(s string) (ascii, unicode string, err error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	bad := errors.New("must be a domain name like example.com")
	ascii, err = idna.Lookup.ToASCII(s)
	if err != nil || ascii == "" || len(ascii) > 253 {
		return "", "", bad
	}
	ascii = strings.ToLower(ascii)
	labels := strings.Split(ascii, ".")
	if len(labels) < 2 {
		return "", "", errors.New("must be a domain name with a dot, like example.com")
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", "", bad
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", "", bad
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return "", "", bad
	}
	unicode, err = idna.Lookup.ToUnicode(ascii)
	if err != nil {
		unicode = ascii
	}
	return ascii, unicode, nil
}
