package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// setupTTL is how long a created user's setup link works.
const setupTTL = 30 * 24 * time.Hour

const (
	insertSetupToken = `INSERT INTO setup_tokens (token_hash, user_id, expire_time) VALUES ($1, $2, now() + $3::interval)`

	findSetupToken = `SELECT user_id FROM setup_tokens WHERE token_hash = $1 AND expire_time > now()`

	// takeSetupToken uses a setup token up, returning its user.
	takeSetupToken = `DELETE FROM setup_tokens WHERE token_hash = $1 AND expire_time > now() RETURNING user_id`

	setPassword = `UPDATE users SET password_hash = $2, update_time = now() WHERE id = $1`
)

// CreateMember creates a user, without a password yet, as a member.
func (s *Server) CreateMember(ctx context.Context, req *accountsv1.CreateMemberRequest) (*accountsv1.CreateMemberResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	want := access.Member
	if req.GetRole() != accountsv1.Role_ROLE_UNSPECIFIED {
		var ok bool
		if want, ok = access.RoleFromProto(req.GetRole()); !ok {
			return nil, errs.Field("role", "must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER")
		}
	}
	email := normalizeEmail(req.GetEmail())
	switch {
	case !role.CanManage():
		err := errs.E(errs.PermissionDenied, "only owners and admins can create members")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.member.create", req.GetParent()+"/members", map[string]string{"email": email}), err)
		return nil, err
	case want == access.Owner && role != access.Owner:
		err := errs.E(errs.PermissionDenied, "only an owner can make an owner")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.member.create", req.GetParent()+"/members", map[string]string{"email": email, "role": want.Proto().String()}), err)
		return nil, err
	}
	idem, err := idempotencyKey(ctx, req, c, "CreateMember")
	if err != nil {
		return nil, err
	}
	u := &User{ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: strings.TrimSpace(req.GetDisplayName()), Language: languages[0]}
	var resp *accountsv1.CreateMemberResponse
	create := func() error {
		token, hash, err := newInvitationToken()
		if err != nil {
			return err
		}
		return pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
			if err := idem.Insert(ctx, tx, memberName(org, u.ID)); err != nil {
				return err
			}
			if !c.IsToken() {
				// The new user reads notices in their administrator's language.
				tx.QueryRow(ctx, "SELECT language FROM users WHERE id = $1", c.UserID).Scan(&u.Language)
			}
			if err := tx.QueryRow(ctx, insertUser, u.ID, u.Email, u.DisplayName, "", u.Language, "").Scan(&u.CreateTime); err != nil {
				if pg.IsUniqueViolation(err, "users_email_key") {
					return errEmailTaken
				}
				return fmt.Errorf("insert user: %w", err)
			}
			if _, err := tx.Exec(ctx, insertMembership, org, u.ID, want); err != nil {
				return fmt.Errorf("insert membership: %w", err)
			}
			if _, err := tx.Exec(ctx, insertSetupToken, hash, u.ID, setupTTL); err != nil {
				return fmt.Errorf("insert setup token: %w", err)
			}
			m, err := membership(ctx, tx, org, u.ID)
			if err != nil {
				return err
			}
			resp = &accountsv1.CreateMemberResponse{Member: memberProto(m), SetupLink: s.setupLink(token)}
			return insertAudit(ctx, tx, auditEntry(c, org, "accounts.member.create", memberName(org, u.ID), map[string]string{"role": want.Proto().String()}))
		})
	}
	replay := func(name string) (err error) {
		resp, err = s.createdMember(ctx, org, lastID(name))
		return err
	}
	if err := s.keyed(ctx, idem, create, replay); err != nil {
		return nil, err
	}
	return resp, nil
}

func (s *Server) setupLink(token string) string {
	return strings.TrimSuffix(s.publicURL, "/") + "/setup/" + token
}

// createdMember answers a retried CreateMember. The setup link is not kept
// anywhere (it is a password's worth), so while the user has chosen no
// password the retry gets a new link, and the first stops working: the
// client that retries did not get it.
func (s *Server) createdMember(ctx context.Context, org, user uuid.UUID) (*accountsv1.CreateMemberResponse, error) {
	resp := &accountsv1.CreateMemberResponse{}
	err := pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		m, err := membership(ctx, tx, org, user)
		if err != nil {
			return err
		}
		resp.Member = memberProto(m)
		// The user's row lock makes concurrent retries take turns.
		var chosen bool
		if err := tx.QueryRow(ctx, "SELECT password_hash <> '' FROM users WHERE id = $1 FOR UPDATE", user).Scan(&chosen); err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if chosen {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM setup_tokens WHERE user_id = $1", user); err != nil {
			return fmt.Errorf("delete setup tokens: %w", err)
		}
		token, hash, err := newInvitationToken()
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertSetupToken, hash, user, setupTTL); err != nil {
			return fmt.Errorf("insert setup token: %w", err)
		}
		resp.SetupLink = s.setupLink(token)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

