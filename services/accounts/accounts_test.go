package accounts_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

type env struct {
	pool    *pgxpool.Pool
	auth    accountsv1.AuthServiceClient
	users   accountsv1.UserServiceClient
	orgs    accountsv1.OrganizationServiceClient
	tokens  accountsv1.ApiTokenServiceClient
	audit   accountsv1.AuditServiceClient
	invites accountsv1.InvitationServiceClient
	notices accountsv1.NoticeServiceClient
	signer  *auth.Signer
	cfg     accounts.Config
}

// start runs the accounts service on a real gRPC server over loopback
// (servicetest), so every interceptor runs, against a fresh database.
func start(t testing.TB) *env {
	t.Helper()
	return startWith(t, nil)
}

// startWith is start with settings changed by change.
func startWith(t testing.TB, change func(*accounts.Config)) *env {
	t.Helper()
	pool := pgtest.NewPool(t, accounts.Schema, accounts.Migrations)
	var cfg accounts.Config
	s := servicetest.Start(t, func(s *servicetest.Server) error {
		cfg = accounts.Config{
			AccessTokenTTL:  15 * time.Minute,
			RefreshTokenTTL: time.Hour,
			SignInPerEmail:  5,
			SignInPerClient: 1000,
			SignInWindow:    time.Minute,
			TokenSigningKey: s.SigningKey(),
			PublicURL:       "https://app.mailplane.test",
			NoticeAttempts:  2,
			NoticeRetry:     10 * time.Millisecond,
		}
		if change != nil {
			change(&cfg)
		}
		return accounts.Register(s.GRPC.Server, pool, cfg, s.Log)
	})
	return &env{
		pool:    pool,
		auth:    accountsv1.NewAuthServiceClient(s.Conn),
		users:   accountsv1.NewUserServiceClient(s.Conn),
		orgs:    accountsv1.NewOrganizationServiceClient(s.Conn),
		tokens:  accountsv1.NewApiTokenServiceClient(s.Conn),
		audit:   accountsv1.NewAuditServiceClient(s.Conn),
		invites: accountsv1.NewInvitationServiceClient(s.Conn),
		notices: accountsv1.NewNoticeServiceClient(s.Conn),
		signer:  auth.NewSigner(s.Key, 15*time.Minute),
		cfg:     cfg,
	}
}

const password = "a long enough password"

func (e *env) signUp(t testing.TB, email string) *accountsv1.SignUpResponse {
	t.Helper()
	resp, err := e.auth.SignUp(context.Background(), &accountsv1.SignUpRequest{
		Email: email, Password: password, DisplayName: "Someone", OrganizationDisplayName: "Their Org",
	})
	if err != nil {
		t.Fatalf("sign up %s: %v", email, err)
	}
	return resp
}

// as returns a context carrying email's access token.
func (e *env) as(t *testing.T, email string) context.Context {
	t.Helper()
	resp, err := e.auth.SignIn(context.Background(), &accountsv1.SignInRequest{Email: email, Password: password})
	if err != nil {
		t.Fatalf("sign in %s: %v", email, err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+resp.AccessToken)
}

func wantCode(t *testing.T, err error, want codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("got %v (%q), want %v", st.Code(), st.Message(), want)
	}
	return st
}

func fieldsOf(st *status.Status) []string {
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	return fields
}

func TestSignUpValidation(t *testing.T) {
	e := start(t)
	ok := &accountsv1.SignUpRequest{Email: "ok@example.com", Password: password, DisplayName: "Ok", OrganizationDisplayName: "Org"}
	tests := []struct {
		name   string
		modify func(r *accountsv1.SignUpRequest)
		fields []string
	}{
		{"malformed email", func(r *accountsv1.SignUpRequest) { r.Email = "not-an-email" }, []string{"email"}},
		{"display name in email", func(r *accountsv1.SignUpRequest) { r.Email = "Ann <ann@example.com>" }, []string{"email"}},
		{"short password", func(r *accountsv1.SignUpRequest) { r.Password = "elevenchars" }, []string{"password"}},
		{"password over 1024 bytes", func(r *accountsv1.SignUpRequest) { r.Password = strings.Repeat("é", 513) }, []string{"password"}},
		{"empty display name", func(r *accountsv1.SignUpRequest) { r.DisplayName = "" }, []string{"displayName"}},
		{"blank display name", func(r *accountsv1.SignUpRequest) { r.DisplayName = "   " }, []string{"displayName"}},
		{"several at once", func(r *accountsv1.SignUpRequest) { r.Email = ""; r.OrganizationDisplayName = "" }, []string{"email", "organizationDisplayName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &accountsv1.SignUpRequest{Email: ok.Email, Password: ok.Password, DisplayName: ok.DisplayName, OrganizationDisplayName: ok.OrganizationDisplayName}
			tt.modify(req)
			_, err := e.auth.SignUp(context.Background(), req)
			st := wantCode(t, err, codes.InvalidArgument)
			if diff := cmp.Diff(tt.fields, fieldsOf(st)); diff != "" {
				t.Errorf("field violations (-want +got):\n%s", diff)
			}
		})
	}
	// A 12-character password of multi-byte characters is fine.
	req := &accountsv1.SignUpRequest{Email: "Ok@Example.com", Password: strings.Repeat("é", 12), DisplayName: "Ok", OrganizationDisplayName: "Org"}
	resp, err := e.auth.SignUp(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.User.Email != "ok@example.com" {
		t.Errorf("email stored as %q, want it lower-cased", resp.User.Email)
	}
	_, err = e.auth.SignUp(context.Background(), req)
	wantCode(t, err, codes.AlreadyExists)

	var events int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE subject = 'accounts.organization.created'").Scan(&events); err != nil || events != 1 {
		t.Errorf("outbox holds %d organization.created events (%v), want 1", events, err)
	}
}

