// Package lists is the lists service's one public entry: its schema, and
// how to register it on a gRPC server.
package lists

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	internal "github.com/mailplane/mailplane/services/lists/internal"
	"github.com/mailplane/mailplane/services/lists/internal/migrations"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/config"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/service"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// Schema is the PostgreSQL schema the service owns.
const Schema = "lists"

// Migrations are the schema's SQL migrations.
var Migrations = migrations.FS

// The services lists calls: accounts for roles, mailboxes for the mail
// services' domains and the reservation of the lists' addresses.
const (
	accounts  = "accounts"
	mailboxes = "mailboxes"
)

// Config holds the service's settings.
type Config struct {
	// AccountsAddr and MailboxesAddr reach those services (the process's
	// accounts-addr and mailboxes-addr; empty: this process's own).
	AccountsAddr, MailboxesAddr string
	// LMTPAddr is where the MTA delivers the lists' mail (LMTP, TCP
	// host:port); empty: off.
	LMTPAddr string
	// Relay is the SMTP relay posts go out through.
	Relay Relay
	// HeldPostTTL is how long a held post waits for a moderator before
	// it is deleted; zero: DefaultHeldPostTTL.
	HeldPostTTL time.Duration
	// EdgeURL is the edge's public base URL: the forms post to it, and
	// one-click unsubscribe links (https only) point to it.
	EdgeURL string
	// FormLimit bounds the public form calls per client address; zero:
	// internal.DefaultFormsPerClient per DefaultFormWindow.
	FormLimit FormLimit
}

// FormLimit bounds the public form calls per client address.
type FormLimit = internal.FormLimit

// DefaultHeldPostTTL is HeldPostTTL's default: two weeks.
const DefaultHeldPostTTL = internal.DefaultHeldPostTTL

// maxHeldPostTTL bounds held-post-ttl: a queue kept for longer is one
// nobody reads.
const maxHeldPostTTL = 365 * 24 * time.Hour

// Relay is the SMTP relay the lists send through.
type Relay = internal.Relay

// Register adds the settings to l.
func (c *Config) Register(l *config.Loader) {
	l.String(&c.LMTPAddr, "lmtp-addr", "127.0.0.1:9104", "TCP address of the LMTP server the MTA delivers list addresses' mail to (lists); empty: off")
	l.String(&c.Relay.Addr, "smtp-relay", "", "SMTP relay host:port the lists send posts through, STARTTLS required unless smtp-relay-insecure (lists); empty: copies are logged, not sent")
	l.String(&c.Relay.Username, "smtp-relay-username", "", "SMTP AUTH user at smtp-relay (lists); empty: no AUTH")
	l.String(&c.Relay.Password, "smtp-relay-password", "", "SMTP AUTH password at smtp-relay (lists)")
	l.Duration(&c.HeldPostTTL, "held-post-ttl", DefaultHeldPostTTL, "how long a post held for a moderator waits before it is deleted, at most 8760h (lists)")
	l.String(&c.EdgeURL, "edge-url", "http://localhost:8080", "public base URL of the REST edge, https in production: the lists' web forms post to it and one-click unsubscribe links point to it (lists)")
	l.Bool(&c.Relay.Insecure, "smtp-relay-insecure", false, "no STARTTLS with smtp-relay: only for a relay on loopback (lists)")
}

// Validate reports every bad setting.
func (c *Config) Validate() []error {
	var errs []error
	for _, a := range []struct{ name, v string }{{"lmtp-addr", c.LMTPAddr}, {"smtp-relay", c.Relay.Addr}} {
		if a.v != "" {
			_, _, err := net.SplitHostPort(a.v)
			config.Check(&errs, err == nil, a.name, "want host:port, got %q", a.v)
		}
	}
	config.Check(&errs, checkEdgeURL(c.EdgeURL) == nil, "edge-url", "%v", checkEdgeURL(c.EdgeURL))
	config.Check(&errs, c.HeldPostTTL > 0 && c.HeldPostTTL <= maxHeldPostTTL, "held-post-ttl", "want a duration above 0 and at most 8760h, got %s", c.HeldPostTTL)
	return errs
}

