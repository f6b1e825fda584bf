package accounts

import (
	"strings"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// Resource names: builders and parsers.

func userName(id uuid.UUID) string         { return "users/" + id.String() }
func organizationName(id uuid.UUID) string { return "organizations/" + id.String() }
func memberName(org, user uuid.UUID) string {
	return organizationName(org) + "/members/" + user.String()
}
func apiTokenName(org, token uuid.UUID) string {
	return organizationName(org) + "/apiTokens/" + token.String()
}

func parseOrganizationName(field, name string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(name, "organizations/")
	id, err := uuid.Parse(rest)
	if !ok || err != nil || strings.Contains(rest, "/") {
		return uuid.Nil, errs.Field(field, "must be an organization name like organizations/{id}")
	}
	return id, nil
}

func parseMemberName(field, name string) (org, user uuid.UUID, err error) {
	parts := strings.Split(name, "/")
	if len(parts) == 4 && parts[0] == "organizations" && parts[2] == "members" {
		org, err1 := uuid.Parse(parts[1])
		user, err2 := uuid.Parse(parts[3])
		if err1 == nil && err2 == nil {
			return org, user, nil
		}
	}
	return uuid.Nil, uuid.Nil, errs.Field(field, "must be a member name like organizations/{id}/members/{user}")
}
