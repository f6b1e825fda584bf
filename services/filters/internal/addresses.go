package filters

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
)

// AddressConsumer is the durable consumer of mailboxes' address events.
const AddressConsumer = "filters-addresses"

// AddressSubjects are the events it consumes. The service keeps its own
// copy of each address's users and their "filters" right rather than
// asking mailboxes on every call: a rule edit then needs mailboxes up,
// and the defaults of a new address are made from the same event.
// The auto-reply's events come through the same consumer, so that an
// address's creation is applied before its auto-reply.
var AddressSubjects = []string{mailboxesevents.AddressCreated, mailboxesevents.AddressUpdated, mailboxesevents.AddressDeleted, mailboxesevents.AutoReplyUpdated}

const (
	upsertAddress = `
INSERT INTO addresses (id, organization_id, mail_service_id, login) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET login = excluded.login`
	// A new address gets the default settings, once: a redelivered or
	// later event keeps what the customer changed.
	insertDefaultSettings = `INSERT INTO settings (address_id) VALUES ($1) ON CONFLICT DO NOTHING`
	deleteAddressUsers    = `DELETE FROM address_users WHERE address_id = $1`
	insertAddressUser     = `INSERT INTO address_users (address_id, user_id, filters) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	deleteAddress         = `DELETE FROM addresses WHERE id = $1`
	selectUserRight       = `
SELECT u.filters FROM addresses a LEFT JOIN address_users u ON u.address_id = a.id AND u.user_id = $3
WHERE a.id = $1 AND a.organization_id = $2 AND a.mail_service_id = $4`
)

// setVacation keeps the auto-reply of the newest event only.
const setVacation = `UPDATE addresses SET vacation_sieve = $2, vacation_seq = $3 WHERE id = $1 AND vacation_seq < $3`

// ApplyAddressChanged records an address's creation, change or deletion,
// or its auto-reply, in tx; seq is the event's stream sequence. Applying
// one twice changes nothing more.
func (s *Server) ApplyAddressChanged(ctx context.Context, tx pgx.Tx, subject string, seq uint64, ev *mailboxesv1.AddressChanged) error {
	a, err := parseAddress("address.name", ev.GetAddress().GetName())
	if err != nil {
		return fmt.Errorf("address event with a bad name %q: %w", ev.GetAddress().GetName(), err)
	}
	if events.SubjectIs(subject, mailboxesevents.AutoReplyUpdated) {
		// An address not known here was deleted since (its creation
		// came first through this consumer): nothing to install.
		tag, err := tx.Exec(ctx, setVacation, a.addr, ev.GetVacationSieve(), int64(seq))
		if err != nil {
			return fmt.Errorf("record auto-reply: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.changed(ctx, tx, a.addr)
	}
	if events.SubjectIs(subject, mailboxesevents.AddressDeleted) {
		_, err := tx.Exec(ctx, deleteAddress, a.addr)
		return err
	}
	login := ev.GetLogin()
	if login == "" {
		login = strings.ToLower(ev.GetAddress().GetEmail())
	}
	if _, err := tx.Exec(ctx, upsertAddress, a.addr, a.org, a.ms, login); err != nil {
		return fmt.Errorf("record address: %w", err)
	}
	tag, err := tx.Exec(ctx, insertDefaultSettings, a.addr)
	if err != nil {
		return fmt.Errorf("default settings: %w", err)
	}
	if tag.RowsAffected() == 1 {
		// The defaults are scripts to install too.
		if err := s.changed(ctx, tx, a.addr); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, deleteAddressUsers, a.addr); err != nil {
		return fmt.Errorf("address users: %w", err)
	}
	for _, u := range ev.GetAddress().GetUsers() {
		id, ok := strings.CutPrefix(u.GetUser(), "users/")
		if !ok {
			continue // an invitation not yet accepted has no user
		}
		uid, err := uuid.Parse(id)
		if err != nil {
			continue
		}
		// Unset rights mean all of them (docs/mailboxes.md).
		filters := u.GetRights() == nil || u.GetRights().GetFilters()
		if _, err := tx.Exec(ctx, insertAddressUser, a.addr, uid, filters); err != nil {
			return fmt.Errorf("address user: %w", err)
		}
	}
	return nil
}

// access checks that ctx's caller may manage a's filters: owners and
// admins, or a user of the address with the "filters" right. Another
// organization's address, or one filters has not heard of, is NotFound.
func (s *Server) access(ctx context.Context, a addressIDs) (access.Caller, error) {
	c, role, err := s.roles.Access(ctx, a.org)
	if err != nil {
		return c, err
	}
	var right *bool
	// The caller's own user id (zero for a token: no such user).
	if err := s.pool.QueryRow(ctx, selectUserRight, a.addr, a.org, c.UserID, a.ms).Scan(&right); err != nil {
		if err == pgx.ErrNoRows {
			return c, errs.E(errs.NotFound, "address %s not found", a.name())
		}
		return c, fmt.Errorf("read address: %w", err)
	}
	if role.CanManage() {
		return c, nil
	}
	if c.IsToken() || right == nil {
		return c, errs.E(errs.PermissionDenied, "only owners, admins and the address's users with the filters right can do this")
	}
	if !*right {
		return c, errs.E(errs.PermissionDenied, "you do not have the filters right on this address")
	}
	return c, nil
}
