package accounts_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	internal "github.com/mailplane/mailplane/services/accounts/internal"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc/codes"
)

// hostDomain tells accounts, as the mailboxes service's event would, that
// org hosts domain.
func (e *env) hostDomain(t *testing.T, org, domain string) {
	t.Helper()
	ctx := context.Background()
	ev := &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: org + "/mailServices/" + uuid.NewString(), Domain: domain}}
	if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		return internal.ApplyMailServiceChanged(ctx, tx, mailboxesevents.MailServiceCreated, ev)
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) setPhone(t *testing.T, u *accountsv1.User) {
	t.Helper()
	if _, err := e.pool.Exec(context.Background(), "UPDATE users SET phone_number = '+41791234567' WHERE id = $1", strings.TrimPrefix(u.Name, "users/")); err != nil {
		t.Fatal(err)
	}
}

// TestOnlyAnOwnerActsOnAnOwner: an admin may release, remove or demote
// members and admins, but not owners; an owner may.
func TestOnlyAnOwnerActsOnAnOwner(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	founder := e.signUp(t, "founder@corp.example")
	org := founder.Organization.Name
	owner := e.signUp(t, "owner@corp.example")
	admin := e.signUp(t, "admin@corp.example")
	e.join(t, org, owner.User, "owner")
	e.join(t, org, admin.User, "admin")
	e.setPhone(t, owner.User)
	e.hostDomain(t, org, "corp.example")
	member := func(u *accountsv1.User) string { return org + "/members/" + strings.TrimPrefix(u.Name, "users/") }
	asAdmin := e.as(t, "admin@corp.example")

	_, err := e.orgs.ReleaseMemberLogin(asAdmin, &accountsv1.ReleaseMemberLoginRequest{Name: member(owner.User), Confirm: true})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "owner@corp.example", Password: password}); err != nil {
		t.Errorf("the owner lost their login to an admin: %v", err)
	}
	_, err = e.orgs.DeleteMember(asAdmin, &accountsv1.DeleteMemberRequest{Name: member(owner.User)})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.orgs.UpdateMember(asAdmin, &accountsv1.UpdateMemberRequest{Member: &accountsv1.Member{Name: member(owner.User), Role: accountsv1.Role_ROLE_MEMBER}})
	wantCode(t, err, codes.PermissionDenied)

	// An owner's invitation: an admin may neither resend it (its new link
	// is in the answer) nor revoke it.
	asFounder := e.as(t, "founder@corp.example")
	inv, err := e.invites.CreateInvitation(asFounder, &accountsv1.CreateInvitationRequest{Parent: org,
		Invitation: &accountsv1.Invitation{Email: "co-owner@corp.example", Role: accountsv1.Role_ROLE_OWNER}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.invites.ResendInvitation(asAdmin, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.invites.DeleteInvitation(asAdmin, &accountsv1.DeleteInvitationRequest{Name: inv.Invitation.Name})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.invites.ResendInvitation(asFounder, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name}); err != nil {
		t.Errorf("owner resends an owner's invitation: %v", err)
	}

	// An owner's API token acts as an owner: an admin may not end it.
	tok, err := e.tokens.CreateApiToken(asFounder, &accountsv1.CreateApiTokenRequest{Parent: org, ApiToken: &accountsv1.ApiToken{DisplayName: "deploy", Role: accountsv1.Role_ROLE_OWNER}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.tokens.DeleteApiToken(asAdmin, &accountsv1.DeleteApiTokenRequest{Name: tok.ApiToken.Name})
	wantCode(t, err, codes.PermissionDenied)
	if _, err := e.tokens.DeleteApiToken(asFounder, &accountsv1.DeleteApiTokenRequest{Name: tok.ApiToken.Name}); err != nil {
		t.Errorf("owner revokes an owner token: %v", err)
	}

	denied := map[string]int{}
	for _, l := range e.auditLog(t, asFounder, &accountsv1.ListAuditEntriesRequest{Parent: org}) {
		if l.Outcome == accountsv1.Outcome_OUTCOME_DENIED {
			denied[l.Action]++
		}
	}
	for _, a := range []string{"accounts.login.release", "accounts.member.delete", "accounts.member.update", "accounts.invitation.resend", "accounts.invitation.delete", "accounts.apiToken.delete"} {
		if denied[a] != 1 {
			t.Errorf("%s: %d denied entries, want 1 (all: %v)", a, denied[a], denied)
		}
	}

	// An owner may release an owner's login.
	resp, err := e.orgs.ReleaseMemberLogin(asFounder, &accountsv1.ReleaseMemberLoginRequest{Name: member(owner.User), Confirm: true})
	if err != nil {
		t.Fatalf("owner releases an owner's login: %v", err)
	}
	if resp.ReleasedEmail != "owner@corp.example" {
		t.Errorf("released %q", resp.ReleasedEmail)
	}
}

// TestEveryRefusalAudited: refusals for lack of rights land in the audit
// log, reads included.
func TestEveryRefusalAudited(t *testing.T) {
	e := start(t)
	founder := e.signUp(t, "founder@corp.example")
	org := founder.Organization.Name
	admin := e.signUp(t, "admin@corp.example")
	mem := e.signUp(t, "member@corp.example")
	e.join(t, org, admin.User, "admin")
	e.join(t, org, mem.User, "member")
	asFounder, asAdmin, asMember := e.as(t, "founder@corp.example"), e.as(t, "admin@corp.example"), e.as(t, "member@corp.example")

	_, err := e.orgs.CreateMember(asAdmin, &accountsv1.CreateMemberRequest{Parent: org, Email: "boss@corp.example", DisplayName: "Boss", Role: accountsv1.Role_ROLE_OWNER})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.invites.ListInvitations(asMember, &accountsv1.ListInvitationsRequest{Parent: org})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.audit.ListAuditEntries(asMember, &accountsv1.ListAuditEntriesRequest{Parent: org})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.notices.ListDeadNotices(asMember, &accountsv1.ListDeadNoticesRequest{Parent: org})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.tokens.ListApiTokens(asMember, &accountsv1.ListApiTokensRequest{Parent: org})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.notices.RetryNotice(asMember, &accountsv1.RetryNoticeRequest{Name: org + "/notices/" + uuid.NewString()})
	wantCode(t, err, codes.PermissionDenied)
	inv, err := e.invites.CreateInvitation(asFounder, &accountsv1.CreateInvitationRequest{Parent: org,
		Invitation: &accountsv1.Invitation{Email: "someone@else.example", Role: accountsv1.Role_ROLE_MEMBER}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.invites.AcceptInvitation(asMember, &accountsv1.AcceptInvitationRequest{Token: tokenOf(inv.Link)})
	wantCode(t, err, codes.PermissionDenied)

	denied := map[string]int{}
	for _, l := range e.auditLog(t, asFounder, &accountsv1.ListAuditEntriesRequest{Parent: org}) {
		if l.Outcome == accountsv1.Outcome_OUTCOME_DENIED {
			denied[l.Action]++
		}
	}
	for _, a := range []string{"accounts.member.create", "accounts.invitation.list", "accounts.auditEntry.list", "accounts.notice.list", "accounts.notice.retry", "accounts.invitation.accept", "accounts.apiToken.list"} {
		if denied[a] != 1 {
			t.Errorf("%s: %d denied entries, want 1 (all: %v)", a, denied[a], denied)
		}
	}
}

// from returns ctx as a call from client address addr, as the edge says
// it.
func from(ctx context.Context, addr string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", addr)
}

func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	t.Fatalf("%v: no retry delay", err)
	return 0
}

// TestSignInLockoutIsPerClient: failing for someone's email from one
// address does not lock them out from another; once all addresses together
// exhaust the email's limit, only addresses the user signed in from before
// still get in.
func TestSignInLockoutIsPerClient(t *testing.T) {
	e := startWith(t, func(c *accounts.Config) { c.SignInPerEmail, c.SignInPerEmailAll = 3, 8 })
	ctx := context.Background()
	e.signUp(t, "victim@example.com")
	home, cafe := from(ctx, "198.51.100.7"), from(ctx, "192.0.2.9")
	signIn := func(ctx context.Context, pw string) error {
		_, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "victim@example.com", Password: pw})
		return err
	}
	if err := signIn(home, password); err != nil {
		t.Fatal(err)
	}
	attacker := from(ctx, "203.0.113.1")
	for range 3 {
		wantCode(t, signIn(attacker, "wrong password!"), codes.Unauthenticated)
	}
	err := signIn(attacker, "wrong password!")
	if wantCode(t, err, codes.ResourceExhausted); reason(err) != "TOO_MANY_ATTEMPTS" || retryAfter(t, err) <= 0 {
		t.Errorf("attacker: reason %q", reason(err))
	}
	if err := signIn(cafe, password); err != nil {
		t.Errorf("the victim, from another address, after an attacker's failures: %v", err)
	}

	// A distributed attacker exhausts the email's limit across addresses.
	for i := 2; i <= 4; i++ {
		for range 3 {
			signIn(from(ctx, fmt.Sprintf("203.0.113.%d", i)), "wrong password!")
		}
	}
	err = signIn(from(ctx, "203.0.113.99"), password)
	wantCode(t, err, codes.ResourceExhausted)
	if err := signIn(home, password); err != nil {
		t.Errorf("the victim, from an address they signed in from before: %v", err)
	}
	wantCode(t, signIn(from(ctx, "192.0.2.200"), password), codes.ResourceExhausted)
}

// TestPublicRoutesLimitedPerClient: every unauthenticated route answers 429
// with Retry-After past its limit for one client address (ten times it for
// refresh and sign-out), and serves another address.
func TestPublicRoutesLimitedPerClient(t *testing.T) {
	e := startWith(t, func(c *accounts.Config) { c.PublicPerClient = 3 })
	ctx := context.Background()
	flood := from(ctx, "203.0.113.1")
	calls := map[string]func(context.Context) error{
		"setInitialPassword": func(ctx context.Context) error {
			_, err := e.auth.SetInitialPassword(ctx, &accountsv1.SetInitialPasswordRequest{Token: "garbage", Password: password})
			return err
		},
		"signUp": func(ctx context.Context) error {
			_, err := e.auth.SignUp(ctx, &accountsv1.SignUpRequest{Email: "taken@example.com", Password: password, DisplayName: "T", OrganizationDisplayName: "T"})
			return err
		},
		"refresh": func(ctx context.Context) error {
			_, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: "garbage"})
			return err
		},
		"signOut": func(ctx context.Context) error {
			_, err := e.auth.SignOut(ctx, &accountsv1.SignOutRequest{RefreshToken: "garbage"})
			return err
		},
		"lookupInvitation": func(ctx context.Context) error {
			_, err := e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: "garbage"})
			return err
		},
	}
	e.signUp(t, "taken@example.com")
	for name, call := range calls {
		allowed := 3
		if name == "refresh" || name == "signOut" {
			allowed = 30 // what every signed-in browser calls
		}
		for range allowed {
			if err := call(flood); status.Code(err) == codes.ResourceExhausted {
				t.Fatalf("%s: limited before the limit: %v", name, err)
			}
		}
		err := call(flood)
		if wantCode(t, err, codes.ResourceExhausted); reason(err) != "TOO_MANY_REQUESTS" || retryAfter(t, err) <= 0 {
			t.Errorf("%s: reason %q", name, reason(err))
		}
		if err := call(from(ctx, "198.51.100.7")); status.Code(err) == codes.ResourceExhausted {
			t.Errorf("%s: another address is limited too: %v", name, err)
		}
	}
}