var errBadSetupToken = errs.E(errs.NotFound, "this setup link is unknown, used or expired; ask your administrator for a new one").WithReason("SETUP_LINK_INVALID")

// SetInitialPassword sets a created user's first password.
func (s *Server) SetInitialPassword(ctx context.Context, req *accountsv1.SetInitialPasswordRequest) (*accountsv1.SetInitialPasswordResponse, error) {
	if err := s.publicLimit(ctx, "setInitialPassword"); err != nil {
		return nil, err
	}
	// The token is checked before the password is hashed: a look-up costs
	// next to nothing, a hash 19 MiB and a CPU for a while. It is used up
	// only below, with the password set, so a failed hash leaves it working.
	var user uuid.UUID
	err := s.store.pool.QueryRow(ctx, findSetupToken, hashRefreshToken(req.GetToken())).Scan(&user)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errBadSetupToken
	}
	if err != nil {
		return nil, fmt.Errorf("setup token: %w", err)
	}
	hash, err := s.anonPasswords.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		var user uuid.UUID
		err := tx.QueryRow(ctx, takeSetupToken, hashRefreshToken(req.GetToken())).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			return errBadSetupToken
		}
		if err != nil {
			return fmt.Errorf("setup token: %w", err)
		}
		_, err = tx.Exec(ctx, setPassword, user, hash)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.SetInitialPasswordResponse{}, nil
}

// selectMembershipsOf is selectMembership for several users at once.
const selectMembershipsOf = membershipColumns + `
WHERE m.organization_id = $1 AND m.user_id = ANY($2)`

// maxBatchMembers is the most names BatchGetMembers takes.
const maxBatchMembers = 1000

// GetMember returns a member of an organization the caller belongs to.
func (s *Server) GetMember(ctx context.Context, req *accountsv1.GetMemberRequest) (*accountsv1.GetMemberResponse, error) {
	org, user, err := parseMemberName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	m, err := s.store.Membership(ctx, org, user)
	if err != nil {
		return nil, err
	}
	return &accountsv1.GetMemberResponse{Member: memberProto(m)}, nil
}

// BatchGetMembers returns members of one organization the caller belongs
// to, in the order asked.
func (s *Server) BatchGetMembers(ctx context.Context, req *accountsv1.BatchGetMembersRequest) (*accountsv1.BatchGetMembersResponse, error) {
	org, err := parseOrganizationName("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if len(req.GetNames()) > maxBatchMembers {
		return nil, errs.Field("names", fmt.Sprintf("at most %d names", maxBatchMembers))
	}
	users := make([]uuid.UUID, len(req.GetNames()))
	for i, name := range req.GetNames() {
		field := fmt.Sprintf("names[%d]", i)
		o, u, err := parseMemberName(field, name)
		if err != nil {
			return nil, err
		}
		if o != org {
			return nil, errs.Field(field, "must be a member of parent")
		}
		users[i] = u
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	rows, _ := s.store.pool.Query(ctx, selectMembershipsOf, org, users)
	ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Membership])
	if err != nil {
		return nil, fmt.Errorf("get members: %w", err)
	}
	found := make(map[uuid.UUID]*Membership, len(ms))
	for _, m := range ms {
		found[m.UserID] = m
	}
	resp := &accountsv1.BatchGetMembersResponse{}
	for i, u := range users {
		m, ok := found[u]
		if !ok {
			if req.GetAllowMissing() {
				continue
			}
			return nil, errs.E(errs.NotFound, "%s: member not found", req.GetNames()[i])
		}
		resp.Members = append(resp.Members, memberProto(m))
	}
	return resp, nil
}

// The members of an organization ($1) a List shows; $2 to $4 are the
// filter, NULL where it has no term: a login, a prefix of one, a role.
const (
	membersWhere = `
WHERE m.organization_id = $1
  AND ($2::text IS NULL OR u.email = $2)
  AND ($3::text IS NULL OR starts_with(u.email, $3))
  AND ($4::text IS NULL OR m.role = $4)`

	countMembers = `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id` + membersWhere
)

