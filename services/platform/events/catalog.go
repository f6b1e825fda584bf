package events

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Catalog is every subject the services declare they publish (each
// service's <svc>events package), whichever of them the process runs: a
// consumer checks its filters against it when it starts, so that a filter
// typed wrong stops the process instead of silently consuming nothing.
type Catalog struct {
	prefix   string
	subjects []string
}

// NewCatalog returns the catalog of the subjects declared, each relative to
// the deployment's prefix ("mailplane"). It refuses a declared subject that
// holds a wildcard or an empty token, or that two lists declare.
func NewCatalog(prefix string, declared ...[]string) (*Catalog, error) {
	c := &Catalog{prefix: prefix}
	var errs []error
	for _, list := range declared {
		for _, s := range list {
			switch {
			case !isLiteral(s):
				errs = append(errs, fmt.Errorf("declared subject %q: not a literal subject", s))
			case slices.Contains(c.subjects, prefix+"."+s):
				errs = append(errs, fmt.Errorf("subject %q declared twice", s))
			default:
				c.subjects = append(c.subjects, prefix+"."+s)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("event catalog: %w", err)
	}
	return c, nil
}

// Check returns an error naming each of filters (full subjects, prefix
// included, with NATS wildcards: "*" for one token, a last ">" for one or
// more) that matches no declared subject.
func (c *Catalog) Check(filters []string) error {
	var unknown []string
	for _, f := range filters {
		if !slices.ContainsFunc(c.subjects, func(s string) bool { return matches(f, s) }) {
			unknown = append(unknown, f)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("no service publishes on %s: a typo, or a subject missing from its service's events package", strings.Join(unknown, ", "))
	}
	return nil
}

// SubjectIs reports whether subject, as a handler receives it (after the
// deployment's prefix), is want, a subject relative to the prefix such as
// a <svc>events constant.
func SubjectIs(subject, want string) bool {
	return subject == want || strings.HasSuffix(subject, "."+want)
}

// isLiteral reports whether s is a subject without wildcards or empty
// tokens.
func isLiteral(s string) bool {
	for _, t := range strings.Split(s, ".") {
		if t == "" || t == "*" || t == ">" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
	}
	return true
}

// matches reports whether filter, with NATS wildcards, matches subject.
func matches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range f {
		switch {
		case t == ">" && i == len(f)-1:
			return len(s) > i
		case i >= len(s):
			return false
		case t != "*" && t != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}