// TestDeleteAccountPasswordLimited: the password check of account deletion
// is limited like sign-in.
func TestDeleteAccountPasswordLimited(t *testing.T) {
	e := start(t) // 5 attempts per email per window
	e.signUp(t, "me@example.com")
	ctx := e.as(t, "me@example.com")
	for range 5 {
		_, err := e.users.DeleteCurrentUser(ctx, &accountsv1.DeleteCurrentUserRequest{Password: "wrong password!"})
		wantCode(t, err, codes.PermissionDenied)
	}
	_, err := e.users.DeleteCurrentUser(ctx, &accountsv1.DeleteCurrentUserRequest{Password: "wrong password!"})
	if wantCode(t, err, codes.ResourceExhausted); retryAfter(t, err) <= 0 {
		t.Error("no retry delay")
	}
}

// TestInvitationEmailsLimited: invitation emails, new or resent, are
// limited per organization and per recipient in 24 hours.
func TestInvitationEmailsLimited(t *testing.T) {
	e := startWith(t, func(c *accounts.Config) { c.InvitationsPerOrganization, c.InvitationsPerRecipient = 6, 3 })
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	ctx := e.as(t, "owner@example.com")
	invite := func(email string) (*accountsv1.CreateInvitationResponse, error) {
		return e.invites.CreateInvitation(ctx, &accountsv1.CreateInvitationRequest{Parent: org,
			Invitation: &accountsv1.Invitation{Email: email, Role: accountsv1.Role_ROLE_MEMBER}})
	}
	wantLimited := func(err error) {
		t.Helper()
		if wantCode(t, err, codes.ResourceExhausted); reason(err) != "TOO_MANY_INVITATIONS" || retryAfter(t, err) <= 0 {
			t.Errorf("reason %q", reason(err))
		}
	}
	inv, err := invite("a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.invites.ResendInvitation(ctx, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = e.invites.ResendInvitation(ctx, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name})
	wantLimited(err) // a third email to a@ in a day
	for _, to := range []string{"b@example.com", "c@example.com", "d@example.com"} {
		if _, err := invite(to); err != nil {
			t.Fatal(err)
		}
	}
	_, err = invite("e@example.com")
	wantLimited(err) // a seventh email from the organization
	var n int
	e.pool.QueryRow(context.Background(), "SELECT count(*) FROM notices WHERE template = 'invitation'").Scan(&n)
	if n != 6 {
		t.Errorf("%d invitation emails queued, want 6", n)
	}
}

// TestCreatesAreIdempotent: a create sent again with the same idempotency
// key (request_id, or the idempotency-key metadata the edge sets from the
// Idempotency-Key header) answers the first outcome and creates nothing
// twice, even when both arrive at once; another request with the same key
// is refused.
func TestCreatesAreIdempotent(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	ctx := e.as(t, "owner@example.com")

	req := &accountsv1.CreateMemberRequest{Parent: org, Email: "new@example.com", DisplayName: "New", RequestId: uuid.NewString()}
	answers := make([]*accountsv1.CreateMemberResponse, 3)
	errors := make([]error, 3)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i], errors[i] = e.orgs.CreateMember(ctx, req) })
	}
	wg.Wait()
	for i := range answers {
		if errors[i] != nil {
			t.Fatalf("create %d: %v", i, errors[i])
		}
		if answers[i].Member.GetName() != answers[0].Member.Name || answers[i].SetupLink == "" {
			t.Errorf("answer %d = %v, want member %s with a setup link", i, answers[i], answers[0].Member.Name)
		}
	}
	// The link is kept nowhere: a retry gets a new one, and the earlier
	// ones stop working.
	again, err := e.orgs.CreateMember(ctx, req)
	if err != nil || again.Member.GetName() != answers[0].Member.Name || again.SetupLink == "" {
		t.Fatalf("later retry = %v, %v; want member %s with a setup link", again, err, answers[0].Member.Name)
	}
	_, err = e.auth.SetInitialPassword(context.Background(), &accountsv1.SetInitialPasswordRequest{Token: tokenOf(answers[0].SetupLink), Password: password})
	wantCode(t, err, codes.NotFound)
	if _, err := e.auth.SetInitialPassword(context.Background(), &accountsv1.SetInitialPasswordRequest{Token: tokenOf(again.SetupLink), Password: password}); err != nil {
		t.Fatalf("the retry's setup link: %v", err)
	}
	again, err = e.orgs.CreateMember(ctx, req)
	if err != nil || again.Member.GetName() != answers[0].Member.Name || again.SetupLink != "" {
		t.Errorf("retry after the password was chosen = %v, %v; want the member without a link", again, err)
	}
	other := proto.Clone(req).(*accountsv1.CreateMemberRequest)
	other.Email = "other@example.com"
	_, err = e.orgs.CreateMember(ctx, other)
	if st := wantCode(t, err, codes.Aborted); st.Message() == "" {
		t.Errorf("a reused key: %v", st)
	}

	keyed := metadata.AppendToOutgoingContext(ctx, "idempotency-key", uuid.NewString())
	inv := &accountsv1.CreateInvitationRequest{Parent: org, Invitation: &accountsv1.Invitation{Email: "guest@example.com", Role: accountsv1.Role_ROLE_MEMBER}}
	first, err := e.invites.CreateInvitation(keyed, inv)
	if err != nil || first.Link == "" {
		t.Fatal(first, err)
	}
	second, err := e.invites.CreateInvitation(keyed, inv)
	if err != nil || second.Invitation.GetName() != first.Invitation.Name || second.Link != "" {
		t.Errorf("retry = %v, %v; want invitation %s without its link", second, err, first.Invitation.Name)
	}
	var users, emails int
	e.pool.QueryRow(context.Background(), "SELECT count(*) FROM users WHERE email = 'new@example.com'").Scan(&users)
	e.pool.QueryRow(context.Background(), "SELECT count(*) FROM notices WHERE recipient = 'guest@example.com'").Scan(&emails)
	if users != 1 || emails != 1 {
		t.Errorf("%d users and %d invitation emails, want 1 and 1", users, emails)
	}
	// Without a key, a second create is a second try: refused as a duplicate.
	_, err = e.invites.CreateInvitation(ctx, inv)
	wantCode(t, err, codes.AlreadyExists)

	// An API token: the retry names the first token, without its secret.
	tokReq := &accountsv1.CreateApiTokenRequest{Parent: org, RequestId: uuid.NewString(), ApiToken: &accountsv1.ApiToken{DisplayName: "ci", Role: accountsv1.Role_ROLE_MEMBER}}
	tok1, err := e.tokens.CreateApiToken(ctx, tokReq)
	if err != nil || tok1.Secret == "" {
		t.Fatalf("create API token: %v, %v", tok1, err)
	}
	tok2, err := e.tokens.CreateApiToken(ctx, tokReq)
	if err != nil || tok2.ApiToken.GetName() != tok1.ApiToken.Name || tok2.Secret != "" {
		t.Errorf("API token retry = %v, %v; want %s without a secret", tok2, err, tok1.ApiToken.Name)
	}
	var tokens int
	e.pool.QueryRow(context.Background(), "SELECT count(*) FROM api_tokens WHERE display_name = 'ci'").Scan(&tokens)
	if tokens != 1 {
		t.Errorf("%d API tokens, want 1", tokens)
	}
}
