// Package dnssecurity implements the DNS security service: the diagnostic
// of mail services' domains, SPF evaluation, corrections written to hosted
// zones and followed until applied, DKIM keys and the DMARC wizard.
package dnssecurity

import (
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/aip"
)

// Resource names.

func mailServiceName(org, ms uuid.UUID) string {
	return "organizations/" + org.String() + "/mailServices/" + ms.String()
}

func securityName(org, ms uuid.UUID) string { return mailServiceName(org, ms) + "/security" }

func changeName(org, ms, id uuid.UUID) string {
	return securityName(org, ms) + "/changes/" + id.String()
}

func dkimKeyName(org, ms uuid.UUID, selector string) string {
	return mailServiceName(org, ms) + "/dkimKeys/" + selector
}

func hostedZoneName(org, id uuid.UUID) string {
	return "organizations/" + org.String() + "/hostedZones/" + id.String()
}

// parseMailService parses "organizations/{o}/mailServices/{m}" followed by
// suffix ("" or "/security").
func parseMailService(field, name, suffix string) (org, ms uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}"+suffix)
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}
