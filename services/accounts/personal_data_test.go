package accounts_test

import (
	"context"
	"testing"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
)

func TestPersonalData(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	leaver := e.signUp(t, "leaver@example.com")
	boss := e.signUp(t, "boss@example.com")
	e.join(t, boss.Organization.Name, leaver.User, "admin")
	asLeaver, asBoss := e.as(t, "leaver@example.com"), e.as(t, "boss@example.com")
	// The leaver acts as an admin in boss's organization.
	if _, err := e.orgs.UpdateOrganization(asLeaver, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: boss.Organization.Name, LegalName: "Boss AG"}}); err != nil {
		t.Fatal(err)
	}

	export, err := e.users.ExportPersonalData(asLeaver, &accountsv1.ExportPersonalDataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if export.User.Email != "leaver@example.com" || len(export.Memberships) != 2 || len(export.Sessions) == 0 || len(export.Actions) != 2 {
		t.Errorf("export: user %v, %d memberships, %d sessions, %d actions", export.User, len(export.Memberships), len(export.Sessions), len(export.Actions))
	}

	// The last owner of an organization with others in it must hand over.
	e.join(t, leaver.Organization.Name, boss.User, "member")
	_, err = e.users.DeleteCurrentUser(asLeaver, &accountsv1.DeleteCurrentUserRequest{Password: password})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "LAST_OWNER" {
		t.Errorf("reason %q", reason(err))
	}
	_, err = e.users.DeleteCurrentUser(asLeaver, &accountsv1.DeleteCurrentUserRequest{Password: "not my password"})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.orgs.DeleteMember(asLeaver, &accountsv1.DeleteMemberRequest{Name: leaver.Organization.Name + "/members/" + boss.User.Name[len("users/"):]}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.users.DeleteCurrentUser(asLeaver, &accountsv1.DeleteCurrentUserRequest{Password: password}); err != nil {
		t.Fatal(err)
	}

	_, err = e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "leaver@example.com", Password: password})
	wantCode(t, err, codes.Unauthenticated)
	var orgs int
	e.pool.QueryRow(ctx, "SELECT count(*) FROM organizations WHERE id = $1", leaver.Organization.Name[len("organizations/"):]).Scan(&orgs)
	if orgs != 0 {
		t.Error("the organization the leaver was alone in survived")
	}
	// Boss's log keeps what the leaver did, pseudonymized.
	log, err := e.audit.ListAuditEntries(asBoss, &accountsv1.ListAuditEntriesRequest{Parent: boss.Organization.Name, Actor: leaver.User.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.AuditEntries) != 2 {
		t.Fatalf("boss's log holds %d entries by the leaver, want the update and the deletion", len(log.AuditEntries))
	}
	for _, a := range log.AuditEntries {
		if a.ActorDisplayName != "deleted user" || a.ClientAddress != "" {
			t.Errorf("entry not pseudonymized: %v", a)
		}
	}
	var events int
	e.pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE subject IN ('accounts.user.deleted', 'accounts.organization.deleted')").Scan(&events)
	if events != 2 {
		t.Errorf("%d deletion events, want user.deleted and organization.deleted", events)
	}
}
