package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// invitationTTL is how long an invitation link works.
const invitationTTL = 30 * 24 * time.Hour

// Invitation asks a person to join an organization.
type Invitation struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	Email          string
	Role           access.Role
	Purpose        string
	Inviter        string
	CreateTime     time.Time
	ExpireTime     time.Time
	SendTime       time.Time
	AcceptTime     *time.Time
	RevokeTime     *time.Time
}

// state tells where i stands at now.
func (i *Invitation) state(now time.Time) accountsv1.InvitationState {
	switch {
	case i.AcceptTime != nil:
		return accountsv1.InvitationState_INVITATION_STATE_ACCEPTED
	case i.RevokeTime != nil:
		return accountsv1.InvitationState_INVITATION_STATE_REVOKED
	case !now.Before(i.ExpireTime):
		return accountsv1.InvitationState_INVITATION_STATE_EXPIRED
	}
	return accountsv1.InvitationState_INVITATION_STATE_PENDING
}

// usable returns why the invitation's link no longer works, or nil.
func (i *Invitation) usable(now time.Time) error {
	switch i.state(now) {
	case accountsv1.InvitationState_INVITATION_STATE_ACCEPTED:
		return errs.E(errs.FailedPrecondition, "this invitation was already used").WithReason("INVITATION_USED")
	case accountsv1.InvitationState_INVITATION_STATE_REVOKED:
		return errs.E(errs.FailedPrecondition, "this invitation was revoked; ask for a new one").WithReason("INVITATION_REVOKED")
	case accountsv1.InvitationState_INVITATION_STATE_EXPIRED:
		return errs.E(errs.FailedPrecondition, "this invitation expired on %s; ask for a new one", i.ExpireTime.UTC().Format("2 January 2006")).WithReason("INVITATION_EXPIRED")
	}
	return nil
}

func newInvitationToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("invitation token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashRefreshToken(tok), nil
}

const (
	invitationColumns = `
SELECT id, organization_id, email, role, purpose, inviter, create_time, expire_time, send_time, accept_time, revoke_time
FROM invitations`

	insertInvitation = `
INSERT INTO invitations (id, organization_id, email, role, purpose, token_hash, inviter, expire_time)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + $8::interval)
RETURNING create_time, send_time, expire_time`

	// An expired invitation still holds its email's place: close it so a
	// new one can be made.
	closeExpiredInvitation = `
UPDATE invitations SET revoke_time = now()
WHERE organization_id = $1 AND email = $2 AND accept_time IS NULL AND revoke_time IS NULL AND expire_time <= now()`

	selectOpenInvitations = invitationColumns + `
WHERE organization_id = $1 AND accept_time IS NULL AND revoke_time IS NULL
ORDER BY create_time DESC, id DESC`

	selectInvitation      = invitationColumns + ` WHERE id = $1 AND organization_id = $2`
	selectInvitationToken = invitationColumns + ` WHERE token_hash = $1 FOR UPDATE`

	resendInvitation = `
UPDATE invitations SET token_hash = $3, send_time = now(), expire_time = now() + $4::interval
WHERE id = $1 AND organization_id = $2 AND accept_time IS NULL AND revoke_time IS NULL
RETURNING id, organization_id, email, role, purpose, inviter, create_time, expire_time, send_time, accept_time, revoke_time`

	revokeInvitation = `
UPDATE invitations SET revoke_time = now()
WHERE id = $1 AND organization_id = $2 AND accept_time IS NULL AND revoke_time IS NULL`

	acceptInvitation = `UPDATE invitations SET accept_time = now(), accepted_user_id = $2 WHERE id = $1`

	joinOrganization = `
INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (organization_id, user_id) DO NOTHING`

	// inviteContext is what the invitation email says: the organization, the
	// inviter as people know them, and the language to write in (the
	// invitee's if they have an account, else the inviter's).
	inviteContext = `
SELECT o.display_name,
       COALESCE((SELECT display_name FROM users WHERE 'users/' || id::text = $2),
                (SELECT display_name FROM api_tokens WHERE $2 LIKE '%/apiTokens/' || id::text), ''),
       COALESCE((SELECT language FROM users WHERE email = $3),
                (SELECT language FROM users WHERE 'users/' || id::text = $2), 'en')
FROM organizations o WHERE o.id = $1`
)

