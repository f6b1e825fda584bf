// Package lists is the lists service's one public entry: its schema, and
// how to register it on a gRPC server.
package lists

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	internal "github.com/mailplane/mailplane/services/lists/internal"
	"github.com/mailplane/mailplane/services/lists/internal/migrations"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/service"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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

// New returns the service as a process runs it.
func New() service.Service {
	return service.Service{
		Name:       Schema,
		Migrations: Migrations,
		Publishes:  listsevents.Subjects(),
		Check: func(p service.Process) []error {
			var errs []error
			p.CheckAddr(&errs, accounts)
			p.CheckAddr(&errs, mailboxes)
			return errs
		},
		Start: func(_ context.Context, env service.Env) (service.Parts, error) {
			svc, err := Register(env.GRPC, env.Pool, env.ServiceAddr(accounts), env.ServiceAddr(mailboxes), env.Log)
			if err != nil {
				return service.Parts{}, err
			}
			return service.Parts{Workers: []func(context.Context) error{svc.Run}}, nil
		},
	}
}

// Service is the running service.
type Service struct {
	conns []*grpc.ClientConn
}

// Register adds the lists services to srv. pool's search_path must be
// Schema, migrated; accountsAddr and mailboxesAddr reach those services.
func Register(srv *grpc.Server, pool *pgxpool.Pool, accountsAddr, mailboxesAddr string, log *slog.Logger) (*Service, error) {
	svc := &Service{}
	for _, addr := range []string{accountsAddr, mailboxesAddr} {
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
	s := internal.NewServer(pool, access.NewAccounts(svc.conns[0]), internal.NewMailboxesClient(svc.conns[1]), log)
	// Each refusal is audited, by whichever method.
	for _, desc := range []*grpc.ServiceDesc{&listsv1.ListService_ServiceDesc, &listsv1.MemberService_ServiceDesc} {
		srv.RegisterService(s.AuditRefusals(desc), s)
	}
	return svc, nil
}

// Run holds the service's connections until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	s.close()
	return nil
}

func (s *Service) close() {
	for _, c := range s.conns {
		c.Close()
	}
}