// memberPage returns the query for one page of members in order o: $5 is
// the limit, $6 and $7 the sort key and user id of the previous page's last
// member (NULL on the first page). Pages are keyset, never OFFSET.
func memberPage(o aip.Order) string {
	if o.Field == "email" {
		return membershipColumns + membersWhere + aip.Seek("u.email", "text", "m.user_id", o.Desc, 6, 5)
	}
	return membershipColumns + membersWhere + aip.Seek("m.create_time", "timestamptz", "m.user_id", o.Desc, 6, 5)
}

// ListMembers lists an organization's members, oldest first unless asked
// otherwise.
func (s *Server) ListMembers(ctx context.Context, req *accountsv1.ListMembersRequest) (*accountsv1.ListMembersResponse, error) {
	filter, err := aip.ParseFilter(req.GetFilter(), map[string]aip.Match{"email": aip.Prefix, "role": aip.Equal})
	if err != nil {
		return nil, err
	}
	// args are $2 to $4 of membersWhere.
	args := []any{nil, nil, nil}
	if t, ok := filter.Get("email"); ok && t.Prefix {
		args[1] = strings.ToLower(t.Value)
	} else if ok {
		args[0] = strings.ToLower(t.Value)
	}
	if t, ok := filter.Get("role"); ok {
		r, ok := access.RoleFromProto(accountsv1.Role(accountsv1.Role_value[t.Value]))
		if !ok {
			return nil, errs.Field("filter", fmt.Sprintf("%q: a role is ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER", t.Value))
		}
		args[2] = string(r)
	}
	order, err := aip.ParseOrderBy(req.GetOrderBy(), aip.Order{Field: "create_time"}, "create_time", "email")
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListMembers", req.GetParent(), filter.String(), order.String())
	if err != nil {
		return nil, err
	}
	afterKey, afterID, err := page.Cursor(order.Field == "create_time")
	if err != nil {
		return nil, err
	}

	org, _, _, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	args = append([]any{org}, args...)
	resp := &accountsv1.ListMembersResponse{}
	if err := s.store.pool.QueryRow(ctx, countMembers, args...).Scan(&resp.TotalSize); err != nil {
		return nil, fmt.Errorf("count members: %w", err)
	}
	rows, _ := s.store.pool.Query(ctx, memberPage(order), append(args, page.Size+1, afterKey, afterID)...)
	ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Membership])
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	ms, resp.NextPageToken = aip.Trim(page, ms, func(m *Membership) []string {
		if order.Field == "email" {
			return []string{m.Email, m.UserID.String()}
		}
		return []string{aip.TimeKey(m.CreateTime), m.UserID.String()}
	})
	for _, m := range ms {
		resp.Members = append(resp.Members, memberProto(m))
	}
	return resp, nil
}

// UpdateMember changes a member's role.
func (s *Server) UpdateMember(ctx context.Context, req *accountsv1.UpdateMemberRequest) (*accountsv1.UpdateMemberResponse, error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	org, target, err := parseMemberName("member.name", req.GetMember().GetName())
	if err != nil {
		return nil, err
	}
	// role is the one updatable field: the mask only has to be valid.
	if _, err := aip.UpdatePaths(req.GetUpdateMask(), req.GetMember(), "role"); err != nil {
		return nil, err
	}
	to, ok := access.RoleFromProto(req.GetMember().GetRole())
	if !ok {
		return nil, errs.Field("member.role", "must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER")
	}
	m, err := s.store.UpdateRole(ctx, c, org, target, to)
	if err != nil {
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.member.update", memberName(org, target), map[string]string{"role": to.Proto().String()}), err)
		return nil, err
	}
	return &accountsv1.UpdateMemberResponse{Member: memberProto(m)}, nil
}

// DeleteMember removes a member from an organization.
func (s *Server) DeleteMember(ctx context.Context, req *accountsv1.DeleteMemberRequest) (*accountsv1.DeleteMemberResponse, error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	org, target, err := parseMemberName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteMember(ctx, c, org, target); err != nil {
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.member.delete", memberName(org, target), nil), err)
		return nil, err
	}
	return &accountsv1.DeleteMemberResponse{}, nil
}

func memberProto(m *Membership) *accountsv1.Member {
	return &accountsv1.Member{
		Name:        memberName(m.OrganizationID, m.UserID),
		User:        userName(m.UserID),
		Email:       m.Email,
		DisplayName: m.DisplayName,
		Role:        m.Role.Proto(),
		CreateTime:  timestamppb.New(m.CreateTime),
	}
}
