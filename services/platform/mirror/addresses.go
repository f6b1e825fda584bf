package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// The rights an address's user may hold, as address_users.rights names
// them (mailboxes' Rights fields).
const (
	RightAutoReply  = "auto_reply"
	RightDevices    = "devices"
	RightFilters    = "filters"
	RightSignatures = "signatures"
)

// AddressSubjects are the events that change the copy of addresses.
var AddressSubjects = []string{mailboxesevents.AddressCreated, mailboxesevents.AddressUpdated, mailboxesevents.AddressDeleted}

const addressPattern = "organizations/{organization}/mailServices/{mail_service}/addresses/{address}"

const (
	upsertAddress = `
INSERT INTO addresses (id, organization_id, mail_service_id, email, login) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE SET email = excluded.email, login = excluded.login`
	deleteAddressUsers = `DELETE FROM address_users WHERE address_id = $1`
	insertAddressUser  = `INSERT INTO address_users (address_id, user_id, rights) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	deleteAddress      = `DELETE FROM addresses WHERE id = $1`
)

// AddressEvent is one of mailboxes' AddressChanged events, as Then gets it
// once the copy has applied it.
type AddressEvent struct {
	// Subject is the event's subject as received (events.SubjectIs tells
	// which it is).
	Subject string
	// Seq is its stream sequence: of two events, the newer has the
	// higher.
	Seq uint64
	// ID, Organization and MailService are the address's ids, from its
	// name.
	ID, Organization, MailService uuid.UUID
	// Msg is the event.
	Msg *mailboxesv1.AddressChanged
}

// Addresses is a service's copy of mailboxes' addresses: its consumer of
// their events.
type Addresses struct {
	// Durable is the consumer's name ("filters-addresses").
	Durable string
	// Also are more subjects carrying an AddressChanged that the same
	// consumer reads (mailboxes' auto_reply.updated), so that they come
	// in order with the address's own events (its creation first). The
	// copy leaves them to Then.
	Also []string
	// Then, when set, runs after each event in the same transaction (but
	// an older one skipped): an error undoes the event's effect and has
	// it delivered again.
	Then func(ctx context.Context, tx pgx.Tx, ev AddressEvent) error
	// Log hears of events dropped for a payload that is no AddressChanged.
	Log *slog.Logger
}

// Subscription is the consumer, for a service's Subscriptions.
func (a Addresses) Subscription() events.Subscription {
	return events.Subscription{
		Durable:  a.Durable,
		Subjects: append(slices.Clip(AddressSubjects), a.Also...),
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var msg mailboxesv1.AddressChanged
			if err := proto.Unmarshal(m.Data(), &msg); err != nil {
				logger(a.Log).ErrorContext(ctx, "address event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("address event metadata: %w", err)
			}
			ev, applied, err := ApplyAddress(ctx, tx, m.Subject(), md.Sequence.Stream, &msg)
			if err != nil || !applied || a.Then == nil {
				return err
			}
			return a.Then(ctx, tx, ev)
		},
	}
}

// ApplyAddress records in tx an address's creation, change or deletion
// (subject, one of AddressSubjects, of stream sequence seq; any other
// subject leaves the copy as it is) and returns the event. It reports
// whether Then is to run: not when an event as new was applied to the
// address before (see Ordering), so that applying one twice changes
// nothing more. A name that is no address's is an error.
func ApplyAddress(ctx context.Context, tx pgx.Tx, subject string, seq uint64, msg *mailboxesv1.AddressChanged) (AddressEvent, bool, error) {
	ev := AddressEvent{Subject: subject, Seq: seq, Msg: msg}
	name := msg.GetAddress().GetName()
	ids, err := aip.ParseIDs("address.name", name, addressPattern)
	if err != nil {
		return ev, false, fmt.Errorf("address event with a bad name %q: %w", name, err)
	}
	ev.Organization, ev.MailService, ev.ID = ids[0], ids[1], ids[2]
	if !oneOf(subject, AddressSubjects) {
		return ev, true, nil
	}
	if ok, err := claim(ctx, tx, ev.ID, seq); err != nil || !ok {
		return ev, false, err
	}
	if events.SubjectIs(subject, mailboxesevents.AddressDeleted) {
		if _, err := tx.Exec(ctx, deleteAddress, ev.ID); err != nil {
			return ev, false, fmt.Errorf("delete address %s: %w", ev.ID, err)
		}
		return ev, true, nil
	}
	email := strings.ToLower(msg.GetAddress().GetEmail())
	login := msg.GetLogin()
	if login == "" {
		login = email
	}
	if _, err := tx.Exec(ctx, upsertAddress, ev.ID, ev.Organization, ev.MailService, email, login); err != nil {
		return ev, false, fmt.Errorf("record address %s: %w", ev.ID, err)
	}
	if _, err := tx.Exec(ctx, deleteAddressUsers, ev.ID); err != nil {
		return ev, false, fmt.Errorf("address users of %s: %w", ev.ID, err)
	}
	for _, u := range msg.GetAddress().GetUsers() {
		id, ok := strings.CutPrefix(u.GetUser(), "users/")
		if !ok {
			continue // an invitation not yet accepted has no user
		}
		uid, err := uuid.Parse(id)
		if err != nil {
			continue
		}
		if _, err := tx.Exec(ctx, insertAddressUser, ev.ID, uid, rights(u.GetRights())); err != nil {
			return ev, false, fmt.Errorf("address user of %s: %w", ev.ID, err)
		}
	}
	return ev, true, nil
}

// rights names the rights r grants; unset rights are all of them
// (docs/mailboxes.md).
func rights(r *mailboxesv1.Rights) []string {
	if r == nil {
		return []string{RightAutoReply, RightDevices, RightFilters, RightSignatures}
	}
	held := []string{}
	for _, x := range []struct {
		name string
		on   bool
	}{{RightAutoReply, r.GetAutoReply()}, {RightDevices, r.GetDevices()}, {RightFilters, r.GetFilters()}, {RightSignatures, r.GetSignatures()}} {
		if x.on {
			held = append(held, x.name)
		}
	}
	return held
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
