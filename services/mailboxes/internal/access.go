package mailboxes

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Role is the caller's role in an organization, as the accounts service
// knows it.
type Role string

// The roles.
const (
	Owner  Role = "owner"
	Admin  Role = "admin"
	Member Role = "member"
)

func (r Role) canManage() bool { return r == Owner || r == Admin }

// Caller is who makes a request: a person, or an API token acting in one
// organization with one role.
type Caller struct {
	UserID    uuid.UUID
	TokenID   string
	TokenOrg  uuid.UUID
	TokenRole Role
}

// Name is the caller's resource name, for events and the audit log.
func (c Caller) Name() string {
	if c.TokenID != "" {
		return organizationName(c.TokenOrg) + "/apiTokens/" + c.TokenID
	}
	return userName(c.UserID)
}

func callerFrom(ctx context.Context) (Caller, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Caller{}, errs.E(errs.Unauthenticated, "missing access token")
	}
	if p.TokenID != "" {
		org, err := uuid.Parse(p.OrganizationID)
		if err != nil {
			return Caller{}, errs.E(errs.Unauthenticated, "invalid access token")
		}
		return Caller{TokenID: p.TokenID, TokenOrg: org, TokenRole: Role(p.Role)}, nil
	}
	id, err := uuid.Parse(p.UserID)
	if err != nil {
		return Caller{}, errs.E(errs.Unauthenticated, "invalid access token")
	}
	return Caller{UserID: id}, nil
}

// Accounts is what the mailboxes service asks the accounts service, on the
// caller's behalf (their token travels with each call).
type Accounts interface {
	// Role is the caller's role in org; NotFound when they have none.
	Role(ctx context.Context, org uuid.UUID) (Role, error)
	// Members returns the role of each member of org.
	Members(ctx context.Context, org uuid.UUID) (map[uuid.UUID]Role, error)
	// Invite invites email into org as a member, for purpose, and returns
	// the invitation's name and link.
	Invite(ctx context.Context, org uuid.UUID, email, purpose string) (name, link string, err error)
	// CreateMember creates a user in org whose login is email, without a
	// password yet, and returns them and the link where they choose one.
	CreateMember(ctx context.Context, org uuid.UUID, email, displayName string) (user uuid.UUID, setupLink string, err error)
}

// AccountsClient is Accounts over the accounts service's gRPC API.
type AccountsClient struct {
	users accountsv1.UserServiceClient
	orgs  accountsv1.OrganizationServiceClient
	inv   accountsv1.InvitationServiceClient

	// roles caches each access token's memberships for roleTTL: a burst of
	// calls (a frontend page, a script) asks accounts once, and a role
	// change still takes effect within seconds.
	mu    sync.Mutex
	roles map[string]cachedRoles
}

type cachedRoles struct {
	roles   map[uuid.UUID]Role
	expires time.Time
}

const (
	roleTTL        = 5 * time.Second
	maxCachedRoles = 10000
)

// NewAccountsClient returns a client over conn.
func NewAccountsClient(conn grpc.ClientConnInterface) *AccountsClient {
	return &AccountsClient{users: accountsv1.NewUserServiceClient(conn), orgs: accountsv1.NewOrganizationServiceClient(conn),
		inv: accountsv1.NewInvitationServiceClient(conn), roles: map[string]cachedRoles{}}
}

