package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"golang.org/x/net/idna"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// MailService is a domain attached to an organization: a claim until it is
// verified (verify.go).
type MailService struct {
	ID                uuid.UUID
	OrganizationID    uuid.UUID
	Domain            string
	DisplayName       string
	CreateTime        time.Time
	UpdateTime        time.Time
	DeleteTime        *time.Time
	State             string
	VerificationToken string
	VerifyTime        *time.Time
	LastCheckTime     *time.Time
	LastCheckResult   string
}

// msColumns are MailService's columns, in its fields' order.
const msColumns = `id, organization_id, domain, display_name, create_time, update_time, delete_time,
state, verification_token, verify_time, last_check_time, last_check_result`

const (
	mailServiceColumns = `
SELECT ` + msColumns + ` FROM mail_services`

	insertMailService = `
INSERT INTO mail_services (id, organization_id, domain, display_name, state, verification_token)
VALUES ($1, $2, $3, $4, 'pending', $5)
RETURNING ` + msColumns

	selectMailService  = mailServiceColumns + ` WHERE id = $1 AND organization_id = $2`
	selectMailServices = mailServiceColumns + `
WHERE organization_id = $1 AND ($2 OR delete_time IS NULL) ORDER BY domain`

	renameMailService = `
UPDATE mail_services SET display_name = $3, update_time = now()
WHERE id = $1 AND organization_id = $2 AND delete_time IS NULL
RETURNING ` + msColumns

	softDeleteMailService = `
UPDATE mail_services SET delete_time = now(), update_time = now()
WHERE id = $1 AND organization_id = $2 AND delete_time IS NULL
RETURNING ` + msColumns

	undeleteMailService = `
UPDATE mail_services SET delete_time = NULL, update_time = now()
WHERE id = $1 AND organization_id = $2 AND delete_time > now() - $3::interval
RETURNING ` + msColumns

	// purgeMailServices removes, one transaction at a time, what was deleted
	// longer ago than the restore period; addresses go with them (cascade).
	// announceMailServices takes a batch of mail services that were never
	// announced.
	announceMailServices = `
UPDATE mail_services SET announced = true WHERE id IN (
    SELECT id FROM mail_services WHERE NOT announced AND state = 'verified' LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING ` + msColumns

	purgeMailServices = `
DELETE FROM mail_services WHERE id IN (
    SELECT id FROM mail_services WHERE delete_time <= now() - $1::interval LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING ` + msColumns
)

var errMailServiceNotFound = errs.E(errs.NotFound, "mail service not found")

func collectMailService(rows pgx.Rows) (*MailService, error) {
	m, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[MailService])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errMailServiceNotFound
	}
	return m, err
}

// activeMailService returns org's mail service ms unless it is deleted.
func activeMailService(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, org, ms uuid.UUID) (*MailService, error) {
	rows, _ := q.Query(ctx, selectMailService, ms, org)
	m, err := collectMailService(rows)
	if err == nil && m.DeleteTime != nil {
		return nil, errMailServiceNotFound
	}
	return m, err
}

func (s *Server) mailServiceEvent(ctx context.Context, tx pgx.Tx, subject string, m *MailService, c access.Caller) error {
	return outbox.Write(ctx, tx, subject, &mailboxesv1.MailServiceChanged{MailService: s.mailServiceProto(m), Actor: c.Name()})
}

