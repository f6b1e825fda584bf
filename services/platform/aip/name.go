package aip

import (
	"strings"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// ParseName matches a resource name against pattern, whose segments are
// literals ("organizations") or variables ("{organization}"), and returns the
// variables' values in order. A name that does not match, or has an empty
// variable, is InvalidArgument naming field and showing the pattern:
//
//	ParseName("parent", "organizations/o1/mailServices/m1", "organizations/{organization}/mailServices/{mail_service}")
//	// ["o1", "m1"]
func ParseName(field, name, pattern string) ([]string, error) {
	want := strings.Split(pattern, "/")
	got := strings.Split(name, "/")
	if len(got) != len(want) {
		return nil, badName(field, pattern)
	}
	var vars []string
	for i, w := range want {
		if isVariable(w) {
			if got[i] == "" {
				return nil, badName(field, pattern)
			}
			vars = append(vars, got[i])
		} else if got[i] != w {
			return nil, badName(field, pattern)
		}
	}
	return vars, nil
}

// ParseIDs is ParseName for patterns whose variables are all UUIDs, which is
// every Mailplane resource id.
func ParseIDs(field, name, pattern string) ([]uuid.UUID, error) {
	vars, err := ParseName(field, name, pattern)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(vars))
	for i, v := range vars {
		// uuid.Parse also takes braces and "urn:uuid:"; a name has one
		// spelling only.
		id, err := uuid.Parse(v)
		if err != nil || id.String() != strings.ToLower(v) {
			return nil, badName(field, pattern)
		}
		ids[i] = id
	}
	return ids, nil
}

func isVariable(segment string) bool {
	return len(segment) > 2 && segment[0] == '{' && segment[len(segment)-1] == '}'
}

func badName(field, pattern string) error {
	return errs.Field(field, "must be a name like "+pattern)
}