const (
	// lockInvitationQuota serialises an organization's invitation emails,
	// so that concurrent ones cannot all pass the count below.
	lockInvitationQuota = `SELECT pg_advisory_xact_lock(hashtextextended('accounts.invitations:' || $1::text, 0))`

	// countInvitationEmails counts the invitation emails queued in the last
	// 24 hours by an organization, and to one recipient of it, with the
	// oldest of each, whose passing frees a place.
	countInvitationEmails = `
SELECT count(*), COALESCE(min(create_time), now()),
       count(*) FILTER (WHERE recipient = $2), COALESCE(min(create_time) FILTER (WHERE recipient = $2), now())
FROM notices
WHERE template = 'invitation' AND organization_id = $1 AND create_time > now() - interval '24 hours'`
)

// invitationQuota refuses one more invitation email from org to email past
// the daily limits. The count is of notices in the database, so it holds
// across replicas; tx holds the organization's quota until it ends.
func (s *Server) invitationQuota(ctx context.Context, tx pgx.Tx, org uuid.UUID, email string) error {
	if _, err := tx.Exec(ctx, lockInvitationQuota, org); err != nil {
		return fmt.Errorf("invitation quota: %w", err)
	}
	var byOrg, toRecipient int
	var oldestByOrg, oldestToRecipient time.Time
	if err := tx.QueryRow(ctx, countInvitationEmails, org, email).Scan(&byOrg, &oldestByOrg, &toRecipient, &oldestToRecipient); err != nil {
		return fmt.Errorf("invitation quota: %w", err)
	}
	var e *errs.Error
	switch {
	case byOrg >= s.limits.InvitationsPerOrganization:
		e = errs.E(errs.ResourceExhausted, "the organization sent %d invitations in the last 24 hours, its limit; try again later", byOrg)
		e.RetryAfter = time.Until(oldestByOrg.Add(24 * time.Hour))
	case toRecipient >= s.limits.InvitationsPerRecipient:
		e = errs.E(errs.ResourceExhausted, "%s was sent %d invitations in the last 24 hours, the limit; try again later", email, toRecipient)
		e.RetryAfter = time.Until(oldestToRecipient.Add(24 * time.Hour))
	default:
		return nil
	}
	e.RetryAfter = max(e.RetryAfter.Round(time.Second), time.Second)
	return e.WithReason("TOO_MANY_INVITATIONS")
}

func collectInvitation(rows pgx.Rows) (*Invitation, error) {
	i, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Invitation])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "invitation not found")
	}
	return i, err
}

// queueInvitationEmail enqueues the email carrying link in tx.
func (s *Server) queueInvitationEmail(ctx context.Context, tx pgx.Tx, i *Invitation, link string) error {
	var org, inviter, lang string
	if err := tx.QueryRow(ctx, inviteContext, i.OrganizationID, i.Inviter, i.Email).Scan(&org, &inviter, &lang); err != nil {
		return fmt.Errorf("invitation email: %w", err)
	}
	lang = supportedLanguage(lang)
	if inviter == "" {
		inviter = org
	}
	orgID := i.OrganizationID
	return s.enqueueNotice(ctx, tx, &Notice{
		ID: uuid.Must(uuid.NewV7()), OrganizationID: &orgID, Channel: "email", Recipient: i.Email, Language: lang, Template: "invitation",
		Params: map[string]string{
			"Organization": org, "Inviter": inviter, "Role": roleNames[lang][i.Role], "Purpose": i.Purpose,
			"Link": link, "Expires": i.ExpireTime.UTC().Format("2006-01-02"),
		},
	})
}

