package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// exchanges counts the fake backend's ExchangeApiToken calls.
var exchanges atomic.Int32

// revoked is set when the API token "mpt_revocable" is revoked: from then
// on the fake backend refuses to exchange it and refuses the access token
// it exchanged before, as the services do once they learn of a revocation.
var revoked atomic.Bool

func (fakeAuth) ExchangeApiToken(_ context.Context, req *accountspb.ExchangeApiTokenRequest) (*accountspb.ExchangeApiTokenResponse, error) {
	exchanges.Add(1)
	switch {
	case req.GetSecret() == "mpt_good":
		return &accountspb.ExchangeApiTokenResponse{AccessToken: "jwt.for.good", ExpiresIn: 60}, nil
	case req.GetSecret() == "mpt_revocable" && !revoked.Load():
		return &accountspb.ExchangeApiTokenResponse{AccessToken: "jwt.for.revocable", ExpiresIn: 60}, nil
	}
	return nil, status.Error(codes.Unauthenticated, "invalid, expired or revoked API token")
}

func (fakeAuth) SignOut(ctx context.Context, _ *accountspb.SignOutRequest) (*accountspb.SignOutResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if revoked.Load() && slices.Contains(md.Get("authorization"), "Bearer jwt.for.revocable") {
		return nil, status.Error(codes.Unauthenticated, "invalid or expired access token")
	}
	return &accountspb.SignOutResponse{}, nil
}

// TestRevokedAPITokenCacheDropped: once a service refuses the access token
// the edge cached for an API token (it was revoked), the edge forgets it,
// and the next call exchanges again, which fails: a revoked token does not
// keep working at the edge until its cached exchange expires.
func TestRevokedAPITokenCacheDropped(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)
	signOut := func() int {
		r := httptest.NewRequest(http.MethodPost, "/v1/auth:signOut", strings.NewReader(`{}`))
		r.Header.Set("Authorization", "Bearer mpt_revocable")
		r.Header.Set("Content-Type", "application/json")
		return serve(h, r).Code
	}
	revoked.Store(false)
	exchanges.Store(0)
	for range 2 {
		if code := signOut(); code != http.StatusOK {
			t.Fatalf("call with a valid API token: %d", code)
		}
	}
	if n := exchanges.Load(); n != 1 {
		t.Fatalf("%d exchanges, want 1 (cached)", n)
	}
	revoked.Store(true)
	if code := signOut(); code != http.StatusUnauthorized {
		t.Errorf("the service refused the cached access token, the edge answered %d; want 401", code)
	}
	if code := signOut(); code != http.StatusUnauthorized {
		t.Errorf("next call with the revoked API token: %d, want 401", code)
	}
	if n := exchanges.Load(); n != 2 {
		t.Errorf("%d exchanges; want the refused exchange dropped and the token exchanged again", n)
	}
}

func TestAPITokenExchange(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)
	get := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
		r.Header.Set("Authorization", auth)
		return serve(h, r)
	}
	exchanges.Store(0)
	for range 3 {
		w := get("Bearer mpt_good")
		if diff := cmp.Diff([]string{"Bearer jwt.for.good"}, forwarded(t, w).Get("authorization")); diff != "" {
			t.Errorf("authorization the backend saw (-want +got):\n%s", diff)
		}
	}
	if n := exchanges.Load(); n != 1 {
		t.Errorf("%d exchanges for 3 requests with one token, want 1 (cached)", n)
	}

	w := get("Bearer mpt_revoked")
	var st rpcStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil || w.Code != http.StatusUnauthorized || st.Code != int(codes.Unauthenticated) {
		t.Errorf("revoked token: %d %s", w.Code, w.Body)
	}
	// A refused token is asked about again next time: it is not cached.
	get("Bearer mpt_revoked")
	if n := exchanges.Load(); n != 3 {
		t.Errorf("%d exchanges, want 3", n)
	}
	// Access tokens pass through untouched.
	if diff := cmp.Diff([]string{"Bearer a.b.c"}, forwarded(t, get("Bearer a.b.c")).Get("authorization")); diff != "" {
		t.Errorf("JWT passed through (-want +got):\n%s", diff)
	}
}
