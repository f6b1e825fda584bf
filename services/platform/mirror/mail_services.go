package mirror

import (
	"context"
	"fmt"
	"log/slog"
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

// MailServiceSubjects are the events that change the copy of mail
// services: a domain verified (created), deleted, undeleted or purged.
// A mail service is in the copy from its verification to its purge, and
// active but while deleted. Only its verification adds it: mailboxes
// deletes and undeletes pending claims too, and a claim is not the
// organization's domain (anyone may claim any domain).
var MailServiceSubjects = []string{
	mailboxesevents.MailServiceCreated, mailboxesevents.MailServiceDeleted,
	mailboxesevents.MailServiceUndeleted, mailboxesevents.MailServicePurged,
}

const (
	upsertMailService = `
INSERT INTO mail_services (id, organization_id, domain, active) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET active = excluded.active, domain = excluded.domain`
	setMailServiceActive = `UPDATE mail_services SET active = $2 WHERE id = $1`
	deleteMailService    = `DELETE FROM mail_services WHERE id = $1`
)

// MailServiceEvent is one of mailboxes' MailServiceChanged events, as Then
// gets it once the copy has applied it.
type MailServiceEvent struct {
	// Subject is the event's subject as received (events.SubjectIs tells
	// which it is).
	Subject string
	// ID and Organization are the mail service's ids, from its name.
	ID, Organization uuid.UUID
	// Seq is its stream sequence: of two events, the newer has the
	// higher.
	Seq uint64
	// Domain is its domain in lower case.
	Domain string
	// Msg is the event.
	Msg *mailboxesv1.MailServiceChanged
}

// MailServices is a service's copy of mailboxes' mail services: its
// consumer of their events.
type MailServices struct {
	// Durable is the consumer's name ("dnssecurity-mail-services").
	Durable string
	// Then, when set, runs after each event in the same transaction (but
	// an older one skipped): an error undoes the event's effect and has
	// it delivered again.
	Then func(ctx context.Context, tx pgx.Tx, ev MailServiceEvent) error
	// Log hears of events dropped for a payload that is no
	// MailServiceChanged.
	Log *slog.Logger
}

// Subscription is the consumer, for a service's Subscriptions.
func (s MailServices) Subscription() events.Subscription {
	return events.Subscription{
		Durable:  s.Durable,
		Subjects: MailServiceSubjects,
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var msg mailboxesv1.MailServiceChanged
			if err := proto.Unmarshal(m.Data(), &msg); err != nil {
				logger(s.Log).ErrorContext(ctx, "mail service event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("mail service event metadata: %w", err)
			}
			ev, applied, err := ApplyMailService(ctx, tx, m.Subject(), md.Sequence.Stream, &msg)
			if err != nil || !applied || s.Then == nil {
				return err
			}
			return s.Then(ctx, tx, ev)
		},
	}
}

// ApplyMailService records in tx a mail service's verification, deletion,
// undeletion or purge (subject, one of MailServiceSubjects, of stream
// sequence seq; any other leaves the copy as it is) and returns the
// event. It reports whether Then is to run: not when an event as new was
// applied to the mail service before (see Ordering), so that applying
// one twice changes nothing more. A name that is no mail service's is an
// error.
func ApplyMailService(ctx context.Context, tx pgx.Tx, subject string, seq uint64, msg *mailboxesv1.MailServiceChanged) (MailServiceEvent, bool, error) {
	ev := MailServiceEvent{Subject: subject, Seq: seq, Msg: msg, Domain: strings.ToLower(msg.GetMailService().GetDomain())}
	ids, err := aip.ParseIDs("mail_service.name", msg.GetMailService().GetName(), "organizations/{organization}/mailServices/{mail_service}")
	if err != nil {
		return ev, false, fmt.Errorf("mail service event %s: %w", subject, err)
	}
	ev.Organization, ev.ID = ids[0], ids[1]
	if !oneOf(subject, MailServiceSubjects) {
		return ev, true, nil
	}
	if ok, err := claim(ctx, tx, ev.ID, seq); err != nil || !ok {
		return ev, false, err
	}
	switch {
	case events.SubjectIs(subject, mailboxesevents.MailServiceCreated):
		_, err = tx.Exec(ctx, upsertMailService, ev.ID, ev.Organization, ev.Domain, true)
	case events.SubjectIs(subject, mailboxesevents.MailServiceDeleted), events.SubjectIs(subject, mailboxesevents.MailServiceUndeleted):
		active := events.SubjectIs(subject, mailboxesevents.MailServiceUndeleted)
		if msg.GetMailService().GetVerifyTime() != nil {
			// Verified: in the copy even if its verification was
			// skipped, having come back after this newer event.
			_, err = tx.Exec(ctx, upsertMailService, ev.ID, ev.Organization, ev.Domain, active)
		} else {
			// A claim never enters the copy.
			_, err = tx.Exec(ctx, setMailServiceActive, ev.ID, active)
		}
	case events.SubjectIs(subject, mailboxesevents.MailServicePurged):
		_, err = tx.Exec(ctx, deleteMailService, ev.ID)
	}
	if err != nil {
		return ev, false, fmt.Errorf("apply %s to mail service %s: %w", subject, ev.ID, err)
	}
	return ev, true, nil
}
