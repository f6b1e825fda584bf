package filters

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/riverqueue/river"
)

// MailServiceConsumer is the durable consumer of mailboxes' mail service
// events.
const MailServiceConsumer = "filters-mail-services"

// MailServiceSubjects are the events it consumes: a domain verified,
// deleted, undeleted or purged changes the organization's own domains.
var MailServiceSubjects = []string{
	mailboxesevents.MailServiceCreated, mailboxesevents.MailServiceDeleted,
	mailboxesevents.MailServiceUndeleted, mailboxesevents.MailServicePurged,
}

const (
	upsertMailService = `
INSERT INTO mail_services (id, organization_id, domain) VALUES ($1, $2, $3)
ON CONFLICT (id) DO UPDATE SET active = true, domain = excluded.domain`
	setMailServiceActive = `UPDATE mail_services SET active = $2 WHERE id = $1`
	deleteMailService    = `DELETE FROM mail_services WHERE id = $1`
	// markOrganization marks every address of an organization whose
	// mention is on: their scripts name the own domains.
	markOrganization = `
INSERT INTO pending_installs (address_id)
SELECT a.id FROM addresses a JOIN settings s ON s.address_id = a.id
WHERE a.organization_id = $1 AND s.external_mention
ON CONFLICT (address_id) DO UPDATE SET version = pending_installs.version + 1
RETURNING address_id`
	selectOwnDomains = `
SELECT m.domain FROM mail_services m JOIN addresses a ON a.organization_id = m.organization_id
WHERE a.id = $1 AND m.active ORDER BY m.domain`
)

// ApplyMailServiceChanged keeps the organization's own domains in step
// with mailboxes, and reinstalls the scripts that name them.
func (s *Server) ApplyMailServiceChanged(ctx context.Context, tx pgx.Tx, subject string, ev *mailboxesv1.MailServiceChanged) error {
	org, ms, err := parseMailService("mail_service.name", ev.GetMailService().GetName())
	if err != nil {
		return fmt.Errorf("mail service event %s: %w", subject, err)
	}
	switch {
	case events.SubjectIs(subject, mailboxesevents.MailServiceCreated), events.SubjectIs(subject, mailboxesevents.MailServiceUndeleted):
		_, err = tx.Exec(ctx, upsertMailService, ms, org, strings.ToLower(ev.GetMailService().GetDomain()))
	case events.SubjectIs(subject, mailboxesevents.MailServiceDeleted):
		_, err = tx.Exec(ctx, setMailServiceActive, ms, false)
	default:
		_, err = tx.Exec(ctx, deleteMailService, ms)
	}
	if err != nil {
		return fmt.Errorf("record mail service %s: %w", ms, err)
	}
	rows, err := tx.Query(ctx, markOrganization, org)
	if err != nil {
		return fmt.Errorf("mark the organization's addresses: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 || s.jobs == nil {
		return err
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: installArgs{Address: id}}
	}
	if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue installs: %w", err)
	}
	return nil
}
