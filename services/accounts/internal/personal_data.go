package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	selectSessions = `
SELECT create_time, expire_time, revoke_time FROM refresh_tokens WHERE user_id = $1 ORDER BY create_time`

	selectActions = `
SELECT id, organization_id, actor, actor_display_name, action, target, client_address,
       outcome, details, create_time
FROM audit_entries WHERE actor = $1 ORDER BY create_time, id`

	// orgsOfLeaver counts, for each organization of a leaving user, its
	// members and owners.
	orgsOfLeaver = `
SELECT m.organization_id, m.role,
       (SELECT count(*) FROM memberships x WHERE x.organization_id = m.organization_id),
       (SELECT count(*) FROM memberships x WHERE x.organization_id = m.organization_id AND x.role = 'owner')
FROM memberships m WHERE m.user_id = $1
FOR UPDATE`

	deleteOrganization = `DELETE FROM organizations WHERE id = $1`
	deleteUser         = `DELETE FROM users WHERE id = $1`

	// pseudonymize keeps the entries and the actor's opaque id, but not
	// who the id was, nor where they acted from.
	pseudonymize = `
UPDATE audit_entries SET actor_display_name = 'deleted user', client_address = ''
WHERE actor = $1`
)

// ExportPersonalData returns the caller's personal data.
func (s *Server) ExportPersonalData(ctx context.Context, _ *accountsv1.ExportPersonalDataRequest) (*accountsv1.ExportPersonalDataResponse, error) {
	_, id, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ms, err := s.store.MembershipsOfUser(ctx, id)
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.ExportPersonalDataResponse{User: userProto(u), ExportTime: timestamppb.Now()}
	for _, m := range ms {
		resp.Memberships = append(resp.Memberships, memberProto(m))
	}
	rows, _ := s.store.pool.Query(ctx, selectSessions, id)
	var created, expires time.Time
	var revoked *time.Time
	_, err = pgx.ForEachRow(rows, []any{&created, &expires, &revoked}, func() error {
		sess := &accountsv1.Session{CreateTime: timestamppb.New(created), ExpireTime: timestamppb.New(expires)}
		if revoked != nil {
			sess.RevokeTime = timestamppb.New(*revoked)
		}
		resp.Sessions = append(resp.Sessions, sess)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export sessions: %w", err)
	}
	rows, _ = s.store.pool.Query(ctx, selectActions, userName(id))
	actions, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("export actions: %w", err)
	}
	for _, a := range actions {
		resp.Actions = append(resp.Actions, auditEntryProto(a))
	}
	return resp, nil
}

// DeleteCurrentUser deletes the caller's account and personal data.
func (s *Server) DeleteCurrentUser(ctx context.Context, req *accountsv1.DeleteCurrentUserRequest) (*accountsv1.DeleteCurrentUserResponse, error) {
	c, id, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	// The password check is a sign-in by another door: limited alike, per
	// user and per client address (the latter shared with sign-in).
	if err := s.limit(ctx, "delete:"+userName(id), s.limits.PerEmail); err != nil {
		return nil, err
	}
	if err := s.limit(ctx, "client:"+c.Addr, s.limits.PerClient); err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	ok, err := s.passwords.check(ctx, u.PasswordHash, req.GetPassword())
	if errs.Is(err, errs.ResourceExhausted) {
		return nil, err
	}
	if err != nil || !ok {
		return nil, errs.E(errs.PermissionDenied, "wrong password").WithReason("WRONG_PASSWORD")
	}
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		type orgOf struct {
			ID              uuid.UUID
			Role            access.Role
			Members, Owners int
		}
		rows, _ := tx.Query(ctx, orgsOfLeaver, id)
		orgs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[orgOf])
		if err != nil {
			return fmt.Errorf("organizations of the user: %w", err)
		}
		for _, o := range orgs {
			if o.Role == access.Owner && o.Owners == 1 && o.Members > 1 {
				return errs.E(errs.FailedPrecondition, "you are the last owner of %s: make another member owner first", organizationName(o.ID)).WithReason("LAST_OWNER")
			}
		}
		for _, o := range orgs {
			e := auditEntry(c, o.ID, "accounts.user.delete", userName(id), nil)
			if err := insertAudit(ctx, tx, e); err != nil {
				return err
			}
			if o.Members == 1 {
				if _, err := tx.Exec(ctx, deleteOrganization, o.ID); err != nil {
					return fmt.Errorf("delete organization: %w", err)
				}
				if err := outbox.Write(ctx, tx, accountsevents.OrganizationDeleted, &accountsv1.OrganizationDeleted{Organization: organizationName(o.ID)}); err != nil {
					return err
				}
			}
		}
		// Before the row goes, and its sessions with it (cascade).
		if err := revokeSessionsOf(ctx, tx, id, s.sessionsEnd(), accountsv1.RevocationReason_REVOCATION_REASON_USER_DELETED); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, deleteUser, id); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		if _, err := tx.Exec(ctx, pseudonymize, userName(id)); err != nil {
			return fmt.Errorf("pseudonymize audit entries: %w", err)
		}
		return outbox.Write(ctx, tx, accountsevents.UserDeleted, &accountsv1.UserDeleted{User: userName(id)})
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.DeleteCurrentUserResponse{}, nil
}