// CreateMailService claims a domain: the mail service is pending until its
// verification record is found (verify.go).
func (s *Server) CreateMailService(ctx context.Context, req *mailboxesv1.CreateMailServiceRequest) (*mailboxesv1.CreateMailServiceResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations")
	if err != nil {
		return nil, err
	}
	org := ids[0]
	ascii, uni, err := validate.Domain(req.GetMailService().GetDomain())
	if err == nil {
		err = checkScripts(uni)
	}
	if err != nil {
		return nil, errs.Field("mailService.domain", err.Error())
	}
	c, err := s.manage(ctx, org)
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateMailService")
	if err != nil || done != "" {
		return s.createdMailService(ctx, done, err)
	}
	display := strings.TrimSpace(req.GetMailService().GetDisplayName())
	if display == "" {
		display = uni
	}
	var m *MailService
	id := uuid.Must(uuid.NewV7())
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The key first: a concurrent retry waits here for this create.
		if err := idem.Insert(ctx, tx, mailServiceName(org, id)); err != nil {
			return err
		}
		if err := checkDomainFree(ctx, tx, org, ascii); err != nil {
			return err
		}
		if err := checkClaims(ctx, tx, org); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, insertMailService, id, org, ascii, display, newVerificationToken())
		m, err = collectMailService(rows)
		if pg.IsUniqueViolation(err, "mail_services_one_claim") {
			return domainError(errs.AlreadyExists, "DOMAIN_CLAIMED", "your organization already has a pending claim on "+ascii)
		}
		if err != nil {
			return fmt.Errorf("insert mail service: %w", err)
		}
		if err := audit(ctx, tx, organizationName(org), c, "mailboxes.mailService.create", mailServiceName(org, m.ID), map[string]string{"domain": ascii}); err != nil {
			return err
		}
		// Not "created": that tells the platform the organization hosts the
		// domain, which only verification shows.
		return s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceClaimed, m, c)
	})
	if err != nil {
		done, err := s.raced(ctx, idem, err)
		return s.createdMailService(ctx, done, err)
	}
	return &mailboxesv1.CreateMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// createdMailService answers a create again with the mail service name it
// made, read afresh, or err.
func (s *Server) createdMailService(ctx context.Context, name string, err error) (*mailboxesv1.CreateMailServiceResponse, error) {
	if err != nil {
		return nil, err
	}
	got, err := s.GetMailService(ctx, &mailboxesv1.GetMailServiceRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.CreateMailServiceResponse{MailService: got.GetMailService()}, nil
}

// GetMailService returns a mail service, deleted ones included.
func (s *Server) GetMailService(ctx context.Context, req *mailboxesv1.GetMailServiceRequest) (*mailboxesv1.GetMailServiceResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.access(ctx, ids[0]); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectMailService, ids[1], ids[0])
	m, err := collectMailService(rows)
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.GetMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// ListMailServices lists an organization's mail services.
func (s *Server) ListMailServices(ctx context.Context, req *mailboxesv1.ListMailServicesRequest) (*mailboxesv1.ListMailServicesResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.access(ctx, ids[0]); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectMailServices, ids[0], req.GetShowDeleted())
	ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[MailService])
	if err != nil {
		return nil, fmt.Errorf("list mail services: %w", err)
	}
	resp := &mailboxesv1.ListMailServicesResponse{}
	for _, m := range ms {
		resp.MailServices = append(resp.MailServices, s.mailServiceProto(m))
	}
	return resp, nil
}

