package mailboxes

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
)

// TestAccountsUnreachable: when accounts cannot be reached, a caller is
// told UNAVAILABLE with when to retry, not an internal error.
func TestAccountsUnreachable(t *testing.T) {
	// A port nobody listens on: take one, then free it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s := &Server{roles: access.NewRoles(NewAccountsClient(conn), roleTTL)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = auth.WithPrincipal(ctx, auth.Principal{UserID: uuid.NewString()})
	_, _, err = s.access(ctx, uuid.New())
	st := grpcserver.Status(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("status %v (%q), want Unavailable", st.Code(), st.Message())
	}
	var retry bool
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			retry = true
		}
	}
	if !retry {
		t.Error("no retry delay")
	}
}
