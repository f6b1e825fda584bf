package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
)

// selectLoginOrganization: the organization of the address a login names,
// on an active, verified mail service.
const selectLoginOrganization = `
SELECT ms.organization_id
FROM addresses a JOIN mail_services ms ON ms.id = a.mail_service_id
WHERE ms.domain = $1 AND ms.delete_time IS NULL AND ms.state = 'verified' AND a.local_key = $2`

// CheckSender applies the sender-identity rule ("Sender Mismatch"): a
// person signed in as login may send only as that address or one of its
// aliases. envelopeSender (MAIL FROM) and fromHeader are each checked when
// given; the null envelope sender ("" or "<>", bounces) is allowed. The
// reason, when not allowed, is written for the person who sent the message.
func (l *Lookups) CheckSender(ctx context.Context, login, envelopeSender, fromHeader string) (allowed bool, reason string, err error) {
	lkey, ldomain, ok := splitAddress(strings.TrimSpace(login))
	if !ok {
		return false, fmt.Sprintf("you signed in as %q, which is not an email address", login), nil
	}
	loginEmail := lkey + "@" + ldomain
	checks := []struct{ addr, role string }{
		{strings.TrimSpace(envelopeSender), "used as sender"},
		{strings.TrimSpace(fromHeader), "in the From header"},
	}
	if checks[0].addr == "<>" {
		checks[0].addr = ""
	}
	for _, c := range checks {
		if c.addr == "" {
			continue
		}
		addr := bareAddress(c.addr)
		key, domain, ok := splitAddress(addr)
		owner, found := "", false
		if ok && domain == ldomain {
			owner, found, err = l.senderOwner(ctx, key, domain)
			if err != nil {
				return false, "", err
			}
		}
		if found && owner == lkey {
			continue
		}
		if ok && key+"@"+domain == loginEmail {
			// Signed in, yet not an address that sends: a redirect, the
			// catch-all, or one whose mail service was deleted.
			return false, fmt.Sprintf("the address %q you signed in with cannot send mail", loginEmail), nil
		}
		return false, fmt.Sprintf("the address %q %s is not %q (the address you signed in with) nor one of its aliases", addr, c.role, loginEmail), nil
	}
	return true, "", nil
}

// bareAddress returns the address in s: s itself, or the address of
// "Name <addr>" or "<addr>".
func bareAddress(s string) string {
	if !strings.ContainsAny(s, "<>") {
		return s
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

// CheckSender tells whether an authenticated login may send with the given
// envelope sender and From header. The caller must belong to the
// organization the login's address is in; to anyone else, the address does
// not exist.
func (s *Server) CheckSender(ctx context.Context, req *mailboxesv1.CheckSenderRequest) (*mailboxesv1.CheckSenderResponse, error) {
	if _, err := access.CallerFrom(ctx); err != nil {
		return nil, err
	}
	login := strings.TrimSpace(req.GetLogin())
	key, domain, ok := splitAddress(login)
	if !ok {
		return nil, errs.Field("login", "must be an email address like sales@example.com")
	}
	notFound := errs.E(errs.NotFound, "address %q not found", login)
	var org uuid.UUID
	err := s.pool.QueryRow(ctx, selectLoginOrganization, domain, key).Scan(&org)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound
	case err != nil:
		return nil, fmt.Errorf("check sender: %w", err)
	}
	if _, _, err := s.access(ctx, org); err != nil {
		if errs.Is(err, errs.NotFound) || errs.Is(err, errs.PermissionDenied) {
			return nil, notFound
		}
		return nil, err
	}
	allowed, reason, err := NewLookups(s.pool).CheckSender(ctx, login, req.GetEnvelopeSender(), req.GetFromHeader())
	if err != nil {
		return nil, fmt.Errorf("check sender: %w", err)
	}
	return &mailboxesv1.CheckSenderResponse{Allowed: allowed, Reason: reason}, nil
}
