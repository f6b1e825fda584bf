package grpcserver_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/logtest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Fakes of the accounts services: each RPC a test needs calls a function.

type authService struct {
	accountsv1.UnimplementedAuthServiceServer
	calls  atomic.Int32
	signIn func(context.Context, *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error)
}

func (s *authService) SignIn(ctx context.Context, r *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
	s.calls.Add(1)
	if s.signIn == nil {
		return &accountsv1.SignInResponse{AccessToken: "a", TokenType: "Bearer"}, nil
	}
	return s.signIn(ctx, r)
}

// userService answers GetCurrentUser with the user it sees in the context.
type userService struct {
	accountsv1.UnimplementedUserServiceServer
	calls atomic.Int32
}

func (s *userService) GetCurrentUser(ctx context.Context, _ *accountsv1.GetCurrentUserRequest) (*accountsv1.GetCurrentUserResponse, error) {
	s.calls.Add(1)
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errs.E(errs.FailedPrecondition, "handler ran without a principal")
	}
	return &accountsv1.GetCurrentUserResponse{User: &accountsv1.User{Name: "users/" + p.UserID}}, nil
}

type orgService struct {
	accountsv1.UnimplementedOrganizationServiceServer
	get func(context.Context, *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error)
}

func (s *orgService) GetOrganization(ctx context.Context, r *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
	return s.get(ctx, r)
}

func (s *orgService) UpdateOrganization(_ context.Context, r *accountsv1.UpdateOrganizationRequest) (*accountsv1.UpdateOrganizationResponse, error) {
	return &accountsv1.UpdateOrganizationResponse{Organization: r.Organization}, nil
}

