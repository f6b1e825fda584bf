package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"testing"
	"testing/fstest"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/service"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// drainingAuth answers SignIn once the test releases it, and fails it if
// the service's workers were stopped by then.
type drainingAuth struct {
	accountsv1.UnimplementedAuthServiceServer
	entered, release chan struct{}
	workers          func() context.Context
}

func (a *drainingAuth) SignIn(ctx context.Context, r *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
	close(a.entered)
	<-a.release
	if err := a.workers().Err(); err != nil {
		return nil, errors.New("the workers stopped before the call in flight ended")
	}
	return &accountsv1.SignInResponse{AccessToken: "drained"}, nil
}

// TestWorkersOutliveDrainedCalls: on SIGTERM a process drains the calls in
// flight before it stops a service's workers, which own what those calls
// use (the connection to accounts: a drained call asking accounts once it
// was closed answered 500 during scripts/rolling-restart.sh's runs).
func TestWorkersOutliveDrainedCalls(t *testing.T) {
	ns := natstest.Start(t)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	workerCtx := make(chan context.Context, 1)
	auth := &drainingAuth{entered: make(chan struct{}), release: make(chan struct{})}
	var wctx context.Context
	auth.workers = func() context.Context { return wctx }
	probe := service.Service{
		Name:       "drainprobe",
		Migrations: fstest.MapFS{"00001_init.sql": {Data: []byte("-- +goose Up\nCREATE TABLE t (n int);\n-- +goose Down\nDROP TABLE t;\n")}},
		Start: func(ctx context.Context, env service.Env) (service.Parts, error) {
			accountsv1.RegisterAuthServiceServer(env.GRPC, auth)
			return service.Parts{Workers: []func(context.Context) error{func(ctx context.Context) error {
				workerCtx <- ctx
				<-ctx.Done()
				return nil
			}}}, nil
		},
	}
	l := config.NewLoader("mailplane serve", func(string) string { return "" }, io.Discard)
	s := newSettings()
	s.services = []service.Service{probe}
	s.register(l)
	if err := l.Parse([]string{"--grpc-addr", freeport.Addr(t), "--metrics-addr", "", "--log-level", "warn",
		"--database-url", pgtest.NewDatabase(t), "--nats-url", ns.ClientURL(),
		"--token-public-key", base64.StdEncoding.EncodeToString(pub)}); err != nil {
		t.Fatal(err)
	}
	log, err := telemetry.NewLogger(io.Discard, "warn")
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- runServices(ctx, s, []string{"drainprobe"}, log, func(addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	}
	wctx = <-workerCtx

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	answered := make(chan error, 1)
	go func() {
		_, err := accountsv1.NewAuthServiceClient(conn).SignIn(context.Background(), &accountsv1.SignInRequest{Email: "a@example.com", Password: "a password long enough"})
		answered <- err
	}()
	select {
	case <-auth.entered:
	case err := <-answered:
		t.Fatalf("the call ended before it reached the handler: %v", err)
	}
	sigterm()
	if wctx.Err() != nil {
		t.Error("the workers were stopped as the process was told to stop, with a call in flight")
	}
	close(auth.release)
	if err := <-answered; err != nil {
		t.Errorf("the drained call: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop once drained")
	}
	if wctx.Err() == nil {
		t.Error("the workers still run after the process stopped")
	}
}
