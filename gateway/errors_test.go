package gateway

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestStatusAgreesWithCode: for every kind of error the edge answers, the
// body's code is the one whose HTTP status it is answered with, except for
// the statuses no gRPC code has (405, 413, 415), whose code is documented
// and whose ErrorInfo names the status.
func TestStatusAgreesWithCode(t *testing.T) {
	bulkAddr, _ := startBulk(t)
	h := newEdge(t, Config{AccountsAddr: startEchoes(t), Backends: map[string]string{"mailboxes": bulkAddr}}, nil)
	// A port nothing listens on.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := lis.Addr().String()
	lis.Close()
	dead := newEdge(t, Config{AccountsAddr: deadAddr}, nil)

	exceptions := map[int]struct {
		code   codes.Code
		reason string
	}{
		http.StatusMethodNotAllowed:      {codes.Unimplemented, "METHOD_NOT_ALLOWED"},
		http.StatusRequestEntityTooLarge: {codes.InvalidArgument, "REQUEST_TOO_LARGE"},
		http.StatusUnsupportedMediaType:  {codes.InvalidArgument, "UNSUPPORTED_MEDIA_TYPE"},
	}
	const bulk = "/v1/organizations/acme/mailServices/ms1/addresses:bulkCreate"
	signIn := func(email string) string { return `{"email":"` + email + `","password":"x"}` }

	tests := []struct {
		name        string
		h           http.Handler
		method      string
		path        string
		contentType string
		body        string
		header      map[string]string
		wantStatus  int
	}{
		{name: "unknown route", method: "GET", path: "/v1/nothing", wantStatus: 404},
		{name: "wrong method", method: "DELETE", path: "/v1/users/me", wantStatus: 405},
		{name: "not JSON", method: "POST", path: "/v1/auth:signIn", contentType: "text/plain", body: signIn("a@example.com"), wantStatus: 415},
		{name: "too large", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: strings.Repeat(" ", maxBodyBytes+1), wantStatus: 413},
		{name: "trailing text", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: "{}x", wantStatus: 400},
		{name: "unknown field", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: `{"x":1}`, wantStatus: 400},
		{name: "bad idempotency key", method: "GET", path: "/v1/users/me", header: map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}, wantStatus: 400},
		{name: "backend: field", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: `{}`, wantStatus: 400},
		{name: "backend: unauthenticated", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: signIn("wrong@example.com"), wantStatus: 401},
		{name: "backend: rate limited", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: signIn("limited@example.com"), wantStatus: 429},
		{name: "backend: unavailable", method: "POST", path: "/v1/auth:signIn", contentType: "application/json", body: signIn("down@example.com"), wantStatus: 503},
		{name: "API token refused", method: "GET", path: "/v1/users/me", header: map[string]string{"Authorization": "Bearer mpt_secret"}, wantStatus: 401},
		{name: "backend: unimplemented", method: "GET", path: "/v1/organizations/acme/auditEntries", wantStatus: 501},
		{name: "backend unreachable", h: dead, method: "GET", path: "/v1/users/me", wantStatus: 503},
		{name: "bulk: not CSV", method: "POST", path: bulk, contentType: "application/xml", body: "<a/>", wantStatus: 415},
		{name: "bulk: too large", method: "POST", path: bulk, contentType: "text/csv", body: strings.Repeat("a\n", maxBulkBytes/2+1), wantStatus: 413},
		{name: "bulk: bad JSON form", method: "POST", path: bulk, contentType: "application/json", body: `{"csv":1}`, wantStatus: 400},
		{name: "bulk: refused file", method: "POST", path: bulk, contentType: "text/csv", body: "local_part\nbad name\n", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h
			if tt.h != nil {
				h = tt.h
			}
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := serve(h, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			var st rpcStatus
			if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
				t.Fatalf("decode %s: %v", w.Body, err)
			}
			ex, ok := exceptions[w.Code]
			if !ok {
				if got := runtime.HTTPStatusFromCode(codes.Code(st.Code)); got != w.Code {
					t.Errorf("status %d with code %d, whose status is %d", w.Code, st.Code, got)
				}
				return
			}
			var reason string
			for _, d := range st.Details {
				if d["@type"] == "type.googleapis.com/google.rpc.ErrorInfo" {
					reason, _ = d["reason"].(string)
				}
			}
			if codes.Code(st.Code) != ex.code || reason != ex.reason {
				t.Errorf("status %d with code %d, reason %q; want code %d, reason %q", w.Code, st.Code, reason, ex.code, ex.reason)
			}
		})
	}
}

