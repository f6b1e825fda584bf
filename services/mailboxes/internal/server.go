package mailboxes

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Server implements the mailboxes gRPC services.
type Server struct {
	mailboxesv1.UnimplementedMailServiceServiceServer
	mailboxesv1.UnimplementedAddressServiceServer
	mailboxesv1.UnimplementedReservationServiceServer
	mailboxesv1.UnimplementedSenderServiceServer
	mailboxesv1.UnimplementedDevicePasswordServiceServer
	mailboxesv1.UnimplementedBulkServiceServer
	mailboxesv1.UnimplementedSignatureServiceServer

	pool *pgxpool.Pool
	// writes commits concurrent address creates together.
	writes   *pg.Group
	accounts Accounts
	// roles learns callers' roles from accounts.
	roles *access.Roles
	log   *slog.Logger
	// restoreFor is how long a deleted mail service can be restored.
	restoreFor time.Duration
	// domains remembers mail services' domains (uuid.UUID -> cachedDomain).
	domains sync.Map
	// verify looks for domains' verification records (verify.go).
	verify verifier
	// bulkRunning and bulkPerHour cap an organization's bulk jobs.
	bulkRunning, bulkPerHour int
	// jobs queues bulk jobs in the transaction that starts them.
	jobs *jobs.Client
}

// NewServer returns a server over pool asking accounts about people.
func NewServer(pool *pgxpool.Pool, accounts Accounts, log *slog.Logger) *Server {
	return &Server{pool: pool, writes: pg.NewGroup(pool, "mailboxes.addresses", nil), accounts: accounts, roles: access.NewRoles(accounts, roleTTL), log: log, restoreFor: 30 * 24 * time.Hour,
		bulkRunning: DefaultBulkJobsRunning, bulkPerHour: DefaultBulkUploadsPerHour}
}

// audit publishes an audit record for the organization's log, kept by the
// accounts service, in tx.
func audit(ctx context.Context, tx pgx.Tx, org string, c access.Caller, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, mailboxesevents.AuditRecorded, auditlog.Record(ctx, org, c.Name(), action, target, details))
}

// auditEvent is audit for a batch: the audit record as an event to queue.
func auditEvent(ctx context.Context, org string, c access.Caller, action, target string, details map[string]string) outbox.Event {
	return outbox.Event{Subject: mailboxesevents.AuditRecorded, Msg: auditlog.Record(ctx, org, c.Name(), action, target, details)}
}

// idempotencyKey reads req's idempotency key (AIP-155) for caller c and
// method, and returns the name of what a first create with it made, or "".
func (s *Server) idempotencyKey(ctx context.Context, req proto.Message, c access.Caller, method string) (idempotency.Request, string, error) {
	r, err := idempotency.FromRequest(ctx, req, c.Name(), method)
	if err != nil {
		return r, "", err
	}
	name, _, err := r.Find(ctx, s.pool)
	return r, name, err
}

// raced returns the name of what a concurrent create with r's key made,
// when err says one committed first; "" otherwise.
func (s *Server) raced(ctx context.Context, r idempotency.Request, err error) (string, error) {
	if !idempotency.IsRace(err) {
		return "", err
	}
	name, found, err := r.Find(ctx, s.pool)
	if err == nil && !found {
		err = errs.E(errs.Conflict, "a request with this idempotency key ran at the same time; try again")
	}
	return name, err
}

// AuditRefusals returns a copy of desc, one of the service descriptions of
// Server, whose every method records each refusal (PermissionDenied) in the
// organization's audit log (auditlog.Log.Refusals).
func (s *Server) AuditRefusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	l := &auditlog.Log{Service: "mailboxes", Subject: mailboxesevents.AuditRecorded, Pool: s.pool, Log: s.log,
		Actions: map[string]string{"CreateBulkJob": "mailboxes.address.bulkCreate"}}
	return l.Refusals(desc)
}

// Periodic is the service's periodic work, run by one replica at a time:
// it purges mail services deleted over restoreFor ago, announces mail
// services made before their event had listeners, forgets idempotency keys
// over 24 hours old (each at start, then hourly) and checks pending domain
// claims.
func (s *Server) Periodic() []jobs.Periodic {
	return []jobs.Periodic{
		{Name: "purge mail services", Interval: time.Hour, Work: s.Purge},
		{Name: "announce mail services", Interval: time.Hour, Work: s.AnnounceMailServices},
		{Name: "purge idempotency keys", Interval: time.Hour, Work: func(ctx context.Context) (int, error) { return idempotency.Purge(ctx, s.pool) }},
		{Name: "check domain claims", Interval: s.verify.every, Work: s.CheckClaims},
	}
}

// Workers returns the workers of the service's jobs: bulk creations.
func (s *Server) Workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &bulkWorker{s: s})
	return w
}

// SetJobs gives the server the client its RPCs queue jobs with.
func (s *Server) SetJobs(c *jobs.Client) { s.jobs = c }
