// Package access says who is calling and what they may do in an
// organization: one Caller and one Role for every service, and Roles, which
// learns a person's role from the accounts service (or, in accounts, from
// its store).
package access

import (
	"context"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
)

// Role is what a member may do in an organization.
type Role string

// The roles, as accounts stores them and access tokens carry them.
const (
	Owner  Role = "owner"
	Admin  Role = "admin"
	Member Role = "member"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == Owner || r == Admin || r == Member }

// CanManage reports whether r may change settings, roles and what others
// use: owners and admins.
func (r Role) CanManage() bool { return r == Owner || r == Admin }

// Proto is r in the API's terms.
func (r Role) Proto() accountsv1.Role {
	switch r {
	case Owner:
		return accountsv1.Role_ROLE_OWNER
	case Admin:
		return accountsv1.Role_ROLE_ADMIN
	case Member:
		return accountsv1.Role_ROLE_MEMBER
	}
	return accountsv1.Role_ROLE_UNSPECIFIED
}

// RoleFromProto is the role p names; false for ROLE_UNSPECIFIED and
// unknown values.
func RoleFromProto(p accountsv1.Role) (Role, bool) {
	switch p {
	case accountsv1.Role_ROLE_OWNER:
		return Owner, true
	case accountsv1.Role_ROLE_ADMIN:
		return Admin, true
	case accountsv1.Role_ROLE_MEMBER:
		return Member, true
	}
	return "", false
}

// Caller is who makes a request: a person, or a machine's API token acting
// in one organization with one role.
type Caller struct {
	UserID uuid.UUID // a person; uuid.Nil for a token

	TokenID   uuid.UUID // an API token; uuid.Nil for a person
	TokenOrg  uuid.UUID
	TokenRole Role

	// Addr is the client's IP address, for the audit log.
	Addr string
}

// IsToken reports whether an API token is calling.
func (c Caller) IsToken() bool { return c.TokenID != uuid.Nil }

// Name is the caller's resource name, as events and audit logs record it:
// "users/{user}" or "organizations/{org}/apiTokens/{token}".
func (c Caller) Name() string {
	if c.IsToken() {
		return "organizations/" + c.TokenOrg.String() + "/apiTokens/" + c.TokenID.String()
	}
	return "users/" + c.UserID.String()
}

// Person returns the calling user's id, refusing API tokens, which have no
// user.
func (c Caller) Person() (uuid.UUID, error) {
	if c.IsToken() {
		return uuid.Nil, errs.E(errs.PermissionDenied, "an API token has no user; this needs a person's sign-in")
	}
	return c.UserID, nil
}

// CallerFrom returns the authenticated caller of ctx.
func CallerFrom(ctx context.Context) (Caller, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return Caller{}, errs.E(errs.Unauthenticated, "missing access token")
	}
	c := Caller{Addr: grpcserver.ClientAddr(ctx)}
	bad := errs.E(errs.Unauthenticated, "invalid access token")
	if p.TokenID != "" {
		id, err1 := uuid.Parse(p.TokenID)
		org, err2 := uuid.Parse(p.OrganizationID)
		role := Role(p.Role)
		if err1 != nil || err2 != nil || !role.Valid() {
			return Caller{}, bad
		}
		c.TokenID, c.TokenOrg, c.TokenRole = id, org, role
		return c, nil
	}
	id, err := uuid.Parse(p.UserID)
	if err != nil {
		return Caller{}, bad
	}
	c.UserID = id
	return c, nil
}

// PersonFrom returns the calling person and their user id, refusing API
// tokens.
func PersonFrom(ctx context.Context) (Caller, uuid.UUID, error) {
	c, err := CallerFrom(ctx)
	if err != nil {
		return c, uuid.Nil, err
	}
	id, err := c.Person()
	return c, id, err
}
