package filters

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/mirror"
	"github.com/riverqueue/river"
)

// MailServiceConsumer is the durable consumer of mailboxes' mail service
// events, which keep the organization's own domains, whose mail the
// external-mail mention leaves unmarked.
const MailServiceConsumer = "filters-mail-services"

const (
	// markOrganization marks every address of an organization whose
	// mention is on: their scripts name the own domains.
	markOrganization = `
INSERT INTO pending_installs (address_id)
SELECT a.id FROM addresses a JOIN settings s ON s.address_id = a.id
WHERE a.organization_id = $1 AND s.external_mention` + onConflictPending + `
RETURNING address_id`
	selectOwnDomains = `
SELECT m.domain FROM mail_services m JOIN addresses a ON a.organization_id = m.organization_id
WHERE a.id = $1 AND m.active ORDER BY m.domain`
)

// MailServiceChanged reinstalls, in tx, the scripts that name the
// organization's own domains once the copy of mail services
// (platform/mirror) has applied ev.
func (s *Server) MailServiceChanged(ctx context.Context, tx pgx.Tx, ev mirror.MailServiceEvent) error {
	rows, err := tx.Query(ctx, markOrganization, ev.Organization)
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
