package imports

import (
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
)

const (
	orgPattern     = "organizations/{organization}"
	jobPattern     = orgPattern + "/importJobs/{import_job}"
	addressPattern = orgPattern + "/mailServices/{mail_service}/addresses/{address}"
)

func orgName(org uuid.UUID) string { return "organizations/" + org.String() }

func jobName(org, job uuid.UUID) string { return orgName(org) + "/importJobs/" + job.String() }

func addressName(org, ms, addr uuid.UUID) string {
	return orgName(org) + "/mailServices/" + ms.String() + "/addresses/" + addr.String()
}

func parseOrg(field, name string) (uuid.UUID, error) {
	ids, err := aip.ParseIDs(field, name, orgPattern)
	if err != nil {
		return uuid.Nil, err
	}
	return ids[0], nil
}

func parseJob(field, name string) (org, job uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, jobPattern)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}

// addressIDs are the ids an address's name holds.
type addressIDs struct{ org, ms, addr uuid.UUID }

func parseAddress(field, name string) (addressIDs, error) {
	ids, err := aip.ParseIDs(field, name, addressPattern)
	if err != nil {
		return addressIDs{}, err
	}
	return addressIDs{ids[0], ids[1], ids[2]}, nil
}
