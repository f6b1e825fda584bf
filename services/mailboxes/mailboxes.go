// Package mailboxes is the mailboxes service's one public entry: its
// settings, its schema, and how to register it on a gRPC server.
package mailboxes

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	internal "github.com/mailplane/mailplane/services/mailboxes/internal"
	"github.com/mailplane/mailplane/services/mailboxes/internal/migrations"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/service"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "mailboxes"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// Config holds the service's settings.
type Config struct {
	// AccountsAddr is the accounts service's gRPC address (the process's
	// accounts-addr setting; empty: this process's own).
	AccountsAddr string
	// SocketmapAddr is where Postfix's table lookups (socketmap) are
	// answered; PolicyAddr, its policy delegation; MilterAddr, the milter
	// checking the From header. Each is a TCP host:port; empty: off.
	SocketmapAddr string
	PolicyAddr    string
	MilterAddr    string
	// ListsLMTPAddr is the lists service's LMTP as Postfix reaches it
	// (host:port): the socketmap's transport map sends list addresses
	// there. Empty: list addresses are unknown to Postfix.
	ListsLMTPAddr string
	// DomainCheckInterval is how often pending domain claims are checked
	// (each claim's own checks back off from it, up to an hour).
	DomainCheckInterval time.Duration
	// MailConns and MailConnsPerClient cap the connections each of those
	// servers holds, in all and per client address.
	MailConns          int
	MailConnsPerClient int
	// BulkJobsRunning caps an organization's running bulk jobs;
	// BulkUploadsPerHour, the uploads that start or restart one.
	BulkJobsRunning    int
	BulkUploadsPerHour int
}

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.String(&c.SocketmapAddr, "socketmap-addr", "127.0.0.1:9101", "TCP address answering Postfix's socketmap lookups (mailboxes); empty: off")
	l.String(&c.PolicyAddr, "policy-addr", "127.0.0.1:9102", "TCP address of the Postfix policy service (mailboxes); empty: off")
	l.String(&c.MilterAddr, "milter-addr", "127.0.0.1:9103", "TCP address of the milter checking the From header (mailboxes); empty: off")
	l.String(&c.ListsLMTPAddr, "lists-lmtp-addr", "127.0.0.1:9104", "host:port of the lists service's LMTP as Postfix reaches it: the socketmap's transport map sends list addresses there (mailboxes); empty: Postfix refuses them")
	l.Duration(&c.DomainCheckInterval, "domain-check-interval", 5*time.Minute, "how often pending domain claims are checked (mailboxes)")
	l.Int(&c.MailConns, "mail-conns", internal.DefaultConnTotal, "connections each of the socketmap, policy and milter servers holds at most (mailboxes)")
	l.Int(&c.MailConnsPerClient, "mail-conns-per-client", internal.DefaultConnPerClient, "connections of one client address each of the socketmap, policy and milter servers holds at most (mailboxes)")
	l.Int(&c.BulkJobsRunning, "bulk-jobs-running", internal.DefaultBulkJobsRunning, "bulk jobs an organization may have running at once (mailboxes)")
	l.Int(&c.BulkUploadsPerHour, "bulk-uploads-per-hour", internal.DefaultBulkUploadsPerHour, "bulk uploads starting a job an organization may make per hour (mailboxes)")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	config.Check(&errs, c.DomainCheckInterval >= time.Second, "domain-check-interval", "must be at least 1s")
	if c.ListsLMTPAddr != "" {
		_, err := internal.LMTPTransport(c.ListsLMTPAddr)
		config.Check(&errs, err == nil, "lists-lmtp-addr", "must be host:port, where Postfix reaches the lists' LMTP: %v", err)
	}
	for _, s := range []struct {
		name string
		v    int
	}{{"mail-conns", c.MailConns}, {"mail-conns-per-client", c.MailConnsPerClient}, {"bulk-jobs-running", c.BulkJobsRunning}, {"bulk-uploads-per-hour", c.BulkUploadsPerHour}} {
		if s.v < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative (0: the default)", s.name))
		}
	}
	return errs
}

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  mailboxesevents.Subjects(),
		Settings:   c,
		Check: func(p service.Process) []error {
			var errs []error
			p.CheckAddr(&errs, accounts)
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			cfg := *c
			cfg.AccountsAddr = env.ServiceAddr(accounts)
			svc, err := Register(env.GRPC, env.Pool, cfg, env.DNS, env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			// Bound now: a taken port stops the process before it serves.
			if err := svc.Listen(); err != nil {
				return service.Parts{}, err
			}
			return service.Parts{Subscriptions: Subscriptions(env.Pool, env.Log), Workers: []func(context.Context) error{svc.Run}}, nil
		},
	}
}

// accounts is the name of the service mailboxes asks for roles.
const accounts = "accounts"

// Service is the running service: its gRPC server and background work.
type Service struct {
	server *internal.Server
	conn   *grpc.ClientConn
	pool   *pgxpool.Pool
	log    *slog.Logger
	// mail are the servers Postfix talks to that are switched on, and lns
	// their listeners once Listen bound them.
	mail []mailServer
	lns  []net.Listener
}

