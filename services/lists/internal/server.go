// Package lists implements the lists service: discussion lists on a mail
// service's domain, their settings, moderators and members.
package lists

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/riverqueue/river"
	"google.golang.org/grpc"
)

// roleTTL is how long a caller's role is remembered (see mailboxes).
const roleTTL = 5 * time.Second

// Server implements the lists gRPC services.
type Server struct {
	listsv1.UnimplementedListServiceServer
	listsv1.UnimplementedMemberServiceServer
	listsv1.UnimplementedModerationServiceServer
	listsv1.UnimplementedFormServiceServer
	listsv1.UnimplementedPublicFormServiceServer

	pool      *pgxpool.Pool
	roles     *access.Roles
	accounts  Accounts
	mailboxes Mailboxes
	log       *slog.Logger
	// jobs queues posts' distribution; relay sends the copies.
	jobs  *jobs.Client
	relay Relay
	// heldTTL is how long a post waits for a moderator.
	heldTTL time.Duration
	// forms holds the web forms' and one-click unsubscribe's settings.
	forms formsState
}

// NewServer returns a server over pool, asking accounts about people and
// reserving addresses in mailboxes.
func NewServer(pool *pgxpool.Pool, accounts Accounts, mailboxes Mailboxes, log *slog.Logger) *Server {
	s := &Server{pool: pool, roles: access.NewRoles(accounts, roleTTL), accounts: accounts, mailboxes: mailboxes, log: log, heldTTL: DefaultHeldPostTTL}
	s.SetForms("", FormLimit{})
	return s
}

// SetMail sets what the mail path needs: the jobs client posts are
// queued through and the relay their copies go out by.
func (s *Server) SetMail(c *jobs.Client, relay Relay) { s.jobs, s.relay = c, relay }

// SetHeldPostTTL sets how long a held post waits for a moderator before
// ExpireHeldPosts deletes it; d <= 0 keeps DefaultHeldPostTTL.
func (s *Server) SetHeldPostTTL(d time.Duration) {
	if d > 0 {
		s.heldTTL = d
	}
}

// Workers are the service's job workers.
func (s *Server) Workers() *river.Workers {
	w := river.NewWorkers()
	river.AddWorker(w, &distributeWorker{s: s})
	river.AddWorker(w, &letterWorker{s: s})
	return w
}

// audit publishes an audit record for the organization's log, in tx.
func audit(ctx context.Context, tx pgx.Tx, org uuid.UUID, c access.Caller, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, listsevents.AuditRecorded, auditlog.Record(ctx, "organizations/"+org.String(), c.Name(), action, target, details))
}

// auditEvent is audit for a batch: the audit record as an event to queue.
func auditEvent(ctx context.Context, org uuid.UUID, c access.Caller, action, target string, details map[string]string) outbox.Event {
	return outbox.Event{Subject: listsevents.AuditRecorded, Msg: auditlog.Record(ctx, "organizations/"+org.String(), c.Name(), action, target, details)}
}

// AuditRefusals returns a copy of desc whose every method records each
// refusal (PermissionDenied) in the organization's audit log.
func (s *Server) AuditRefusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	l := &auditlog.Log{Service: "lists", Subject: listsevents.AuditRecorded, Pool: s.pool, Log: s.log}
	return l.Refusals(desc)
}
