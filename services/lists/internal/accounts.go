package lists

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/grpc"
)

// Accounts is what the lists ask the accounts service: callers' roles,
// and the login emails of the users named as moderators.
type Accounts interface {
	access.Source
	// MemberEmails returns the login email of each of users who is a
	// member of org, asked on behalf of ctx's caller; the others are left
	// out.
	MemberEmails(ctx context.Context, org uuid.UUID, users []uuid.UUID) (map[uuid.UUID]string, error)
}

// AccountsClient is Accounts over the accounts service's gRPC API.
type AccountsClient struct {
	*access.Accounts
	orgs accountsv1.OrganizationServiceClient
}

// NewAccountsClient returns a client over conn.
func NewAccountsClient(conn grpc.ClientConnInterface) *AccountsClient {
	return &AccountsClient{Accounts: access.NewAccounts(conn), orgs: accountsv1.NewOrganizationServiceClient(conn)}
}

// MemberEmails asks BatchGetMembers, with the caller's credentials: a
// list has at most maxModerators, far below the call's 1000 names.
func (a *AccountsClient) MemberEmails(ctx context.Context, org uuid.UUID, users []uuid.UUID) (map[uuid.UUID]string, error) {
	req := &accountsv1.BatchGetMembersRequest{Parent: "organizations/" + org.String(), AllowMissing: true}
	for _, u := range users {
		req.Names = append(req.Names, "organizations/"+org.String()+"/members/"+u.String())
	}
	resp, err := a.orgs.BatchGetMembers(access.Forward(ctx), req)
	if err != nil {
		return nil, access.FromAccounts(err, "get moderators")
	}
	out := map[uuid.UUID]string{}
	for _, m := range resp.GetMembers() {
		if id, err := uuid.Parse(strings.TrimPrefix(m.GetUser(), "users/")); err == nil && m.GetEmail() != "" {
			out[id] = m.GetEmail()
		}
	}
	return out, nil
}

// resolveModerators sets the login email of each moderator of mods named
// as a user of org, as accounts answers the caller (an owner or admin of
// org). A user who is not a member of org is INVALID_ARGUMENT naming
// list.moderators[i].user.
func (s *Server) resolveModerators(ctx context.Context, org uuid.UUID, mods []moderator) error {
	var users []uuid.UUID
	for _, m := range mods {
		if id, ok := m.userID(); ok {
			users = append(users, id)
		}
	}
	if len(users) == 0 {
		return nil
	}
	emails, err := s.accounts.MemberEmails(ctx, org, users)
	if err != nil {
		return err
	}
	var v []errs.FieldViolation
	for i := range mods {
		id, ok := mods[i].userID()
		if !ok {
			continue
		}
		email, found := emails[id]
		if !found {
			v = append(v, errs.FieldViolation{Field: fmt.Sprintf("list.moderators[%d].user", i), Description: "not a member of the organization"})
			continue
		}
		mods[i].UserEmail = email
	}
	if len(v) > 0 {
		return errs.Fields(v...)
	}
	return nil
}

// userID is the id of the user m names, if m names one.
func (m moderator) userID() (uuid.UUID, bool) {
	id, err := uuid.Parse(strings.TrimPrefix(m.User, "users/"))
	return id, m.User != "" && err == nil
}