// checkEdgeURL accepts an https base URL, an http one on loopback
// (development), or none.
func checkEdgeURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("want a base URL like https://api.example.com, got %q", s)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if u.Scheme != "https" && !(u.Scheme == "http" && (host == "localhost" || ip != nil && ip.IsLoopback())) {
		return fmt.Errorf("want https (http only on localhost), got %q", s)
	}
	return nil
}

// New returns the service as a process runs it, with its settings in c.
func New(c *Config) service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  listsevents.Subjects(),
		Settings:   c,
		Check: func(p service.Process) []error {
			var errs []error
			p.CheckAddr(&errs, accounts)
			p.CheckAddr(&errs, mailboxes)
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			cfg := *c
			cfg.AccountsAddr, cfg.MailboxesAddr = env.ServiceAddr(accounts), env.ServiceAddr(mailboxes)
			if cfg.Relay.Addr == "" {
				// Not an error: the Deployment does not set it yet, and a
				// process without lists' mail path must still serve the API.
				env.Log.Warn("smtp-relay is not set: the lists' posts are logged, not sent", "setting", config.EnvName("smtp-relay"))
			}
			svc, err := Register(env.GRPC, env.Pool, cfg, env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			// Bound now: a taken port stops the process before it serves.
			if err := svc.Listen(); err != nil {
				svc.close()
				return service.Parts{}, err
			}
			return service.Parts{Subscriptions: Subscriptions(env.Log), Workers: []func(context.Context) error{svc.Run}}, nil
		},
	}
}

