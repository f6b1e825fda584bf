package mailboxes

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"golang.org/x/sync/errgroup"
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
	log      *slog.Logger
	// restoreFor is how long a deleted mail service can be restored.
	restoreFor time.Duration
	// domains remembers mail services' domains (uuid.UUID -> cachedDomain).
	domains sync.Map
	// verify looks for domains' verification records (verify.go).
	verify verifier
}

// NewServer returns a server over pool asking accounts about people.
func NewServer(pool *pgxpool.Pool, accounts Accounts, log *slog.Logger) *Server {
	return &Server{pool: pool, writes: pg.NewGroup(pool, "mailboxes.addresses", nil), accounts: accounts, log: log, restoreFor: 30 * 24 * time.Hour}
}

// audit publishes an audit record for the organization's log, kept by the
// accounts service, in tx.
func audit(ctx context.Context, tx pgx.Tx, org string, c Caller, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, "mailboxes.audit.recorded", auditRecord(ctx, org, c, action, target, details))
}

// auditEvent is audit for a batch: the audit record as an event to queue.
func auditEvent(ctx context.Context, org string, c Caller, action, target string, details map[string]string) outbox.Event {
	return outbox.Event{Subject: "mailboxes.audit.recorded", Msg: auditRecord(ctx, org, c, action, target, details)}
}

func auditRecord(ctx context.Context, org string, c Caller, action, target string, details map[string]string) *accountsv1.AuditRecorded {
	return &accountsv1.AuditRecorded{
		Organization: org,
		Entry: &accountsv1.AuditEntry{
			Actor: c.Name(), Action: action, Target: target, Outcome: accountsv1.Outcome_OUTCOME_SUCCEEDED,
			ClientAddress: grpcserver.ClientAddr(ctx), Details: details,
		},
	}
}

// RunBackground does the service's periodic work until ctx is done: it
// purges mail services deleted over restoreFor ago (hourly), resumes bulk
// jobs whose process stopped (every 30 s) and announces mail services made
// before their event had listeners (at start, then hourly).
func (s *Server) RunBackground(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.every(ctx, time.Hour, "purge mail services", s.Purge) })
	g.Go(func() error { return s.every(ctx, 30*time.Second, "resume bulk jobs", s.ResumeBulkJobs) })
	g.Go(func() error { return s.every(ctx, time.Hour, "announce mail services", s.AnnounceMailServices) })
	return g.Wait()
}

// every runs work every interval until ctx is done, logging what it did.
func (s *Server) every(ctx context.Context, interval time.Duration, what string, work func(context.Context) (int, error)) error {
	for {
		if n, err := work(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, what, "error", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, what, "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}
