package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailplane/mailplane/gateway"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/telemetry"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// syncBuffer is a log a process writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// stack is a process serving services, as `mailplane serve` runs it.
type stack struct {
	grpcAddr string
	out      *syncBuffer
}

// startServices runs `mailplane serve names...` with flags until the test
// ends, and returns once it listens.
func startServices(t *testing.T, names []string, flags ...string) *stack {
	t.Helper()
	l := config.NewLoader("mailplane serve", func(string) string { return "" }, io.Discard)
	s := newSettings()
	s.register(l)
	if err := l.Parse(append([]string{"--grpc-addr", freeport.Addr(t), "--metrics-addr", "", "--log-level", "warn",
		"--socketmap-addr", "", "--policy-addr", "", "--milter-addr", "", "--lmtp-addr", "", "--report-addr", ""}, flags...)); err != nil {
		t.Fatal(err)
	}
	if err := s.validate(names); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	log, err := telemetry.NewLogger(out, s.LogLevel)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- runServices(ctx, s, names, log, func(addr string) { ready <- addr }) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addr := <-ready:
		return &stack{grpcAddr: addr, out: out}
	case err := <-done:
		t.Fatalf("serve %v stopped: %v\n%s", names, err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve %v did not start\n%s", names, out)
	}
	return nil
}

// within polls call until it answers status, for at most d: how long a
// revocation may take to reach every service.
func within(t *testing.T, d time.Duration, what string, want int, call func() int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := call()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d after %v, want %d", what, got, d, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRevocationTakesEffect: a revoked API token and the access tokens of
// a session revoked for refresh-token reuse are refused within a second,
// by the edge, accounts and mailboxes; and a mailboxes process started after
// the revocation refuses them too.
func TestRevocationTakesEffect(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	ns := natstest.Start(t)
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"--database-url", dbURL, "--nats-url", ns.ClientURL(),
		"--token-public-key", base64.StdEncoding.EncodeToString(pub),
		"--token-signing-key", base64.StdEncoding.EncodeToString(priv.Seed()), "--secret-keys", secret.NewKey()}
	// Every service the edge routes to, so that the edge is ready.
	first := startServices(t, []string{"accounts", "mailboxes", "dnssecurity", "lists", "filters", "imports"}, flags...)

	httpAddr := freeport.Addr(t)
	ctx, cancel := context.WithCancel(context.Background())
	edgeDone := make(chan error, 1)
	go func() {
		edgeDone <- gateway.Run(ctx, gateway.Config{Addr: httpAddr, AccountsAddr: first.grpcAddr, ShutdownTimeout: time.Second}, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() { cancel(); <-edgeDone })
	c := &client{t: t, base: "http://" + httpAddr}
	within(t, 10*time.Second, "edge ready", 200, func() int {
		resp, err := http.Get(c.base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	})

	const pw = "twelve chars or more"
	signUp := c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{
		"email": "ops@example.com", "password": pw, "displayName": "Ops", "organizationDisplayName": "Ops & Co"})
	org := str(signUp.body, "organization", "name")
	session := c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "ops@example.com", "password": pw})
	token, refresh := str(session.body, "accessToken"), str(session.body, "refreshToken")
	answer := func(path, token string) func() int {
		return func() int { return c.do("GET", path, token, nil).status }
	}

	// (a) A revoked API token fails at the edge within a second.
	created := c.want(200, "POST", "/v1/"+org+"/apiTokens", token, map[string]any{"displayName": "ci", "role": "ROLE_ADMIN"})
	secret := str(created.body, "secret")
	c.want(200, "GET", "/v1/"+org, secret, nil)
	c.want(200, "GET", "/v1/"+org+"/mailServices", secret, nil) // the edge caches the exchange
	// What the edge got for it, as a service sees it.
	conn, err := grpc.NewClient(first.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	exchanged, err := accountsv1.NewAuthServiceClient(conn).ExchangeApiToken(context.Background(), &accountsv1.ExchangeApiTokenRequest{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	apiAccess := exchanged.GetAccessToken()
	c.want(200, "DELETE", "/v1/"+str(created.body, "apiToken", "name"), token, nil)
	within(t, time.Second, "revoked API token on accounts", 401, answer("/v1/"+org, secret))
	within(t, time.Second, "revoked API token on mailboxes", 401, answer("/v1/"+org+"/mailServices", secret))

	// (b) Presenting a used refresh token revokes the session: its access
	// tokens, old and new, are refused by accounts and mailboxes.
	rotated := c.want(200, "POST", "/v1/auth:refresh", "", map[string]any{"refreshToken": refresh})
	newer := str(rotated.body, "accessToken")
	for _, tok := range []string{token, newer} {
		c.want(200, "GET", "/v1/users/me", tok, nil)
		c.want(200, "GET", "/v1/"+org+"/mailServices", tok, nil)
	}
	c.want(401, "POST", "/v1/auth:refresh", "", map[string]any{"refreshToken": refresh})
	for name, tok := range map[string]string{"first": token, "refreshed": newer} {
		within(t, time.Second, name+" access token on accounts (users/me)", 401, answer("/v1/users/me", tok))
		within(t, time.Second, name+" access token on mailboxes", 401, answer("/v1/"+org+"/mailServices", tok))
	}

	// (c) A mailboxes process started after the revocation knows it.
	later := startServices(t, []string{"mailboxes"}, append(flags, "--accounts-addr", first.grpcAddr)...)
	laterConn, err := grpc.NewClient(later.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer laterConn.Close()
	list := func(tok string) error {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		_, err := mailboxesv1.NewMailServiceServiceClient(laterConn).ListMailServices(ctx, &mailboxesv1.ListMailServicesRequest{Parent: org})
		return err
	}
	fresh := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "ops@example.com", "password": pw}).body, "accessToken")
	if err := list(fresh); err != nil {
		t.Fatalf("the later process refuses a valid token: %v\n%s", err, later.out)
	}
	// An API token's access token is checked by mailboxes alone (a person's
	// role is asked of accounts, which refuses the revoked session too).
	for name, tok := range map[string]string{"API token's": apiAccess, "first": token, "refreshed": newer} {
		if err := list(tok); status.Code(err) != codes.Unauthenticated {
			t.Errorf("the later process answers the %s revoked access token with %v, want Unauthenticated", name, err)
		}
	}
	if strings.Contains(first.out.String(), `"level":"ERROR"`) {
		t.Errorf("errors logged:\n%s", first.out)
	}
}

// TestReplayWindowChecked: a process without accounts still reads
// access-token-ttl, to know how far back to replay revocations; a value
// that would replay nothing stops it at start, naming the setting.
func TestReplayWindowChecked(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	err := serve(context.Background(), []string{"mailboxes", "--database-url", "postgres://nowhere/db", "--accounts-addr", "127.0.0.1:1",
		"--token-public-key", base64.StdEncoding.EncodeToString(pub), "--access-token-ttl", "-15m"}, func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "access-token-ttl") {
		t.Errorf("serve mailboxes with a negative access-token-ttl: %v, want an error naming access-token-ttl", err)
	}
}
