package dnssecurity

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/dnssecurityevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
)

// roleTTL is how long a caller's role is remembered (see mailboxes).
const roleTTL = 5 * time.Second

// Ours is what our mail platform publishes and expects to find in a
// customer's domain.
type Ours struct {
	// MX are our MX hosts, lower case, without the final dot.
	MX []string
	// SPFInclude is the name customers include in their SPF record
	// ("_spf.mailplane.net").
	SPFInclude string
	// IPs are the addresses our servers send from.
	IPs []netip.Prefix
}

// Server implements the dnssecurity gRPC services.
type Server struct {
	dnssecurityv1.UnimplementedSecurityServiceServer
	dnssecurityv1.UnimplementedSpfServiceServer
	dnssecurityv1.UnimplementedDkimKeyServiceServer
	dnssecurityv1.UnimplementedHostedZoneServiceServer

	pool  *pgxpool.Pool
	roles *access.Roles
	log   *slog.Logger
	// dns asks the customers' zones, through the process's resolver.
	dns  *dns.Resolver
	ours Ours
	// box seals the secrets stored: TSIG secrets, DKIM private keys.
	box *secret.Box
	// jobs queues diagnostics and propagation checks with their change.
	jobs *jobs.Client
	// checks limits each caller's calls that cost DNS questions or write
	// (check_host.go).
	checks buckets
	// dkimGrace is how long a replaced DKIM key stays published.
	dkimGrace time.Duration
}

// NewServer returns a server over pool asking roles of src, domains of
// resolver, with secrets sealed by box.
func NewServer(pool *pgxpool.Pool, src access.Source, resolver *dns.Resolver, ours Ours, box *secret.Box, log *slog.Logger) *Server {
	return &Server{pool: pool, roles: access.NewRoles(src, roleTTL), dns: resolver, ours: ours, box: box, log: log, dkimGrace: 7 * 24 * time.Hour}
}

// SetJobs gives the server the client its RPCs queue jobs with.
func (s *Server) SetJobs(c *jobs.Client) { s.jobs = c }

// SetDKIMGrace sets how long a replaced DKIM key stays published.
func (s *Server) SetDKIMGrace(d time.Duration) { s.dkimGrace = d }

// Workers returns the workers of the service's jobs.
func (s *Server) Workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &diagnoseWorker{s: s})
	river.AddWorker(w, &followWorker{s: s})
	return w
}

// Periodic is the service's periodic work, run by one replica at a time:
// the daily diagnostic of every mail service, and retiring the DKIM keys
// whose grace period ended.
func (s *Server) Periodic() []jobs.Periodic {
	return []jobs.Periodic{
		{Name: "queue daily diagnostics", Interval: time.Hour, Work: s.QueueDailyDiagnostics},
		{Name: "retire dkim keys", Interval: time.Hour, Work: s.RetireDKIMKeys},
	}
}

// audit publishes an audit record for the organization's log, kept by the
// accounts service, in tx.
func audit(ctx context.Context, tx pgx.Tx, org uuid.UUID, c access.Caller, action, target string, details map[string]string) error {
	rec := auditlog.Record(ctx, "organizations/"+org.String(), actorName(c), action, target, details)
	rec.Entry.ActorDisplayName = actorDisplay(c)
	return outbox.Write(ctx, tx, dnssecurityevents.AuditRecorded, rec)
}

// AuditRefusals returns a copy of desc, one of the service descriptions of
// Server, whose every method records each refusal (PermissionDenied) in the
// organization's audit log.
func (s *Server) AuditRefusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	l := &auditlog.Log{Service: "dnssecurity", Subject: dnssecurityevents.AuditRecorded, Pool: s.pool, Log: s.log}
	return l.Refusals(desc)
}

// actorName is who did something, as changes and audit records name them:
// the caller, or "" for the service itself (a zero Caller: a key retired
// on schedule).
func actorName(c access.Caller) string {
	if c == (access.Caller{}) {
		return ""
	}
	return c.Name()
}

// actorDisplay names the service itself in the audit log.
func actorDisplay(c access.Caller) string {
	if c == (access.Caller{}) {
		return "Mailplane (DNS security)"
	}
	return ""
}
