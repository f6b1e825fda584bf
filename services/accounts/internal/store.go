package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	insertUser = `
INSERT INTO users (id, email, display_name, password_hash, language, phone_number)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING create_time`

	insertOrganization = `
INSERT INTO organizations (id, display_name, legal_name) VALUES ($1, $2, $2)
RETURNING create_time, update_time, legal_name`

	insertMembership = `
INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)`

	selectUserByEmail = `
SELECT id, email, display_name, password_hash, create_time, language, phone_number, login_pending FROM users WHERE email = $1`

	selectUserByID = `
SELECT id, email, display_name, password_hash, create_time, language, phone_number, login_pending FROM users WHERE id = $1`

	selectOrganization = `
SELECT id, display_name, create_time, update_time, legal_name, address FROM organizations WHERE id = $1`

	lockOrganization = `
SELECT id, display_name, create_time, update_time, legal_name, address FROM organizations WHERE id = $1 FOR UPDATE`

	updateOrganization = `
UPDATE organizations SET display_name = $2, legal_name = $3, address = $4, update_time = now() WHERE id = $1
RETURNING id, display_name, create_time, update_time, legal_name, address`

	membershipColumns = `
SELECT m.organization_id, m.user_id, u.email, u.display_name, m.role, m.create_time
FROM memberships m JOIN users u ON u.id = m.user_id`

	selectMembership = membershipColumns + `
WHERE m.organization_id = $1 AND m.user_id = $2`

	selectMembershipsOfUser = membershipColumns + `
WHERE m.user_id = $1 ORDER BY m.create_time, m.organization_id`

	// Keyset pagination: members after (create_time, user_id).
	// lockMembers serialises role changes within one organization, so two
	// owners demoting each other at once cannot leave it without an owner.
	lockMembers = `
SELECT user_id, role FROM memberships WHERE organization_id = $1 FOR UPDATE`

	updateRole = `
UPDATE memberships SET role = $3 WHERE organization_id = $1 AND user_id = $2`

	deleteMembership = `
DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2`

	insertRefreshToken = `
INSERT INTO refresh_tokens (token_hash, family_id, user_id, expire_time)
VALUES ($1, $2, $3, $4)`

	selectRefreshToken = `
SELECT family_id, user_id, expire_time, revoke_time FROM refresh_tokens
WHERE token_hash = $1 FOR UPDATE`

	revokeRefreshToken = `
UPDATE refresh_tokens SET revoke_time = now() WHERE token_hash = $1 AND revoke_time IS NULL`

	revokeFamily = `
UPDATE refresh_tokens SET revoke_time = now() WHERE family_id = $1 AND revoke_time IS NULL`

	// revokeFamilyOf ends the session a refresh token belongs to, whether
	// that token is its current one or was rotated already.
	revokeFamilyOf = `
UPDATE refresh_tokens SET revoke_time = now()
WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoke_time IS NULL
RETURNING family_id`

	revokeUserSessions = `
UPDATE refresh_tokens SET revoke_time = now() WHERE user_id = $1 AND revoke_time IS NULL
RETURNING family_id`

	// hitAttempts counts one attempt in key's window, starting a new window
	// when the current one is over.
	hitAttempts = `
INSERT INTO sign_in_attempts AS a (key, window_start, attempts) VALUES ($1, $2, 1)
ON CONFLICT (key) DO UPDATE SET
    window_start = CASE WHEN a.window_start <= $2 - $3::interval THEN $2 ELSE a.window_start END,
    attempts     = CASE WHEN a.window_start <= $2 - $3::interval THEN 1 ELSE a.attempts + 1 END
RETURNING attempts, window_start`

	resetAttempts = `DELETE FROM sign_in_attempts WHERE key = $1`

	// pruneAttempts deletes some counters whose window is over.
	pruneAttempts = `
DELETE FROM sign_in_attempts WHERE key IN (
    SELECT key FROM sign_in_attempts WHERE window_start <= $1::timestamptz - $2::interval LIMIT 100)`
)

// Store keeps accounts in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool, whose search_path is the accounts schema.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var errEmailTaken = errs.E(errs.AlreadyExists, "an account with this email already exists").WithReason("EMAIL_TAKEN")

