// Package grpcserver builds the gRPC server every Mailplane service runs
// behind: tracing and metrics, access logs, error mapping, panic recovery,
// authentication and request validation, plus the standard health and
// reflection services.
package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	apiv1 "github.com/mailplane/mailplane/proto/mailplane/api/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/validate"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
	log    *slog.Logger
}

// streamWorkers is how many goroutines serve calls, kept between calls.
const streamWorkers = 128

// maxConnectionAge is how long a client connection lives before the server
// asks the client to make a new one (gRPC adds ±10% so that clients do not
// all come back at once).
const maxConnectionAge = 5 * time.Minute

// New returns a server whose interceptors log to log and verify access
// tokens with verifier. Register services on it, then call Serve.
func New(log *slog.Logger, verifier *auth.Verifier) *Server {
	i := &interceptors{log: log, verifier: verifier}
	s := grpc.NewServer(
		// Room for a bulk CSV upload (16 MiB) beyond gRPC's 4 MiB default.
		grpc.MaxRecvMsgSize(17<<20),
		// Calls run on long-lived workers that keep the stacks they grew,
		// instead of a new goroutine each whose stack grows again on every
		// call (copying stacks was ~3-5% of a service's CPU under load).
		// Calls wait on the database more than they compute, so there are
		// as many workers as calls in flight under a heavy load; a call
		// that finds them all busy still gets its own goroutine. An idle
		// worker costs its stack.
		grpc.NumStreamWorkers(streamWorkers),
		// Clients reconnect every few minutes, and so find the replicas
		// started since: the gateway balances over what it resolved.
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: maxConnectionAge, MaxConnectionAgeGrace: time.Minute}),
		// Health checks (probes, the gateway's /readyz) every few
		// seconds would bury the traces and calls people look at.
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))),
		grpc.ChainUnaryInterceptor(i.logging, i.errors, i.recover, i.authenticate, i.validate),
		grpc.ChainStreamInterceptor(i.streamErrors, i.streamAuthenticate),
	)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h, log: log}
}

// Serve serves on lis until ctx is done, then stops taking new calls and
// waits up to drain for the calls in flight.
func (s *Server) Serve(ctx context.Context, lis net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.Server.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		s.log.Warn("grpc: drain timed out; closing remaining calls")
		s.Stop()
	}
	return nil
}

// HealthInterval is how often Watch checks what a service needs, and
// HealthTimeout how long one check may take: a probe reads a status at
// most this old, and a check never piles up behind a slow database.
const (
	HealthInterval = 2 * time.Second
	HealthTimeout  = time.Second
)

// Watch sets service's health status from check, run now and then every
// HealthInterval, until ctx is done: SERVING while check succeeds,
// NOT_SERVING while it fails. Readiness probes ask for service by name, so a
// replica that cannot reach its database leaves the load balancer until it
// can again; the whole server's status ("") stays as it is, for liveness,
// since restarting the process would not bring the database back.
func (s *Server) Watch(ctx context.Context, service string, check func(context.Context) error) {
	var last error
	first := true
	for {
		cctx, cancel := context.WithTimeout(ctx, HealthTimeout)
		err := check(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && (first || last == nil):
			s.log.WarnContext(ctx, "not serving", "service", service, "error", err.Error())
			s.Health.SetServingStatus(service, healthpb.HealthCheckResponse_NOT_SERVING)
		case err == nil && (first || last != nil):
			if !first {
				s.log.InfoContext(ctx, "serving again", "service", service)
			}
			s.Health.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)
		}
		first, last = false, err
		select {
		case <-ctx.Done():
			return
		case <-time.After(HealthInterval):
		}
	}
}

// kindCodes maps each error kind to its gRPC code: the one table.
var kindCodes = map[errs.Kind]codes.Code{
	errs.Internal:           codes.Internal,
	errs.NotFound:           codes.NotFound,
	errs.AlreadyExists:      codes.AlreadyExists,
	errs.InvalidArgument:    codes.InvalidArgument,
	errs.FailedPrecondition: codes.FailedPrecondition,
	errs.PermissionDenied:   codes.PermissionDenied,
	errs.Unauthenticated:    codes.Unauthenticated,
	errs.Conflict:           codes.Aborted,
	errs.ResourceExhausted:  codes.ResourceExhausted,
	errs.Unavailable:        codes.Unavailable,
}

// Status converts err to a gRPC status: a classified error keeps its message
// and details; a failure to reach the database or another service is
// Unavailable with a RetryInfo; anything else becomes a generic Internal.
func Status(err error) *status.Status {
	if errors.Is(err, context.Canceled) {
		return status.New(codes.Canceled, context.Canceled.Error())
	}
	// A status returned as is is a deliberate answer (grpc's own health
	// service answers so). One wrapped in context comes from a call to
	// another service and is the caller's to translate: never forwarded.
	if se, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return se.GRPCStatus()
	}
	var e *errs.Error
	if !errors.As(err, &e) {
		e = classify(err)
	}
	if e == nil {
		return status.New(codes.Internal, "internal error")
	}
	code, ok := kindCodes[e.Kind]
	if !ok || code == codes.Internal {
		return status.New(codes.Internal, "internal error")
	}
	st := status.New(code, e.Message)
	var details []protoadapt.MessageV1
	if len(e.Fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range e.Fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
		}
		details = append(details, protoadapt.MessageV1Of(br))
	}
	if e.Reason != "" {
		details = append(details, protoadapt.MessageV1Of(&errdetails.ErrorInfo{Reason: e.Reason, Domain: "mailplane"}))
	}
	if e.RetryAfter > 0 {
		details = append(details, protoadapt.MessageV1Of(&errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)}))
	}
	if len(details) > 0 {
		if withDetails, err := st.WithDetails(details...); err == nil {
			st = withDetails
		}
	}
	return st
}

