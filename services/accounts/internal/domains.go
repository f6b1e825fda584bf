package accounts

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
	"golang.org/x/net/idna"
)

// DomainConsumer is the durable consumer that keeps, from the mailboxes
// service's events, which organization hosts which mail domain.
const DomainConsumer = "accounts-domains"

// ApplyMailServiceChanged records a mail service's domain as its
// organization's when it is created, and forgets it when it is purged; the
// event's subject says which.
func ApplyMailServiceChanged(ctx context.Context, tx pgx.Tx, subject string, ev *mailboxesv1.MailServiceChanged) error {
	name := ev.GetMailService().GetName()
	parts := strings.Split(name, "/")
	// A bad name will never parse: InvalidArgument has the event dropped
	// rather than retried.
	if len(parts) != 4 || parts[0] != "organizations" || parts[2] != "mailServices" {
		return errs.E(errs.InvalidArgument, "mail service event: bad name %q", name)
	}
	org, err := uuid.Parse(parts[1])
	if err != nil {
		return errs.E(errs.InvalidArgument, "mail service event: bad name %q", name)
	}
	domain := strings.ToLower(ev.GetMailService().GetDomain())
	switch {
	case events.SubjectIs(subject, mailboxesevents.MailServiceCreated):
		_, err = tx.Exec(ctx, `INSERT INTO organization_domains (domain, organization_id) VALUES ($1, $2)
ON CONFLICT (domain) DO UPDATE SET organization_id = excluded.organization_id`, domain, org)
	case events.SubjectIs(subject, mailboxesevents.MailServicePurged):
		_, err = tx.Exec(ctx, `DELETE FROM organization_domains WHERE domain = $1 AND organization_id = $2`, domain, org)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", subject, err)
	}
	return nil
}

// hostsEmail reports whether org hosts email's domain.
func hostsEmail(ctx context.Context, tx pgx.Tx, org uuid.UUID, email string) (bool, error) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return false, nil
	}
	domain, err := idna.Lookup.ToASCII(strings.ToLower(email[at+1:]))
	if err != nil {
		return false, nil
	}
	var ok bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM organization_domains WHERE domain = $1 AND organization_id = $2)`, domain, org).Scan(&ok)
	return ok, err
}