// records returns the JSON log records in logs with message msg.
func records(t *testing.T, logs *logtest.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// testServer is a grpcserver.Server serving on a loopback port, with a client.
type testServer struct {
	*grpcserver.Server
	conn   *grpc.ClientConn
	logs   *logtest.Buffer
	signer *auth.Signer
	users  *userService
	auths  *authService
	stop   func() error // cancels Serve's context and returns what Serve returned
}

func (s *testServer) token(t *testing.T, userID string) string {
	t.Helper()
	tok, _, err := s.signer.Sign(userID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// options say what a test server serves.
type options struct {
	auths *authService // nil: a default fake
	orgs  *orgService  // nil: not registered
	// register registers more services.
	register func(*grpcserver.Server)
	// drain bounds the graceful stop (default 5s).
	drain time.Duration
}

// start serves the accounts fakes on a loopback port until the test ends.
func start(t *testing.T, o options) *testServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := &testServer{
		Server: grpcserver.New(log, auth.NewVerifier(pub)),
		logs:   logs,
		signer: auth.NewSigner(priv, 15*time.Minute),
		users:  &userService{},
		auths:  o.auths,
	}
	if ts.auths == nil {
		ts.auths = &authService{}
	}
	accountsv1.RegisterAuthServiceServer(ts, ts.auths)
	accountsv1.RegisterUserServiceServer(ts, ts.users)
	if o.orgs != nil {
		accountsv1.RegisterOrganizationServiceServer(ts, o.orgs)
	}
	if o.register != nil {
		o.register(ts.Server)
	}
	if o.drain == 0 {
		o.drain = 5 * time.Second
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.Serve(ctx, lis, o.drain) }()
	var once sync.Once
	var serveErr error
	ts.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(10 * time.Second):
				serveErr = errors.New("Serve did not return 10s after its context was cancelled")
			}
		})
		return serveErr
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ts.conn = conn
	t.Cleanup(func() {
		conn.Close()
		if err := ts.stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// details returns a status's details as protobuf messages.
func details(t *testing.T, st *status.Status) []proto.Message {
	t.Helper()
	var out []proto.Message
	for _, d := range st.Details() {
		m, ok := d.(proto.Message)
		if !ok {
			t.Fatalf("status detail %T (%v) is not a protobuf message", d, d)
		}
		out = append(out, m)
	}
	return out
}

type wantStatus struct {
	Code    codes.Code
	Message string
	Details []proto.Message
}

func checkStatus(t *testing.T, err error, want wantStatus) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status", err)
	}
	got := wantStatus{Code: st.Code(), Message: st.Message(), Details: details(t, st)}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

// unavailable is the answer to a failure to reach a dependency.
var unavailable = wantStatus{
	Code:    codes.Unavailable,
	Message: "service unavailable; try again later",
	Details: []proto.Message{&errdetails.RetryInfo{RetryDelay: durationpb.New(grpcserver.RetryAfter)}},
}

func TestErrorMapping(t *testing.T) {
	const secret = "dial tcp 10.0.0.7:5432: password authentication failed for user mailplane"
	tests := []struct {
		name string
		err  error
		want wantStatus
		// logged is an error text that must be in the server's log.
		logged string
	}{
		{
			name: "not found",
			err:  errs.E(errs.NotFound, "organization %q not found", "organizations/acme"),
			want: wantStatus{Code: codes.NotFound, Message: `organization "organizations/acme" not found`},
		},
		{
			name: "wrapped with context, the kind's message is sent",
			err:  fmt.Errorf("get organization acme: %w", errs.E(errs.NotFound, "organization not found")),
			want: wantStatus{Code: codes.NotFound, Message: "organization not found"},
		},
		{
			name: "already exists",
			err:  errs.E(errs.AlreadyExists, "email already registered"),
			want: wantStatus{Code: codes.AlreadyExists, Message: "email already registered"},
		},
		{
			name: "invalid argument with field violations",
			err: errs.Fields(
				errs.FieldViolation{Field: "organization.displayName", Description: "must not be blank"},
				errs.FieldViolation{Field: "updateMask", Description: "unknown field foo"},
			),
			want: wantStatus{
				Code:    codes.InvalidArgument,
				Message: "organization.displayName: must not be blank (and 1 more)",
				Details: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
					{Field: "organization.displayName", Description: "must not be blank"},
					{Field: "updateMask", Description: "unknown field foo"},
				}}},
			},
		},
		{
			name: "failed precondition with a reason",
			err:  errs.E(errs.FailedPrecondition, "the last owner cannot be removed").WithReason("LAST_OWNER"),
			want: wantStatus{
				Code:    codes.FailedPrecondition,
				Message: "the last owner cannot be removed",
				Details: []proto.Message{&errdetails.ErrorInfo{Reason: "LAST_OWNER", Domain: "mailplane"}},
			},
		},
		{
			name: "permission denied",
			err:  errs.E(errs.PermissionDenied, "owners and admins only"),
			want: wantStatus{Code: codes.PermissionDenied, Message: "owners and admins only"},
		},
		{
			name: "unauthenticated",
			err:  errs.E(errs.Unauthenticated, "wrong email or password"),
			want: wantStatus{Code: codes.Unauthenticated, Message: "wrong email or password"},
		},
		{
			name: "conflict is aborted",
			err:  errs.E(errs.Conflict, "organization changed since it was read"),
			want: wantStatus{Code: codes.Aborted, Message: "organization changed since it was read"},
		},
		{
			name: "resource exhausted with retry info",
			err: &errs.Error{
				Kind: errs.ResourceExhausted, Message: "too many sign-in attempts",
				Reason: "RATE_LIMITED", RetryAfter: 30 * time.Second,
			},
			want: wantStatus{
				Code:    codes.ResourceExhausted,
				Message: "too many sign-in attempts",
				Details: []proto.Message{
					&errdetails.ErrorInfo{Reason: "RATE_LIMITED", Domain: "mailplane"},
					&errdetails.RetryInfo{RetryDelay: durationpb.New(30 * time.Second)},
				},
			},
		},
		{
			name:   "plain error is internal, logged, not sent",
			err:    fmt.Errorf("get organization acme: %w", errors.New(secret)),
			want:   wantStatus{Code: codes.Internal, Message: "internal error"},
			logged: "get organization acme: " + secret,
		},
		{
			name:   "another service's status is translated, not forwarded",
			err:    fmt.Errorf("check quota at billing.internal: %w", status.Error(codes.PermissionDenied, secret)),
			want:   wantStatus{Code: codes.Internal, Message: "internal error"},
			logged: "check quota at billing.internal: rpc error: code = PermissionDenied desc = " + secret,
		},
		{
			name: "another service unavailable is unavailable, without its words",
			err:  fmt.Errorf("check quota at billing.internal: %w", status.Error(codes.Unavailable, secret)),
			want: unavailable,
		},
		{
			name: "another service too slow is unavailable",
			err:  fmt.Errorf("check quota at billing.internal: %w", status.Error(codes.DeadlineExceeded, secret)),
			want: unavailable,
		},
		{
			name: "a deadline of our own is unavailable",
			err:  fmt.Errorf("query: %w", context.DeadlineExceeded),
			want: unavailable,
		},
		{
			name: "a cancelled call stays cancelled",
			err:  fmt.Errorf("query: %w", context.Canceled),
			want: wantStatus{Code: codes.Canceled, Message: context.Canceled.Error()},
		},
		{
			name:   "internal kind is not sent either",
			err:    errs.E(errs.Internal, "%s", secret),
			want:   wantStatus{Code: codes.Internal, Message: "internal error"},
			logged: secret,
		},
	}
	byName := map[string]error{}
	for _, tt := range tests {
		byName[tt.name] = tt.err
	}
	orgs := &orgService{get: func(_ context.Context, r *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
		return nil, byName[r.Name]
	}}
	srv := start(t, options{orgs: orgs})
	client := accountsv1.NewOrganizationServiceClient(srv.conn)
	ctx := bearer(callCtx(t), srv.token(t, "u_1"))
	const method = "/mailplane.accounts.v1.OrganizationService/GetOrganization"

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{Name: tt.name})
			checkStatus(t, err, tt.want)
			if strings.Contains(status.Convert(err).String(), secret) {
				t.Errorf("the client saw the internal error text: %v", err)
			}
			if tt.logged != "" {
				var found bool
				for _, r := range records(t, srv.logs, "internal error") {
					found = found || (r["error"] == tt.logged && r["method"] == method && r["level"] == "ERROR")
				}
				if !found {
					t.Errorf("no error record of %q in the log:\n%s", tt.logged, srv.logs)
				}
			}
		})
	}

	// Every call has one access log record with its code, at ERROR only
	// for internal errors.
	calls := records(t, srv.logs, "grpc call")
	if len(calls) != len(tests) {
		t.Fatalf("%d access log records for %d calls:\n%s", len(calls), len(tests), srv.logs)
	}
	for i, tt := range tests {
		want := map[string]any{"method": method, "code": tt.want.Code.String(), "level": "INFO"}
		if tt.want.Code == codes.Internal {
			want["level"] = "ERROR"
		}
		got := map[string]any{"method": calls[i]["method"], "code": calls[i]["code"], "level": calls[i]["level"]}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("access log of %q (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	orgs := &orgService{get: func(_ context.Context, r *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
		if r.Name == "organizations/panic" {
			panic("nil map in org cache: secret detail")
		}
		return &accountsv1.GetOrganizationResponse{Organization: &accountsv1.Organization{Name: r.Name}}, nil
	}}
	srv := start(t, options{orgs: orgs})
	client := accountsv1.NewOrganizationServiceClient(srv.conn)
	ctx := bearer(callCtx(t), srv.token(t, "u_1"))

	_, err := client.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{Name: "organizations/panic"})
	checkStatus(t, err, wantStatus{Code: codes.Internal, Message: "internal error"})

	panics := records(t, srv.logs, "panic")
	if len(panics) != 1 {
		t.Fatalf("%d panic records in the log, want 1:\n%s", len(panics), srv.logs)
	}
	if got := panics[0]["panic"]; got != "nil map in org cache: secret detail" {
		t.Errorf("logged panic = %v", got)
	}
	if stack, _ := panics[0]["stack"].(string); !strings.Contains(stack, "TestPanicRecovery") {
		t.Errorf("logged stack does not show the handler:\n%s", stack)
	}

	// The server is still serving.
	resp, err := client.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{Name: "organizations/acme"})
	if err != nil {
		t.Fatalf("call after the panic: %v", err)
	}
	if resp.Organization.GetName() != "organizations/acme" {
		t.Errorf("call after the panic returned %v", resp)
	}
}