func (s *Server) invitationLink(token string) string {
	return strings.TrimSuffix(s.publicURL, "/") + "/invitations/" + token
}

// CreateInvitation invites a person and emails them the link.
func (s *Server) CreateInvitation(ctx context.Context, req *accountsv1.CreateInvitationRequest) (*accountsv1.CreateInvitationResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetInvitation()
	want, ok := access.RoleFromProto(in.GetRole())
	if !ok {
		return nil, errs.Field("invitation.role", "must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER")
	}
	email := normalizeEmail(in.GetEmail())
	refuse := func(err error) error {
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.invitation.create", req.GetParent()+"/invitations", map[string]string{"email": email}), err)
		return err
	}
	switch {
	case !role.CanManage():
		return nil, refuse(errs.E(errs.PermissionDenied, "only owners and admins can invite"))
	case want == access.Owner && role != access.Owner:
		return nil, refuse(errs.E(errs.PermissionDenied, "only an owner can invite an owner"))
	}
	idem, err := idempotencyKey(ctx, req, c, "CreateInvitation")
	if err != nil {
		return nil, err
	}
	i := &Invitation{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, Email: email, Role: want,
		Purpose: strings.TrimSpace(in.GetPurpose()), Inviter: c.Name()}
	var resp *accountsv1.CreateInvitationResponse
	create := func() error {
		token, hash, err := newInvitationToken()
		if err != nil {
			return err
		}
		return pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
			if err := idem.Insert(ctx, tx, invitationName(org, i.ID)); err != nil {
				return err
			}
			var member bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.organization_id = $1 AND u.email = $2)", org, email).Scan(&member); err != nil {
				return err
			}
			if member {
				return errs.E(errs.AlreadyExists, "%s is already a member", email).WithReason("ALREADY_MEMBER")
			}
			if err := s.invitationQuota(ctx, tx, org, email); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, closeExpiredInvitation, org, email); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, insertInvitation, i.ID, org, email, want, i.Purpose, hash, i.Inviter, invitationTTL).Scan(&i.CreateTime, &i.SendTime, &i.ExpireTime)
			if pg.IsUniqueViolation(err, "invitations_open_email") {
				return errs.E(errs.AlreadyExists, "%s already has a pending invitation; resend it instead", email).WithReason("INVITATION_PENDING")
			}
			if err != nil {
				return fmt.Errorf("insert invitation: %w", err)
			}
			if err := s.queueInvitationEmail(ctx, tx, i, s.invitationLink(token)); err != nil {
				return err
			}
			resp = &accountsv1.CreateInvitationResponse{Invitation: invitationProto(i), Link: s.invitationLink(token)}
			return insertAudit(ctx, tx, auditEntry(c, org, "accounts.invitation.create", invitationName(org, i.ID),
				map[string]string{"email": email, "role": want.Proto().String()}))
		})
	}
	// A retry answers the invitation without its link: the link is not kept
	// (the invitee has it by email; resending makes a new one).
	replay := func(name string) error {
		rows, _ := s.store.pool.Query(ctx, selectInvitation, lastID(name), org)
		i, err := collectInvitation(rows)
		if err != nil {
			return err
		}
		resp = &accountsv1.CreateInvitationResponse{Invitation: invitationProto(i)}
		return nil
	}
	if err := s.keyed(ctx, idem, create, replay); err != nil {
		return nil, err
	}
	return resp, nil
}

// ListInvitations lists pending (and expired, unanswered) invitations.
func (s *Server) ListInvitations(ctx context.Context, req *accountsv1.ListInvitationsRequest) (*accountsv1.ListInvitationsResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can see invitations")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.invitation.list", req.GetParent()+"/invitations", nil), err)
		return nil, err
	}
	rows, _ := s.store.pool.Query(ctx, selectOpenInvitations, org)
	is, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Invitation])
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	resp := &accountsv1.ListInvitationsResponse{}
	for _, i := range is {
		resp.Invitations = append(resp.Invitations, invitationProto(i))
	}
	return resp, nil
}

