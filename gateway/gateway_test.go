package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
)

// fakeUsers answers GetCurrentUser with the metadata it received, one
// membership per value (name: key, displayName: value), so that tests can
// see what the edge forwarded.
type fakeUsers struct {
	accountspb.UnimplementedUserServiceServer
}

func (fakeUsers) GetCurrentUser(ctx context.Context, _ *accountspb.GetCurrentUserRequest) (*accountspb.GetCurrentUserResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	resp := &accountspb.GetCurrentUserResponse{}
	for k, vs := range md {
		for _, v := range vs {
			resp.Memberships = append(resp.Memberships, &accountspb.Member{Name: k, DisplayName: v})
		}
	}
	return resp, nil
}

// fakeAuth fails SignIn in the way the email asks for.
type fakeAuth struct {
	accountspb.UnimplementedAuthServiceServer
}

func (fakeAuth) SignIn(_ context.Context, req *accountspb.SignInRequest) (*accountspb.SignInResponse, error) {
	switch req.GetEmail() {
	case "limited@example.com":
		return nil, withDetails(codes.ResourceExhausted, "too many sign-in attempts", &errdetails.RetryInfo{RetryDelay: durationpb.New(30 * time.Second)})
	case "soon@example.com":
		return nil, withDetails(codes.ResourceExhausted, "too many sign-in attempts", &errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)})
	case "":
		return nil, withDetails(codes.InvalidArgument, "invalid request", &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "email", Description: "is required"}},
		})
	case "wrong@example.com":
		return nil, status.Error(codes.Unauthenticated, "wrong email or password")
	case "down@example.com":
		// As a service answers when its database is out of reach.
		return nil, status.Error(codes.Unavailable, "database unavailable")
	case "busy@example.com":
		st, _ := status.New(codes.Unavailable, "password checks are busy").WithDetails(
			&errdetails.ErrorInfo{Reason: "PASSWORD_CHECKS_BUSY", Domain: "mailplane"},
			&errdetails.RetryInfo{RetryDelay: durationpb.New(5 * time.Second)})
		return nil, st.Err()
	}
	return &accountspb.SignInResponse{AccessToken: "access", TokenType: "Bearer"}, nil
}

func withDetails(c codes.Code, msg string, detail protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(detail)
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// startBackend serves the fakes and gRPC health on a loopback port until the
// test ends or stop is called.
func startBackend(t *testing.T) (addr string, stop func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	accountspb.RegisterUserServiceServer(srv, fakeUsers{})
	accountspb.RegisterAuthServiceServer(srv, fakeAuth{})
	hs := health.NewServer()
	for _, svc := range Services() {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), srv.Stop
}

// TestReadyFollowsServices checks that the edge is not ready while a
// backend serves but says its service cannot (its database is down): the
// whole server ("") still answers SERVING then.
func TestReadyFollowsServices(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	for _, svc := range Services() {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
	hs.SetServingStatus("accounts", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	h := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)

	w := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if got, want := strings.TrimSpace(w.Body.String()), `{"ready":false,"failing":{"accounts":"NOT_SERVING"}}`; w.Code != http.StatusServiceUnavailable || got != want {
		t.Errorf("GET /readyz with accounts' database down = %d %s, want 503 %s", w.Code, got, want)
	}
	hs.SetServingStatus("accounts", healthpb.HealthCheckResponse_SERVING)
	if w := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil)); w.Code != http.StatusOK {
		t.Errorf("GET /readyz once accounts serves again = %d %s, want 200", w.Code, w.Body)
	}
}

