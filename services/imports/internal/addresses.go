package imports

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// AddressConsumer is the durable consumer of mailboxes' address events.
// The service keeps its own copy of each address's login and users
// (platform/mirror) rather than asking mailboxes on every import: the
// destination's Dovecot login and who may import into it are all it
// needs.
const AddressConsumer = "imports-addresses"

// address is an address of the local copy.
type address struct {
	id, org, ms  uuid.UUID
	email, login string
	// user: the caller is one of its users.
	user bool
}

func (a *address) name() string { return addressName(a.org, a.ms, a.id) }

const selectAddressByID = `
SELECT a.id, a.organization_id, a.mail_service_id, a.email, a.login,
       EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = $3)
FROM addresses a WHERE a.id = $1 AND a.organization_id = $2`

const selectAddressByEmail = `
SELECT a.id, a.organization_id, a.mail_service_id, a.email, a.login,
       EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = $3)
FROM addresses a WHERE lower(a.email) = lower($1) AND a.organization_id = $2`

func scanAddress(row pgx.Row) (*address, error) {
	var a address
	err := row.Scan(&a.id, &a.org, &a.ms, &a.email, &a.login, &a.user)
	return &a, err
}

// destination finds the address called name (or, when byEmail, with
// that email) in org, which c may import into: owners and admins into
// every address, a member into one they are a user of. Another
// organization's address, or one not known here, is NotFound.
func (s *Server) destination(ctx context.Context, c access.Caller, role access.Role, org uuid.UUID, field, name string, byEmail bool) (*address, error) {
	var row pgx.Row
	if byEmail {
		row = s.pool.QueryRow(ctx, selectAddressByEmail, name, org, c.UserID)
	} else {
		ids, err := parseAddress(field, name)
		if err != nil {
			return nil, err
		}
		if ids.org != org {
			// As the API says: the answer to an address of this
			// organization that does not exist.
			return nil, errs.E(errs.NotFound, "address %s not found", name)
		}
		row = s.pool.QueryRow(ctx, selectAddressByID+` AND a.mail_service_id = $4`, ids.addr, org, c.UserID, ids.ms)
	}
	a, err := scanAddress(row)
	if err == pgx.ErrNoRows {
		return nil, errs.E(errs.NotFound, "address %s not found", name)
	}
	if err != nil {
		return nil, fmt.Errorf("read address: %w", err)
	}
	if role.CanManage() || (a.user && !c.IsToken()) {
		return a, nil
	}
	return nil, errs.E(errs.PermissionDenied, "only owners, admins and the address's users can import into %s", a.email)
}
