package accounts

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/passwords"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// newTestServer returns a server over a fresh database with two hash
// turns for sign-in (and so one for unauthenticated routes), each waited
// for briefly.
func newTestServer(t *testing.T) *Server {
	t.Helper()
	pool := pgtest.NewPool(t, "accounts", migrations.FS)
	_, priv, _ := ed25519.GenerateKey(nil)
	s := NewServer(NewStore(pool), auth.NewSigner(priv, 15*time.Minute), time.Hour,
		Limits{PerEmail: 10, PerEmailAll: 100, PerClient: 100, Window: time.Minute, PublicPerClient: 100, InvitationsPerOrganization: 200, InvitationsPerRecipient: 5},
		2, "https://app.mailplane.test", slog.New(slog.DiscardHandler))
	s.passwords.wait, s.anonPasswords.wait = 50*time.Millisecond, 50*time.Millisecond
	return s
}

// reasonOf is err's machine-readable reason, if it has one.
func reasonOf(err error) string {
	var e *errs.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// occupy takes every turn of w until the test ends.
func occupy(t *testing.T, w *passwordWork) {
	t.Helper()
	for range cap(w.turns) {
		w.turns <- struct{}{}
	}
	t.Cleanup(func() {
		for range cap(w.turns) {
			<-w.turns
		}
	})
}

// TestSetupTokenCheckedBeforeHash: with every hash turn taken, a garbage
// setup link is still refused as such: it is looked up before any password
// is hashed.
func TestSetupTokenCheckedBeforeHash(t *testing.T) {
	s := newTestServer(t)
	occupy(t, s.anonPasswords)
	occupy(t, s.passwords)
	_, err := s.SetInitialPassword(context.Background(), &accountsv1.SetInitialPasswordRequest{Token: "garbage", Password: "a long enough password"})
	if reasonOf(err) != "SETUP_LINK_INVALID" {
		t.Errorf("garbage token while hashes are busy: %v, want SETUP_LINK_INVALID", err)
	}
}

// TestSignInKeepsItsHashTurns: with every hash turn of unauthenticated
// routes taken (a flood of sign-ups), sign-in still gets one.
func TestSignInKeepsItsHashTurns(t *testing.T) {
	s := newTestServer(t)
	hash, err := passwords.Hash("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.pool.Exec(context.Background(), insertUser, uuid.Must(uuid.NewV7()), "someone@example.com", "Someone", hash, "en", ""); err != nil {
		t.Fatal(err)
	}
	occupy(t, s.anonPasswords)
	if _, err := s.SignIn(context.Background(), &accountsv1.SignInRequest{Email: "someone@example.com", Password: "a long enough password"}); err != nil {
		t.Errorf("sign in while sign-ups hold their hash turns: %v", err)
	}
	_, err = s.SignUp(context.Background(), &accountsv1.SignUpRequest{Email: "new@example.com", Password: "a long enough password", DisplayName: "New", OrganizationDisplayName: "New"})
	if reasonOf(err) != "PASSWORD_CHECKS_BUSY" {
		t.Errorf("sign-up while its turns are taken: %v, want PASSWORD_CHECKS_BUSY", err)
	}
}

// TestLimitCountersPruned: counters whose window is over do not pile up
// (one per client address ever seen): starting a counter deletes them.
func TestLimitCountersPruned(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	if _, err := s.store.pool.Exec(ctx, "INSERT INTO sign_in_attempts SELECT 'client:10.0.0.' || i, now() - interval '1 hour', 3 FROM generate_series(1, 50) i"); err != nil {
		t.Fatal(err)
	}
	if err := s.publicLimit(ctx, "signUp"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.store.pool.QueryRow(ctx, "SELECT count(*) FROM sign_in_attempts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d counters, want the live one", n)
	}
}

// TestSignUpTakenEmailBeforeHash: a taken email is refused as such while
// every hash turn is taken.
func TestSignUpTakenEmailBeforeHash(t *testing.T) {
	s := newTestServer(t)
	if _, err := s.store.pool.Exec(context.Background(), insertUser, uuid.Must(uuid.NewV7()), "taken@example.com", "Taken", "", "en", ""); err != nil {
		t.Fatal(err)
	}
	occupy(t, s.anonPasswords)
	occupy(t, s.passwords)
	_, err := s.SignUp(context.Background(), &accountsv1.SignUpRequest{Email: "taken@example.com", Password: "a long enough password", DisplayName: "T", OrganizationDisplayName: "T"})
	if reasonOf(err) != "EMAIL_TAKEN" {
		t.Errorf("taken email while hashes are busy: %v, want EMAIL_TAKEN", err)
	}
}