// newEdge builds the edge in front of backend with cfg.
func newEdge(t *testing.T, cfg Config, log *slog.Logger) http.Handler {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, closeFn, err := New(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := closeFn(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// forwarded returns the metadata fakeUsers echoed in a GetCurrentUser answer.
func forwarded(t *testing.T, w *httptest.ResponseRecorder) metadata.MD {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	var body struct {
		Memberships []struct {
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"memberships"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	md := metadata.MD{}
	for _, m := range body.Memberships {
		md.Append(m.Name, m.DisplayName)
	}
	return md
}

func TestForwardsAuthorization(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	md := forwarded(t, serve(h, r))

	if diff := cmp.Diff([]string{"Bearer abc.def"}, md.Get("authorization")); diff != "" {
		t.Errorf("authorization metadata (-want +got):\n%s", diff)
	}
}

// TestForwardsOnlyWhatServicesRead: the services get the token, the
// client's address and the request id, never the browser's other headers
// (its cookies least of all), nor metadata a client names itself.
func TestForwardsOnlyWhatServicesRead(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	r.Header.Set("Cookie", "session=secret-cookie")
	r.Header.Set("User-Agent", "Mozilla/5.0 browser")
	r.Header.Set("Accept-Language", "fr")
	r.Header.Set("Grpc-Metadata-Role", "admin")
	md := forwarded(t, serve(h, r))

	for k, vs := range md {
		if strings.HasPrefix(k, "grpcgateway-") || k == "cookie" || k == "role" {
			t.Errorf("forwarded %s: %q", k, vs)
		}
		for _, v := range vs {
			if strings.Contains(v, "secret-cookie") || strings.Contains(v, "browser") {
				t.Errorf("forwarded %s: %q", k, v)
			}
		}
	}
	for _, k := range []string{"authorization", "x-forwarded-for", "x-request-id"} {
		if len(md.Get(k)) != 1 {
			t.Errorf("%s forwarded %q, want one value", k, md.Get(k))
		}
	}
}

// rpcStatus is the JSON shape of google.rpc.Status.
type rpcStatus struct {
	Code    int              `json:"code"`
	Message string           `json:"message"`
	Details []map[string]any `json:"details"`
}

func TestErrors(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	tests := []struct {
		name           string
		method, path   string
		body           string
		wantStatus     int
		wantRetryAfter string
		want           rpcStatus
	}{
		{
			name:   "rate limited",
			method: http.MethodPost, path: "/v1/auth:signIn",
			body:       `{"email":"limited@example.com","password":"x"}`,
			wantStatus: http.StatusTooManyRequests, wantRetryAfter: "30",
			want: rpcStatus{Code: 8, Message: "too many sign-in attempts", Details: []map[string]any{
				{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"},
			}},
		},
		{
			name:   "retry delay rounded up",
			method: http.MethodPost, path: "/v1/auth:signIn",
			body:       `{"email":"soon@example.com","password":"x"}`,
			wantStatus: http.StatusTooManyRequests, wantRetryAfter: "2",
			want: rpcStatus{Code: 8, Message: "too many sign-in attempts", Details: []map[string]any{
				{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.500s"},
			}},
		},
		{
			name:   "field violation",
			method: http.MethodPost, path: "/v1/auth:signIn",
			body:       `{"password":"x"}`,
			wantStatus: http.StatusBadRequest,
			want: rpcStatus{Code: 3, Message: "invalid request", Details: []map[string]any{{
				"@type":           "type.googleapis.com/google.rpc.BadRequest",
				"fieldViolations": []any{map[string]any{"field": "email", "description": "is required"}},
			}}},
		},
		{
			name:   "unauthenticated",
			method: http.MethodPost, path: "/v1/auth:signIn",
			body:       `{"email":"wrong@example.com","password":"x"}`,
			wantStatus: http.StatusUnauthorized,
			want:       rpcStatus{Code: 16, Message: "wrong email or password"},
		},
		{
			name:   "unknown route",
			method: http.MethodGet, path: "/v1/nothing/here",
			wantStatus: http.StatusNotFound,
			want:       rpcStatus{Code: 5, Message: "Not Found"},
		},
		{
			name:   "wrong method",
			method: http.MethodDelete, path: "/v1/users/me",
			wantStatus: http.StatusMethodNotAllowed,
			want: rpcStatus{Code: 12, Message: "Method Not Allowed", Details: []map[string]any{
				{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "METHOD_NOT_ALLOWED", "domain": "mailplane"},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			w := serve(h, r)

			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if got, want := w.Header().Get("WWW-Authenticate"), tt.wantStatus == http.StatusUnauthorized; (got == `Bearer realm="mailplane"`) != want {
				t.Errorf("WWW-Authenticate = %q on a %d", got, w.Code)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var got rpcStatus
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("decode %s: %v", w.Body, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	tests := []struct {
		name   string
		sent   string // "" sends no header
		echoed bool
	}{
		{name: "absent"},
		{name: "valid", sent: "abc-123.X_y", echoed: true},
		{name: "longest", sent: strings.Repeat("a", 128), echoed: true},
		{name: "too long", sent: strings.Repeat("a", 129)},
		{name: "bad characters", sent: "abc 123\"<x>"},
		{name: "non-ASCII", sent: "ïd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			if tt.sent != "" {
				r.Header.Set("X-Request-Id", tt.sent)
			}
			w := serve(h, r)
			got := w.Header().Get("X-Request-Id")

			if !validRequestID(got) {
				t.Errorf("X-Request-Id = %q, not a valid id", got)
			}
			if echoed := got == tt.sent; echoed != tt.echoed {
				t.Errorf("X-Request-Id = %q for %q sent; want echoed = %v", got, tt.sent, tt.echoed)
			}
			if diff := cmp.Diff([]string{got}, forwarded(t, w).Get("x-request-id")); diff != "" {
				t.Errorf("x-request-id metadata (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unique", func(t *testing.T) {
		a := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil)).Header().Get("X-Request-Id")
		b := serve(h, httptest.NewRequest(http.MethodGet, "/healthz", nil)).Header().Get("X-Request-Id")
		if a == b {
			t.Errorf("two requests got the same id %q", a)
		}
	})
}

func TestForwardedFor(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	tests := []struct {
		name       string
		remoteAddr string
		header     map[string][]string
		want       string
	}{
		{name: "direct", remoteAddr: "192.0.2.1:1234", want: "192.0.2.1"},
		{
			name:       "spoofed",
			remoteAddr: "192.0.2.1:1234",
			header:     map[string][]string{"X-Forwarded-For": {"6.6.6.6"}},
			want:       "6.6.6.6, 192.0.2.1",
		},
		{
			name:       "several headers",
			remoteAddr: "192.0.2.1:1234",
			header:     map[string][]string{"X-Forwarded-For": {"6.6.6.6, 7.7.7.7", "8.8.8.8"}},
			want:       "6.6.6.6, 7.7.7.7, 8.8.8.8, 192.0.2.1",
		},
		{
			name:       "as grpc metadata header",
			remoteAddr: "192.0.2.1:1234",
			header:     map[string][]string{"Grpc-Metadata-X-Forwarded-For": {"6.6.6.6"}},
			want:       "192.0.2.1",
		},
		{
			name:       "IPv6 peer",
			remoteAddr: "[2001:db8::1]:1234",
			header:     map[string][]string{"X-Forwarded-For": {"6.6.6.6"}},
			want:       "6.6.6.6, 2001:db8::1",
		},
		{
			// grpc-gateway alone would forward 6.6.6.6 as the last hop here.
			name:       "peer without port",
			remoteAddr: "192.0.2.7",
			header:     map[string][]string{"X-Forwarded-For": {"6.6.6.6"}},
			want:       "6.6.6.6, 192.0.2.7",
		},
	}
	trustedEdge := newEdge(t, Config{AccountsAddr: addr, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, nil)
	tests = append(tests, []struct {
		name       string
		remoteAddr string
		header     map[string][]string
		want       string
	}{
		{
			name:       "behind a trusted ingress",
			remoteAddr: "10.1.2.3:1234",
			header:     map[string][]string{"X-Forwarded-For": {"203.0.113.9"}},
			want:       "203.0.113.9",
		},
		{
			name:       "client spoofs behind two trusted proxies",
			remoteAddr: "10.1.2.3:1234",
			header:     map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9, 10.9.9.9"}},
			want:       "6.6.6.6, 203.0.113.9",
		},
		{
			name:       "untrusted peer claiming a trusted hop",
			remoteAddr: "192.0.2.1:1234",
			header:     map[string][]string{"X-Forwarded-For": {"10.1.1.1"}},
			want:       "10.1.1.1, 192.0.2.1",
		},
		{
			name:       "only trusted hops",
			remoteAddr: "10.1.2.3:1234",
			want:       "10.1.2.3",
		},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h
			if strings.Contains(tt.name, "trusted") {
				h = trustedEdge
			}
			r := httptest.NewRequest(http.MethodGet, "/v1/users/me", nil)
			r.RemoteAddr = tt.remoteAddr
			for k, vs := range tt.header {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			got := forwarded(t, serve(h, r)).Get("x-forwarded-for")
			if diff := cmp.Diff([]string{tt.want}, got); diff != "" {
				t.Errorf("x-forwarded-for metadata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCORS(t *testing.T) {
	addr, _ := startBackend(t)
	const app = "https://app.example.com"

	// corsHeaders are the response headers CORS is about.
	corsHeaders := func(w *httptest.ResponseRecorder) map[string]string {
		got := map[string]string{}
		for k, vs := range w.Header() {
			if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
				got[k] = strings.Join(vs, ", ")
			}
		}
		return got
	}
	preflight := func(origin string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, "/v1/auth:signIn", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		return r
	}
	get := func(origin string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Header.Set("Origin", origin)
		return r
	}
	allowedPreflight := map[string]string{
		"Access-Control-Allow-Origin":  app,
		"Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
		"Access-Control-Allow-Headers": "Authorization, Content-Type, Idempotency-Key, X-Request-Id",
		"Access-Control-Max-Age":       "7200",
		"Vary":                         "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
	}

	tests := []struct {
		name       string
		origins    []string
		req        *http.Request
		wantStatus int
		want       map[string]string
	}{
		{
			name:       "preflight from allowed origin",
			origins:    []string{app},
			req:        preflight(app),
			wantStatus: http.StatusNoContent,
			want:       allowedPreflight,
		},
		{
			name:       "allowed origin configured with a slash",
			origins:    []string{"https://App.example.com/"},
			req:        preflight(app),
			wantStatus: http.StatusNoContent,
			want:       allowedPreflight,
		},
		{
			name:       "preflight from any origin",
			origins:    []string{"*"},
			req:        preflight(app),
			wantStatus: http.StatusNoContent,
			want:       allowedPreflight,
		},
		{
			name:       "preflight from disallowed origin",
			origins:    []string{app},
			req:        preflight("https://evil.example"),
			wantStatus: http.StatusNoContent,
			want:       map[string]string{"Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"},
		},
		{
			name:       "request from allowed origin",
			origins:    []string{app},
			req:        get(app),
			wantStatus: http.StatusOK,
			want: map[string]string{
				"Access-Control-Allow-Origin":   app,
				"Access-Control-Expose-Headers": "X-Request-Id, Retry-After, Content-Disposition, Location, WWW-Authenticate",
				"Vary":                          "Origin",
			},
		},
		{
			name:       "request from disallowed origin",
			origins:    []string{app},
			req:        get("https://evil.example"),
			wantStatus: http.StatusOK,
			want:       map[string]string{"Vary": "Origin"},
		},
		{
			name:       "CORS disabled",
			req:        preflight(app),
			wantStatus: http.StatusMethodNotAllowed,
			want:       map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEdge(t, Config{AccountsAddr: addr, CORSOrigins: tt.origins}, nil)
			w := serve(h, tt.req)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.want, corsHeaders(w)); diff != "" {
				t.Errorf("CORS headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenAPI(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	w := serve(h, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", w.Code)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	for _, p := range []string{
		"/v1/auth:signIn",
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses",
	} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("paths lack %s; have %v", p, slices.Sorted(maps.Keys(doc.Paths)))
		}
	}
	for p := range doc.Paths {
		if strings.Contains(p, "{name") || strings.Contains(p, "{parent") {
			t.Errorf("path %s is not expanded", p)
		}
	}
}

func TestHealth(t *testing.T) {
	addr, stop := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	check := func(path string, wantStatus int, wantBody string) {
		t.Helper()
		w := serve(h, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != wantStatus {
			t.Errorf("GET %s: status = %d, want %d", path, w.Code, wantStatus)
		}
		if got := strings.TrimSpace(w.Body.String()); got != wantBody {
			t.Errorf("GET %s: body = %s, want %s", path, got, wantBody)
		}
	}
	check("/healthz", http.StatusOK, "ok")
	check("/readyz", http.StatusOK, `{"ready":true}`)

	stop()
	check("/healthz", http.StatusOK, "ok")
	w := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz with the backend down: status = %d, want 503", w.Code)
	}
	var got readiness
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	// The reason is Unavailable, or DeadlineExceeded on a machine slow to
	// refuse the connection; either way the backend must be named.
	if _, ok := got.Failing["accounts"]; got.Ready || !ok {
		t.Errorf("GET /readyz with the backend down = %s, want accounts failing", w.Body)
	}
	// An API call fails as 503 without the gRPC client's message, which
	// names the backend's address.
	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/users/me", nil))
	var st rpcStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	want := rpcStatus{Code: 14, Message: "service unavailable; try again later"}
	if w.Code != http.StatusServiceUnavailable || !cmp.Equal(want, st) {
		t.Errorf("GET /v1/users/me with the backend down = %d %s, want 503 %+v", w.Code, w.Body, want)
	}
}

func TestAccessLog(t *testing.T) {
	addr, _ := startBackend(t)
	var buf bytes.Buffer
	h := newEdge(t, Config{AccountsAddr: addr}, slog.New(slog.NewJSONHandler(&buf, nil)))

	r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	r.Header.Set("X-Request-Id", "req-1")
	serve(h, r)

	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("decode log %q: %v", buf.String(), err)
	}
	if _, ok := got["durationMs"].(float64); !ok {
		t.Errorf("durationMs = %v, want a number", got["durationMs"])
	}
	delete(got, "time")
	delete(got, "durationMs")
	want := map[string]any{
		"level":      "INFO",
		"msg":        "http request",
		"method":     "GET",
		"path":       "/healthz",
		"status":     float64(200),
		"bytes":      float64(2),
		"requestId":  "req-1",
		"remoteAddr": "192.0.2.1:1234",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log line (-want +got):\n%s", diff)
	}
}

func TestRun(t *testing.T) {
	addr, _ := startBackend(t)
	log := slog.New(slog.DiscardHandler)

	t.Run("stops when ctx is done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := Run(ctx, Config{Addr: "127.0.0.1:0", AccountsAddr: addr, ShutdownTimeout: time.Second}, log); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	t.Run("port taken", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		err = Run(t.Context(), Config{Addr: lis.Addr().String(), AccountsAddr: addr}, log)
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Errorf("Run = %v, want a listen error", err)
		}
	})
}