// UpdateMailService renames a mail service.
func (s *Server) UpdateMailService(ctx context.Context, req *mailboxesv1.UpdateMailServiceRequest) (*mailboxesv1.UpdateMailServiceResponse, error) {
	ids, err := parseName("mailService.name", req.GetMailService().GetName(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	// display_name is the one updatable field: the mask only has to be valid.
	if _, err := aip.UpdatePaths(req.GetUpdateMask(), req.GetMailService(), "display_name"); err != nil {
		return nil, err
	}
	display := strings.TrimSpace(req.GetMailService().GetDisplayName())
	if display == "" {
		return nil, errs.Field("mailService.displayName", "must not be blank")
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	m, err := s.changeMailService(ctx, c, ids[0], ids[1], mailboxesevents.MailServiceUpdated, "mailboxes.mailService.update", renameMailService, display)
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.UpdateMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// DeleteMailService deletes a mail service, restorable for 30 days.
func (s *Server) DeleteMailService(ctx context.Context, req *mailboxesv1.DeleteMailServiceRequest) (*mailboxesv1.DeleteMailServiceResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	m, err := s.changeMailService(ctx, c, ids[0], ids[1], mailboxesevents.MailServiceDeleted, "mailboxes.mailService.delete", softDeleteMailService)
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.DeleteMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// UndeleteMailService restores a deleted mail service.
func (s *Server) UndeleteMailService(ctx context.Context, req *mailboxesv1.UndeleteMailServiceRequest) (*mailboxesv1.UndeleteMailServiceResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	m, err := s.changeMailService(ctx, c, ids[0], ids[1], mailboxesevents.MailServiceUndeleted, "mailboxes.mailService.undelete", undeleteMailService, s.restoreFor)
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.UndeleteMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// changeMailService runs one UPDATE ... RETURNING on org's mail service ms,
// with its audit record and event.
func (s *Server) changeMailService(ctx context.Context, c access.Caller, org, ms uuid.UUID, subject, action, query string, args ...any) (*MailService, error) {
	var m *MailService
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, query, append([]any{ms, org}, args...)...)
		var err error
		if m, err = collectMailService(rows); err != nil {
			return err
		}
		if err := audit(ctx, tx, organizationName(org), c, action, mailServiceName(org, ms), nil); err != nil {
			return err
		}
		return s.mailServiceEvent(ctx, tx, subject, m, c)
	})
	return m, err
}

// Purge deletes for good the mail services deleted longer ago than the
// restore period, and reports how many.
func (s *Server) Purge(ctx context.Context) (int, error) {
	n := 0
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, purgeMailServices, s.restoreFor)
		ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[MailService])
		if err != nil {
			return fmt.Errorf("purge mail services: %w", err)
		}
		for _, m := range ms {
			// A claim that was never verified owns none of the domain's
			// mail (another organization's, maybe).
			if m.State == stateVerified {
				if _, err := tx.Exec(ctx, "DELETE FROM dovecot_quota WHERE split_part(login, '@', 2) = $1", m.Domain); err != nil {
					return fmt.Errorf("purge mail services: usage: %w", err)
				}
			}
			if err := s.mailServiceEvent(ctx, tx, mailboxesevents.MailServicePurged, m, access.Caller{}); err != nil {
				return err
			}
		}
		n = len(ms)
		return nil
	})
	return n, err
}

// AnnounceMailServices publishes mailboxes.mail_service.created for the mail
// services made before the event had listeners, and reports how many.
func (s *Server) AnnounceMailServices(ctx context.Context) (int, error) {
	for n := 0; ; {
		var ms []*MailService
		err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, announceMailServices)
			var err error
			if ms, err = pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[MailService]); err != nil {
				return fmt.Errorf("announce mail services: %w", err)
			}
			for _, m := range ms {
				if err := s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceCreated, m, access.Caller{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || len(ms) == 0 {
			return n, err
		}
		n += len(ms)
	}
}

func (s *Server) mailServiceProto(m *MailService) *mailboxesv1.MailService {
	uni, err := idna.Lookup.ToUnicode(m.Domain)
	if err != nil {
		uni = m.Domain
	}
	p := &mailboxesv1.MailService{
		Name: mailServiceName(m.OrganizationID, m.ID), Domain: m.Domain, UnicodeDomain: uni, DisplayName: m.DisplayName,
		CreateTime: timestamppb.New(m.CreateTime), State: stateProto(m.State), LastCheckResult: m.LastCheckResult,
	}
	if m.VerificationToken != "" { // none for mail services older than verification
		name, value := verificationRecord(m)
		p.VerificationRecord = &mailboxesv1.DnsRecord{Name: name, Type: "TXT", Value: value}
	}
	if m.LastCheckTime != nil {
		p.LastCheckTime = timestamppb.New(*m.LastCheckTime)
	}
	if m.VerifyTime != nil {
		p.VerifyTime = timestamppb.New(*m.VerifyTime)
	}
	if m.State == statePending {
		p.ExpireTime = timestamppb.New(m.CreateTime.Add(claimFor))
	}
	if m.DeleteTime != nil {
		p.DeleteTime = timestamppb.New(*m.DeleteTime)
		p.PurgeTime = timestamppb.New(m.DeleteTime.Add(s.restoreFor))
	}
	return p
}
