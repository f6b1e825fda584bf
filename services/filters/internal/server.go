// Package filters implements the filters service: an address's rules and
// platform filters, and the installation of their scripts.
package filters

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
)

// roleTTL is how long a caller's role is remembered (see mailboxes).
const roleTTL = 5 * time.Second

// Server implements the filters gRPC services.
type Server struct {
	filtersv1.UnimplementedRuleServiceServer
	filtersv1.UnimplementedFilterSettingsServiceServer
	filtersv1.UnimplementedFilterRunServiceServer

	pool  *pgxpool.Pool
	roles *access.Roles
	log   *slog.Logger
	// jobs queues the installation of changed scripts.
	jobs *jobs.Client
	// install puts an address's scripts in the mail store.
	install Installer
	compile Compiler
	// maxRules caps an address's rules.
	maxRules int
	// imap reaches the mail store for run-now and the Spam sweep.
	imap IMAP
	// reportsPerHour caps the spam reports recorded for an address in an
	// hour.
	reportsPerHour int
	metrics        installMetrics
}

// NewServer returns a server over pool, asking roles of src.
func NewServer(pool *pgxpool.Pool, src access.Source, log *slog.Logger) *Server {
	s := &Server{pool: pool, roles: access.NewRoles(src, roleTTL), log: log, maxRules: DefaultMaxRules, reportsPerHour: DefaultReportsPerHour}
	s.SetMeter(nil)
	return s
}

// SetJobs sets the client changes queue their installation through.
func (s *Server) SetJobs(c *jobs.Client) { s.jobs = c }

// SetInstaller sets how scripts are compiled and installed; nil leaves
// the changes pending (kept, installed once an installer is set).
func (s *Server) SetInstaller(c Compiler, i Installer) { s.compile, s.install = c, i }

// SetMaxRules caps an address's rules; n <= 0 keeps DefaultMaxRules.
func (s *Server) SetMaxRules(n int) {
	if n > 0 {
		s.maxRules = n
	}
}

// Workers are the service's job workers.
func (s *Server) Workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &installWorker{s: s})
	river.AddWorker(w, &runWorker{s: s})
	river.AddWorker(w, &spamPurgeWorker{s: s})
	return w
}

// audit publishes an audit record for the organization's log, in tx.
func audit(ctx context.Context, tx pgx.Tx, org uuid.UUID, c access.Caller, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, filtersevents.AuditRecorded, auditlog.Record(ctx, "organizations/"+org.String(), c.Name(), action, target, details))
}

// AuditRefusals returns a copy of desc whose every method records each
// refusal (PermissionDenied) in the organization's audit log.
func (s *Server) AuditRefusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	l := &auditlog.Log{Service: "filters", Subject: filtersevents.AuditRecorded, Pool: s.pool, Log: s.log}
	return l.Refusals(desc)
}
