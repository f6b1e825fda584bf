// Package accounts is the accounts service's one public entry: its settings,
// its schema and how to register it on a gRPC server.
package accounts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	internal "github.com/mailplane/mailplane/services/accounts/internal"
	"github.com/mailplane/mailplane/services/accounts/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/mailplane/mailplane/services/platform/service"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "accounts"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// Config holds the service's settings.
type Config struct {
	// AccessTokenTTL is the process's access-token-ttl, a setting every
	// service reads (service.Process).
	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	// SignInPerEmail bounds one email's sign-in attempts from one client
	// address in a window; SignInPerEmailAll, from all addresses together
	// (an address the user signed in from before is not held by it).
	SignInPerEmail    int
	SignInPerEmailAll int
	SignInPerClient   int
	SignInWindow      time.Duration
	// PublicPerClient bounds the calls to each unauthenticated route
	// (sign-up, setup links, refresh, invitation links) from one client
	// address in the sign-in window; 0: 100.
	PublicPerClient int
	// InvitationsPerOrganization and InvitationsPerRecipient bound the
	// invitation emails sent (new or resent) in any 24 hours; 0: 200 and 5.
	InvitationsPerOrganization int
	InvitationsPerRecipient    int
	TokenSigningKey            string
	// PasswordHashes is how many password hashes may run at once (each
	// holds 19 MiB); 0: one per CPU.
	PasswordHashes int

	// PublicURL is the frontend's address; links in emails point there.
	PublicURL string
	// SMTP relay for email; without SMTPAddr, emails are only logged.
	SMTPAddr, SMTPFrom, SMTPUsername, SMTPPassword string
	SMTPInsecure                                   bool
	// SMTPCAFile, when set, is the PEM file of the CA the relay's
	// certificate chains to (a private CA).
	SMTPCAFile string
	// SMS provider; without SMSURL, SMS are only logged.
	SMSURL, SMSKey string
	// NoticeAttempts is how many times a notice is tried before it is dead.
	NoticeAttempts int
	NoticeRetry    time.Duration
}

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.Duration(&c.RefreshTokenTTL, "refresh-token-ttl", 30*24*time.Hour, "lifetime of refresh tokens")
	l.Int(&c.SignInPerEmail, "sign-in-limit-per-email", 10, "sign-in attempts allowed per email from one client address in a window")
	l.Int(&c.SignInPerEmailAll, "sign-in-limit-per-email-all", 100, "sign-in attempts allowed per email from all client addresses in a window, except from addresses the user signed in from before")
	l.Int(&c.PublicPerClient, "public-limit-per-client", 100, "calls to each unauthenticated route (sign-up, setup link, invitation links; ten times as many for refresh and sign-out) allowed per client address in the sign-in window")
	l.Int(&c.InvitationsPerOrganization, "invitation-limit-per-organization", 200, "invitation emails (new or resent) an organization may send in 24 hours")
	l.Int(&c.InvitationsPerRecipient, "invitation-limit-per-recipient", 5, "invitation emails (new or resent) one address may receive in 24 hours")
	l.Int(&c.SignInPerClient, "sign-in-limit-per-client", 100, "sign-in attempts allowed per client address in a window")
	l.Duration(&c.SignInWindow, "sign-in-limit-window", 15*time.Minute, "window of the sign-in limits")
	l.Int(&c.PasswordHashes, "password-hash-concurrency", 0, "password hashes (argon2id, 19 MiB each) running at once; 0: one per CPU")
	l.String(&c.TokenSigningKey, "token-signing-key", "", "base64 Ed25519 seed that signs access tokens (accounts only)")
	l.String(&c.PublicURL, "public-url", "http://localhost:8080", "the frontend's base URL, which links in emails point to")
	l.String(&c.SMTPAddr, "smtp-addr", "", "SMTP submission relay host:port (STARTTLS); empty: emails are logged, not sent")
	l.String(&c.SMTPFrom, "smtp-from", "Mailplane <no-reply@localhost>", "sender of notices")
	l.String(&c.SMTPUsername, "smtp-username", "", "SMTP AUTH user; empty: no AUTH")
	l.String(&c.SMTPPassword, "smtp-password", "", "SMTP AUTH password")
	l.Bool(&c.SMTPInsecure, "smtp-insecure", false, "no STARTTLS: only for a relay on loopback")
	l.String(&c.SMTPCAFile, "smtp-ca-file", "", "PEM file of the CA of the relay's certificate; empty: the system's roots")
	l.String(&c.SMSURL, "sms-url", "", "SMS provider endpoint (JSON POST); empty: SMS are logged, not sent")
	l.String(&c.SMSKey, "sms-key", "", "SMS provider API key")
	l.Int(&c.NoticeAttempts, "notice-attempts", 8, "delivery attempts before a notice is dead")
	l.Duration(&c.NoticeRetry, "notice-retry", 30*time.Second, "delay after a notice's first failure; doubles each time, at most 1h")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	config.Check(&errs, c.SignInPerEmail > 0, "sign-in-limit-per-email", "want a positive number")
	config.Check(&errs, c.SignInPerClient > 0, "sign-in-limit-per-client", "want a positive number")
	config.Check(&errs, c.SignInPerEmailAll >= c.SignInPerEmail, "sign-in-limit-per-email-all", "want at least sign-in-limit-per-email (%d), got %d", c.SignInPerEmail, c.SignInPerEmailAll)
	config.Check(&errs, c.PublicPerClient > 0, "public-limit-per-client", "want a positive number")
	config.Check(&errs, c.InvitationsPerOrganization > 0, "invitation-limit-per-organization", "want a positive number")
	config.Check(&errs, c.InvitationsPerRecipient > 0, "invitation-limit-per-recipient", "want a positive number")
	config.Check(&errs, c.SignInWindow > 0, "sign-in-limit-window", "want a positive duration")
	config.Check(&errs, c.PasswordHashes >= 0, "password-hash-concurrency", "want 0 (one per CPU) or more, got %d", c.PasswordHashes)
	_, err := auth.ParsePrivateKey(c.TokenSigningKey)
	config.Check(&errs, err == nil, "token-signing-key", "%v", err)
	u, err := url.Parse(c.PublicURL)
	config.Check(&errs, err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "", "public-url", "want an http(s) URL, got %q", c.PublicURL)
	if c.SMTPAddr != "" {
		_, _, err := net.SplitHostPort(c.SMTPAddr)
		config.Check(&errs, err == nil, "smtp-addr", "want host:port, got %q", c.SMTPAddr)
		_, err = mail.ParseAddress(c.SMTPFrom)
		config.Check(&errs, err == nil, "smtp-from", "want an address like Mailplane <no-reply@example.com>, got %q", c.SMTPFrom)
	}
	config.Check(&errs, c.NoticeAttempts > 0, "notice-attempts", "want a positive number")
	config.Check(&errs, c.NoticeRetry > 0, "notice-retry", "want a positive duration")
	return errs
}

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  accountsevents.Subjects(),
		Settings:   c,
		Check: func(p service.Process) []error {
			var errs []error
			config.Check(&errs, c.RefreshTokenTTL >= p.AccessTokenTTL, "refresh-token-ttl", "want at least access-token-ttl (%s), got %s", p.AccessTokenTTL, c.RefreshTokenTTL)
			key, err := auth.ParsePrivateKey(c.TokenSigningKey)
			if err != nil {
				return errs // Validate named it.
			}
			if p.Production {
				err := auth.ProductionSigningKey(c.TokenSigningKey)
				config.Check(&errs, err == nil, "token-signing-key", "%v", err)
			}
			// A mismatched pair would only show as 401s on every call.
			config.Check(&errs, p.TokenPublicKey == nil || p.TokenPublicKey.Equal(key.Public()), "token-public-key", "is not the public half of token-signing-key")
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			cfg := *c
			cfg.AccessTokenTTL = env.AccessTokenTTL
			if err := Register(env.GRPC, env.Pool, cfg, env.Log); err != nil {
				return service.Parts{}, err
			}
			notices, err := NoticeSender(env.Pool, cfg, env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			return service.Parts{Subscriptions: Subscriptions(env.Pool, env.Log), Workers: []func(context.Context) error{notices}}, nil
		},
	}
}