// managedInvitation checks the caller may manage the invitation named name.
func (s *Server) managedInvitation(ctx context.Context, name, action string) (uuid.UUID, uuid.UUID, access.Caller, error) {
	ids, err := aip.ParseIDs("name", name, "organizations/{organization}/invitations/{invitation}")
	if err != nil {
		return uuid.Nil, uuid.Nil, access.Caller{}, err
	}
	id := ids[1]
	org, role, c, err := s.access(ctx, "name", organizationName(ids[0]))
	if err != nil {
		return uuid.Nil, uuid.Nil, c, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can manage invitations")
		s.auditRefusal(ctx, auditEntry(c, org, action, name, nil), err)
		return uuid.Nil, uuid.Nil, c, err
	}
	if role != access.Owner {
		// Resending an owner's invitation hands its new link to the caller:
		// only an owner may, as only an owner may invite one.
		var invited access.Role
		err := s.store.pool.QueryRow(ctx, "SELECT role FROM invitations WHERE id = $1 AND organization_id = $2", id, org).Scan(&invited)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return uuid.Nil, uuid.Nil, c, fmt.Errorf("invitation role: %w", err)
		}
		if invited == access.Owner {
			err := errs.E(errs.PermissionDenied, "only an owner can manage an owner's invitation")
			s.auditRefusal(ctx, auditEntry(c, org, action, name, nil), err)
			return uuid.Nil, uuid.Nil, c, err
		}
	}
	return org, id, c, nil
}

// ResendInvitation sends a pending invitation again, with a new link.
func (s *Server) ResendInvitation(ctx context.Context, req *accountsv1.ResendInvitationRequest) (*accountsv1.ResendInvitationResponse, error) {
	org, id, c, err := s.managedInvitation(ctx, req.GetName(), "accounts.invitation.resend")
	if err != nil {
		return nil, err
	}
	token, hash, err := newInvitationToken()
	if err != nil {
		return nil, err
	}
	var i *Invitation
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, resendInvitation, id, org, hash, invitationTTL)
		var err error
		if i, err = collectInvitation(rows); err != nil {
			return err
		}
		if err := s.invitationQuota(ctx, tx, org, i.Email); err != nil {
			return err
		}
		if err := s.queueInvitationEmail(ctx, tx, i, s.invitationLink(token)); err != nil {
			return err
		}
		return insertAudit(ctx, tx, auditEntry(c, org, "accounts.invitation.resend", req.GetName(), map[string]string{"email": i.Email}))
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.ResendInvitationResponse{Invitation: invitationProto(i), Link: s.invitationLink(token)}, nil
}

// DeleteInvitation revokes a pending invitation.
func (s *Server) DeleteInvitation(ctx context.Context, req *accountsv1.DeleteInvitationRequest) (*accountsv1.DeleteInvitationResponse, error) {
	org, id, c, err := s.managedInvitation(ctx, req.GetName(), "accounts.invitation.delete")
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, revokeInvitation, id, org)
		if err != nil {
			return fmt.Errorf("revoke invitation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.NotFound, "no pending invitation by that name")
		}
		return insertAudit(ctx, tx, auditEntry(c, org, "accounts.invitation.delete", req.GetName(), nil))
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.DeleteInvitationResponse{}, nil
}

var errBadInvitationToken = errs.E(errs.NotFound, "no invitation has this link; check it was copied whole").WithReason("INVITATION_UNKNOWN")