// forward passes the caller's credentials and address on to accounts.
func forward(ctx context.Context) context.Context {
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for _, k := range []string{"authorization", "x-forwarded-for", "x-request-id"} {
		if v := in.Get(k); len(v) > 0 {
			out.Set(k, v...)
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// translate turns an accounts error into one of ours: never forwarded as it
// came.
func translate(err error, what string) error {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		return errs.E(errs.NotFound, "organization not found")
	case codes.Unauthenticated:
		return errs.E(errs.Unauthenticated, "missing, malformed or expired access token")
	case codes.AlreadyExists:
		return errs.E(errs.AlreadyExists, "%s", status.Convert(err).Message())
	case codes.InvalidArgument:
		return errs.E(errs.InvalidArgument, "%s", status.Convert(err).Message())
	case codes.FailedPrecondition:
		return errs.E(errs.FailedPrecondition, "%s", status.Convert(err).Message())
	case codes.ResourceExhausted:
		e := errs.E(errs.ResourceExhausted, "%s", status.Convert(err).Message())
		e.RetryAfter = max(retryDelay(err), time.Second)
		return e
	case codes.Unavailable, codes.DeadlineExceeded:
		// Accounts cannot be reached (or answer) just now: the caller may
		// retry, which a 500 would not tell them. The status is answered as
		// it is, not wrapped.
		st, _ := status.New(codes.Unavailable, "the accounts service is unavailable; try again shortly").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
		return st.Err()
	}
	return fmt.Errorf("%s: accounts: %w", what, err)
}

// retryDelay is the delay of err's RetryInfo, or 0.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// Role asks accounts for the caller's memberships, or remembers them for a
// few seconds.
func (a *AccountsClient) Role(ctx context.Context, org uuid.UUID) (Role, error) {
	roles, err := a.memberships(ctx)
	if err != nil {
		return "", err
	}
	if r, ok := roles[org]; ok {
		return r, nil
	}
	return "", errs.E(errs.NotFound, "organization not found")
}

func (a *AccountsClient) memberships(ctx context.Context) (map[uuid.UUID]Role, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	key := strings.Join(md.Get("authorization"), "")
	now := time.Now()
	a.mu.Lock()
	c, ok := a.roles[key]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.roles, nil
	}
	me, err := a.users.GetCurrentUser(forward(ctx), &accountsv1.GetCurrentUserRequest{})
	if err != nil {
		return nil, translate(err, "role")
	}
	roles := map[uuid.UUID]Role{}
	for _, m := range me.GetMemberships() {
		parts := strings.Split(m.GetName(), "/")
		id, err := uuid.Parse(parts[min(1, len(parts)-1)])
		if err != nil {
			continue
		}
		if r := roleOf(m.GetRole()); r != "" {
			roles[id] = r
		}
	}
	a.mu.Lock()
	if len(a.roles) >= maxCachedRoles {
		for k, v := range a.roles {
			if !now.Before(v.expires) {
				delete(a.roles, k)
			}
		}
	}
	if len(a.roles) < maxCachedRoles {
		a.roles[key] = cachedRoles{roles: roles, expires: now.Add(roleTTL)}
	}
	a.mu.Unlock()
	return roles, nil
}

// Members lists org's members, with one call per 1000.
func (a *AccountsClient) Members(ctx context.Context, org uuid.UUID) (map[uuid.UUID]Role, error) {
	members := map[uuid.UUID]Role{}
	token := ""
	for {
		page, err := a.orgs.ListMembers(forward(ctx), &accountsv1.ListMembersRequest{Parent: organizationName(org), PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, translate(err, "list members")
		}
		for _, m := range page.GetMembers() {
			id, err := uuid.Parse(strings.TrimPrefix(m.GetUser(), "users/"))
			if r := roleOf(m.GetRole()); err == nil && r != "" {
				members[id] = r
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			return members, nil
		}
	}
}

func roleOf(r accountsv1.Role) Role {
	switch r {
	case accountsv1.Role_ROLE_OWNER:
		return Owner
	case accountsv1.Role_ROLE_ADMIN:
		return Admin
	case accountsv1.Role_ROLE_MEMBER:
		return Member
	}
	return ""
}

// Invite creates an invitation in accounts.
func (a *AccountsClient) Invite(ctx context.Context, org uuid.UUID, email, purpose string) (string, string, error) {
	resp, err := a.inv.CreateInvitation(forward(ctx), &accountsv1.CreateInvitationRequest{
		Parent:     organizationName(org),
		Invitation: &accountsv1.Invitation{Email: email, Role: accountsv1.Role_ROLE_MEMBER, Purpose: purpose},
	})
	if err != nil {
		return "", "", translate(err, "invite "+email)
	}
	return resp.GetInvitation().GetName(), resp.GetLink(), nil
}

// CreateMember asks accounts to create the user.
func (a *AccountsClient) CreateMember(ctx context.Context, org uuid.UUID, email, displayName string) (uuid.UUID, string, error) {
	resp, err := a.orgs.CreateMember(forward(ctx), &accountsv1.CreateMemberRequest{Parent: organizationName(org), Email: email, DisplayName: displayName})
	if err != nil {
		return uuid.Nil, "", translate(err, "create user "+email)
	}
	id, err := uuid.Parse(strings.TrimPrefix(resp.GetMember().GetUser(), "users/"))
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("create user %s: accounts answered user %q", email, resp.GetMember().GetUser())
	}
	return id, resp.GetSetupLink(), nil
}

// access returns the caller and their role in org; another organization's
// caller gets NotFound.
func (s *Server) access(ctx context.Context, org uuid.UUID) (Caller, Role, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return c, "", err
	}
	if c.TokenID != "" {
		if c.TokenOrg != org {
			return c, "", errs.E(errs.NotFound, "organization not found")
		}
		return c, c.TokenRole, nil
	}
	r, err := s.accounts.Role(ctx, org)
	return c, r, err
}

// manage is access for owners and admins only.
func (s *Server) manage(ctx context.Context, org uuid.UUID) (Caller, error) {
	c, r, err := s.access(ctx, org)
	if err != nil {
		return c, err
	}
	if !r.canManage() {
		return c, errs.E(errs.PermissionDenied, "only owners and admins can do this")
	}
	return c, nil
}

// spareOwners refuses an action of a caller with role on what belongs to
// users (being on an address, a device password) when one of them is an
// owner of org and the caller is not: only an owner may act on an owner,
// as only an owner may release an owner's login.
func (s *Server) spareOwners(ctx context.Context, org uuid.UUID, role Role, refusal string, users ...uuid.UUID) error {
	if role == Owner || len(users) == 0 {
		return nil
	}
	members, err := s.accounts.Members(ctx, org)
	if err != nil {
		return err
	}
	for _, u := range users {
		if members[u] == Owner {
			return errs.E(errs.PermissionDenied, "%s", refusal).WithReason("OWNER_REQUIRED")
		}
	}
	return nil
}
