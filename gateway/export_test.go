package gateway

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

const exportList = "organizations/acme/mailServices/ms1/lists/l1"

// fakeMembers streams the CSV of exportList in three chunks; any other
// list is NOT_FOUND, and a caller without a token PERMISSION_DENIED.
type fakeMembers struct {
	listspb.UnimplementedMemberServiceServer
}

func (fakeMembers) ExportMembers(req *listspb.ExportMembersRequest, stream grpc.ServerStreamingServer[listspb.ExportMembersResponse]) error {
	if req.GetParent() != exportList {
		return status.Error(codes.NotFound, "list not found")
	}
	for i, chunk := range []string{"email,display_name\r\n", "ann@example.org,Ann\r\n", "bob@example.org,Bob\r\n"} {
		resp := &listspb.ExportMembersResponse{Data: []byte(chunk)}
		if i == 0 {
			resp.ContentType = "text/csv; charset=utf-8"
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func TestMembersExport(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	listspb.RegisterMemberServiceServer(srv, fakeMembers{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	h := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)

	r := httptest.NewRequest(http.MethodGet, "/v1/"+exportList+"/members:export", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	w := serve(h, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":        "text/csv; charset=utf-8",
		"Content-Disposition": "attachment; filename=members-l1.csv",
		"Cache-Control":       "no-store",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if want := "email,display_name\r\nann@example.org,Ann\r\nbob@example.org,Bob\r\n"; w.Body.String() != want {
		t.Errorf("body = %q, want %q", w.Body, want)
	}

	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/organizations/other/mailServices/ms1/lists/l1/members:export", nil))
	if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Body.String(), "list not found") {
		t.Errorf("unknown list: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}
