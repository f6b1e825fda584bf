package filters

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/mirror"
)

// AddressConsumer is the durable consumer of mailboxes' address events.
// The service keeps its own copy of each address's users and their
// "filters" right (platform/mirror) rather than asking mailboxes on every
// call: a rule edit then needs mailboxes up, and the defaults of a new
// address are made from the same event.
const AddressConsumer = "filters-addresses"

// AddressAlso are the events the address consumer reads beside the
// address's own: the auto-reply's, so that an address's creation is
// applied before its auto-reply.
var AddressAlso = []string{mailboxesevents.AutoReplyUpdated}

const (
	// A new address gets the default settings, once: a redelivered or
	// later event keeps what the customer changed.
	insertDefaultSettings = `INSERT INTO settings (address_id) VALUES ($1) ON CONFLICT DO NOTHING`
	// address_users.filters is generated from rights (migration 00009).
	selectUserRight = `
SELECT u.filters FROM addresses a LEFT JOIN address_users u ON u.address_id = a.id AND u.user_id = $3
WHERE a.id = $1 AND a.organization_id = $2 AND a.mail_service_id = $4`
)

// setVacation keeps the auto-reply of the newest event only.
const setVacation = `UPDATE addresses SET vacation_sieve = $2, vacation_seq = $3 WHERE id = $1 AND vacation_seq < $3`

// AddressChanged does, in tx, what filters does once the copy of
// addresses has applied ev: a new address gets its default settings,
// an auto-reply is recorded (unless a newer one was) and both are
// marked to install. Applying one twice changes nothing more.
func (s *Server) AddressChanged(ctx context.Context, tx pgx.Tx, ev mirror.AddressEvent) error {
	switch {
	case events.SubjectIs(ev.Subject, mailboxesevents.AutoReplyUpdated):
		// An address not known here was deleted since (its creation
		// came first through this consumer): nothing to install.
		tag, err := tx.Exec(ctx, setVacation, ev.ID, ev.Msg.GetVacationSieve(), int64(ev.Seq))
		if err != nil {
			return fmt.Errorf("record auto-reply: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return s.changed(ctx, tx, ev.ID)
	case events.SubjectIs(ev.Subject, mailboxesevents.AddressDeleted):
		return nil
	}
	tag, err := tx.Exec(ctx, insertDefaultSettings, ev.ID)
	if err != nil {
		return fmt.Errorf("default settings: %w", err)
	}
	if tag.RowsAffected() == 1 {
		// The defaults are scripts to install too.
		return s.changed(ctx, tx, ev.ID)
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
