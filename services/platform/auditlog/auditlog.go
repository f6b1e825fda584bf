// Package auditlog writes a service's records for its organizations' audit
// log, which the accounts service keeps: each service publishes
// accountsv1.AuditRecorded events on its own <svc>.audit.recorded subject
// through its outbox. Actions that succeed are recorded by each RPC in its
// own transaction (with Record); refusals are recorded in one place for
// every method of a service (Log.Refusals), so that no RPC can forget one.
package auditlog

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Log is a service's audit log writer.
type Log struct {
	// Service prefixes the actions named after methods ("mailboxes":
	// CreateAddress is mailboxes.address.create).
	Service string
	// Subject is the service's AuditRecorded subject.
	Subject string
	// Actions name the refused methods whose action does not follow from
	// their name: {"CreateBulkJob": "mailboxes.address.bulkCreate"}.
	Actions map[string]string
	Pool    *pgxpool.Pool
	Log     *slog.Logger
}

// Record is the audit record of an action that succeeded, by actor (a
// resource name; empty: the service itself, shown as system) in org
// ("organizations/{org}").
func Record(ctx context.Context, org, actor, action, target string, details map[string]string) *accountsv1.AuditRecorded {
	return &accountsv1.AuditRecorded{
		Organization: org,
		Entry: &accountsv1.AuditEntry{
			Actor: actor, Action: action, Target: target, Outcome: accountsv1.Outcome_OUTCOME_SUCCEEDED,
			ClientAddress: grpcserver.ClientAddr(ctx), Details: details,
		},
	}
}

// Refusals returns a copy of desc whose every method records each refusal
// (PermissionDenied) in the audit log of the organization its request
// names.
func (l *Log) Refusals(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	d := *desc
	d.Methods = slices.Clone(desc.Methods)
	for i, m := range d.Methods {
		handle := m.Handler
		d.Methods[i].Handler = func(srv any, ctx context.Context, dec func(any) error, next grpc.UnaryServerInterceptor) (any, error) {
			// The refusal is seen inside the server's interceptors, where
			// the caller is known and the error not yet a gRPC status.
			return handle(srv, ctx, dec, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				audited := func(ctx context.Context, req any) (any, error) {
					resp, err := h(ctx, req)
					if errs.Is(err, errs.PermissionDenied) {
						l.refusal(ctx, info.FullMethod, req, err)
					}
					return resp, err
				}
				if next == nil {
					return audited(ctx, req)
				}
				return next(ctx, req, info, audited)
			})
		}
	}
	return &d
}

// refusal records that method was refused to the caller, in a transaction
// of its own: a refusal has no other.
func (l *Log) refusal(ctx context.Context, method string, req any, refusal error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return
	}
	target := Target(req)
	org, _, _ := strings.Cut(strings.TrimPrefix(target, "organizations/"), "/")
	if _, err := uuid.Parse(org); err != nil || !strings.HasPrefix(target, "organizations/") {
		return
	}
	method = method[strings.LastIndex(method, "/")+1:]
	action, ok := l.Actions[method]
	if !ok {
		action = Action(l.Service, method)
	}
	rec := Record(ctx, "organizations/"+org, c.Name(), action, target, map[string]string{"reason": refusal.Error()})
	rec.Entry.Outcome = accountsv1.Outcome_OUTCOME_DENIED
	ctx = context.WithoutCancel(ctx)
	if err := pg.InTx(ctx, l.Pool, func(tx pgx.Tx) error { return outbox.Write(ctx, tx, l.Subject, rec) }); err != nil {
		l.Log.ErrorContext(ctx, "audit: record refusal", "action", action, "error", err)
	}
}

// Action names a method's action: the verb is the method's first word,
// the resource the rest (service "mailboxes", CreateAddress:
// mailboxes.address.create).
func Action(service, method string) string {
	i := strings.IndexFunc(method[min(1, len(method)):], unicode.IsUpper) + 1
	if i == 0 {
		i = len(method)
	}
	resource := method[i:]
	if resource != "" {
		resource = strings.ToLower(resource[:1]) + resource[1:]
	}
	return service + "." + resource + "." + strings.ToLower(method[:i])
}

// Target is the resource a request acts on: its name, its parent, or the
// name of the resource it carries (an update's).
func Target(req any) string {
	m, ok := req.(proto.Message)
	if !ok {
		return ""
	}
	r := m.ProtoReflect()
	fields := r.Descriptor().Fields()
	for _, name := range []protoreflect.Name{"name", "parent"} {
		if f := fields.ByName(name); f != nil && f.Kind() == protoreflect.StringKind {
			return r.Get(f).String()
		}
	}
	for i := range fields.Len() {
		f := fields.Get(i)
		if f.Kind() != protoreflect.MessageKind || f.IsList() || f.IsMap() || !r.Has(f) {
			continue
		}
		inner := r.Get(f).Message()
		if n := inner.Descriptor().Fields().ByName("name"); n != nil && n.Kind() == protoreflect.StringKind {
			return inner.Get(n).String()
		}
	}
	return ""
}