func TestAuthentication(t *testing.T) {
	srv := start(t, options{})
	client := accountsv1.NewUserServiceClient(srv.conn)
	valid := srv.token(t, "u_123")
	expired, _, err := srv.signer.Sign("u_123", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := auth.NewSigner(otherKey, time.Hour).Sign("u_123", time.Now())
	if err != nil {
		t.Fatal(err)
	}

	unauthenticated := wantStatus{
		Code:    codes.Unauthenticated,
		Message: "missing, malformed or expired access token",
		Details: []proto.Message{&errdetails.ErrorInfo{Reason: "UNAUTHENTICATED", Domain: "mailplane"}},
	}
	tests := []struct {
		name          string
		authorization []string // values of the authorization header
		wantUser      string   // "" when the call must be rejected
	}{
		{name: "no token"},
		{name: "empty bearer", authorization: []string{"Bearer "}},
		{name: "garbage", authorization: []string{"Bearer garbage"}},
		{name: "expired", authorization: []string{"Bearer " + expired}},
		{name: "signed with another key", authorization: []string{"Bearer " + forged}},
		{name: "token without scheme", authorization: []string{valid}},
		{name: "basic scheme", authorization: []string{"Basic " + valid}},
		{name: "valid", authorization: []string{"Bearer " + valid}, wantUser: "users/u_123"},
		{name: "scheme is case-insensitive", authorization: []string{"bearer " + valid}, wantUser: "users/u_123"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := callCtx(t)
			for _, v := range tt.authorization {
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", v)
			}
			before := srv.users.calls.Load()
			resp, err := client.GetCurrentUser(ctx, &accountsv1.GetCurrentUserRequest{})
			if tt.wantUser == "" {
				checkStatus(t, err, unauthenticated)
				if n := srv.users.calls.Load() - before; n != 0 {
					t.Errorf("the handler ran %d times for a rejected call", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetCurrentUser: %v", err)
			}
			if got := resp.GetUser().GetName(); got != tt.wantUser {
				t.Errorf("handler saw %q, want %q", got, tt.wantUser)
			}
		})
	}
}

func TestPublicMethodsAndValidation(t *testing.T) {
	orgs := &orgService{get: func(context.Context, *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
		return &accountsv1.GetOrganizationResponse{}, nil
	}}
	srv := start(t, options{orgs: orgs})
	authClient := accountsv1.NewAuthServiceClient(srv.conn)
	orgClient := accountsv1.NewOrganizationServiceClient(srv.conn)
	expired, _, err := srv.signer.Sign("u_1", time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	badRequest := func(field, description string) wantStatus {
		return wantStatus{
			Code:    codes.InvalidArgument,
			Message: field + ": " + description,
			Details: []proto.Message{&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
				{Field: field, Description: description},
			}}},
		}
	}
	unauthenticated := wantStatus{
		Code:    codes.Unauthenticated,
		Message: "missing, malformed or expired access token",
		Details: []proto.Message{&errdetails.ErrorInfo{Reason: "UNAUTHENTICATED", Domain: "mailplane"}},
	}
	ok := wantStatus{Code: codes.OK}
	signIn := &accountsv1.SignInRequest{Email: "ada@example.com", Password: "correct horse battery staple"}

	tests := []struct {
		name        string
		call        func(ctx context.Context) error
		ctx         context.Context
		want        wantStatus
		wantHandler bool // whether SignIn's handler must run
	}{
		{
			name: "sign-in needs no token",
			ctx:  callCtx(t),
			call: func(ctx context.Context) error {
				_, err := authClient.SignIn(ctx, signIn)
				return err
			},
			want:        ok,
			wantHandler: true,
		},
		{
			name: "sign-in ignores a stale token",
			ctx:  bearer(callCtx(t), expired),
			call: func(ctx context.Context) error {
				_, err := authClient.SignIn(ctx, signIn)
				return err
			},
			want:        ok,
			wantHandler: true,
		},
		{
			name: "a public method is still validated",
			ctx:  callCtx(t),
			call: func(ctx context.Context) error {
				_, err := authClient.SignIn(ctx, &accountsv1.SignInRequest{Email: "ada@example", Password: "pw"})
				return err
			},
			want: badRequest("email", "must be an email address like name@example.com"),
		},
		{
			name: "an anonymous caller learns nothing from validation",
			ctx:  callCtx(t),
			call: func(ctx context.Context) error {
				_, err := orgClient.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{})
				return err
			},
			want: unauthenticated,
		},
		{
			name: "an authenticated caller is validated",
			ctx:  bearer(callCtx(t), srv.token(t, "u_1")),
			call: func(ctx context.Context) error {
				_, err := orgClient.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{})
				return err
			},
			want: badRequest("name", "is required"),
		},
		{
			name: "nested fields are named by JSON path",
			ctx:  bearer(callCtx(t), srv.token(t, "u_1")),
			call: func(ctx context.Context) error {
				_, err := orgClient.UpdateOrganization(ctx, &accountsv1.UpdateOrganizationRequest{
					Organization: &accountsv1.Organization{Name: "organizations/acme", LegalName: strings.Repeat("x", 201)},
				})
				return err
			},
			want: badRequest("organization.legalName", "must be at most 200 characters"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.auths.calls.Load()
			checkStatus(t, tt.call(tt.ctx), tt.want)
			if ran := srv.auths.calls.Load() > before; ran != tt.wantHandler {
				t.Errorf("SignIn handler ran: %v, want %v", ran, tt.wantHandler)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	srv := start(t, options{})
	srv.Health.SetServingStatus("mailplane.accounts.v1.UserService", healthpb.HealthCheckResponse_SERVING)
	srv.Health.SetServingStatus("mailplane.accounts.v1.AuthService", healthpb.HealthCheckResponse_NOT_SERVING)
	client := healthpb.NewHealthClient(srv.conn)

	tests := []struct {
		service  string
		want     healthpb.HealthCheckResponse_ServingStatus
		wantCode codes.Code
	}{
		{service: "", want: healthpb.HealthCheckResponse_SERVING},
		{service: "mailplane.accounts.v1.UserService", want: healthpb.HealthCheckResponse_SERVING},
		{service: "mailplane.accounts.v1.AuthService", want: healthpb.HealthCheckResponse_NOT_SERVING},
		{service: "mailplane.unknown.v1.Service", wantCode: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			// No token: probes are anonymous.
			resp, err := client.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: tt.service})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("Check(%q) = %v, want code %v", tt.service, err, tt.wantCode)
			}
			if got := resp.GetStatus(); err == nil && got != tt.want {
				t.Errorf("Check(%q) = %v, want %v", tt.service, got, tt.want)
			}
		})
	}
}

