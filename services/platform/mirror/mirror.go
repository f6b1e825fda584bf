// Package mirror keeps a service's local copy of what mailboxes owns and
// others read often: its addresses (with their users and rights) and its
// mail services (the organization's domains), fed by mailboxes' events
// (docs/services.md: a copy fed by events where eventual is fine, never a
// read across schemas).
//
// Each service keeps its copy in tables of its own schema, created by its
// own migrations; this package holds what would otherwise be written again
// in each: the SQL that applies the events (run on the service's pool,
// whose search_path is its schema) and the events.Subscription that runs
// it. The tables need at least these columns; a service may add its own,
// with defaults or generated, which the copy never writes:
//
//	CREATE TABLE addresses (
//	    id              uuid PRIMARY KEY,
//	    organization_id uuid NOT NULL,
//	    mail_service_id uuid NOT NULL,
//	    email           text NOT NULL,  -- in lower case
//	    login           text NOT NULL   -- Dovecot's login
//	);
//	CREATE TABLE address_users (
//	    address_id uuid NOT NULL REFERENCES addresses ON DELETE CASCADE,
//	    user_id    uuid NOT NULL,
//	    rights     text[] NOT NULL,     -- the Right* names the user holds
//	    PRIMARY KEY (address_id, user_id)
//	);
//	CREATE TABLE mail_services (
//	    id              uuid PRIMARY KEY,
//	    organization_id uuid NOT NULL,
//	    domain          text NOT NULL,  -- in lower case
//	    active          boolean NOT NULL DEFAULT true
//	);
//	CREATE TABLE mirror_versions (
//	    id  uuid PRIMARY KEY,  -- an address's or a mail service's
//	    seq bigint NOT NULL    -- stream sequence of its last event applied
//	);
//
// What a service does beyond the copy (filters' default settings and
// auto-replies, dnssecurity's first diagnostic) it does in a Then
// function, in the same transaction as the event's effect on the copy.
//
// Ordering: an event older than one already applied to the same address
// or mail service (a redelivery after a failure, while later events went
// on) is skipped, Then included: otherwise it would give back a user the
// rights since taken away, or bring back a deleted address. Events carry
// their stream sequence, which mirror_versions keeps per id, deletions
// included; one copy per schema, as the table is keyed by id alone. A
// deletion or undeletion of a verified mail service records it whole, in
// case its skipped verification was the older event. Events a consumer
// reads beside the copy's (Addresses.Also) are not ordered here: a Then
// that must not go back compares AddressEvent.Seq, as filters does for
// auto-replies.
//
// The stream's order is the one that counts: mailboxes' outbox relays (one
// per replica) may publish two events of one address in the other order
// than they were committed, rarely (two relays at once, or a publish
// retried after later ones went through), and the copy then keeps the
// older state until the address's next event. A version per address,
// carried in the events, would settle that; mailboxes has none yet.
package mirror

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/events"
)

// upsertVersion records seq as the last event applied to id, unless one
// as new was applied before.
const upsertVersion = `
INSERT INTO mirror_versions (id, seq) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq WHERE mirror_versions.seq < excluded.seq`

// claim records in tx that the event of stream sequence seq is applied to
// id, and reports whether it is newer than every event applied to id
// before; if not, the event must change nothing.
func claim(ctx context.Context, tx pgx.Tx, id uuid.UUID, seq uint64) (bool, error) {
	tag, err := tx.Exec(ctx, upsertVersion, id, int64(seq))
	if err != nil {
		return false, fmt.Errorf("version of %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// oneOf reports whether subject, as received, is one of subjects.
func oneOf(subject string, subjects []string) bool {
	for _, s := range subjects {
		if events.SubjectIs(subject, s) {
			return true
		}
	}
	return false
}
