package lists

import (
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
)

// Resource names.

func mailServiceName(org, ms uuid.UUID) string {
	return "organizations/" + org.String() + "/mailServices/" + ms.String()
}

func listName(org, ms, list uuid.UUID) string {
	return mailServiceName(org, ms) + "/lists/" + list.String()
}

func memberName(org, ms, list, member uuid.UUID) string {
	return listName(org, ms, list) + "/members/" + member.String()
}

func heldPostName(org, ms, list, held uuid.UUID) string {
	return listName(org, ms, list) + "/heldPosts/" + held.String()
}

// parseMailService parses "organizations/{o}/mailServices/{m}".
func parseMailService(field, name string) (org, ms uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}

// listIDs are the ids a list's name holds.
type listIDs struct{ org, ms, list uuid.UUID }

func parseList(field, name string) (listIDs, error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}/lists/{list}")
	if err != nil {
		return listIDs{}, err
	}
	return listIDs{ids[0], ids[1], ids[2]}, nil
}
