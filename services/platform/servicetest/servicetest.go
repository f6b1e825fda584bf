// Package servicetest runs services under test as production does: behind
// the platform's gRPC server, on a real TCP listener on loopback, so that
// every interceptor (authentication, validation, error mapping) runs. It
// signs access tokens for callers of any identity and role.
package servicetest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Server is a gRPC server on 127.0.0.1 and a client connected to it.
type Server struct {
	// GRPC is the server the services under test register on.
	GRPC *grpcserver.Server
	// Addr is the server's address, for a service that calls another.
	Addr string
	// Conn is a client of the server.
	Conn *grpc.ClientConn
	// Key signs the access tokens the server accepts; Verifier checks
	// them, and takes the revocations a test applies.
	Key      ed25519.PrivateKey
	Verifier *auth.Verifier
	// Log discards what the services log.
	Log *slog.Logger
}

// Start starts a server on a free port, lets register add the services
// under test, and serves them until t ends.
func Start(t testing.TB, register func(s *Server) error) *Server {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		lis.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	verifier := auth.NewVerifier(pub)
	s := &Server{
		GRPC:     grpcserver.New(log, verifier),
		Addr:     lis.Addr().String(),
		Conn:     conn,
		Key:      key,
		Verifier: verifier,
		Log:      log,
	}
	if err := register(s); err != nil {
		lis.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.GRPC.Serve(ctx, lis, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// SigningKey is Key as the accounts service's token-signing-key setting
// takes it, for an accounts service under test to sign in people.
func (s *Server) SigningKey() string {
	return base64.StdEncoding.EncodeToString(s.Key.Seed())
}

// As returns a context whose calls carry an access token for p: an API
// token's, acting in p.OrganizationID as p.Role, when p.TokenID is set,
// and otherwise a person's (p.UserID, in a session of its own unless
// p.SessionID names one). A person's role in an organization is what the
// service finds in its membership, not in the token.
func (s *Server) As(t testing.TB, p auth.Principal) context.Context {
	t.Helper()
	signer := auth.NewSigner(s.Key, 15*time.Minute)
	now := time.Now()
	var token string
	var err error
	if p.TokenID != "" {
		token, _, err = signer.SignAPIToken(p.TokenID, p.OrganizationID, p.Role, signer.TTL(), now)
	} else {
		if p.SessionID == "" {
			p.SessionID = rand.Text()
		}
		token, _, err = signer.SignSession(p.UserID, p.SessionID, p.LoginPending, now)
	}
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
}
