package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// exchanges counts the fake backend's ExchangeApiToken calls.
var exchanges atomic.Int32

func (fakeAuth) ExchangeApiToken(_ context.Context, req *accountspb.ExchangeApiTokenRequest) (*accountspb.ExchangeApiTokenResponse, error) {
	exchanges.Add(1)
	if req.GetSecret() == "mpt_good" {
		return &accountspb.ExchangeApiTokenResponse{AccessToken: "jwt.for.good", ExpiresIn: 60}, nil
	}
	return nil, status.Error(codes.Unauthenticated, "invalid, expired or revoked API token")
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
