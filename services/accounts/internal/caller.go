package accounts

import (
	"context"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
)

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

// Name is the caller's resource name, as the audit log records it.
func (c Caller) Name() string {
	if c.IsToken() {
		return apiTokenName(c.TokenOrg, c.TokenID)
	}
	return userName(c.UserID)
}

// callerFrom returns the authenticated caller of ctx.
func callerFrom(ctx context.Context) (Caller, error) {
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
		if err1 != nil || err2 != nil || !role.valid() {
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

// person returns the calling user's id, refusing API tokens, which have no
// user.
func (c Caller) person() (uuid.UUID, error) {
	if c.IsToken() {
		return uuid.Nil, errs.E(errs.PermissionDenied, "an API token has no user; this needs a person's sign-in")
	}
	return c.UserID, nil
}

// personFrom returns the calling person and their user id, refusing API
// tokens.
func personFrom(ctx context.Context) (Caller, uuid.UUID, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return c, uuid.Nil, err
	}
	id, err := c.person()
	return c, id, err
}
