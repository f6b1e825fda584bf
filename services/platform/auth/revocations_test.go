package auth_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestRevoke: once a session is revoked, its tokens are refused, whether
// the verifier had them cached or not; other sessions' tokens are not.
func TestRevoke(t *testing.T) {
	pub, priv := newKey(t)
	s := auth.NewSigner(priv, 15*time.Minute)
	now := time.Now()
	sign := func(user, sid string) string {
		t.Helper()
		tok, _, err := s.SignSession(user, sid, false, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	first, second := sign("u_1", "s_1"), sign("u_1", "s_1") // one session, two tokens
	other := sign("u_1", "s_2")
	api, _, err := s.SignAPIToken("t_1", "o_1", "admin", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(pub)
	for _, tok := range []string{first, other, api} {
		p, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("Verify before revocation: %v", err)
		}
		if p.SessionID == "" {
			t.Errorf("principal %+v has no session", p)
		}
	}

	v.Revoke("s_1", now.Add(15*time.Minute))
	v.Revoke("t_1", now.Add(time.Minute))
	for name, tok := range map[string]string{"cached token": first, "token never seen": second, "API token": api} {
		if p, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) || p != (auth.Principal{}) {
			t.Errorf("%s of a revoked session: Verify = %+v, %v; want ErrInvalidToken", name, p, err)
		}
	}
	if _, err := v.Verify(other); err != nil {
		t.Errorf("another session's token: %v", err)
	}
	// A verifier that learns of the revocation first refuses the token too.
	fresh := auth.NewVerifier(pub)
	fresh.Revoke("s_1", now.Add(15*time.Minute))
	if _, err := fresh.Verify(first); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify after an earlier revocation = %v, want ErrInvalidToken", err)
	}
	// A token without a session (issued by an older accounts service) is
	// not refused for it.
	old, _, _ := s.Sign("u_1", now)
	if _, err := v.Verify(old); err != nil {
		t.Errorf("token without a session: %v", err)
	}
}

// TestRevokeForgets: a revocation is remembered until the session's last
// token has expired (plus the clock-skew leeway), then forgotten, so the
// set stays as small as the revocations of one token lifetime.
func TestRevokeForgets(t *testing.T) {
	pub, priv := newKey(t)
	v := auth.NewVerifier(pub)
	now := time.Now()
	auth.SetClock(v, func() time.Time { return now })
	v.Revoke("already over", now.Add(-time.Minute))
	if n := v.Revoked(); n != 0 {
		t.Errorf("a revocation whose tokens all expired is kept: %d remembered", n)
	}
	const many = 5000
	for i := range many {
		v.Revoke(fmt.Sprintf("s_%d", i), now.Add(time.Minute))
	}
	if n := v.Revoked(); n != many {
		t.Fatalf("%d remembered, want %d", n, many)
	}
	tok, _, _ := auth.NewSigner(priv, time.Minute).SignSession("u_1", "s_7", false, now)
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("revoked session's token: %v", err)
	}

	// Within the leeway the revocations stay; past it they go as new ones come.
	now = now.Add(time.Minute + 4*time.Second)
	v.Revoke("late", now.Add(time.Minute))
	if n := v.Revoked(); n != many+1 {
		t.Errorf("%d remembered within the leeway, want %d", n, many+1)
	}
	now = now.Add(2 * time.Second)
	for i := range 2*many + 1024 {
		v.Revoke(fmt.Sprintf("new_%d", i), now.Add(time.Minute))
	}
	if n, max := v.Revoked(), 2*many+1024+1; n > max {
		t.Errorf("%d remembered; the %d expired ones were not forgotten", n, many)
	}
}

func TestApplyRevocation(t *testing.T) {
	pub, priv := newKey(t)
	v := auth.NewVerifier(pub)
	now := time.Now()
	tok, _, _ := auth.NewSigner(priv, time.Minute).SignSession("u_1", "s_1", true, now)
	if p, err := v.Verify(tok); err != nil || !p.LoginPending || p.SessionID != "s_1" {
		t.Fatalf("Verify = %+v, %v", p, err)
	}
	payload, _ := proto.Marshal(&accountsv1.SessionsRevoked{SessionIds: []string{"s_0", "s_1"}, ExpireTime: timestamppb.New(now.Add(time.Minute)),
		Reason: accountsv1.RevocationReason_REVOCATION_REASON_SIGN_OUT})
	if err := v.ApplyRevocation(payload); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Verify after the event = %v, want ErrInvalidToken", err)
	}
	if err := v.ApplyRevocation([]byte("not a message")); err == nil {
		t.Error("a bad payload was applied")
	}
}

// BenchmarkVerify is the cost of a call's token check: a token verified
// before (the common case), with 10,000 sessions revoked.
func BenchmarkVerify(b *testing.B) {
	pub, priv := newKey(b)
	v := auth.NewVerifier(pub)
	now := time.Now()
	for i := range 10000 {
		v.Revoke(fmt.Sprintf("s_%d", i), now.Add(time.Hour))
	}
	tok, _, _ := auth.NewSigner(priv, time.Hour).SignSession("u_1", "s_live", false, now)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