func TestSignInAndSessions(t *testing.T) {
	e := start(t)
	e.signUp(t, "ann@example.com")
	ctx := context.Background()

	_, errWrong := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "ann@example.com", Password: "wrong password!"})
	_, errUnknown := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "nobody@example.com", Password: password})
	stWrong, stUnknown := wantCode(t, errWrong, codes.Unauthenticated), wantCode(t, errUnknown, codes.Unauthenticated)
	if stWrong.Message() != stUnknown.Message() {
		t.Errorf("wrong password says %q but unknown email says %q: an attacker learns which emails exist", stWrong.Message(), stUnknown.Message())
	}

	s1, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "ANN@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if s1.ExpiresIn != 900 || s1.TokenType != "Bearer" || s1.AccessToken == "" || s1.RefreshToken == "" {
		t.Errorf("sign-in response %v", s1)
	}
	s2, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s1.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if s2.RefreshToken == s1.RefreshToken {
		t.Error("refresh did not rotate the refresh token")
	}
	// Replaying the used token revokes the whole session.
	_, err = e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s1.RefreshToken})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s2.RefreshToken})
	wantCode(t, err, codes.Unauthenticated)

	s3, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "ann@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.auth.SignOut(ctx, &accountsv1.SignOutRequest{RefreshToken: s3.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	_, err = e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s3.RefreshToken})
	wantCode(t, err, codes.Unauthenticated)
}

func TestSignInRateLimit(t *testing.T) {
	e := start(t)
	e.signUp(t, "bob@example.com")
	ctx := context.Background()
	for range 5 {
		_, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "bob@example.com", Password: "wrong password!"})
		wantCode(t, err, codes.Unauthenticated)
	}
	// Even the right password is refused now: the limit is on attempts.
	_, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "bob@example.com", Password: password})
	st := wantCode(t, err, codes.ResourceExhausted)
	var retry time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration()
		}
	}
	if retry <= 0 || retry > time.Minute {
		t.Errorf("retry delay %v, want within the 1m window", retry)
	}
	// Another email from the same client is still served.
	e.signUp(t, "carol@example.com")
	e.as(t, "carol@example.com")
}

func TestAuthentication(t *testing.T) {
	e := start(t)
	resp := e.signUp(t, "dan@example.com")
	expired, _, _ := e.signer.Sign(strings.TrimPrefix(resp.User.Name, "users/"), time.Now().Add(-time.Hour))
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged, _, _ := auth.NewSigner(otherKey, time.Minute).Sign(strings.TrimPrefix(resp.User.Name, "users/"), time.Now())
	for name, header := range map[string]string{
		"no token":  "",
		"malformed": "Bearer not.a.token",
		"expired":   "Bearer " + expired,
		"forged":    "Bearer " + forged,
		"basic":     "Basic ZGFuOnB3",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if header != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", header)
			}
			_, err := e.users.GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{})
			wantCode(t, err, codes.Unauthenticated)
		})
	}
	me, err := e.users.GetCurrentUser(e.as(t, "dan@example.com"), &accountsv1.GetCurrentUserRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if me.User.Email != "dan@example.com" || len(me.Memberships) != 1 || me.Memberships[0].Role != accountsv1.Role_ROLE_OWNER {
		t.Errorf("GetCurrentUser = %v", me)
	}
}

