// Package filters is the filters service's one public entry: its schema,
// and how to register it on a gRPC server.
package filters

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	internal "github.com/mailplane/mailplane/services/filters/internal"
	"github.com/mailplane/mailplane/services/filters/internal/install"
	"github.com/mailplane/mailplane/services/filters/internal/migrations"
	"github.com/mailplane/mailplane/services/filters/internal/runnow"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/mirror"
	"github.com/mailplane/mailplane/services/platform/service"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "filters"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// accounts is the service filters asks for roles.
const accounts = "accounts"

// Config holds the service's settings.
type Config struct {
	// AccountsAddr reaches accounts (the process's accounts-addr; empty:
	// this process's own).
	AccountsAddr string
	// MaxRules caps an address's rules; zero: internal.DefaultMaxRules.
	MaxRules int
	// ManageSieve is the Dovecot the scripts are installed in: its
	// ManageSieve address and the two master users (install.Installer);
	// an empty Addr: none (changes stay pending).
	ManageSieve ManageSieve
	// IMAPAddr is Dovecot's IMAP host:port, where run-now and the Spam
	// sweep log in as an address through ManageSieve.Personal (the same
	// master user); empty: runs are refused.
	IMAPAddr string
	// ReportAddr is where the mail servers' spam reports are taken
	// (filtersreport, HTTP); empty: off.
	ReportAddr string
	// ReportsPerHour caps an address's spam reports per hour; zero:
	// internal.DefaultReportsPerHour.
	ReportsPerHour int
	// ManageSieveTLS makes the installer STARTTLS, trusting the CA in
	// ManageSieveCAFile (empty: the system's roots); without it the
	// installer logs in only to a loopback address.
	ManageSieveTLS    bool
	ManageSieveCAFile string
	// Compiler and Installer compile and install an address's scripts;
	// nil: the rule compiler and ManageSieve (tests give fakes).
	Compiler  Compiler
	Installer Installer
	// Meter receives the service's metrics; nil: the process's.
	Meter metric.Meter
}

// ManageSieve is where and as whom scripts are installed.
type ManageSieve = install.Installer

// Installer puts an address's scripts in the mail store.
type Installer = internal.Installer

// Compiler turns an address's rules and settings into its scripts.
type Compiler = internal.Compiler

// Scripts are an address's Sieve scripts by name.
type Scripts = internal.Scripts

// Rule and Settings are what a Compiler compiles.
type (
	Rule     = internal.Rule
	Settings = internal.Settings
)

// maxRulesCap bounds max-rules-per-address: the rule model's cap
// (rules.MaxRules), past which it refuses a list.
const maxRulesCap = internal.DefaultMaxRules

