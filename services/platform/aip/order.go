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

// Seek is the tail of a keyset page query (never OFFSET): the condition
// that starts after the previous page's last row, AND-ed to a WHERE, and
// the ORDER BY and LIMIT. key is the sort column, of SQL type typ; id the
// tie-breaking uuid column; $after and $after+1 are the last row's key and
// id (NULL on the first page), $limit the page size. With key "u.email",
// typ "text", id "m.user_id", after 6, limit 5, descending:
//
//	AND ($6::text IS NULL OR (u.email, m.user_id) < ($6, $7::uuid))
//	ORDER BY u.email DESC, m.user_id DESC LIMIT $5
func Seek(key, typ, id string, desc bool, after, limit int) string {
	cmp, dir := ">", ""
	if desc {
		cmp, dir = "<", " DESC"
	}
	return fmt.Sprintf(`
  AND ($%[1]d::%[2]s IS NULL OR (%[3]s, %[4]s) %[5]s ($%[1]d, $%[6]d::uuid))
ORDER BY %[3]s%[7]s, %[4]s%[7]s LIMIT $%[8]d`, after, typ, key, id, cmp, after+1, dir, limit)
}