// Subscriptions are the events the service consumes: removed members,
// deleted users and released logins, which keep the moderators named as
// users true (internal.ApplyPersonLeft).
func Subscriptions(log *slog.Logger) []events.Subscription {
	return []events.Subscription{{
		Durable:  internal.PeopleConsumer,
		Subjects: []string{accountsevents.MemberDeleted, accountsevents.UserDeleted, accountsevents.UserLoginReleased},
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var ev proto.Message
			switch {
			case events.SubjectIs(m.Subject(), accountsevents.MemberDeleted):
				ev = &accountsv1.MemberDeleted{}
			case events.SubjectIs(m.Subject(), accountsevents.UserDeleted):
				ev = &accountsv1.UserDeleted{}
			default:
				ev = &accountsv1.LoginReleased{}
			}
			if err := proto.Unmarshal(m.Data(), ev); err != nil {
				log.ErrorContext(ctx, "people event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			return internal.ApplyPersonLeft(ctx, tx, ev)
		},
	}}
}

// Service is the running service.
type Service struct {
	server *internal.Server
	pool   *pgxpool.Pool
	log    *slog.Logger
	conns  []*grpc.ClientConn
	lmtp   string
	ln     net.Listener
}

// Register adds the lists services to srv. pool's search_path must be
// Schema, migrated; c's AccountsAddr and MailboxesAddr reach those
// services.
func Register(srv *grpc.Server, pool *pgxpool.Pool, c Config, log *slog.Logger) (*Service, error) {
	svc := &Service{pool: pool, log: log, lmtp: c.LMTPAddr}
	for _, addr := range []string{c.AccountsAddr, c.MailboxesAddr} {
		// Calls take turns over the pods (a headless Service resolves to
		// each of them), as the gateway's do.
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultServiceConfig(`{"loadBalancingConfig": [{"round_robin": {}}]}`),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
		if err != nil {
			svc.close()
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		svc.conns = append(svc.conns, conn)
	}
	s := internal.NewServer(pool, internal.NewAccountsClient(svc.conns[0]), internal.NewMailboxesClient(svc.conns[1]), log)
	// Posts are queued through this client and worked by Run's.
	inserter, err := jobs.New(pool, jobs.Config{Schema: Schema, Log: log})
	if err != nil {
		svc.close()
		return nil, err
	}
	s.SetMail(inserter, c.Relay)
	s.SetHeldPostTTL(c.HeldPostTTL)
	s.SetForms(c.EdgeURL, c.FormLimit)
	svc.server = s
	// Each refusal is audited, by whichever method.
	for _, desc := range []*grpc.ServiceDesc{&listsv1.ListService_ServiceDesc, &listsv1.MemberService_ServiceDesc, &listsv1.ModerationService_ServiceDesc,
		&listsv1.FormService_ServiceDesc, &listsv1.PublicFormService_ServiceDesc} {
		srv.RegisterService(s.AuditRefusals(desc), s)
	}
	return svc, nil
}

// Listen binds the LMTP port, so that a process can stop on a taken
// port, naming it, before it says it serves. Run listens itself when
// Listen was not called.
func (s *Service) Listen() error {
	if s.ln != nil || s.lmtp == "" {
		return nil
	}
	ln, err := config.Listen("lmtp-addr", s.lmtp)
	if err != nil {
		return fmt.Errorf("lmtp: %w", err)
	}
	s.ln = ln
	return nil
}

// LMTPAddr is the address the LMTP server listens on once Listen bound
// it ("127.0.0.1:0" in tests gives a free port); empty when off.
func (s *Service) LMTPAddr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run serves LMTP and works the service's jobs (the distribution of
// posts, the notices to held posts' authors, the expiry of held posts)
// until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	return s.run(ctx, s.jobsConfig())
}

// RunForTest is Run with jobs fetched at once (jobs.ForTest).
func (s *Service) RunForTest(ctx context.Context) error {
	return s.run(ctx, jobs.ForTest(s.jobsConfig()))
}

func (s *Service) jobsConfig() jobs.Config {
	return jobs.Config{Schema: Schema, Workers: s.server.Workers(), Log: s.log, Periodic: []jobs.Periodic{
		{Name: "expire held posts", Interval: heldPostSweep, Work: s.server.ExpireHeldPosts},
		{Name: "sweep bounces", Interval: bounceSweep, Work: s.server.SweepBounces},
		{Name: "expire subscription requests", Interval: heldPostSweep, Work: s.server.ExpireRequests},
	}}
}

// heldPostSweep is how often expired held posts are deleted: a post
// outlives its expire_time by at most this.
const heldPostSweep = time.Hour

// bounceSweep is how often members disabled by bounces are warned or
// removed when due: a warning or a removal comes at most this late.
const bounceSweep = time.Hour

// SweepBounces warns, or removes, the members bounces disabled whose
// warning or removal is due, and says how many: what the periodic "sweep
// bounces" work does, hourly.
func (s *Service) SweepBounces(ctx context.Context) (int, error) {
	return s.server.SweepBounces(ctx)
}

// ExpireRequests deletes the subscriptions, tokens and answer counts
// past their time: what the periodic "expire subscription requests"
// work does, hourly.
func (s *Service) ExpireRequests(ctx context.Context) (int, error) {
	return s.server.ExpireRequests(ctx)
}

// ExpireHeldPosts deletes the posts held longer than HeldPostTTL and
// says how many: what the periodic "expire held posts" work does, hourly.
func (s *Service) ExpireHeldPosts(ctx context.Context) (int, error) {
	return s.server.ExpireHeldPosts(ctx)
}

func (s *Service) run(ctx context.Context, jc jobs.Config) error {
	defer s.close()
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
			if err := s.server.ServeLMTP(ctx, s.ln); err != nil {
				return fmt.Errorf("lmtp on %s: %w", s.lmtp, err)
			}
			return nil
		})
	}
	return g.Wait()
}

func (s *Service) close() {
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
