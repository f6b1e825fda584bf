// Package mailboxes implements the mailboxes service: mail services (domains),
// addresses and who may use them, device passwords, and the lookups the mail
// servers make.
package mailboxes

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
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
	parts := strings.Split(name, "/")
	example := ""
	for _, c := range collections {
		example += c + "/{id}/"
	}
	bad := errs.Field(field, "must be a name like "+strings.TrimSuffix(example, "/"))
	if len(parts) != 2*len(collections) {
		return nil, bad
	}
	ids := make([]uuid.UUID, len(collections))
	for i, c := range collections {
		id, err := uuid.Parse(parts[2*i+1])
		if parts[2*i] != c || err != nil {
			return nil, bad
		}
		ids[i] = id
	}
	return ids, nil
}

func userID(field, name string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(name, "users/")
	id, err := uuid.Parse(rest)
	if !ok || err != nil {
		return uuid.Nil, errs.Field(field, "must be a user name like users/{id}")
	}
	return id, nil
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