// Register adds the accounts services to srv. pool's search_path must be
// Schema, migrated.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) error {
	key, err := auth.ParsePrivateKey(c.TokenSigningKey)
	if err != nil {
		return err
	}
	// A Config built in code rather than loaded may leave the newer limits
	// unset: they take their defaults.
	orDefault := func(n, def int) int {
		if n <= 0 {
			return def
		}
		return n
	}
	limits := internal.Limits{
		PerEmail: c.SignInPerEmail, PerEmailAll: orDefault(c.SignInPerEmailAll, 10*c.SignInPerEmail), PerClient: c.SignInPerClient, Window: c.SignInWindow,
		PublicPerClient:            orDefault(c.PublicPerClient, 100),
		InvitationsPerOrganization: orDefault(c.InvitationsPerOrganization, 200),
		InvitationsPerRecipient:    orDefault(c.InvitationsPerRecipient, 5),
	}
	s := internal.NewServer(internal.NewStore(pool), auth.NewSigner(key, c.AccessTokenTTL), c.RefreshTokenTTL, limits, c.PasswordHashes, c.PublicURL, log)
	// Notices' jobs are inserted here and worked by NoticeSender's client.
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		return err
	}
	s.SetNotices(internal.Notices{Jobs: inserter, Attempts: c.NoticeAttempts})
	accountsv1.RegisterAuthServiceServer(srv, s)
	accountsv1.RegisterUserServiceServer(srv, s)
	accountsv1.RegisterOrganizationServiceServer(srv, s)
	accountsv1.RegisterApiTokenServiceServer(srv, s)
	accountsv1.RegisterAuditServiceServer(srv, s)
	accountsv1.RegisterInvitationServiceServer(srv, s)
	accountsv1.RegisterNoticeServiceServer(srv, s)
	return nil
}

