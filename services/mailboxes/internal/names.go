// Package mailboxes implements the mailboxes service: mail services (domains),
// addresses and who may use them, device passwords, and the lookups the mail
// servers make.
package mailboxes

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// Resource names.

func organizationName(org uuid.UUID) string { return "organizations/" + org.String() }

func mailServiceName(org, ms uuid.UUID) string {
	return organizationName(org) + "/mailServices/" + ms.String()
}

func addressName(org, ms, a uuid.UUID) string {
	return mailServiceName(org, ms) + "/addresses/" + a.String()
}

func userName(id uuid.UUID) string { return "users/" + id.String() }

// parseName splits name into the ids after each of the given collection
// words: parseName("organizations/o/mailServices/m", "organizations",
// "mailServices") returns [o, m].
func parseName(field, name string, collections ...string) ([]uuid.UUID, error) {
	pattern := make([]string, len(collections))
	for i, c := range collections {
		pattern[i] = c + "/{id}"
	}
	return aip.ParseIDs(field, name, strings.Join(pattern, "/"))
}

func userID(field, name string) (uuid.UUID, error) {
	ids, err := aip.ParseIDs(field, name, "users/{user}")
	if err != nil {
		return uuid.Nil, err
	}
	return ids[0], nil
}

// checkLabel trims a name people give to things (a device, a signature) and
// checks it is 1 to 100 printable characters; errors name field.
func checkLabel(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errs.Field(field, "must not be blank")
	case utf8.RuneCountInString(s) > 100:
		return "", errs.Field(field, "must be at most 100 characters")
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "", errs.Field(field, "must not hold control characters")
	}
	return s, nil
}