// CreateUserWithOrganization stores a new user, a new organization and the
// user as its owner. addr is the client's address, for the audit log.
func (s *Store) CreateUserWithOrganization(ctx context.Context, u *User, o *Organization, addr string) error {
	founder := access.Caller{UserID: u.ID, Addr: addr}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, insertUser, u.ID, u.Email, u.DisplayName, u.PasswordHash, u.Language, u.PhoneNumber).Scan(&u.CreateTime); err != nil {
			if pg.IsUniqueViolation(err, "users_email_key") {
				return errEmailTaken
			}
			return fmt.Errorf("insert user: %w", err)
		}
		if err := tx.QueryRow(ctx, insertOrganization, o.ID, o.DisplayName).Scan(&o.CreateTime, &o.UpdateTime, &o.LegalName); err != nil {
			return fmt.Errorf("insert organization: %w", err)
		}
		if _, err := tx.Exec(ctx, insertMembership, o.ID, u.ID, access.Owner); err != nil {
			return fmt.Errorf("insert membership: %w", err)
		}
		e := auditEntry(founder, o.ID, "accounts.organization.create", organizationName(o.ID), nil)
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.OrganizationCreated, &accountsv1.OrganizationCreated{
			Organization: organizationProto(o),
			Owner:        userName(u.ID),
		})
	})
}

// UserByEmail returns the user with a (normalized) email.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	return s.user(ctx, selectUserByEmail, email)
}

// UserByID returns a user.
func (s *Store) UserByID(ctx context.Context, id uuid.UUID) (*User, error) {
	return s.user(ctx, selectUserByID, id)
}

func (s *Store) user(ctx context.Context, query string, arg any) (*User, error) {
	rows, _ := s.pool.Query(ctx, query, arg)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[User])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "user not found")
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

var errOrgNotFound = errs.E(errs.NotFound, "organization not found")

// Organization returns an organization.
func (s *Store) Organization(ctx context.Context, id uuid.UUID) (*Organization, error) {
	rows, _ := s.pool.Query(ctx, selectOrganization, id)
	o, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Organization])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errOrgNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get organization: %w", err)
	}
	return o, nil
}

// UpdateOrganization applies change to an organization on behalf of c;
// changed names the fields it sets, for the audit log.
func (s *Store) UpdateOrganization(ctx context.Context, c access.Caller, id uuid.UUID, change func(*Organization), changed map[string]string) (*Organization, error) {
	var o *Organization
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, lockOrganization, id)
		cur, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Organization])
		if errors.Is(err, pgx.ErrNoRows) {
			return errOrgNotFound
		}
		if err != nil {
			return fmt.Errorf("get organization: %w", err)
		}
		change(cur)
		rows, _ = tx.Query(ctx, updateOrganization, id, cur.DisplayName, cur.LegalName, cur.Address)
		if o, err = pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Organization]); err != nil {
			return fmt.Errorf("update organization: %w", err)
		}
		if err := insertAudit(ctx, tx, auditEntry(c, id, "accounts.organization.update", organizationName(id), changed)); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.OrganizationUpdated, &accountsv1.OrganizationUpdated{
			Organization: organizationProto(o),
			Actor:        c.Name(),
		})
	})
	return o, err
}

var errMemberNotFound = errs.E(errs.NotFound, "member not found")

// Membership returns a user's membership of an organization; NotFound when
// the user is not a member.
func (s *Store) Membership(ctx context.Context, org, user uuid.UUID) (*Membership, error) {
	return membership(ctx, s.pool, org, user)
}

// Role is user's role in org, for access.Roles; NotFound when user is not
// a member.
func (s *Store) Role(ctx context.Context, org, user uuid.UUID) (access.Role, error) {
	m, err := s.Membership(ctx, org, user)
	if err != nil {
		return "", err
	}
	return m.Role, nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func membership(ctx context.Context, q querier, org, user uuid.UUID) (*Membership, error) {
	rows, _ := q.Query(ctx, selectMembership, org, user)
	m, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Membership])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errMemberNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get membership: %w", err)
	}
	return m, nil
}

// MembershipsOfUser lists the organizations a user belongs to.
func (s *Store) MembershipsOfUser(ctx context.Context, user uuid.UUID) ([]*Membership, error) {
	rows, _ := s.pool.Query(ctx, selectMembershipsOfUser, user)
	ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Membership])
	if err != nil {
		return nil, fmt.Errorf("list memberships: %w", err)
	}
	return ms, nil
}