// maxReportsPerHour bounds spam-reports-per-hour.
const maxReportsPerHour = 100000

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.Int(&c.MaxRules, "max-rules-per-address", internal.DefaultMaxRules, "the most rules an address may have, at most 200 (filters)")
	l.String(&c.ReportAddr, "report-addr", "127.0.0.1:9105", "TCP address taking the mail servers' spam reports (`mailplane report`, HTTP; only mail servers may reach it) (filters); empty: off")
	l.Int(&c.ReportsPerHour, "spam-reports-per-hour", internal.DefaultReportsPerHour, "spam reports recorded per address per hour, at most 100000 (filters)")
	l.String(&c.ManageSieve.Addr, "managesieve-addr", "", "Dovecot's ManageSieve host:port the scripts are installed through (filters); empty: changes are kept, not installed")
	l.String(&c.ManageSieve.Personal.User, "managesieve-master-user", "", "Dovecot master user whose sessions see an address's own Sieve storage (filters)")
	l.String(&c.ManageSieve.Personal.Password, "managesieve-master-password", "", "its password (filters)")
	l.String(&c.IMAPAddr, "imap-addr", "", "Dovecot's IMAP host:port for run-now and the Spam sweep, as managesieve-master-user (filters); empty: no runs")
	l.String(&c.ManageSieve.Platform.User, "managesieve-platform-user", "", "Dovecot master user whose sessions see the platform's Sieve storage (filters)")
	l.String(&c.ManageSieve.Platform.Password, "managesieve-platform-password", "", "its password (filters)")
	l.Bool(&c.ManageSieveTLS, "managesieve-tls", false, "STARTTLS before logging in to ManageSieve, refusing a server without it (filters); needed unless managesieve-addr is a loopback address")
	l.String(&c.ManageSieveCAFile, "managesieve-ca-file", "", "PEM file of the CA of ManageSieve's certificate (filters); empty: the system's roots")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	config.Check(&errs, c.MaxRules > 0 && c.MaxRules <= maxRulesCap, "max-rules-per-address", "want 1 to %d, got %d", maxRulesCap, c.MaxRules)
	config.Check(&errs, c.ReportsPerHour > 0 && c.ReportsPerHour <= maxReportsPerHour, "spam-reports-per-hour", "want 1 to %d, got %d", maxReportsPerHour, c.ReportsPerHour)
	if c.ReportAddr != "" {
		_, _, err := net.SplitHostPort(c.ReportAddr)
		config.Check(&errs, err == nil, "report-addr", "want host:port, got %q", c.ReportAddr)
	}
	if m := c.ManageSieve; m.Addr != "" {
		host, _, err := net.SplitHostPort(m.Addr)
		config.Check(&errs, err == nil, "managesieve-addr", "want host:port, got %q", m.Addr)
		ip := net.ParseIP(host)
		local := host == "localhost" || (ip != nil && ip.IsLoopback())
		config.Check(&errs, err != nil || local || c.ManageSieveTLS, "managesieve-tls", "needed with managesieve-addr %q, not a loopback address: the master passwords go only over TLS", m.Addr)
		config.Check(&errs, m.Personal.User != "" && m.Personal.Password != "", "managesieve-master-user", "a master user and its password are needed with managesieve-addr")
		config.Check(&errs, m.Platform.User != "" && m.Platform.Password != "", "managesieve-platform-user", "a platform user and its password are needed with managesieve-addr")
		if c.ManageSieveCAFile != "" {
			_, err := os.ReadFile(c.ManageSieveCAFile)
			config.Check(&errs, err == nil, "managesieve-ca-file", "%v", err)
		}
	}
	if c.IMAPAddr != "" {
		_, _, err := net.SplitHostPort(c.IMAPAddr)
		config.Check(&errs, err == nil, "imap-addr", "want host:port, got %q", c.IMAPAddr)
		config.Check(&errs, c.ManageSieve.Personal.User != "" && c.ManageSieve.Personal.Password != "", "managesieve-master-user", "a master user and its password are needed with imap-addr")
	}
	return errs
}

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  filtersevents.Subjects(),
		Settings:   c,
		Check: func(p service.Process) []error {
			var errs []error
			p.CheckAddr(&errs, accounts)
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			cfg := *c
			cfg.AccountsAddr = env.ServiceAddr(accounts)
			if cfg.ManageSieve.Addr == "" {
				// Not an error: a process without Dovecot still serves the
				// API; every change is kept pending and installed once set.
				env.Log.Warn("managesieve-addr is not set: filter changes are kept, not installed", "setting", config.EnvName("managesieve-addr"))
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
// events, which keep its copy of each address's users and rights
// (platform/mirror), give a new address its default filters and bring
// its auto-reply's script to install (AddressChanged); and mailboxes' mail
// services, the organization's own domains the external-mail mention
// leaves unmarked.
func (s *Service) Subscriptions() []events.Subscription {
	return []events.Subscription{
		mirror.Addresses{Durable: internal.AddressConsumer, Also: internal.AddressAlso, Then: s.server.AddressChanged, Log: s.log}.Subscription(),
		mirror.MailServices{Durable: internal.MailServiceConsumer, Then: s.server.MailServiceChanged, Log: s.log}.Subscription(),
	}
}

// Service is the running service.
type Service struct {
	server *internal.Server
	pool   *pgxpool.Pool
	log    *slog.Logger
	conn   *grpc.ClientConn
	report string
	ln     net.Listener
}

// Register adds the filters services to srv. pool's search_path must be
// Schema, migrated; c.AccountsAddr reaches accounts.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) (*Service, error) {
	conn, err := grpc.NewClient(c.AccountsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.AccountsAddr, err)
	}
	s := internal.NewServer(pool, access.NewAccounts(conn), log)
	s.SetMaxRules(c.MaxRules)
	s.SetReportsPerHour(c.ReportsPerHour)
	if c.Meter != nil {
		s.SetMeter(c.Meter)
	}
	if c.Compiler == nil {
		c.Compiler = internal.RulesCompiler{}
	}
	if c.Installer == nil && c.ManageSieve.Addr != "" {
		in := c.ManageSieve
		if c.ManageSieveTLS && in.TLS == nil {
			in.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
			if c.ManageSieveCAFile != "" {
				pem, err := os.ReadFile(c.ManageSieveCAFile)
				if err != nil {
					conn.Close()
					return nil, fmt.Errorf("managesieve-ca-file: %w", err)
				}
				in.TLS.RootCAs = x509.NewCertPool()
				if !in.TLS.RootCAs.AppendCertsFromPEM(pem) {
					conn.Close()
					return nil, fmt.Errorf("managesieve-ca-file %s: no PEM certificate", c.ManageSieveCAFile)
				}
			}
		}
		c.Installer = internal.ManageSieve{In: &in}
	}
	s.SetInstaller(c.Compiler, c.Installer)
	s.SetIMAP(internal.IMAP{Addr: c.IMAPAddr, Master: runnow.Login(c.ManageSieve.Personal)})
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.SetJobs(inserter)
	for _, desc := range []*grpc.ServiceDesc{&filtersv1.RuleService_ServiceDesc, &filtersv1.FilterSettingsService_ServiceDesc, &filtersv1.FilterRunService_ServiceDesc} {
		srv.RegisterService(s.AuditRefusals(desc), s)
	}
	return &Service{server: s, pool: pool, log: log, conn: conn, report: c.ReportAddr}, nil
}

