package filters

import (
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
)

// addressIDs are the ids an address's name holds.
type addressIDs struct{ org, ms, addr uuid.UUID }

func (a addressIDs) name() string {
	return "organizations/" + a.org.String() + "/mailServices/" + a.ms.String() + "/addresses/" + a.addr.String()
}

func ruleName(a addressIDs, rule uuid.UUID) string { return a.name() + "/rules/" + rule.String() }

func settingsName(a addressIDs) string { return a.name() + "/filterSettings" }

const addressPattern = "organizations/{organization}/mailServices/{mail_service}/addresses/{address}"

func parseAddress(field, name string) (addressIDs, error) {
	ids, err := aip.ParseIDs(field, name, addressPattern)
	if err != nil {
		return addressIDs{}, err
	}
	return addressIDs{ids[0], ids[1], ids[2]}, nil
}

func parseRule(field, name string) (addressIDs, uuid.UUID, error) {
	ids, err := aip.ParseIDs(field, name, addressPattern+"/rules/{rule}")
	if err != nil {
		return addressIDs{}, uuid.Nil, err
	}
	return addressIDs{ids[0], ids[1], ids[2]}, ids[3], nil
}

func parseSettings(field, name string) (addressIDs, error) {
	ids, err := aip.ParseIDs(field, name, addressPattern+"/filterSettings")
	if err != nil {
		return addressIDs{}, err
	}
	return addressIDs{ids[0], ids[1], ids[2]}, nil
}

func parseMailService(field, name string) (org, ms uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}