func TestOrganizationsAndRoles(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	admin := e.signUp(t, "admin@example.com")
	member := e.signUp(t, "member@example.com")
	stranger := e.signUp(t, "stranger@example.com")
	org := owner.Organization.Name
	orgID := strings.TrimPrefix(org, "organizations/")
	// Invitations come later; join the others to owner's organization directly.
	for _, j := range []struct {
		user *accountsv1.User
		role string
	}{{admin.User, "admin"}, {member.User, "member"}} {
		_, err := e.pool.Exec(context.Background(), "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)",
			orgID, strings.TrimPrefix(j.user.Name, "users/"), j.role)
		if err != nil {
			t.Fatal(err)
		}
	}
	asOwner, asAdmin, asMember, asStranger := e.as(t, "owner@example.com"), e.as(t, "admin@example.com"), e.as(t, "member@example.com"), e.as(t, "stranger@example.com")
	memberName := func(u *accountsv1.User) string { return org + "/members/" + strings.TrimPrefix(u.Name, "users/") }
	setRole := func(ctx context.Context, u *accountsv1.User, r accountsv1.Role) error {
		_, err := e.orgs.UpdateMember(ctx, &accountsv1.UpdateMemberRequest{Member: &accountsv1.Member{Name: memberName(u), Role: r}})
		return err
	}

	// Another organization's resources, or none at all, are NotFound.
	_, err := e.orgs.GetOrganization(asStranger, &accountsv1.GetOrganizationRequest{Name: org})
	wantCode(t, err, codes.NotFound)
	_, err = e.orgs.GetOrganization(asStranger, &accountsv1.GetOrganizationRequest{Name: "organizations/00000000-0000-0000-0000-000000000000"})
	wantCode(t, err, codes.NotFound)
	_, err = e.orgs.ListMembers(asStranger, &accountsv1.ListMembersRequest{Parent: org})
	wantCode(t, err, codes.NotFound)
	wantCode(t, setRole(asStranger, member.User, accountsv1.Role_ROLE_ADMIN), codes.NotFound)
	_, err = e.orgs.GetOrganization(asOwner, &accountsv1.GetOrganizationRequest{Name: "orgs/x"})
	wantCode(t, err, codes.InvalidArgument)
	_ = stranger

	// Members read, only owners and admins write.
	if _, err := e.orgs.GetOrganization(asMember, &accountsv1.GetOrganizationRequest{Name: org}); err != nil {
		t.Fatal(err)
	}
	_, err = e.orgs.UpdateOrganization(asMember, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: org, DisplayName: "Mine"}})
	wantCode(t, err, codes.PermissionDenied)
	up, err := e.orgs.UpdateOrganization(asAdmin, &accountsv1.UpdateOrganizationRequest{
		Organization: &accountsv1.Organization{Name: org, DisplayName: "Renamed"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
	})
	if err != nil || up.Organization.DisplayName != "Renamed" {
		t.Fatalf("admin rename: %v, %v", up, err)
	}
	_, err = e.orgs.UpdateOrganization(asAdmin, &accountsv1.UpdateOrganizationRequest{
		Organization: &accountsv1.Organization{Name: org, DisplayName: "X"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"create_time"}},
	})
	wantCode(t, err, codes.InvalidArgument)

	wantCode(t, setRole(asMember, member.User, accountsv1.Role_ROLE_ADMIN), codes.PermissionDenied)
	wantCode(t, setRole(asAdmin, member.User, accountsv1.Role_ROLE_OWNER), codes.PermissionDenied)
	wantCode(t, setRole(asAdmin, owner.User, accountsv1.Role_ROLE_MEMBER), codes.PermissionDenied)
	wantCode(t, setRole(asOwner, member.User, accountsv1.Role_ROLE_UNSPECIFIED), codes.InvalidArgument)
	if err := setRole(asAdmin, member.User, accountsv1.Role_ROLE_ADMIN); err != nil {
		t.Fatalf("admin promotes member: %v", err)
	}
	// The last owner can be neither demoted nor removed, by anyone.
	st := wantCode(t, setRole(asOwner, owner.User, accountsv1.Role_ROLE_ADMIN), codes.FailedPrecondition)
	if st.Message() == "" {
		t.Error("no reason given")
	}
	_, err = e.orgs.DeleteMember(asOwner, &accountsv1.DeleteMemberRequest{Name: memberName(owner.User)})
	wantCode(t, err, codes.FailedPrecondition)
	// With a second owner, the first may step down.
	if err := setRole(asOwner, admin.User, accountsv1.Role_ROLE_OWNER); err != nil {
		t.Fatal(err)
	}
	if err := setRole(asOwner, owner.User, accountsv1.Role_ROLE_MEMBER); err != nil {
		t.Fatalf("demote one of two owners: %v", err)
	}
	wantCode(t, setRole(asAdmin, admin.User, accountsv1.Role_ROLE_MEMBER), codes.FailedPrecondition)

	// Pagination walks every member once.
	var names []string
	token := ""
	for {
		page, err := e.orgs.ListMembers(asMember, &accountsv1.ListMembersRequest{Parent: org, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Members {
			names = append(names, m.Email)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if diff := cmp.Diff([]string{"owner@example.com", "admin@example.com", "member@example.com"}, names); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}

	// A member removed is gone; removing them again is NotFound.
	if _, err := e.orgs.DeleteMember(asAdmin, &accountsv1.DeleteMemberRequest{Name: memberName(member.User)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.orgs.DeleteMember(asAdmin, &accountsv1.DeleteMemberRequest{Name: memberName(member.User)})
	wantCode(t, err, codes.NotFound)
	_, err = e.orgs.GetOrganization(asMember, &accountsv1.GetOrganizationRequest{Name: org})
	wantCode(t, err, codes.NotFound)
}

// BenchmarkSignIn measures a whole sign-in over gRPC: rate-limit counters,
// the argon2id check, the refresh token and the signed access token.
func BenchmarkSignIn(b *testing.B) {
	e := start(b)
	e.signUp(b, "bench@example.com")
	req := &accountsv1.SignInRequest{Email: "bench@example.com", Password: password}
	for b.Loop() {
		if _, err := e.auth.SignIn(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
