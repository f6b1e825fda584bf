package dnssecurity

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
)

// MailServiceConsumer is the durable consumer of mailboxes' mail service
// events.
const MailServiceConsumer = "dnssecurity-mail-services"

// MailServiceSubjects are the events it consumes.
var MailServiceSubjects = []string{
	mailboxesevents.MailServiceCreated, mailboxesevents.MailServiceDeleted,
	mailboxesevents.MailServiceUndeleted, mailboxesevents.MailServicePurged,
}

const (
	upsertMailService = `
INSERT INTO mail_services (id, organization_id, domain) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET active = true`
	setMailServiceActive = `UPDATE mail_services SET active = $2 WHERE id = $1`
	deleteMailService    = `DELETE FROM mail_services WHERE id = $1`
	selectMailService    = `
SELECT domain, other_dkim_selectors FROM mail_services
WHERE id = $1 AND organization_id = $2 AND active`
)

// mailService is a mail service as the diagnostic knows it.
type mailService struct {
	org, id   uuid.UUID
	domain    string
	selectors []string
}

// ApplyMailServiceChanged keeps the copy of a mail service in step with
// mailboxes: a verified one is diagnosed at once, a deleted one kept
// inactive until its purge.
func (s *Server) ApplyMailServiceChanged(ctx context.Context, tx pgx.Tx, subject string, ev *mailboxesv1.MailServiceChanged) error {
	ids, err := aip.ParseIDs("mail_service.name", ev.GetMailService().GetName(), "organizations/{organization}/mailServices/{mail_service}")
	if err != nil {
		return fmt.Errorf("mail service event %s: %w", subject, err)
	}
	org, ms := ids[0], ids[1]
	switch {
	case events.SubjectIs(subject, mailboxesevents.MailServiceCreated):
		if _, err := tx.Exec(ctx, upsertMailService, ms, org, ev.GetMailService().GetDomain()); err != nil {
			return fmt.Errorf("insert mail service %s: %w", ms, err)
		}
		return s.queueDiagnostic(ctx, tx, ms)
	case events.SubjectIs(subject, mailboxesevents.MailServiceUndeleted):
		_, err = tx.Exec(ctx, setMailServiceActive, ms, true)
	case events.SubjectIs(subject, mailboxesevents.MailServiceDeleted):
		_, err = tx.Exec(ctx, setMailServiceActive, ms, false)
	case events.SubjectIs(subject, mailboxesevents.MailServicePurged):
		_, err = tx.Exec(ctx, deleteMailService, ms)
	}
	if err != nil {
		return fmt.Errorf("apply %s to mail service %s: %w", subject, ms, err)
	}
	return nil
}

// queueDiagnostic queues a diagnostic of mail service ms in tx; one queued
// already is enough.
func (s *Server) queueDiagnostic(ctx context.Context, tx pgx.Tx, ms uuid.UUID) error {
	if s.jobs == nil {
		return nil // an API-only server in a test
	}
	if _, err := s.jobs.InsertTx(ctx, tx, diagnoseArgs{MailService: ms}, diagnoseInsertOpts()); err != nil {
		return fmt.Errorf("queue diagnostic of %s: %w", ms, err)
	}
	return nil
}

// findMailService returns mail service ms of org; NotFound when it does
// not exist, is not verified yet, or is deleted.
func findMailService(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, org, ms uuid.UUID) (*mailService, error) {
	m := &mailService{org: org, id: ms}
	err := q.QueryRow(ctx, selectMailService, ms, org).Scan(&m.domain, &m.selectors)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "mail service not found (a domain appears here once it is verified)")
	}
	if err != nil {
		return nil, fmt.Errorf("read mail service %s: %w", ms, err)
	}
	return m, nil
}
