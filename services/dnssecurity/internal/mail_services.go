package dnssecurity

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/mirror"
)

// MailServiceConsumer is the durable consumer of mailboxes' mail service
// events.
const MailServiceConsumer = "dnssecurity-mail-services"

const selectMailService = `
SELECT domain, other_dkim_selectors FROM mail_services
WHERE id = $1 AND organization_id = $2 AND active`

// mailService is a mail service as the diagnostic knows it.
type mailService struct {
	org, id   uuid.UUID
	domain    string
	selectors []string
}

// MailServiceChanged queues, in tx, the first diagnostic of a mail service
// just verified, once the copy of mail services (platform/mirror) has
// recorded it; a deleted one stays there inactive until its purge.
func (s *Server) MailServiceChanged(ctx context.Context, tx pgx.Tx, ev mirror.MailServiceEvent) error {
	if !events.SubjectIs(ev.Subject, mailboxesevents.MailServiceCreated) {
		return nil
	}
	return s.queueDiagnostic(ctx, tx, ev.ID)
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