// lockedRoles locks org's memberships and returns each member's role.
func lockedRoles(ctx context.Context, tx pgx.Tx, org uuid.UUID) (map[uuid.UUID]access.Role, int, error) {
	rows, err := tx.Query(ctx, lockMembers, org)
	if err != nil {
		return nil, 0, fmt.Errorf("lock members: %w", err)
	}
	roles := map[uuid.UUID]access.Role{}
	owners := 0
	var id uuid.UUID
	var role access.Role
	_, err = pgx.ForEachRow(rows, []any{&id, &role}, func() error {
		roles[id] = role
		if role == access.Owner {
			owners++
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("lock members: %w", err)
	}
	return roles, owners, nil
}

// actorRole is c's role in org, whose members' roles are roles. A caller
// from elsewhere learns nothing: NotFound.
func actorRole(c access.Caller, org uuid.UUID, roles map[uuid.UUID]access.Role) (access.Role, error) {
	if c.IsToken() {
		if c.TokenOrg != org {
			return "", errOrgNotFound
		}
		return c.TokenRole, nil
	}
	r, ok := roles[c.UserID]
	if !ok {
		return "", errOrgNotFound
	}
	return r, nil
}

// UpdateRole changes target's role in org on behalf of c, under the role
// rules.
func (s *Store) UpdateRole(ctx context.Context, c access.Caller, org, target uuid.UUID, to access.Role) (*Membership, error) {
	var m *Membership
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		roles, owners, err := lockedRoles(ctx, tx, org)
		if err != nil {
			return err
		}
		actorRole, err := actorRole(c, org, roles)
		if err != nil {
			return err
		}
		from, ok := roles[target]
		if !ok {
			return errMemberNotFound
		}
		if err := checkRoleChange(actorRole, from, to, owners); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateRole, org, target, to); err != nil {
			return fmt.Errorf("update role: %w", err)
		}
		if m, err = membership(ctx, tx, org, target); err != nil {
			return err
		}
		e := auditEntry(c, org, "accounts.member.update", memberName(org, target),
			map[string]string{"previousRole": from.Proto().String(), "role": to.Proto().String()})
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.MemberUpdated, &accountsv1.MemberUpdated{
			Member:       memberProto(m),
			PreviousRole: from.Proto(),
			Actor:        c.Name(),
			UpdateTime:   timestamppb.Now(),
		})
	})
	return m, err
}

// DeleteMember removes target from org on behalf of c.
func (s *Store) DeleteMember(ctx context.Context, c access.Caller, org, target uuid.UUID) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		roles, owners, err := lockedRoles(ctx, tx, org)
		if err != nil {
			return err
		}
		actorRole, err := actorRole(c, org, roles)
		if err != nil {
			return err
		}
		targetRole, ok := roles[target]
		if !ok {
			return errMemberNotFound
		}
		if err := checkRemoval(actorRole, targetRole, !c.IsToken() && c.UserID == target, owners); err != nil {
			return err
		}
		m, err := membership(ctx, tx, org, target)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, deleteMembership, org, target); err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
		e := auditEntry(c, org, "accounts.member.delete", memberName(org, target), map[string]string{"role": targetRole.Proto().String()})
		if err := insertAudit(ctx, tx, e); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.MemberDeleted, &accountsv1.MemberDeleted{
			Member: memberProto(m),
			Actor:  c.Name(),
		})
	})
}

// CreateRefreshToken stores a new session's refresh token and returns the
// session's id (the token family's), which its access tokens carry.
func (s *Store) CreateRefreshToken(ctx context.Context, user uuid.UUID, hash []byte, expire time.Time) (uuid.UUID, error) {
	family, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, err
	}
	if _, err := s.pool.Exec(ctx, insertRefreshToken, hash, family, user, expire); err != nil {
		return uuid.Nil, fmt.Errorf("insert refresh token: %w", err)
	}
	return family, nil
}

// publishRevoked writes, in tx, the event that has every service refuse
// the access tokens of sessions from now on; until is when the last of
// them expires.
func publishRevoked(ctx context.Context, tx pgx.Tx, sessions []uuid.UUID, until time.Time, why accountsv1.RevocationReason) error {
	if len(sessions) == 0 {
		return nil
	}
	ev := &accountsv1.SessionsRevoked{ExpireTime: timestamppb.New(until), Reason: why}
	for _, id := range sessions {
		if !slices.Contains(ev.SessionIds, id.String()) {
			ev.SessionIds = append(ev.SessionIds, id.String())
		}
	}
	return outbox.Write(ctx, tx, accountsevents.SessionRevoked, ev)
}

// revokeSessionsOf ends all of user's sessions in tx and publishes it;
// until is when their last access token expires.
func revokeSessionsOf(ctx context.Context, tx pgx.Tx, user uuid.UUID, until time.Time, why accountsv1.RevocationReason) error {
	rows, _ := tx.Query(ctx, revokeUserSessions, user)
	families, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	return publishRevoked(ctx, tx, families, until, why)
}

var errBadRefresh = errs.E(errs.Unauthenticated, "invalid, expired or revoked refresh token").WithReason("INVALID_REFRESH_TOKEN")