func TestGracefulStop(t *testing.T) {
	started := make(chan struct{})
	var finished atomic.Bool
	auths := &authService{signIn: func(ctx context.Context, _ *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
		close(started)
		select {
		case <-time.After(200 * time.Millisecond): // the work of the call
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		finished.Store(true)
		return &accountsv1.SignInResponse{AccessToken: "tok"}, nil
	}}
	srv := start(t, options{auths: auths})
	client := accountsv1.NewAuthServiceClient(srv.conn)

	type result struct {
		resp *accountsv1.SignInResponse
		err  error
	}
	inFlight := make(chan result, 1)
	go func() {
		resp, err := client.SignIn(callCtx(t), &accountsv1.SignInRequest{Email: "ada@example.com", Password: "pw"})
		inFlight <- result{resp, err}
	}()
	<-started
	if err := srv.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if !finished.Load() {
		t.Error("Serve returned before the call in flight finished")
	}
	r := <-inFlight
	if r.err != nil || r.resp.GetAccessToken() != "tok" {
		t.Errorf("call in flight during the stop = %v, %v; want it to complete", r.resp, r.err)
	}
	_, err := client.SignIn(callCtx(t), &accountsv1.SignInRequest{Email: "ada@example.com", Password: "pw"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("call after the stop = %v, want Unavailable", err)
	}
}

func TestStopAfterDrainTimeout(t *testing.T) {
	started := make(chan struct{})
	auths := &authService{signIn: func(ctx context.Context, _ *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
		close(started)
		select {
		case <-ctx.Done(): // a call that never finishes by itself
			return nil, ctx.Err()
		case <-time.After(30 * time.Second):
			return &accountsv1.SignInResponse{}, nil
		}
	}}
	srv := start(t, options{auths: auths, drain: 100 * time.Millisecond})
	client := accountsv1.NewAuthServiceClient(srv.conn)
	inFlight := make(chan error, 1)
	go func() {
		_, err := client.SignIn(callCtx(t), &accountsv1.SignInRequest{Email: "ada@example.com", Password: "pw"})
		inFlight <- err
	}()
	<-started
	begin := time.Now()
	if err := srv.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Serve took %v to return with a drain of 100ms", d)
	}
	if err := <-inFlight; status.Code(err) != codes.Unavailable {
		t.Errorf("call cut off by the stop = %v, want Unavailable", err)
	}
	if len(records(t, srv.logs, "grpc: drain timed out; closing remaining calls")) != 1 {
		t.Errorf("drain timeout not logged:\n%s", srv.logs)
	}
}

// watchService is a server-streaming service written by hand, since the
// accounts API has none: streams must be authenticated and their errors
// mapped like unary calls'.
var watchService = grpc.ServiceDesc{
	ServiceName: "mailplane.test.v1.WatchService",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			var in wrapperspb.StringValue
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			switch in.Value {
			case "not found":
				return errs.E(errs.NotFound, "nothing to watch")
			case "plain error":
				return errors.New("watch: redis at 10.0.0.9 refused the connection")
			}
			p, ok := auth.FromContext(ss.Context())
			if !ok {
				return errs.E(errs.FailedPrecondition, "handler ran without a principal")
			}
			return ss.SendMsg(wrapperspb.String("users/" + p.UserID))
		},
	}},
}