// reinstallSweep is how often addresses whose scripts are still to
// install get a job again: a change made by an event, or one whose job
// gave up while the mail store was down, is installed at most this late.
const reinstallSweep = 5 * time.Minute

// Run works the service's jobs (the installation of changed scripts,
// the pruning of old spam reports) and takes the mail servers' spam
// reports on ReportAddr until ctx is done.
func (s *Service) Run(ctx context.Context) error { return s.run(ctx, s.jobsConfig()) }

// RunForTest is Run with jobs fetched at once (jobs.ForTest).
func (s *Service) RunForTest(ctx context.Context) error {
	return s.run(ctx, jobs.ForTest(s.jobsConfig()))
}

// QueueSpamPurges queues the purge of every address's old spam (the
// daily sweep) and says how many.
func (s *Service) QueueSpamPurges(ctx context.Context) (int, error) {
	return s.server.QueueSpamPurges(ctx)
}

// PurgeSpam removes from an address's spam folder (address is its
// resource name) the mail saved there before the day of before, as the
// daily sweep's job does with 30 days ago, and says how many.
func (s *Service) PurgeSpam(ctx context.Context, address string, before time.Time) (int, error) {
	return s.server.PurgeSpamOf(ctx, address, before)
}

// ReinstallPending queues the installation of every address whose
// scripts are still to install, and says how many.
func (s *Service) ReinstallPending(ctx context.Context) (int, error) {
	return s.server.ReinstallPending(ctx)
}

func (s *Service) jobsConfig() jobs.Config {
	return jobs.Config{Schema: Schema, Workers: s.server.Workers(), Log: s.log, Periodic: []jobs.Periodic{
		{Name: "reinstall pending scripts", Interval: reinstallSweep, Work: s.server.ReinstallPending},
		{Name: "purge old spam", Interval: internal.SpamSweepInterval, Work: s.server.QueueSpamPurges},
		{Name: "prune spam reports", Interval: time.Hour, Work: s.server.PruneSpamReports},
	}}
}

// Listen binds the report port, so that a process can stop on a taken
// port, naming it, before it says it serves. Run listens itself when
// Listen was not called.
func (s *Service) Listen() error {
	if s.ln != nil || s.report == "" {
		return nil
	}
	ln, err := config.Listen("report-addr", s.report)
	if err != nil {
		return fmt.Errorf("spam reports: %w", err)
	}
	s.ln = ln
	return nil
}

// ReportAddr is the address the report listener listens on once Listen
// bound it ("127.0.0.1:0" in tests gives a free port); empty when off.
func (s *Service) ReportAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *Service) run(ctx context.Context, jc jobs.Config) error {
	defer s.conn.Close()
	if err := s.Listen(); err != nil {
		return err
	}
	client, err := jobs.New(s.pool, jc)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return jobs.Run(ctx, client) })
	if s.ln != nil {
		g.Go(func() error {
			if err := s.server.ServeReports(ctx, s.ln); err != nil {
				return fmt.Errorf("spam reports on %s: %w", s.report, err)
			}
			return nil
		})
	}
	return g.Wait()
}
