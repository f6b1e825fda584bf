package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
)

var samplePDF = []byte("%PDF-1.3\n% not really a document\n%%EOF\n")

// fakeAgreements answers GetDataProcessingAgreement for organizations/acme
// and refuses organizations/other, recording what it received.
type fakeAgreements struct {
	accountspb.UnimplementedOrganizationServiceServer
	got chan received
}

type received struct {
	name string
	md   metadata.MD
}

func (f fakeAgreements) GetDataProcessingAgreement(ctx context.Context, req *accountspb.GetDataProcessingAgreementRequest) (*accountspb.GetDataProcessingAgreementResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.got <- received{req.GetName(), md}
	if req.GetName() != "organizations/acme" {
		return nil, status.Error(codes.PermissionDenied, "only owners and admins can download the data processing agreement")
	}
	return &accountspb.GetDataProcessingAgreementResponse{Pdf: samplePDF, FileName: "mailplane-dpa-zoe-muller-gmbh-2026-11-25.pdf"}, nil
}

func startAgreements(t *testing.T) (string, chan received) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan received, 1)
	srv := grpc.NewServer()
	accountspb.RegisterOrganizationServiceServer(srv, fakeAgreements{got: got})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), got
}

func TestDataProcessingAgreement(t *testing.T) {
	addr, got := startAgreements(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	r := httptest.NewRequest(http.MethodGet, "/v1/organizations/acme/dataProcessingAgreement", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	r.Header.Set("X-Request-Id", "req-1")
	w := serve(h, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":        "application/pdf",
		"Content-Disposition": `attachment; filename=mailplane-dpa-zoe-muller-gmbh-2026-11-25.pdf`,
		"Cache-Control":       "no-store",
		"Content-Length":      strconv.Itoa(len(samplePDF)),
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if w.Body.String() != string(samplePDF) {
		t.Errorf("body = %q, want the backend's PDF", w.Body)
	}
	rec := <-got
	if rec.name != "organizations/acme" {
		t.Errorf("backend asked for %q, want organizations/acme", rec.name)
	}
	for k, want := range map[string]string{"authorization": "Bearer abc.def", "x-request-id": "req-1", "x-forwarded-for": "192.0.2.1"} {
		if vs := rec.md.Get(k); len(vs) != 1 || vs[0] != want {
			t.Errorf("backend metadata %s = %q, want %q", k, vs, want)
		}
	}

	// A refusal is the JSON error of every other route.
	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/organizations/other/dataProcessingAgreement", nil))
	<-got
	if w.Code != http.StatusForbidden {
		t.Fatalf("status = %d, want 403; body %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var st rpcStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	if st.Code != int(codes.PermissionDenied) || st.Message != "only owners and admins can download the data processing agreement" {
		t.Errorf("error = %+v", st)
	}

	// Only GET is routed.
	w = serve(h, httptest.NewRequest(http.MethodPost, "/v1/organizations/acme/dataProcessingAgreement", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status = %d, want 405", w.Code)
	}
}