// RotateRefreshToken uses up the token hashed as old and stores its
// replacement, returning the session's user and id. Presenting a token that
// was already rotated means it was copied: the whole session is revoked,
// its access tokens (which expire by until) with it.
func (s *Store) RotateRefreshToken(ctx context.Context, old, replacement []byte, expire, until time.Time) (uuid.UUID, uuid.UUID, error) {
	var user, family uuid.UUID
	reused := false
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var expireTime time.Time
		var revokeTime *time.Time
		err := tx.QueryRow(ctx, selectRefreshToken, old).Scan(&family, &user, &expireTime, &revokeTime)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadRefresh
		}
		if err != nil {
			return fmt.Errorf("get refresh token: %w", err)
		}
		if revokeTime != nil {
			reused = true
			tag, err := tx.Exec(ctx, revokeFamily, family)
			if err != nil || tag.RowsAffected() == 0 {
				return err // revoked before, and published then
			}
			return publishRevoked(ctx, tx, []uuid.UUID{family}, until, accountsv1.RevocationReason_REVOCATION_REASON_REFRESH_TOKEN_REUSE)
		}
		if !expireTime.After(time.Now()) {
			return errBadRefresh
		}
		if _, err := tx.Exec(ctx, revokeRefreshToken, old); err != nil {
			return fmt.Errorf("revoke refresh token: %w", err)
		}
		if _, err := tx.Exec(ctx, insertRefreshToken, replacement, family, user, expire); err != nil {
			return fmt.Errorf("insert refresh token: %w", err)
		}
		return nil
	})
	if err == nil && reused {
		err = errBadRefresh
	}
	return user, family, err
}

// RevokeRefreshToken ends the session of a refresh token (its current one
// or one it used before), its access tokens (which expire by until) with
// it. Revoking an unknown token is not an error: the caller's goal, a dead
// token, holds.
func (s *Store) RevokeRefreshToken(ctx context.Context, hash []byte, until time.Time) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, revokeFamilyOf, hash)
		families, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("revoke refresh token: %w", err)
		}
		return publishRevoked(ctx, tx, families, until, accountsv1.RevocationReason_REVOCATION_REASON_SIGN_OUT)
	})
}

// HitSignIn counts a sign-in attempt under key in a fixed window and returns
// the attempts so far in the window and when the window ends.
func (s *Store) HitSignIn(ctx context.Context, key string, now time.Time, window time.Duration) (int, time.Time, error) {
	var n int
	var start time.Time
	if err := s.pool.QueryRow(ctx, hitAttempts, key, now, window).Scan(&n, &start); err != nil {
		return 0, time.Time{}, fmt.Errorf("count sign-in attempt: %w", err)
	}
	if n == 1 {
		// A counter started: a few dead ones go, so that the table holds
		// about the counters of one window, however many addresses call.
		if _, err := s.pool.Exec(ctx, pruneAttempts, now, window); err != nil {
			return 0, time.Time{}, fmt.Errorf("prune sign-in attempts: %w", err)
		}
	}
	return n, start.Add(window), nil
}

// ResetSignIn forgets key's attempts, after a successful sign-in.
func (s *Store) ResetSignIn(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, resetAttempts, key); err != nil {
		return fmt.Errorf("reset sign-in attempts: %w", err)
	}
	return nil
}

const (
	selectKnownClient = `SELECT EXISTS (SELECT 1 FROM sign_in_clients WHERE user_id = $1 AND client_address = $2)`

	rememberClient = `
INSERT INTO sign_in_clients (user_id, client_address) VALUES ($1, $2)
ON CONFLICT (user_id, client_address) DO UPDATE SET last_time = now()`

	// forgetOldClients keeps the user's 20 latest addresses.
	forgetOldClients = `
DELETE FROM sign_in_clients WHERE user_id = $1 AND client_address NOT IN (
    SELECT client_address FROM sign_in_clients WHERE user_id = $1 ORDER BY last_time DESC LIMIT 20)`
)

// KnownClient reports whether user signed in from addr lately.
func (s *Store) KnownClient(ctx context.Context, user uuid.UUID, addr string) (bool, error) {
	var known bool
	if err := s.pool.QueryRow(ctx, selectKnownClient, user, addr).Scan(&known); err != nil {
		return false, fmt.Errorf("known client: %w", err)
	}
	return known, nil
}

// RememberClient records that user signed in from addr.
func (s *Store) RememberClient(ctx context.Context, user uuid.UUID, addr string) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, rememberClient, user, addr); err != nil {
			return fmt.Errorf("remember client: %w", err)
		}
		if _, err := tx.Exec(ctx, forgetOldClients, user); err != nil {
			return fmt.Errorf("forget old clients: %w", err)
		}
		return nil
	})
}