// Subscriptions are the events the service consumes: the audit records every
// service publishes, kept in the organization's audit log; and the mail
// services the mailboxes service creates and purges, which say whose
// logins an organization may release.
func Subscriptions(pool *pgxpool.Pool, log *slog.Logger) []events.Subscription {
	store := internal.NewStore(pool)
	return []events.Subscription{{
		Durable:  internal.DomainConsumer,
		Subjects: []string{mailboxesevents.MailServiceCreated, mailboxesevents.MailServicePurged},
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var ev mailboxesv1.MailServiceChanged
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				log.ErrorContext(ctx, "mail service event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			if err := internal.ApplyMailServiceChanged(ctx, tx, m.Subject(), &ev); err != nil {
				if errs.Is(err, errs.InvalidArgument) {
					log.ErrorContext(ctx, "mail service event dropped", "subject", m.Subject(), "error", err)
					return nil
				}
				return err
			}
			return nil
		},
	}, {
		Durable:  internal.AuditConsumer,
		Subjects: []string{accountsevents.AnyAuditRecorded},
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

// NoticeSender returns the worker that delivers the service's notices
// (emails, SMS) with retries, until its context ends.
func NoticeSender(pool *pgxpool.Pool, c Config, log *slog.Logger) (func(context.Context) error, error) {
	var email internal.EmailSender = notify.LogEmail{Log: log}
	if c.SMTPAddr != "" {
		m := &notify.SMTP{Addr: c.SMTPAddr, From: c.SMTPFrom, Username: c.SMTPUsername, Password: c.SMTPPassword, Insecure: c.SMTPInsecure}
		if c.SMTPCAFile != "" {
			pem, err := os.ReadFile(c.SMTPCAFile)
			if err != nil {
				return nil, fmt.Errorf("smtp-ca-file: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp-ca-file %s: no PEM certificate in it", c.SMTPCAFile)
			}
			host, _, _ := net.SplitHostPort(c.SMTPAddr)
			m.TLS = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
		}
		email = m
	}
	var sms internal.SMSSender = notify.LogSMS{Log: log}
	if c.SMSURL != "" {
		sms = &notify.HTTPSMS{URL: c.SMSURL, Key: c.SMSKey}
	}
	workers := river.NewWorkers()
	internal.AddNoticeSender(workers, &internal.NoticeSender{Pool: pool, Email: email, SMS: sms, Log: log, FirstRetry: c.NoticeRetry})
	client, err := jobs.New(pool, jobs.Config{Schema: Schema, Workers: workers, Log: log})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return jobs.Run(ctx, client) }, nil
}
