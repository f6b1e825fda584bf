package accounts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
)

// Sessions: signing up, in and out, and refreshing access tokens.

// SignUp creates a user, their organization, and makes them its owner.
func (s *Server) SignUp(ctx context.Context, req *accountsv1.SignUpRequest) (*accountsv1.SignUpResponse, error) {
	lang := req.GetLanguage()
	if lang == "" {
		lang = languages[0]
	}
	if supportedLanguage(lang) != lang {
		return nil, errs.Field("language", "must be one of en, fr, de, it, es")
	}
	if err := s.publicLimit(ctx, "signUp"); err != nil {
		return nil, err
	}
	email := normalizeEmail(req.GetEmail())
	// A taken email is refused before the costly hash (the answer says it
	// is taken either way).
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		return nil, errEmailTaken
	} else if !errs.Is(err, errs.NotFound) {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	hash, err := s.anonPasswords.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	u := &User{ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: strings.TrimSpace(req.GetDisplayName()),
		PasswordHash: hash, Language: lang, PhoneNumber: req.GetPhoneNumber()}
	o := &Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: strings.TrimSpace(req.GetOrganizationDisplayName())}
	if err := s.store.CreateUserWithOrganization(ctx, u, o, grpcserver.ClientAddr(ctx)); err != nil {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	return &accountsv1.SignUpResponse{User: userProto(u), Organization: organizationProto(o)}, nil
}

var errBadCredentials = errs.E(errs.Unauthenticated, "wrong email or password").WithReason("INVALID_CREDENTIALS")

// SignIn checks a password and opens a session. Unknown email and wrong
// password get the same answer, after the same work.
func (s *Server) SignIn(ctx context.Context, req *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
	email := normalizeEmail(req.GetEmail())
	if email == "" {
		email = strings.ToLower(strings.TrimSpace(req.GetLogin()))
	}
	if email == "" {
		return nil, errs.Field("email", "is required")
	}
	// Guesses are bounded per client address, and per email from each
	// address, so an outsider cannot lock a user out by failing from
	// elsewhere. All addresses together also have a bound per email, against
	// guessing from many addresses; it does not apply to an address the user
	// signed in from before. See docs/accounts.md.
	client := grpcserver.ClientAddr(ctx)
	if err := s.limit(ctx, "client:"+client, s.limits.PerClient); err != nil {
		return nil, err
	}
	pair := "email:" + email + " client:" + client
	if err := s.limit(ctx, pair, s.limits.PerEmail); err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if limited := s.limit(ctx, "email:"+email, s.limits.PerEmailAll); limited != nil {
		if !errs.Is(limited, errs.ResourceExhausted) || u == nil {
			return nil, limited
		}
		known, kerr := s.store.KnownClient(ctx, u.ID, client)
		if kerr != nil {
			return nil, fmt.Errorf("sign in: %w", kerr)
		}
		if !known {
			return nil, limited
		}
	}
	hash := dummyHash()
	switch {
	case err == nil && u.PasswordHash == "":
		// Created by an administrator, no password chosen yet: refused
		// like a wrong password, after the same work.
		u = nil
	case err == nil:
		hash = u.PasswordHash
	case !errs.Is(err, errs.NotFound):
		return nil, fmt.Errorf("sign in: %w", err)
	}
	ok, err := s.passwords.check(ctx, hash, req.GetPassword())
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if !ok || u == nil {
		return nil, errBadCredentials
	}
	if err := s.store.ResetSignIn(ctx, pair); err != nil {
		return nil, err
	}
	if err := s.store.RememberClient(ctx, u.ID, client); err != nil {
		return nil, err
	}
	refresh, refreshHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	session, err := s.store.CreateRefreshToken(ctx, u.ID, refreshHash, time.Now().Add(s.refreshTTL))
	if err != nil {
		return nil, err
	}
	access, err := s.accessToken(u, session.String())
	if err != nil {
		return nil, err
	}
	return &accountsv1.SignInResponse{AccessToken: access, RefreshToken: refresh, ExpiresIn: int32(s.signer.TTL().Seconds()), TokenType: "Bearer",
		LoginEmailRequired: u.LoginPending}, nil
}

// accessToken signs u's access token in session sid: a full one, or, while
// u must choose a new login email, one that allows only that.
func (s *Server) accessToken(u *User, sid string) (string, error) {
	tok, _, err := s.signer.SignSession(u.ID.String(), sid, u.LoginPending, time.Now())
	return tok, err
}

// sessionsEnd is when the access tokens issued until now have all expired:
// how long a revocation made now must be remembered.
func (s *Server) sessionsEnd() time.Time { return time.Now().Add(s.signer.TTL()) }

// Refresh rotates a refresh token and issues a new access token.
func (s *Server) Refresh(ctx context.Context, req *accountsv1.RefreshRequest) (*accountsv1.RefreshResponse, error) {
	if err := s.publicLimit(ctx, "refresh"); err != nil {
		return nil, err
	}
	refresh, refreshHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	id, session, err := s.store.RotateRefreshToken(ctx, hashRefreshToken(req.GetRefreshToken()), refreshHash, time.Now().Add(s.refreshTTL), s.sessionsEnd())
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	access, err := s.accessToken(u, session.String())
	if err != nil {
		return nil, err
	}
	return &accountsv1.RefreshResponse{AccessToken: access, RefreshToken: refresh, ExpiresIn: int32(s.signer.TTL().Seconds()), TokenType: "Bearer"}, nil
}

// SignOut ends the session of a refresh token; its access tokens stop
// working everywhere at once.
func (s *Server) SignOut(ctx context.Context, req *accountsv1.SignOutRequest) (*accountsv1.SignOutResponse, error) {
	if err := s.publicLimit(ctx, "signOut"); err != nil {
		return nil, err
	}
	if err := s.store.RevokeRefreshToken(ctx, hashRefreshToken(req.GetRefreshToken()), s.sessionsEnd()); err != nil {
		return nil, err
	}
	return &accountsv1.SignOutResponse{}, nil
}