// TestUnavailable: a backend that cannot be reached, or that answers
// UNAVAILABLE (its database is out of reach), is a 503 with Retry-After, so
// that a client knows to come back; a RetryInfo sets the delay, and a
// backend's own message with details is kept.
func TestUnavailable(t *testing.T) {
	addr, stop := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	tests := []struct {
		email          string
		wantRetryAfter string
		wantMessage    string
	}{
		{"down@example.com", "2", "service unavailable; try again later"},
		{"busy@example.com", "5", "password checks are busy"},
	}
	for _, tt := range tests {
		t.Run(tt.email, func(t *testing.T) {
			w := serve(h, request(http.MethodPost, "/v1/auth:signIn", "application/json", `{"email":"`+tt.email+`","password":"x"}`))
			var st rpcStatus
			json.Unmarshal(w.Body.Bytes(), &st)
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != tt.wantRetryAfter || st.Message != tt.wantMessage {
				t.Errorf("got %d, Retry-After %q, %s; want 503, %q, %q", w.Code, w.Header().Get("Retry-After"), w.Body, tt.wantRetryAfter, tt.wantMessage)
			}
		})
	}

	stop()
	w := serve(h, httptest.NewRequest(http.MethodGet, "/v1/users/me", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" {
		t.Errorf("backend stopped: %d, Retry-After %q; want 503, 2", w.Code, w.Header().Get("Retry-After"))
	}
}

// TestReadyNotServing: a backend whose health says NOT_SERVING (its
// database is out of reach) takes the edge out of rotation until it serves
// again; liveness never asks the backends.
func TestReadyNotServing(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	for _, svc := range Services() {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	h := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)

	ready := func(wantStatus int, want readiness) {
		t.Helper()
		w := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var got readiness
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("decode %s: %v", w.Body, err)
		}
		if w.Code != wantStatus || !cmp.Equal(want, got) {
			t.Errorf("GET /readyz = %d %s, want %d %+v", w.Code, w.Body, wantStatus, want)
		}
		if w := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil)); w.Code != http.StatusOK {
			t.Errorf("GET /healthz = %d, want 200", w.Code)
		}
	}
	ready(http.StatusOK, readiness{Ready: true})
	for _, svc := range Services() {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	failing := map[string]string{}
	for _, svc := range Services() {
		failing[svc] = "NOT_SERVING"
	}
	ready(http.StatusServiceUnavailable, readiness{Failing: failing})
	for _, svc := range Services() {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	ready(http.StatusOK, readiness{Ready: true})
}

// TestIdempotencyKey: a valid Idempotency-Key reaches the backends as
// "idempotency-key"; anything else is a 400 naming the header, and the
// metadata cannot be set another way.
func TestIdempotencyKey(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	tests := []struct {
		name   string
		header map[string][]string
		want   []string // forwarded; nil: none
		bad    bool
	}{
		{name: "none"},
		{name: "valid", header: map[string][]string{"Idempotency-Key": {"8e03978e-40d5-43e8-bc93-6894a57f9324"}}, want: []string{"8e03978e-40d5-43e8-bc93-6894a57f9324"}},
		{name: "longest", header: map[string][]string{"Idempotency-Key": {strings.Repeat("k", 128)}}, want: []string{strings.Repeat("k", 128)}},
		{name: "too long", header: map[string][]string{"Idempotency-Key": {strings.Repeat("k", 129)}}, bad: true},
		{name: "empty", header: map[string][]string{"Idempotency-Key": {""}}, bad: true},
		{name: "non-ASCII", header: map[string][]string{"Idempotency-Key": {"ключ"}}, bad: true},
		{name: "two", header: map[string][]string{"Idempotency-Key": {"a", "b"}}, bad: true},
		{name: "as grpc metadata header", header: map[string][]string{"Grpc-Metadata-Idempotency-Key": {"a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			for k, vs := range tt.header {
				r.Header[k] = vs
			}
			w := serve(h, r)
			if tt.bad {
				if field, _ := violation(t, w); w.Code != http.StatusBadRequest || field != "Idempotency-Key" {
					t.Errorf("got %d %s, want 400 naming Idempotency-Key", w.Code, w.Body)
				}
				return
			}
			if diff := cmp.Diff(tt.want, forwarded(t, w).Get("idempotency-key")); diff != "" {
				t.Errorf("idempotency-key metadata (-want +got):\n%s", diff)
			}
		})
	}
}