// mailServer is one of the servers Postfix talks to; setting names its
// address's setting.
type mailServer struct {
	name, setting, addr string
	serve               func(context.Context, net.Listener) error
}

// Register adds the mailboxes services to srv. pool's search_path must be
// Schema, migrated; resolver is asked for domains' verification records.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, resolver *dns.Resolver, log *slog.Logger) (*Service, error) {
	// Calls take turns over accounts' pods (a headless Service resolves to
	// each of them), as the gateway's do.
	conn, err := grpc.NewClient(c.AccountsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	if err != nil {
		return nil, fmt.Errorf("dial accounts at %s: %w", c.AccountsAddr, err)
	}
	s := internal.NewServer(pool, internal.NewAccountsClient(conn), log)
	s.SetResolver(resolver, c.DomainCheckInterval)
	s.SetBulkLimits(c.BulkJobsRunning, c.BulkUploadsPerHour)
	// Jobs are queued through this client and worked by Run's.
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.SetJobs(inserter)
	// Each refusal is audited, by whichever method.
	for _, desc := range []*grpc.ServiceDesc{
		&mailboxesv1.MailServiceService_ServiceDesc, &mailboxesv1.AddressService_ServiceDesc,
		&mailboxesv1.ReservationService_ServiceDesc, &mailboxesv1.SenderService_ServiceDesc,
		&mailboxesv1.DevicePasswordService_ServiceDesc, &mailboxesv1.BulkService_ServiceDesc,
		&mailboxesv1.SignatureService_ServiceDesc,
	} {
		srv.RegisterService(s.AuditRefusals(desc), s)
	}
	lookups := internal.NewLookups(pool)
	if c.ListsLMTPAddr != "" {
		t, err := internal.LMTPTransport(c.ListsLMTPAddr)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("lists-lmtp-addr: %w", err)
		}
		lookups.Route(internal.HolderLists, t)
	}
	limits := internal.ConnLimits{Total: c.MailConns, PerClient: c.MailConnsPerClient}
	sm, pol, mil := internal.NewSocketmapServer(lookups, log), internal.NewPolicyServer(lookups, log), internal.NewMilterServer(lookups, log)
	sm.Limits, pol.Limits, mil.Limits = limits, limits, limits
	var mail []mailServer
	for _, m := range []mailServer{
		{"socketmap", "socketmap-addr", c.SocketmapAddr, sm.Serve},
		{"policy", "policy-addr", c.PolicyAddr, pol.Serve},
		{"milter", "milter-addr", c.MilterAddr, mil.Serve},
	} {
		if m.addr != "" {
			mail = append(mail, m)
		}
	}
	return &Service{server: s, conn: conn, mail: mail, pool: pool, log: log}, nil
}

// Listen binds the ports Postfix talks to, so that a process can stop on a
// taken port, naming it, before it says it serves. Run listens itself
// when Listen was not called.
func (s *Service) Listen() error {
	if s.lns != nil {
		return nil
	}
	lns := make([]net.Listener, 0, len(s.mail))
	for _, m := range s.mail {
		ln, err := config.Listen(m.setting, m.addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("%s: %w", m.name, err)
		}
		lns = append(lns, ln)
	}
	s.lns = lns
	return nil
}

// Run works the service's jobs (bulk creations) and its periodic work
// (purging mail services deleted over 30 days ago, checking domain
// claims...), and serves Postfix (socketmap lookups, policy, milter),
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer s.conn.Close()
	if err := s.Listen(); err != nil {
		return err
	}
	client, err := jobs.New(s.pool, jobs.Config{Schema: Schema, Workers: s.server.Workers(), Periodic: s.server.Periodic(), Log: s.log})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return jobs.Run(ctx, client) })
	for i, m := range s.mail {
		g.Go(func() error {
			if err := m.serve(ctx, s.lns[i]); err != nil {
				return fmt.Errorf("%s on %s: %w", m.name, m.addr, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// Purge deletes for good the mail services deleted over 30 days ago, and
// reports how many.
func (s *Service) Purge(ctx context.Context) (int, error) { return s.server.Purge(ctx) }

// AnnounceMailServices publishes the creation of mail services made before
// the event had listeners, and reports how many.
func (s *Service) AnnounceMailServices(ctx context.Context) (int, error) {
	return s.server.AnnounceMailServices(ctx)
}

// CheckClaims looks for the verification records of pending domain claims
// due for a look, and reports how many it verified or ended.
func (s *Service) CheckClaims(ctx context.Context) (int, error) { return s.server.CheckClaims(ctx) }

// WorkJobs works the service's jobs (bulk creations), without its
// periodic work, until ctx is done: for tests, which call the periodic work
// themselves. Jobs are fetched at once, as jobs.ForTest does.
func (s *Service) WorkJobs(ctx context.Context) error {
	client, err := jobs.New(s.pool, jobs.ForTest(jobs.Config{Schema: Schema, Workers: s.server.Workers(), Log: s.log}))
	if err != nil {
		return err
	}
	return jobs.Run(ctx, client)
}
