package accounts

import (
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
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
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}")
	if err != nil {
		return uuid.Nil, err
	}
	return ids[0], nil
}

func parseMemberName(field, name string) (org, user uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/members/{member}")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}