// LookupInvitation tells the invitee what the link is for.
func (s *Server) LookupInvitation(ctx context.Context, req *accountsv1.LookupInvitationRequest) (*accountsv1.LookupInvitationResponse, error) {
	if err := s.publicLimit(ctx, "lookupInvitation"); err != nil {
		return nil, err
	}
	var resp *accountsv1.LookupInvitationResponse
	err := pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, selectInvitationToken, hashRefreshToken(req.GetToken()))
		i, err := collectInvitation(rows)
		if errs.Is(err, errs.NotFound) {
			return errBadInvitationToken
		}
		if err != nil {
			return err
		}
		if err := i.usable(time.Now()); err != nil {
			return err
		}
		resp = &accountsv1.LookupInvitationResponse{Email: i.Email, Role: i.Role.Proto(), Purpose: i.Purpose, ExpireTime: timestamppb.New(i.ExpireTime)}
		return tx.QueryRow(ctx, "SELECT o.display_name, EXISTS (SELECT 1 FROM users WHERE email = $2) FROM organizations o WHERE o.id = $1",
			i.OrganizationID, i.Email).Scan(&resp.OrganizationDisplayName, &resp.AccountExists)
	})
	return resp, err
}

// AcceptInvitation joins the signed-in invitee to the organization.
func (s *Server) AcceptInvitation(ctx context.Context, req *accountsv1.AcceptInvitationRequest) (*accountsv1.AcceptInvitationResponse, error) {
	c, user, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	// Signed in, but guessing links all the same: limited like the look-up.
	if err := s.publicLimit(ctx, "acceptInvitation"); err != nil {
		return nil, err
	}
	var m *Membership
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, selectInvitationToken, hashRefreshToken(req.GetToken()))
		i, err := collectInvitation(rows)
		if errs.Is(err, errs.NotFound) {
			return errBadInvitationToken
		}
		if err != nil {
			return err
		}
		if err := i.usable(time.Now()); err != nil {
			return err
		}
		var email string
		if err := tx.QueryRow(ctx, "SELECT email FROM users WHERE id = $1", user).Scan(&email); err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		if email != i.Email {
			err := errs.E(errs.PermissionDenied, "this invitation is for %s; sign in with that email", i.Email).WithReason("INVITATION_OTHER_EMAIL")
			s.auditRefusal(ctx, auditEntry(c, i.OrganizationID, "accounts.invitation.accept", invitationName(i.OrganizationID, i.ID), nil), err)
			return err
		}
		if _, err := tx.Exec(ctx, joinOrganization, i.OrganizationID, user, i.Role); err != nil {
			return fmt.Errorf("join organization: %w", err)
		}
		if _, err := tx.Exec(ctx, acceptInvitation, i.ID, user); err != nil {
			return fmt.Errorf("accept invitation: %w", err)
		}
		if m, err = membership(ctx, tx, i.OrganizationID, user); err != nil {
			return err
		}
		now := time.Now()
		i.AcceptTime = &now
		if err := insertAudit(ctx, tx, auditEntry(c, i.OrganizationID, "accounts.invitation.accept", invitationName(i.OrganizationID, i.ID),
			map[string]string{"role": m.Role.Proto().String()})); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.InvitationAccepted, &accountsv1.InvitationAccepted{Invitation: invitationProto(i), Member: memberProto(m)})
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.AcceptInvitationResponse{Member: memberProto(m)}, nil
}

func invitationName(org, id uuid.UUID) string {
	return organizationName(org) + "/invitations/" + id.String()
}

func invitationProto(i *Invitation) *accountsv1.Invitation {
	return &accountsv1.Invitation{
		Name:       invitationName(i.OrganizationID, i.ID),
		Email:      i.Email,
		Role:       i.Role.Proto(),
		Purpose:    i.Purpose,
		State:      i.state(time.Now()),
		Inviter:    i.Inviter,
		CreateTime: timestamppb.New(i.CreateTime),
		ExpireTime: timestamppb.New(i.ExpireTime),
		SendTime:   timestamppb.New(i.SendTime),
	}
}
