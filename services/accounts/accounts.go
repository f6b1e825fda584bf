// Package accounts is the accounts service's one public entry: its settings,
// its schema and how to register it on a gRPC server.
package accounts

import (
	"context"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	internal "github.com/mailplane/mailplane/services/accounts/internal"
	"github.com/mailplane/mailplane/services/accounts/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/config"
	"google.golang.org/grpc"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "accounts"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// Config holds the service's settings.
type Config struct {
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	SignInPerEmail  int
	SignInPerClient int
	SignInWindow    time.Duration
	TokenSigningKey string
}

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.Duration(&c.AccessTokenTTL, "access-token-ttl", 15*time.Minute, "lifetime of access tokens")
	l.Duration(&c.RefreshTokenTTL, "refresh-token-ttl", 30*24*time.Hour, "lifetime of refresh tokens")
	l.Int(&c.SignInPerEmail, "sign-in-limit-per-email", 10, "sign-in attempts allowed per email in a window")
	l.Int(&c.SignInPerClient, "sign-in-limit-per-client", 100, "sign-in attempts allowed per client address in a window")
	l.Duration(&c.SignInWindow, "sign-in-limit-window", 15*time.Minute, "window of the sign-in limits")
	l.String(&c.TokenSigningKey, "token-signing-key", "", "base64 Ed25519 seed that signs access tokens (accounts only)")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	config.Check(&errs, c.AccessTokenTTL >= time.Minute && c.AccessTokenTTL <= 24*time.Hour, "access-token-ttl", "want between 1m and 24h, got %s", c.AccessTokenTTL)
	config.Check(&errs, c.RefreshTokenTTL >= c.AccessTokenTTL, "refresh-token-ttl", "want at least access-token-ttl, got %s", c.RefreshTokenTTL)
	config.Check(&errs, c.SignInPerEmail > 0, "sign-in-limit-per-email", "want a positive number")
	config.Check(&errs, c.SignInPerClient > 0, "sign-in-limit-per-client", "want a positive number")
	config.Check(&errs, c.SignInWindow > 0, "sign-in-limit-window", "want a positive duration")
	_, err := auth.ParsePrivateKey(c.TokenSigningKey)
	config.Check(&errs, err == nil, "token-signing-key", "%v", err)
	return errs
}

// Register adds the accounts services to srv. pool's search_path must be
// Schema, migrated.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) error {
	key, err := auth.ParsePrivateKey(c.TokenSigningKey)
	if err != nil {
		return err
	}
	s := internal.NewServer(internal.NewStore(pool), auth.NewSigner(key, c.AccessTokenTTL), c.RefreshTokenTTL,
		internal.Limits{PerEmail: c.SignInPerEmail, PerClient: c.SignInPerClient, Window: c.SignInWindow}, log)
	accountsv1.RegisterAuthServiceServer(srv, s)
	accountsv1.RegisterUserServiceServer(srv, s)
	accountsv1.RegisterOrganizationServiceServer(srv, s)
	accountsv1.RegisterApiTokenServiceServer(srv, s)
	accountsv1.RegisterAuditServiceServer(srv, s)
	return nil
}

// Subscriptions are the events the service consumes: the audit records every
// service publishes, kept in the organization's audit log.
func Subscriptions(pool *pgxpool.Pool, log *slog.Logger) []events.Subscription {
	store := internal.NewStore(pool)
	return []events.Subscription{{
		Durable:  internal.AuditConsumer,
		Subjects: []string{"*.audit.recorded"},
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var ev accountsv1.AuditRecorded
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				// It will never parse: log it and move on.
				log.ErrorContext(ctx, "audit record dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			if err := store.ApplyAuditRecorded(ctx, tx, &ev); err != nil {
				if errs.Is(err, errs.InvalidArgument) {
					log.ErrorContext(ctx, "audit record dropped", "subject", m.Subject(), "error", err)
					return nil
				}
				return err
			}
			return nil
		},
	}}
}
