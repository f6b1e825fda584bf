// Package dnssecurity is the DNS security service's one public entry: its
// settings, its schema, and how to register it on a gRPC server.
package dnssecurity

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/dnssecurityevents"
	internal "github.com/mailplane/mailplane/services/dnssecurity/internal"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/mirror"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/service"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "dnssecurity"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// Config holds the service's settings.
type Config struct {
	// MXHosts are our MX hosts, comma-separated; SPFInclude the name
	// customers include in their SPF record; SendingIPs the networks our
	// servers send from, comma-separated CIDRs.
	MXHosts    string
	SPFInclude string
	SendingIPs string
	// DKIMGrace is how long a replaced DKIM key stays published.
	DKIMGrace time.Duration

	// AccountsAddr is the accounts service's gRPC address (the process's
	// accounts-addr; empty: this process's own).
	AccountsAddr string
	// SecretKeys seal DKIM private keys and TSIG secrets (the process's
	// secret-keys).
	SecretKeys string
}

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.String(&c.MXHosts, "mx-hosts", "mx1.mailplane.test,mx2.mailplane.test", "our MX hosts, comma-separated, that customers' domains must direct mail to (dnssecurity)")
	l.String(&c.SPFInclude, "spf-include", "_spf.mailplane.test", "the name customers include in their SPF record (dnssecurity)")
	l.String(&c.SendingIPs, "sending-ips", "", "networks our servers send mail from, comma-separated CIDRs (dnssecurity)")
	l.Duration(&c.DKIMGrace, "dkim-grace", 7*24*time.Hour, "how long a replaced DKIM key stays published (dnssecurity)")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	_, err := c.ours()
	config.Check(&errs, err == nil, "sending-ips", "%v", err)
	config.Check(&errs, c.SPFInclude != "", "spf-include", "required")
	config.Check(&errs, c.MXHosts != "", "mx-hosts", "required")
	config.Check(&errs, c.DKIMGrace >= time.Hour, "dkim-grace", "want at least 1h, got %s", c.DKIMGrace)
	return errs
}

// ours is what the settings say our platform publishes.
func (c *Config) ours() (internal.Ours, error) {
	o := internal.Ours{SPFInclude: strings.TrimSuffix(strings.ToLower(strings.TrimSpace(c.SPFInclude)), ".")}
	for _, h := range strings.Split(c.MXHosts, ",") {
		if h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."); h != "" {
			o.MX = append(o.MX, h)
		}
	}
	for _, p := range strings.Split(c.SendingIPs, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return o, fmt.Errorf("want CIDRs like 192.0.2.0/24, got %q", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		o.IPs = append(o.IPs, prefix.Masked())
	}
	return o, nil
}

// accounts is the name of the service dnssecurity asks for roles.
const accounts = "accounts"

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  dnssecurityevents.Subjects(),
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
			svc, err := Register(env.GRPC, env.Pool, cfg, env.DNS, env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			return service.Parts{Subscriptions: svc.Subscriptions(), Workers: []func(context.Context) error{svc.Run}}, nil
		},
	}
}

// Service is the running service: its gRPC server and background work.
type Service struct {
	server *internal.Server
	conn   *grpc.ClientConn
	pool   *pgxpool.Pool
	log    *slog.Logger
}

// Register adds the dnssecurity services to srv. pool's search_path must
// be Schema, migrated; resolver asks the customers' zones.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, resolver *dns.Resolver, log *slog.Logger) (*Service, error) {
	ours, err := c.ours()
	if err != nil {
		return nil, fmt.Errorf("sending-ips: %w", err)
	}
	box, err := secret.ParseKeys(c.SecretKeys)
	if err != nil {
		return nil, fmt.Errorf("secret-keys: %w", err)
	}
	conn, err := grpc.NewClient(c.AccountsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("dial accounts at %s: %w", c.AccountsAddr, err)
	}
	s := internal.NewServer(pool, access.NewAccounts(conn), resolver, ours, box, log)
	if c.DKIMGrace > 0 {
		s.SetDKIMGrace(c.DKIMGrace)
	}
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.SetJobs(inserter)
	// Each refusal is audited, by whichever method.
	for _, desc := range []*grpc.ServiceDesc{
		&dnssecurityv1.SecurityService_ServiceDesc, &dnssecurityv1.SpfService_ServiceDesc,
		&dnssecurityv1.DkimKeyService_ServiceDesc, &dnssecurityv1.HostedZoneService_ServiceDesc,
	} {
		srv.RegisterService(s.AuditRefusals(desc), s)
	}
	return &Service{server: s, conn: conn, pool: pool, log: log}, nil
}

// Run works the service's jobs (diagnostics, changes followed until
// applied) and its periodic work (the daily diagnostics, retiring DKIM
// keys) until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	client, err := jobs.New(s.pool, jobs.Config{Schema: Schema, Workers: s.server.Workers(), Periodic: s.server.Periodic(), Log: s.log})
	if err != nil {
		return err
	}
	return jobs.Run(ctx, client)
}

// RetireDKIMKeys removes the records of the keys whose grace period ended,
// and reports how many (periodic work, called by tests).
func (s *Service) RetireDKIMKeys(ctx context.Context) (int, error) {
	return s.server.RetireDKIMKeys(ctx)
}

// QueueDailyDiagnostics queues the diagnostics due, and reports how many
// (periodic work, called by tests).
func (s *Service) QueueDailyDiagnostics(ctx context.Context) (int, error) {
	return s.server.QueueDailyDiagnostics(ctx)
}

// WorkJobs works the service's jobs without its periodic work until ctx
// is done: for tests. Jobs are fetched at once, as jobs.ForTest does.
func (s *Service) WorkJobs(ctx context.Context) error {
	client, err := jobs.New(s.pool, jobs.ForTest(jobs.Config{Schema: Schema, Workers: s.server.Workers(), Log: s.log}))
	if err != nil {
		return err
	}
	return jobs.Run(ctx, client)
}

// Subscriptions are the events the service consumes: mailboxes' mail
// services, whose domains it diagnoses from their verification on (its
// copy is platform/mirror's).
func (s *Service) Subscriptions() []events.Subscription {
	return []events.Subscription{mirror.MailServices{Durable: internal.MailServiceConsumer, Then: s.server.MailServiceChanged, Log: s.log}.Subscription()}
}
