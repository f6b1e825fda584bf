package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// newPool returns a pool on url, without connecting yet.
func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestDatabaseFaults checks that a handler whose database cannot be reached,
// with a real PostgreSQL made unreachable in each way it happens, answers
// UNAVAILABLE with a RetryInfo (503 and Retry-After at the edge), not
// INTERNAL; and that text PostgreSQL refuses is the caller's error.
func TestDatabaseFaults(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)

	// A database that is not there: nothing listens on its port.
	down := newPool(t, "postgres://postgres@"+closedPort(t)+"/postgres?connect_timeout=2")

	// A database whose connection the server ended (a restart, a failover,
	// an administrator): the pool still holds the connection.
	terminated := newPool(t, url+"?pool_max_conns=1")
	var pid int
	if err := terminated.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin := newPool(t, url)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}

	// A pool closed under the handler (the process is stopping).
	closed := newPool(t, url)
	closed.Close()

	// A database that is up, for the text it refuses.
	up := newPool(t, url)

	pools := map[string]*pgxpool.Pool{"down": down, "terminated": terminated, "closed": closed, "nul": up, "utf8": up, "json nul": up}
	orgs := &orgService{get: func(ctx context.Context, r *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
		query, arg := "SELECT $1::text", "acme"
		switch r.Name {
		case "nul":
			arg = "a\x00b"
		case "utf8":
			arg = "a\xffb"
		case "json nul":
			query, arg = "SELECT ($1::jsonb)->>'name'", `{"name": "a\u0000b"}`
		}
		var name string
		if err := pools[r.Name].QueryRow(ctx, query, arg).Scan(&name); err != nil {
			return nil, fmt.Errorf("get organization %s: %w", r.Name, err)
		}
		return &accountsv1.GetOrganizationResponse{Organization: &accountsv1.Organization{Name: name}}, nil
	}}
	srv := start(t, options{orgs: orgs})
	client := accountsv1.NewOrganizationServiceClient(srv.conn)
	callAs := bearer(callCtx(t), srv.token(t, "u_1"))

	tests := []struct {
		name string
		want wantStatus
	}{
		{"down", unavailable},
		{"terminated", unavailable},
		{"closed", unavailable},
		{"nul", wantStatus{Code: codes.InvalidArgument, Message: "the request holds text that cannot be stored (control characters or invalid UTF-8)"}},
		{"utf8", wantStatus{Code: codes.InvalidArgument, Message: "the request holds text that cannot be stored (control characters or invalid UTF-8)"}},
		{"json nul", wantStatus{Code: codes.InvalidArgument, Message: "the request holds text that cannot be stored (control characters or invalid UTF-8)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.GetOrganization(callAs, &accountsv1.GetOrganizationRequest{Name: tt.name})
			checkStatus(t, err, tt.want)
			if strings.Contains(status.Convert(err).Message(), "127.0.0.1") {
				t.Errorf("the client saw an internal address: %v", err)
			}
		})
	}
	// Operators still see why.
	var warned int
	for _, r := range records(t, srv.logs, "unavailable") {
		if strings.HasPrefix(r["error"].(string), "get organization ") {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d unavailable records with their cause, want 3:\n%s", warned, srv.logs)
	}
}
