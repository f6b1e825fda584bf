package accounts_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	internal "github.com/mailplane/mailplane/services/accounts/internal"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/proto"
)

// sidOf is the session an access token names (its "sid" claim).
func sidOf(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Sid string }
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.Sid == "" {
		t.Fatalf("token claims %s (%v): no session", b, err)
	}
	return c.Sid
}

// revocations are the SessionsRevoked events in the outbox, oldest first.
func (e *env) revocations(t *testing.T) []*accountsv1.SessionsRevoked {
	t.Helper()
	rows, _ := e.pool.Query(context.Background(), "SELECT payload FROM outbox WHERE subject = 'accounts.session.revoked' ORDER BY seq")
	payloads, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	var evs []*accountsv1.SessionsRevoked
	for _, p := range payloads {
		ev := &accountsv1.SessionsRevoked{}
		if err := proto.Unmarshal(p, ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// wantRevoked checks that the latest revocation event ends the session
// sid, for why, and is remembered as long as the session's tokens live.
func (e *env) wantRevoked(t *testing.T, sid string, why accountsv1.RevocationReason, ttl time.Duration) {
	t.Helper()
	evs := e.revocations(t)
	if len(evs) == 0 {
		t.Fatalf("no SessionsRevoked event published; want one for %s (%v)", sid, why)
	}
	ev := evs[len(evs)-1]
	if !slices.Contains(ev.SessionIds, sid) || ev.Reason != why {
		t.Errorf("last SessionsRevoked = %v; want session %s, reason %v", ev, sid, why)
	}
	if until := time.Until(ev.ExpireTime.AsTime()); until < ttl-time.Minute || until > ttl {
		t.Errorf("revocation remembered for %v, want the token lifetime %v", until, ttl)
	}
}

// TestSessionRevocationsPublished: every way a session ends publishes the
// session id the access tokens carry, in the same transaction, so every
// service can refuse those tokens at once.
func TestSessionRevocationsPublished(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	owner := e.signUp(t, "owner@example.com")
	signIn := func(email string) *accountsv1.SignInResponse {
		t.Helper()
		resp, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: email, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	t.Run("sign-out", func(t *testing.T) {
		s := signIn("owner@example.com")
		// Signing out with a refresh token already rotated ends the session too.
		r, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s.RefreshToken})
		if err != nil {
			t.Fatal(err)
		}
		if sidOf(t, r.AccessToken) != sidOf(t, s.AccessToken) {
			t.Error("a refreshed access token is in another session")
		}
		if _, err := e.auth.SignOut(ctx, &accountsv1.SignOutRequest{RefreshToken: s.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		e.wantRevoked(t, sidOf(t, s.AccessToken), accountsv1.RevocationReason_REVOCATION_REASON_SIGN_OUT, e.cfg.AccessTokenTTL)
		if _, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: r.RefreshToken}); err == nil {
			t.Error("the session's current refresh token still works after sign-out")
		}
	})

	t.Run("refresh token reuse", func(t *testing.T) {
		s := signIn("owner@example.com")
		if _, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s.RefreshToken}); err != nil {
			t.Fatal(err)
		}
		n := len(e.revocations(t))
		if _, err := e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s.RefreshToken}); err == nil {
			t.Fatal("a used refresh token was accepted")
		}
		e.wantRevoked(t, sidOf(t, s.AccessToken), accountsv1.RevocationReason_REVOCATION_REASON_REFRESH_TOKEN_REUSE, e.cfg.AccessTokenTTL)
		// Presenting it again publishes nothing more: the session is over.
		e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: s.RefreshToken})
		if got := len(e.revocations(t)); got != n+1 {
			t.Errorf("%d revocations published, want %d", got, n+1)
		}
	})

	t.Run("API token revoked", func(t *testing.T) {
		asOwner := e.as(t, "owner@example.com")
		tok, err := e.tokens.CreateApiToken(asOwner, &accountsv1.CreateApiTokenRequest{Parent: owner.Organization.Name,
			ApiToken: &accountsv1.ApiToken{DisplayName: "robot", Role: accountsv1.Role_ROLE_ADMIN}})
		if err != nil {
			t.Fatal(err)
		}
		x, err := e.auth.ExchangeApiToken(ctx, &accountsv1.ExchangeApiTokenRequest{Secret: tok.Secret})
		if err != nil {
			t.Fatal(err)
		}
		id := tok.ApiToken.Name[strings.LastIndexByte(tok.ApiToken.Name, '/')+1:]
		if sid := sidOf(t, x.AccessToken); sid != id {
			t.Errorf("exchanged token's session %q, want the API token's id %q", sid, id)
		}
		if _, err := e.tokens.DeleteApiToken(asOwner, &accountsv1.DeleteApiTokenRequest{Name: tok.ApiToken.Name}); err != nil {
			t.Fatal(err)
		}
		e.wantRevoked(t, id, accountsv1.RevocationReason_REVOCATION_REASON_API_TOKEN_REVOKED, time.Minute)
	})

	t.Run("login released", func(t *testing.T) {
		vol, err := e.auth.SignUp(ctx, &accountsv1.SignUpRequest{Email: "volunteer@example.org", Password: password, DisplayName: "Vol",
			OrganizationDisplayName: "Hers", PhoneNumber: "+41791234567"})
		if err != nil {
			t.Fatal(err)
		}
		e.join(t, owner.Organization.Name, vol.User, "member")
		ev := &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: owner.Organization.Name + "/mailServices/" + uuid.NewString(), Domain: "example.org"}}
		if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
			return internal.ApplyMailServiceChanged(ctx, tx, mailboxesevents.MailServiceCreated, ev)
		}); err != nil {
			t.Fatal(err)
		}
		first, second := signIn("volunteer@example.org"), signIn("volunteer@example.org")
		_, err = e.orgs.ReleaseMemberLogin(e.as(t, "owner@example.com"), &accountsv1.ReleaseMemberLoginRequest{
			Name: owner.Organization.Name + "/members/" + strings.TrimPrefix(vol.User.Name, "users/"), Confirm: true})
		if err != nil {
			t.Fatal(err)
		}
		e.wantRevoked(t, sidOf(t, first.AccessToken), accountsv1.RevocationReason_REVOCATION_REASON_LOGIN_RELEASED, e.cfg.AccessTokenTTL)
		e.wantRevoked(t, sidOf(t, second.AccessToken), accountsv1.RevocationReason_REVOCATION_REASON_LOGIN_RELEASED, e.cfg.AccessTokenTTL)
	})

	t.Run("user deleted", func(t *testing.T) {
		e.signUp(t, "leaver@example.com")
		s := signIn("leaver@example.com")
		ctx := e.as(t, "leaver@example.com")
		if _, err := e.users.DeleteCurrentUser(ctx, &accountsv1.DeleteCurrentUserRequest{Password: password}); err != nil {
			t.Fatal(err)
		}
		e.wantRevoked(t, sidOf(t, s.AccessToken), accountsv1.RevocationReason_REVOCATION_REASON_USER_DELETED, e.cfg.AccessTokenTTL)
		if got := e.revocations(t); len(got[len(got)-1].SessionIds) != 2 {
			t.Errorf("user deletion revoked %v, want both of the leaver's sessions", got[len(got)-1].SessionIds)
		}
	})
}
