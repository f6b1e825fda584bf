// Package mailboxes is the mailboxes service's one public entry: its
// settings, its schema, and how to register it on a gRPC server.
package mailboxes

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	internal "github.com/mailplane/mailplane/services/mailboxes/internal"
	"github.com/mailplane/mailplane/services/mailboxes/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/config"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "mailboxes"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// Config holds the service's settings.
type Config struct {
	// AccountsAddr is the accounts service's gRPC address; empty: this
	// process's own gRPC address (both services in one process).
	AccountsAddr string
}

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.String(&c.AccountsAddr, "accounts-addr", "", "gRPC address of the accounts service (mailboxes); empty: this process")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error { return nil }

// Service is the running service: its gRPC server and background work.
type Service struct {
	server *internal.Server
	conn   *grpc.ClientConn
}

// Register adds the mailboxes services to srv. pool's search_path must be
// Schema, migrated.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) (*Service, error) {
	conn, err := grpc.NewClient(c.AccountsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("dial accounts at %s: %w", c.AccountsAddr, err)
	}
	s := internal.NewServer(pool, internal.NewAccountsClient(conn), log)
	mailboxesv1.RegisterMailServiceServiceServer(srv, s)
	mailboxesv1.RegisterAddressServiceServer(srv, s)
	mailboxesv1.RegisterReservationServiceServer(srv, s)
	mailboxesv1.RegisterSenderServiceServer(srv, s)
	mailboxesv1.RegisterDevicePasswordServiceServer(srv, s)
	return &Service{server: s, conn: conn}, nil
}

// Run does the service's background work (purging mail services deleted
// over 30 days ago) until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	return s.server.RunPurger(ctx, time.Hour)
}

// Purge deletes for good the mail services deleted over 30 days ago, and
// reports how many.
func (s *Service) Purge(ctx context.Context) (int, error) { return s.server.Purge(ctx) }
