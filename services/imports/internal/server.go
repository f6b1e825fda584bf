// Package imports implements the imports service: jobs copying whole
// mailboxes from IMAP accounts into addresses hosted here.
package imports

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports/importsevents"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
)

// roleTTL is how long a caller's role is remembered (see mailboxes).
const roleTTL = 5 * time.Second

// Copier is the IMAP engine: Check logs in to an account, Run copies a
// job (imapcopy's, or a fake in tests).
type Copier struct {
	Check func(ctx context.Context, a imapcopy.Account) error
	Run   func(ctx context.Context, j imapcopy.Job) (imapcopy.Progress, error)
}

// EmailSender delivers the confirmations; notify.SMTP in production.
type EmailSender interface {
	Send(ctx context.Context, e notify.Email) error
}

// Limits are the caps an operator may change.
type Limits struct {
	// ActiveJobs caps an organization's jobs not yet ended.
	ActiveJobs int
	// ChecksPerHour caps the logins to source servers an organization's
	// requests make per hour (each source of each import or bulk row).
	ChecksPerHour int
	// PerServer caps the jobs copying from one source server at once.
	PerServer int
	// PrivateSources lets sources be on loopback and private networks
	// (tests, development); off, such a host is refused, so that a
	// customer cannot make the service probe the cluster's network.
	PrivateSources bool
	// Slice is how long one run of a job's worker copies before it hands
	// over to the next run (a checkpoint in between); 0: 2 minutes.
	Slice time.Duration
	// Retry is the wait after a run's first failure, doubling after each
	// next one up to 30 minutes; 0: 30 s.
	Retry time.Duration
	// Watches caps an organization's WatchImportJob streams open at once
	// in one process; 0: DefaultWatches.
	Watches int
}

// DefaultWatches caps an organization's watches open at once in one
// process: each reads its job twice a second for as long as it is open,
// so without a cap one caller opening streams in a loop would load the
// database for everyone. A page shows a watch per job it follows.
const DefaultWatches = 100

// Server implements the imports gRPC service and its job workers.
type Server struct {
	importsv1.UnimplementedImportServiceServer

	pool   *pgxpool.Pool
	roles  *access.Roles
	users  accountsv1.UserServiceClient
	log    *slog.Logger
	jobs   *jobs.Client
	box    *secret.Box
	hosted Hosted
	copier Copier
	email  EmailSender
	limits Limits

	// watching counts each organization's watches open in this process.
	mu       sync.Mutex
	watching map[uuid.UUID]int
}

// Deps are what a Server is built from.
type Deps struct {
	Pool     *pgxpool.Pool
	Accounts grpc.ClientConnInterface
	Log      *slog.Logger
	Box      *secret.Box
	Hosted   Hosted
	Copier   Copier
	Email    EmailSender
	Limits   Limits
}

// NewServer returns a server of d.
func NewServer(d Deps) *Server {
	if d.Limits.Slice <= 0 {
		d.Limits.Slice = 2 * time.Minute
	}
	if d.Limits.Retry <= 0 {
		d.Limits.Retry = 30 * time.Second
	}
	if d.Limits.Watches <= 0 {
		d.Limits.Watches = DefaultWatches
	}
	return &Server{
		pool: d.Pool, roles: access.NewRoles(access.NewAccounts(d.Accounts), roleTTL),
		users: accountsv1.NewUserServiceClient(d.Accounts), log: d.Log, box: d.Box,
		hosted: d.Hosted, copier: d.Copier, email: d.Email, limits: d.Limits,
		watching: map[uuid.UUID]int{},
	}
}

// SetJobs sets the client jobs are queued through.
func (s *Server) SetJobs(c *jobs.Client) { s.jobs = c }

// Workers are the service's job workers.
func (s *Server) Workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &copyWorker{s: s})
	river.AddWorker(w, &noticeWorker{s: s})
	return w
}

// audit publishes an audit record for the organization's log, in tx.
func audit(ctx context.Context, tx pgx.Tx, org uuid.UUID, c access.Caller, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, importsevents.AuditRecorded, auditlog.Record(ctx, orgName(org), c.Name(), action, target, details))
}

// AuditRefusals returns a copy of desc whose every method records each
// refusal (PermissionDenied) in the organization's audit log.
func (s *Server) AuditRefusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	l := &auditlog.Log{Service: "imports", Subject: importsevents.AuditRecorded, Pool: s.pool, Log: s.log}
	return l.Refusals(desc)
}
