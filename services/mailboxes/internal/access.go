package mailboxes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/grpc"
)

// roleTTL is how long a caller's role is remembered: a burst of calls (a
// frontend page, a script) asks accounts once, and a role change still
// takes effect within seconds.
const roleTTL = 5 * time.Second

// Accounts is what the mailboxes service asks the accounts service, on the
// caller's behalf (their token travels with each call).
type Accounts interface {
	// Source is a person's role in an organization (GetMember).
	access.Source
	// Members returns the role in org of each of users who is a member of
	// it; the others are left out.
	Members(ctx context.Context, org uuid.UUID, users []uuid.UUID) (map[uuid.UUID]access.Role, error)
	// Invite invites email into org as a member, for purpose, and returns
	// the invitation's name and link.
	Invite(ctx context.Context, org uuid.UUID, email, purpose string) (name, link string, err error)
	// CreateMember creates a user in org whose login is email, without a
	// password yet, and returns them and the link where they choose one.
	CreateMember(ctx context.Context, org uuid.UUID, email, displayName string) (user uuid.UUID, setupLink string, err error)
	// MemberEmails returns the user of each of emails (lower-cased
	// logins) who is a member of org; the others are left out.
	MemberEmails(ctx context.Context, org uuid.UUID, emails map[string]bool) (map[string]uuid.UUID, error)
}

// AccountsClient is Accounts over the accounts service's gRPC API.
type AccountsClient struct {
	*access.Accounts
	orgs accountsv1.OrganizationServiceClient
	inv  accountsv1.InvitationServiceClient
}

// NewAccountsClient returns a client over conn.
func NewAccountsClient(conn grpc.ClientConnInterface) *AccountsClient {
	return &AccountsClient{Accounts: access.NewAccounts(conn), orgs: accountsv1.NewOrganizationServiceClient(conn),
		inv: accountsv1.NewInvitationServiceClient(conn)}
}

// Invite creates an invitation in accounts.
func (a *AccountsClient) Invite(ctx context.Context, org uuid.UUID, email, purpose string) (string, string, error) {
	resp, err := a.inv.CreateInvitation(access.Forward(ctx), &accountsv1.CreateInvitationRequest{
		Parent:     organizationName(org),
		Invitation: &accountsv1.Invitation{Email: email, Role: accountsv1.Role_ROLE_MEMBER, Purpose: purpose},
	})
	if err != nil {
		return "", "", access.FromAccounts(err, "invite "+email)
	}
	return resp.GetInvitation().GetName(), resp.GetLink(), nil
}

// CreateMember asks accounts to create the user.
func (a *AccountsClient) CreateMember(ctx context.Context, org uuid.UUID, email, displayName string) (uuid.UUID, string, error) {
	resp, err := a.orgs.CreateMember(access.Forward(ctx), &accountsv1.CreateMemberRequest{Parent: organizationName(org), Email: email, DisplayName: displayName})
	if err != nil {
		return uuid.Nil, "", access.FromAccounts(err, "create user "+email)
	}
	id, err := uuid.Parse(strings.TrimPrefix(resp.GetMember().GetUser(), "users/"))
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("create user %s: accounts answered user %q", email, resp.GetMember().GetUser())
	}
	return id, resp.GetSetupLink(), nil
}

// MemberEmails pages through org's members, a thousand a call, until it
// has found every one of emails: one call per thousand members rather than
// one per email, since a file names up to maxBulkEmails.
func (a *AccountsClient) MemberEmails(ctx context.Context, org uuid.UUID, emails map[string]bool) (map[string]uuid.UUID, error) {
	found := map[string]uuid.UUID{}
	req := &accountsv1.ListMembersRequest{Parent: organizationName(org), PageSize: 1000}
	for len(found) < len(emails) {
		resp, err := a.orgs.ListMembers(access.Forward(ctx), req)
		if err != nil {
			return nil, access.FromAccounts(err, "list members")
		}
		for _, m := range resp.GetMembers() {
			e := strings.ToLower(m.GetEmail())
			if !emails[e] {
				continue
			}
			id, err := uuid.Parse(strings.TrimPrefix(m.GetUser(), "users/"))
			if err != nil {
				return nil, fmt.Errorf("list members: accounts answered user %q", m.GetUser())
			}
			found[e] = id
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	return found, nil
}

// access returns the caller and their role in org; another organization's
// caller gets NotFound.
func (s *Server) access(ctx context.Context, org uuid.UUID) (access.Caller, access.Role, error) {
	return s.roles.Access(ctx, org)
}

// manage is access for owners and admins only.
func (s *Server) manage(ctx context.Context, org uuid.UUID) (access.Caller, error) {
	return s.roles.Manage(ctx, org)
}

// spareOwners refuses an action of a caller with role on what belongs to
// users (being on an address, a device password) when one of them is an
// owner of org and the caller is not: only an owner may act on an owner,
// as only an owner may release an owner's login.
func (s *Server) spareOwners(ctx context.Context, org uuid.UUID, role access.Role, refusal string, users ...uuid.UUID) error {
	if role == access.Owner || len(users) == 0 {
		return nil
	}
	members, err := s.accounts.Members(ctx, org, users)
	if err != nil {
		return err
	}
	for _, u := range users {
		if members[u] == access.Owner {
			return errs.E(errs.PermissionDenied, "%s", refusal).WithReason("OWNER_REQUIRED")
		}
	}
	return nil
}

// userIDs returns the ids of those of names that are user names
// ("users/{id}"), to ask accounts about together; the others are left for
// the caller to refuse, in order.
func userIDs(names []string) []uuid.UUID {
	var ids []uuid.UUID
	for _, n := range names {
		if id, err := userID("", n); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}
