// Package imports is the imports service's one public entry: its schema,
// settings, and how to register it on a gRPC server.
package imports

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"strconv"

	"github.com/jackc/pgx/v5/pgxpool"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports/importsevents"
	internal "github.com/mailplane/mailplane/services/imports/internal"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/imports/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/mirror"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/service"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "imports"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// accounts is the service imports asks for roles and people.
const accounts = "accounts"

// Config holds the service's settings.
type Config struct {
	// AccountsAddr reaches accounts (the process's accounts-addr; empty:
	// this process's own).
	AccountsAddr string
	// SecretKeys seal the source passwords (the process's secret-keys).
	SecretKeys string
	// IMAPAddr is the platform's Dovecot (host:port): hosted sources are
	// read from it, every destination written to it as MasterUser.
	IMAPAddr       string
	IMAPSecurity   string // tls, starttls or plain
	IMAPCAFile     string
	MasterUser     string
	MasterPassword string
	// SMTP sends the confirmations; an empty Addr: they are logged.
	SMTPAddr, SMTPFrom, SMTPUsername, SMTPPassword string
	SMTPInsecure                                   bool
	// Limits are the service's caps.
	Limits Limits
	// Copier is the IMAP engine; zero: imapcopy's (tests give fakes).
	Copier Copier
	// Email sends the confirmations; nil: SMTP* (tests give a recorder).
	Email EmailSender
}

// Limits are the caps an operator may change.
type Limits = internal.Limits

// Copier is the IMAP engine.
type Copier = internal.Copier

// EmailSender delivers the confirmations.
type EmailSender = internal.EmailSender

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.String(&c.IMAPAddr, "imports-imap-addr", "", "the platform's Dovecot IMAP host:port: hosted sources are read from it and every destination written to it (imports); empty: imports are refused")
	l.String(&c.IMAPSecurity, "imports-imap-security", "starttls", "how imports-imap-addr is reached: tls, starttls or plain (plain: loopback or a network only the cluster reaches) (imports)")
	l.String(&c.IMAPCAFile, "imports-imap-ca-file", "", "PEM file of the CA of imports-imap-addr's certificate; empty: the system's roots (imports)")
	l.String(&c.MasterUser, "imports-master-user", "", "Dovecot master user the destination is reached as (SASL PLAIN, acting as the address's login): no customer password is stored for it (imports)")
	l.String(&c.MasterPassword, "imports-master-password", "", "its password (imports)")
	l.String(&c.SMTPAddr, "imports-smtp-addr", "", "SMTP submission relay host:port (STARTTLS) the confirmations go through (imports); empty: they are logged, not sent")
	l.String(&c.SMTPFrom, "imports-smtp-from", "Mailplane <no-reply@localhost>", "sender of the confirmations (imports)")
	l.String(&c.SMTPUsername, "imports-smtp-username", "", "SMTP AUTH user at imports-smtp-addr; empty: no AUTH (imports)")
	l.String(&c.SMTPPassword, "imports-smtp-password", "", "its password (imports)")
	l.Bool(&c.SMTPInsecure, "imports-smtp-insecure", false, "no STARTTLS with imports-smtp-addr: only for a relay on loopback (imports)")
	l.Int(&c.Limits.ActiveJobs, "imports-max-active-jobs", internal.DefaultActiveJobs, "the most imports an organization may have running or waiting, 1 to 1000 (imports)")
	l.Int(&c.Limits.PerServer, "imports-max-per-server", 2, "the most imports copying from one source server at once, 1 to 100 (imports)")
	l.Bool(&c.Limits.PrivateSources, "imports-allow-private-sources", false, "let sources be on loopback and private networks: development and tests only (imports)")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	config.Check(&errs, c.Limits.ActiveJobs >= 1 && c.Limits.ActiveJobs <= 1000, "imports-max-active-jobs", "want 1 to 1000, got %d", c.Limits.ActiveJobs)
	config.Check(&errs, c.Limits.PerServer >= 1 && c.Limits.PerServer <= 100, "imports-max-per-server", "want 1 to 100, got %d", c.Limits.PerServer)
	_, err := security(c.IMAPSecurity)
	config.Check(&errs, err == nil, "imports-imap-security", "%v", err)
	if c.IMAPAddr != "" {
		_, port, err := net.SplitHostPort(c.IMAPAddr)
		_, perr := strconv.Atoi(port)
		config.Check(&errs, err == nil && perr == nil, "imports-imap-addr", "want host:port, got %q", c.IMAPAddr)
		config.Check(&errs, c.MasterUser != "" && c.MasterPassword != "", "imports-master-user", "a master user and its password are needed with imports-imap-addr")
	}
	if c.SMTPAddr != "" {
		_, _, err := net.SplitHostPort(c.SMTPAddr)
		config.Check(&errs, err == nil, "imports-smtp-addr", "want host:port, got %q", c.SMTPAddr)
		_, err = mail.ParseAddress(c.SMTPFrom)
		config.Check(&errs, err == nil, "imports-smtp-from", "want an address like Mailplane <no-reply@example.com>, got %q", c.SMTPFrom)
	}
	return errs
}

