package mailboxes

import (
	"fmt"
	"slices"
	"strings"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
)

// The checks of an address that need no database; CreateAddress,
// UpdateAddress and bulk files share them. Who holds a local part is
// checked against the database in addresses.go.

// checkAddress validates what a request says of an address.
func checkAddress(in *mailboxesv1.Address, kind string) (localPart string, aliases, redirects []string, err error) {
	localPart = strings.TrimSpace(in.GetLocalPart())
	if kind == "catch_all" {
		localPart = "*"
	} else {
		if err := checkLocalPart(localPart); err != nil {
			return "", nil, nil, errs.Field("address.localPart", err.Error())
		}
		key := localKey(localPart)
		if forbidden[key] {
			return "", nil, nil, errs.Field("address.localPart", fmt.Sprintf("%q belongs to the mail system itself", key))
		}
		if mustReceive[key] && kind == "no_reply" {
			return "", nil, nil, errs.Field("address.kind", fmt.Sprintf("%q must receive mail (RFC 2142); it cannot be no-reply", key))
		}
	}
	aliases, err = checkAliases(in.GetAliases())
	if err != nil {
		return "", nil, nil, err
	}
	if i := slices.Index(aliases, localKey(localPart)); i >= 0 {
		return "", nil, nil, errs.Field("address.aliases", fmt.Sprintf("%q is the address's own local part", aliases[i]))
	}
	redirects, err = checkRedirects(kind, in.GetRedirectDestinations())
	return localPart, aliases, redirects, err
}

// Caps on what one address holds; each check is linear in them.
const (
	maxAliases      = 50
	maxRedirects    = 50
	maxAddressUsers = 100
)

// checkAliases checks an address's aliases and returns their keys, each once.
func checkAliases(in []string) ([]string, error) {
	if len(in) > maxAliases {
		return nil, errs.Field("address.aliases", fmt.Sprintf("at most %d aliases", maxAliases))
	}
	seen := map[string]bool{}
	var out []string
	for i, al := range in {
		field := fmt.Sprintf("address.aliases[%d]", i)
		if err := checkLocalPart(al); err != nil {
			return nil, errs.Field(field, err.Error())
		}
		key := localKey(al)
		if forbidden[key] {
			return nil, errs.Field(field, fmt.Sprintf("%q belongs to the mail system itself", key))
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	return out, nil
}

// checkRedirects checks the destinations of an address of kind, which only
// redirect and catch-all addresses have, and returns them lower-cased.
func checkRedirects(kind string, in []string) ([]string, error) {
	if kind != "redirect" && kind != "catch_all" {
		if len(in) > 0 {
			return nil, errs.Field("address.redirectDestinations", "only redirect and catch-all addresses have destinations")
		}
		return nil, nil
	}
	if len(in) == 0 {
		return nil, errs.Field("address.redirectDestinations", fmt.Sprintf("a %s address needs at least one destination", strings.ReplaceAll(kind, "_", "-")))
	}
	if len(in) > maxRedirects {
		return nil, errs.Field("address.redirectDestinations", fmt.Sprintf("at most %d destinations", maxRedirects))
	}
	var out []string
	for i, d := range in {
		d = strings.ToLower(strings.TrimSpace(d))
		if err := validate.Email(d); err != nil {
			return nil, errs.Field(fmt.Sprintf("address.redirectDestinations[%d]", i), err.Error())
		}
		out = append(out, d)
	}
	return out, nil
}
