package aip

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailplane/mailplane/services/platform/errs"
)

// Order is a parsed order_by: one field, ascending unless Desc. Services
// break ties by id themselves, so pages stay stable.
type Order struct {
	Field string
	Desc  bool
}

// String returns o as an order_by value.
func (o Order) String() string {
	if o.Desc {
		return o.Field + " desc"
	}
	return o.Field
}

// ParseOrderBy parses an order_by (AIP-132): one field of fields, in proto
// or JSON form, optionally followed by "asc" or "desc". An empty one is def.
func ParseOrderBy(orderBy string, def Order, fields ...string) (Order, error) {
	words := strings.Fields(orderBy)
	if len(words) == 0 {
		return def, nil
	}
	bad := func(problem string) error {
		return errs.Field("orderBy", fmt.Sprintf("%q: %s", orderBy, problem))
	}
	if strings.Contains(orderBy, ",") || len(words) > 2 {
		return Order{}, bad("order by one field, optionally followed by asc or desc")
	}
	o := Order{Field: snakeCase(words[0])}
	if !slices.Contains(fields, o.Field) {
		return Order{}, bad("unknown field; sortable: " + strings.Join(fields, ", "))
	}
	if len(words) == 2 {
		switch strings.ToLower(words[1]) {
		case "asc":
		case "desc":
			o.Desc = true
		default:
			return Order{}, bad("the direction is asc or desc")
		}
	}
	return o, nil
}