func TestStreams(t *testing.T) {
	srv := start(t, options{register: func(s *grpcserver.Server) { s.RegisterService(&watchService, struct{}{}) }})
	// watch opens a stream with req and returns its first message.
	watch := func(ctx context.Context, req string) (string, error) {
		stream, err := srv.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/mailplane.test.v1.WatchService/Watch")
		if err != nil {
			return "", err
		}
		if err := stream.SendMsg(wrapperspb.String(req)); err != nil {
			return "", err
		}
		if err := stream.CloseSend(); err != nil {
			return "", err
		}
		var out wrapperspb.StringValue
		err = stream.RecvMsg(&out)
		return out.Value, err
	}
	valid := srv.token(t, "u_7")

	tests := []struct {
		name     string
		ctx      context.Context
		req      string
		want     wantStatus
		wantUser string
	}{
		{
			name: "no token",
			ctx:  callCtx(t),
			want: wantStatus{
				Code:    codes.Unauthenticated,
				Message: "missing, malformed or expired access token",
				Details: []proto.Message{&errdetails.ErrorInfo{Reason: "UNAUTHENTICATED", Domain: "mailplane"}},
			},
		},
		{
			name:     "valid token",
			ctx:      bearer(callCtx(t), valid),
			want:     wantStatus{Code: codes.OK},
			wantUser: "users/u_7",
		},
		{
			name: "classified error",
			ctx:  bearer(callCtx(t), valid),
			req:  "not found",
			want: wantStatus{Code: codes.NotFound, Message: "nothing to watch"},
		},
		{
			name: "plain error is not sent",
			ctx:  bearer(callCtx(t), valid),
			req:  "plain error",
			want: wantStatus{Code: codes.Internal, Message: "internal error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := watch(tt.ctx, tt.req)
			checkStatus(t, err, tt.want)
			if got != tt.wantUser {
				t.Errorf("stream sent %q, want %q", got, tt.wantUser)
			}
		})
	}
}
