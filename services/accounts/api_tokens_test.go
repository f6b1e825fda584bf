package accounts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// withToken exchanges an API token's secret and returns a context carrying
// the access token, as the edge does.
func (e *env) withToken(t *testing.T, secret string) context.Context {
	t.Helper()
	resp, err := e.auth.ExchangeApiToken(context.Background(), &accountsv1.ExchangeApiTokenRequest{Secret: secret})
	if err != nil {
		t.Fatalf("exchange API token: %v", err)
	}
	if resp.ExpiresIn <= 0 || resp.ExpiresIn > 60 {
		t.Errorf("API token access lives %ds, want at most a minute", resp.ExpiresIn)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+resp.AccessToken)
}

func TestAPITokens(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	admin := e.signUp(t, "admin@example.com")
	member := e.signUp(t, "member@example.com")
	org := owner.Organization.Name
	e.join(t, org, admin.User, "admin")
	e.join(t, org, member.User, "member")
	asOwner, asAdmin, asMember := e.as(t, "owner@example.com"), e.as(t, "admin@example.com"), e.as(t, "member@example.com")
	create := func(ctx context.Context, name string, role accountsv1.Role) (*accountsv1.CreateApiTokenResponse, error) {
		return e.tokens.CreateApiToken(ctx, &accountsv1.CreateApiTokenRequest{Parent: org, ApiToken: &accountsv1.ApiToken{DisplayName: name, Role: role}})
	}

	_, err := create(asMember, "mine", accountsv1.Role_ROLE_MEMBER)
	wantCode(t, err, codes.PermissionDenied)
	_, err = create(asAdmin, "too strong", accountsv1.Role_ROLE_OWNER)
	wantCode(t, err, codes.PermissionDenied)
	_, err = create(asOwner, "", accountsv1.Role_ROLE_ADMIN)
	if st := wantCode(t, err, codes.InvalidArgument); fieldsOf(st)[0] != "apiToken.displayName" {
		t.Errorf("violation names %v", fieldsOf(st))
	}
	_, err = e.tokens.CreateApiToken(asOwner, &accountsv1.CreateApiTokenRequest{Parent: org, ApiToken: &accountsv1.ApiToken{
		DisplayName: "old", Role: accountsv1.Role_ROLE_ADMIN, ExpireTime: timestamppb.New(time.Now().Add(-time.Hour)),
	}})
	wantCode(t, err, codes.InvalidArgument)

	sync, err := create(asAdmin, "billing sync", accountsv1.Role_ROLE_ADMIN)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sync.Secret, "mpt_") || sync.ApiToken.Creator != admin.User.Name {
		t.Fatalf("created %v", sync)
	}
	reader, err := create(asOwner, "reader", accountsv1.Role_ROLE_MEMBER)
	if err != nil {
		t.Fatal(err)
	}

	// The admin token administers its organization, and only it.
	asSync := e.withToken(t, sync.Secret)
	if _, err := e.orgs.UpdateOrganization(asSync, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: org, DisplayName: "By robot"}}); err != nil {
		t.Fatalf("admin token renames: %v", err)
	}
	if _, err := e.orgs.ListMembers(asSync, &accountsv1.ListMembersRequest{Parent: org}); err != nil {
		t.Fatal(err)
	}
	other := e.signUp(t, "other@example.com").Organization.Name
	_, err = e.orgs.GetOrganization(asSync, &accountsv1.GetOrganizationRequest{Name: other})
	wantCode(t, err, codes.NotFound)
	// Another organization's owner learns nothing of this one's tokens.
	asOther := e.as(t, "other@example.com")
	_, err = e.tokens.DeleteApiToken(asOther, &accountsv1.DeleteApiTokenRequest{Name: sync.ApiToken.Name})
	wantCode(t, err, codes.NotFound)
	_, err = e.tokens.ListApiTokens(asOther, &accountsv1.ListApiTokensRequest{Parent: org})
	wantCode(t, err, codes.NotFound)
	_, err = e.tokens.DeleteApiToken(asOther, &accountsv1.DeleteApiTokenRequest{Name: "organizations/x/apiTokens/y"})
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.users.GetCurrentUser(asSync, &accountsv1.GetCurrentUserRequest{})
	wantCode(t, err, codes.PermissionDenied)
	// A member token reads but does not administer.
	asReader := e.withToken(t, reader.Secret)
	if _, err := e.orgs.GetOrganization(asReader, &accountsv1.GetOrganizationRequest{Name: org}); err != nil {
		t.Fatal(err)
	}
	_, err = e.orgs.UpdateOrganization(asReader, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: org, DisplayName: "No"}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.tokens.ListApiTokens(asReader, &accountsv1.ListApiTokensRequest{Parent: org})
	wantCode(t, err, codes.PermissionDenied)

	list, err := e.tokens.ListApiTokens(asOwner, &accountsv1.ListApiTokensRequest{Parent: org})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ApiTokens) != 2 || list.ApiTokens[0].DisplayName != "reader" || list.ApiTokens[1].LastUseTime == nil {
		t.Errorf("list = %v, want reader then billing sync with its last use", list.ApiTokens)
	}

	// Wrong, revoked and expired secrets are refused alike.
	for name, secret := range map[string]string{
		"garbage":      "not a token",
		"wrong secret": sync.Secret[:len(sync.Secret)-4] + "AAAA",
	} {
		_, err := e.auth.ExchangeApiToken(context.Background(), &accountsv1.ExchangeApiTokenRequest{Secret: secret})
		if err == nil {
			t.Errorf("%s: exchanged", name)
		}
		wantCode(t, err, codes.Unauthenticated)
	}
	if _, err := e.tokens.DeleteApiToken(asMember, &accountsv1.DeleteApiTokenRequest{Name: sync.ApiToken.Name}); err == nil {
		t.Error("a member revoked a token")
	}
	if _, err := e.tokens.DeleteApiToken(asOwner, &accountsv1.DeleteApiTokenRequest{Name: sync.ApiToken.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = e.auth.ExchangeApiToken(context.Background(), &accountsv1.ExchangeApiTokenRequest{Secret: sync.Secret})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.tokens.DeleteApiToken(asOwner, &accountsv1.DeleteApiTokenRequest{Name: sync.ApiToken.Name})
	wantCode(t, err, codes.NotFound)
	if _, err := e.pool.Exec(context.Background(), "UPDATE api_tokens SET expire_time = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	_, err = e.auth.ExchangeApiToken(context.Background(), &accountsv1.ExchangeApiTokenRequest{Secret: reader.Secret})
	wantCode(t, err, codes.Unauthenticated)

	// The secret is stored hashed, never as given.
	var stored int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM api_tokens WHERE position($1::bytea in secret_hash) > 0", []byte(sync.Secret[37:])).Scan(&stored); err != nil || stored != 0 {
		t.Errorf("secret found in the database (%d, %v)", stored, err)
	}

	// Token actions are in the audit log, the token named as the actor.
	log := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org})
	var sawRename, sawRevoke, sawDenied bool
	for _, l := range log {
		sawRename = sawRename || (l.Action == "accounts.organization.update" && l.Actor == "billing sync")
		sawRevoke = sawRevoke || (l.Action == "accounts.apiToken.delete" && l.Actor == "owner@example.com")
		sawDenied = sawDenied || (l.Action == "accounts.apiToken.create" && l.Outcome == accountsv1.Outcome_OUTCOME_DENIED && l.Actor == "admin@example.com")
	}
	if !sawRename || !sawRevoke || !sawDenied {
		t.Errorf("audit log lacks token actions (rename %v, revoke %v, denied create %v):\n%v", sawRename, sawRevoke, sawDenied, log)
	}
}