type interceptors struct {
	log       *slog.Logger
	verifier  *auth.Verifier
	validator validate.Validator
	methods   sync.Map // full method name -> *apiv1.MethodRules
}

func (i *interceptors) logging(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	code := status.Code(err)
	level := slog.LevelInfo
	switch {
	case code == codes.Internal || code == codes.Unknown:
		level = slog.LevelError
	case strings.HasPrefix(info.FullMethod, "/grpc.health."):
		level = slog.LevelDebug // probes every few seconds
	}
	i.log.Log(ctx, level, "grpc call", "method", info.FullMethod, "code", code.String(), "durationMs", float64(time.Since(start).Microseconds())/1000)
	return resp, err
}

func (i *interceptors) errors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, i.mapError(ctx, info.FullMethod, err)
	}
	return resp, nil
}

// mapError converts err to a status error, logging what the caller is not
// told.
func (i *interceptors) mapError(ctx context.Context, method string, err error) error {
	st := Status(err)
	switch {
	case st.Code() == codes.Internal:
		i.log.ErrorContext(ctx, "internal error", "method", method, "error", err.Error())
	case st.Code() == codes.Unavailable && !errs.Is(err, errs.Unavailable):
		// The caller hears "try again"; operators need the cause.
		i.log.WarnContext(ctx, "unavailable", "method", method, "error", err.Error())
	}
	return st.Err()
}

func (i *interceptors) recover(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			i.log.ErrorContext(ctx, "panic", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = errs.E(errs.Internal, "panic in %s", info.FullMethod)
		}
	}()
	return handler(ctx, req)
}

func (i *interceptors) authenticate(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := i.authn(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (i *interceptors) validate(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if err := i.validator.Check(m); err != nil {
			return nil, err
		}
	}
	return handler(ctx, req)
}

func (i *interceptors) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	ctx, start := ss.Context(), time.Now()
	defer func() {
		if p := recover(); p != nil {
			i.log.ErrorContext(ctx, "panic", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = errs.E(errs.Internal, "panic in %s", info.FullMethod)
		}
		if err != nil {
			err = i.mapError(ctx, info.FullMethod, err)
		}
		level := slog.LevelInfo
		if strings.HasPrefix(info.FullMethod, "/grpc.") {
			level = slog.LevelDebug
		}
		i.log.Log(ctx, level, "grpc stream", "method", info.FullMethod, "code", status.Code(err).String(), "durationMs", float64(time.Since(start).Microseconds())/1000)
	}()
	return handler(srv, ss)
}

func (i *interceptors) streamAuthenticate(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := i.authn(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

var errUnauthenticated = errs.E(errs.Unauthenticated, "missing, malformed or expired access token").WithReason("UNAUTHENTICATED")

// authn attaches the caller to ctx. Methods marked public in their .proto,
// and the platform's own services (health, reflection), need no token.
func (i *interceptors) authn(ctx context.Context, method string) (context.Context, error) {
	if i.isPublic(method) {
		return ctx, nil
	}
	// ValueFromIncomingContext, not FromIncomingContext, on every call:
	// the latter copies all the metadata, which the edge fills.
	var token string
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		scheme, t, ok := strings.Cut(v[0], " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			token = strings.TrimSpace(t)
		}
	}
	if token == "" || i.verifier == nil {
		return nil, errUnauthenticated
	}
	p, err := i.verifier.Verify(token)
	if err != nil {
		return nil, errUnauthenticated
	}
	if p.LoginPending && !i.rules(method).GetAllowLoginPending() {
		return nil, errLoginPending
	}
	return auth.WithPrincipal(ctx, p), nil
}

var errLoginPending = errs.E(errs.PermissionDenied, "choose a new login email first (UserService.SetLoginEmail)").WithReason("LOGIN_EMAIL_REQUIRED")

func (i *interceptors) isPublic(method string) bool {
	return strings.HasPrefix(method, "/grpc.") || i.rules(method).GetPublic()
}

// rules returns a method's (mailplane.api.v1.method) options, nil when it
// has none; they are looked up once per method.
func (i *interceptors) rules(method string) *apiv1.MethodRules {
	if v, ok := i.methods.Load(method); ok {
		return v.(*apiv1.MethodRules)
	}
	var rules *apiv1.MethodRules
	// "/pkg.Service/Method" -> "pkg.Service.Method"
	name := protoreflect.FullName(strings.Replace(strings.TrimPrefix(method, "/"), "/", ".", 1))
	if d, err := protoregistry.GlobalFiles.FindDescriptorByName(name); err == nil {
		if md, ok := d.(protoreflect.MethodDescriptor); ok && md.Options() != nil {
			rules, _ = proto.GetExtension(md.Options(), apiv1.E_Method).(*apiv1.MethodRules)
		}
	}
	i.methods.Store(method, rules)
	return rules
}

// ClientAddr is the caller's IP address: the last X-Forwarded-For hop, which
// the edge sets to the client it saw, or the gRPC peer for direct callers.
func ClientAddr(ctx context.Context) string {
	if xff := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"); len(xff) > 0 {
		hops := strings.Split(xff[len(xff)-1], ",")
		if ip := strings.TrimSpace(hops[len(hops)-1]); ip != "" {
			return ip
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return "unknown"
}