func security(s string) (imapcopy.Security, error) {
	switch s {
	case "tls":
		return imapcopy.TLS, nil
	case "starttls":
		return imapcopy.StartTLS, nil
	case "plain":
		return imapcopy.Plain, nil
	}
	return 0, fmt.Errorf("want tls, starttls or plain, got %q", s)
}

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  importsevents.Subjects(),
		Settings:   c,
		Check: func(p service.Process) []error {
			var errs []error
			p.CheckAddr(&errs, accounts)
			_, err := secret.ParseKeys(p.SecretKeys)
			config.Check(&errs, err == nil, "secret-keys", "%v", err)
			if err == nil && p.Production {
				err := secret.ProductionKeys(p.SecretKeys)
				config.Check(&errs, err == nil, "secret-keys", "%v", err)
			}
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			cfg := *c
			cfg.AccountsAddr, cfg.SecretKeys = env.ServiceAddr(accounts), env.SecretKeys
			if cfg.IMAPAddr == "" {
				env.Log.Warn("imports-imap-addr is not set: imports are refused", "setting", config.EnvName("imports-imap-addr"))
			}
			svc, err := Register(env.GRPC, env.Pool, cfg, env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			return service.Parts{Subscriptions: svc.Subscriptions(), Workers: []func(context.Context) error{svc.Run}}, nil
		},
	}
}

// Subscriptions are the events the service consumes: mailboxes' address
// events, which keep its copy of each address's login and users (the
// destinations a caller may import into; platform/mirror).
func (s *Service) Subscriptions() []events.Subscription {
	return []events.Subscription{mirror.Addresses{Durable: internal.AddressConsumer, Log: s.log}.Subscription()}
}

// Service is the running service.
type Service struct {
	server *internal.Server
	pool   *pgxpool.Pool
	log    *slog.Logger
	conn   *grpc.ClientConn
}

// Register adds the imports service to srv. pool's search_path must be
// Schema, migrated; c.AccountsAddr reaches accounts.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) (*Service, error) {
	box, err := secret.ParseKeys(c.SecretKeys)
	if err != nil {
		return nil, fmt.Errorf("secret-keys: %w", err)
	}
	hosted, err := c.hosted()
	if err != nil {
		return nil, err
	}
	email := c.Email
	if email == nil {
		email, err = c.smtp(log)
		if err != nil {
			return nil, err
		}
	}
	if c.Copier.Check == nil {
		c.Copier.Check = imapcopy.Check
	}
	if c.Copier.Run == nil {
		c.Copier.Run = imapcopy.Run
	}
	if c.Limits.ActiveJobs == 0 {
		c.Limits.ActiveJobs = internal.DefaultActiveJobs
	}
	if c.Limits.PerServer == 0 {
		c.Limits.PerServer = 2
	}
	if c.Limits.ChecksPerHour == 0 {
		c.Limits.ChecksPerHour = internal.DefaultChecksPerHour
	}
	conn, err := grpc.NewClient(c.AccountsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.AccountsAddr, err)
	}
	s := internal.NewServer(internal.Deps{Pool: pool, Accounts: conn, Log: log, Box: box, Hosted: hosted,
		Copier: c.Copier, Email: email, Limits: c.Limits})
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.SetJobs(inserter)
	srv.RegisterService(s.AuditRefusals(&importsv1.ImportService_ServiceDesc), s)
	return &Service{server: s, pool: pool, log: log, conn: conn}, nil
}

// hosted is the platform's IMAP server as the settings say.
func (c Config) hosted() (internal.Hosted, error) {
	if c.IMAPAddr == "" {
		return internal.Hosted{}, nil
	}
	host, port, err := net.SplitHostPort(c.IMAPAddr)
	if err != nil {
		return internal.Hosted{}, fmt.Errorf("imports-imap-addr: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return internal.Hosted{}, fmt.Errorf("imports-imap-addr: port %q", port)
	}
	sec, err := security(c.IMAPSecurity)
	if err != nil {
		return internal.Hosted{}, fmt.Errorf("imports-imap-security: %w", err)
	}
	h := internal.Hosted{Host: host, Port: p, Security: sec, MasterUser: c.MasterUser, MasterPassword: c.MasterPassword}
	if c.IMAPCAFile != "" {
		pem, err := os.ReadFile(c.IMAPCAFile)
		if err != nil {
			return h, fmt.Errorf("imports-imap-ca-file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return h, fmt.Errorf("imports-imap-ca-file %s: no PEM certificate in it", c.IMAPCAFile)
		}
		h.TLS = &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	return h, nil
}

func (c Config) smtp(log *slog.Logger) (EmailSender, error) {
	if c.SMTPAddr == "" {
		return notify.LogEmail{Log: log}, nil
	}
	return &notify.SMTP{Addr: c.SMTPAddr, From: c.SMTPFrom, Username: c.SMTPUsername, Password: c.SMTPPassword, Insecure: c.SMTPInsecure}, nil
}

// Run works the service's jobs (the copies and the confirmations) until
// ctx is done.
func (s *Service) Run(ctx context.Context) error { return s.run(ctx, s.jobsConfig()) }

// RunForTest is Run with jobs fetched at once (jobs.ForTest).
func (s *Service) RunForTest(ctx context.Context) error {
	return s.run(ctx, jobs.ForTest(s.jobsConfig()))
}

func (s *Service) jobsConfig() jobs.Config {
	return jobs.Config{Schema: Schema, Workers: s.server.Workers(), Log: s.log}
}

func (s *Service) run(ctx context.Context, jc jobs.Config) error {
	defer s.conn.Close()
	client, err := jobs.New(s.pool, jc)
	if err != nil {
		return err
	}
	return jobs.Run(ctx, client)
}
