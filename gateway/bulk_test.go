package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	mailboxespb "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
)

const (
	sampleTemplate = "local_part,kind,aliases,redirect_destinations,quota_mb\r\nanna.smith,mailbox,anna asmith,,2048\r\n"
	bulkParent     = "organizations/acme/mailServices/ms1"
)

// fakeBulk answers BulkService: a file whose first line after the header
// starts with "bad" is refused with a field violation, any other starts job
// j1. It records what it received.
type fakeBulk struct {
	mailboxespb.UnimplementedBulkServiceServer
	got chan bulkReceived
}

type bulkReceived struct {
	parent string
	csv    []byte
	md     metadata.MD
}

func (f fakeBulk) GetBulkTemplate(ctx context.Context, req *mailboxespb.GetBulkTemplateRequest) (*mailboxespb.GetBulkTemplateResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.got <- bulkReceived{parent: req.GetParent(), md: md}
	if req.GetParent() != bulkParent {
		return nil, status.Error(codes.NotFound, "mail service not found")
	}
	return &mailboxespb.GetBulkTemplateResponse{Csv: sampleTemplate}, nil
}

func (f fakeBulk) CreateBulkJob(ctx context.Context, req *mailboxespb.CreateBulkJobRequest) (*mailboxespb.CreateBulkJobResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.got <- bulkReceived{parent: req.GetParent(), csv: req.GetCsv(), md: md}
	if _, rest, _ := strings.Cut(string(req.GetCsv()), "\n"); strings.HasPrefix(rest, "bad") {
		return nil, withDetails(codes.InvalidArgument, "line 2, column local_part: may hold only letters", &errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "line 2, column local_part", Description: "may hold only letters"}},
		})
	}
	return &mailboxespb.CreateBulkJobResponse{Job: &mailboxespb.BulkJob{
		Name: req.GetParent() + "/bulkJobs/j1", State: mailboxespb.BulkJobState_BULK_JOB_STATE_RUNNING, TotalRows: 2,
	}}, nil
}

func (f fakeBulk) GetBulkJob(_ context.Context, req *mailboxespb.GetBulkJobRequest) (*mailboxespb.GetBulkJobResponse, error) {
	return &mailboxespb.GetBulkJobResponse{Job: &mailboxespb.BulkJob{
		Name: req.GetName(), State: mailboxespb.BulkJobState_BULK_JOB_STATE_SUCCEEDED, TotalRows: 2, DoneRows: 2,
	}}, nil
}

func startBulk(t *testing.T) (string, chan bulkReceived) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan bulkReceived, 1)
	srv := grpc.NewServer()
	mailboxespb.RegisterBulkServiceServer(srv, fakeBulk{got: got})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), got
}

func TestBulkTemplate(t *testing.T) {
	addr, got := startBulk(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	r := httptest.NewRequest(http.MethodGet, "/v1/organizations/acme/mailServices/ms1/addresses:template", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	w := serve(h, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":        "text/csv; charset=utf-8",
		"Content-Disposition": "attachment; filename=addresses-template.csv",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if w.Body.String() != sampleTemplate {
		t.Errorf("body = %q", w.Body)
	}
	rec := <-got
	if rec.parent != bulkParent || strings.Join(rec.md.Get("authorization"), ",") != "Bearer abc.def" {
		t.Errorf("backend got %q with %v", rec.parent, rec.md)
	}

	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/organizations/other/mailServices/ms1/addresses:template", nil))
	<-got
	if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("unknown mail service: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}

func TestBulkCreate(t *testing.T) {
	addr, got := startBulk(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)
	const path = "/v1/organizations/acme/mailServices/ms1/addresses:bulkCreate"
	file := "\xef\xbb\xbflocal_part\r\nanna\r\nbob\r\n"
	post := func(contentType, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		r.Header.Set("Authorization", "Bearer abc.def")
		return serve(h, r)
	}
	decode := func(w *httptest.ResponseRecorder, v any) {
		t.Helper()
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("decode %s: %v", w.Body, err)
		}
	}

	for _, ct := range []string{"text/csv; charset=utf-8", "application/vnd.ms-excel", ""} {
		t.Run("as "+ct, func(t *testing.T) {
			w := post(ct, file)
			if w.Code != http.StatusAccepted {
				t.Fatalf("status = %d, body %s", w.Code, w.Body)
			}
			rec := <-got
			if rec.parent != bulkParent || string(rec.csv) != file || strings.Join(rec.md.Get("authorization"), ",") != "Bearer abc.def" {
				t.Errorf("backend got %q, %q, %v", rec.parent, rec.csv, rec.md)
			}
			if loc := w.Header().Get("Location"); loc != "/v1/"+bulkParent+"/bulkJobs/j1" {
				t.Errorf("Location = %q", loc)
			}
			var job map[string]any
			decode(w, &job)
			want := map[string]any{"name": bulkParent + "/bulkJobs/j1", "state": "BULK_JOB_STATE_RUNNING", "totalRows": float64(2)}
			if diff := cmp.Diff(want, job); diff != "" {
				t.Errorf("job (-want +got):\n%s", diff)
			}
		})
	}

	// The job is then polled on its generated JSON route.
	w := serve(h, httptest.NewRequest(http.MethodGet, "/v1/"+bulkParent+"/bulkJobs/j1", nil))
	var job map[string]any
	decode(w, &job)
	if w.Code != http.StatusOK || job["state"] != "BULK_JOB_STATE_SUCCEEDED" || job["doneRows"] != float64(2) {
		t.Errorf("GetBulkJob: %d %v", w.Code, job)
	}

	// A refused file: the field violations name the line and column.
	w = post("text/csv", "local_part\nbad name\n")
	<-got
	var st rpcStatus
	decode(w, &st)
	if w.Code != http.StatusBadRequest || st.Code != int(codes.InvalidArgument) || len(st.Details) != 1 {
		t.Fatalf("refused: %d %+v", w.Code, st)
	}
	if v := st.Details[0]["fieldViolations"].([]any)[0].(map[string]any); v["field"] != "line 2, column local_part" {
		t.Errorf("violation %v", v)
	}

	// What is not a UTF-8 CSV file never reaches the service.
	for _, ct := range []string{"application/xml", "multipart/form-data; boundary=x", "text/csv; charset=windows-1252", "application/json; charset=latin1"} {
		w := post(ct, file)
		decode(w, &st)
		if w.Code != http.StatusUnsupportedMediaType || st.Code != int(codes.InvalidArgument) {
			t.Errorf("%s: %d %+v", ct, w.Code, st)
		}
	}
	big := bytes.Repeat([]byte("a\n"), maxBulkBytes/2+1)
	w = post("text/csv", string(big))
	decode(w, &st)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(st.Message, "larger than 16 MiB") {
		t.Errorf("too large: %d %+v", w.Code, st)
	}
	select {
	case rec := <-got:
		t.Errorf("the backend got a refused request: %q", rec.parent)
	default:
	}

	// Only POST is routed.
	if w := serve(h, httptest.NewRequest(http.MethodGet, path, nil)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: status = %d, want 405", w.Code)
	}
}

// ExportBulkJobErrors streams job j1's error file in two chunks; any other
// job is not found.
func (f fakeBulk) ExportBulkJobErrors(req *mailboxespb.ExportBulkJobErrorsRequest, stream grpc.ServerStreamingServer[mailboxespb.ExportBulkJobErrorsResponse]) error {
	if req.GetName() != bulkParent+"/bulkJobs/j1" {
		return status.Error(codes.NotFound, "bulk job not found")
	}
	if err := stream.Send(&mailboxespb.ExportBulkJobErrorsResponse{ContentType: "text/csv; charset=utf-8", Data: []byte("local_part,users,line,error\r\n")}); err != nil {
		return err
	}
	return stream.Send(&mailboxespb.ExportBulkJobErrorsResponse{Data: []byte("anna,x@example.com,2,user x@example.com is not a member of the organization\r\n")})
}

// TestBulkErrors: GET .../bulkJobs/{job}:errors is the error file itself,
// not the job (GetBulkJob's route has the same shape without the verb).
func TestBulkErrors(t *testing.T) {
	addr, _ := startBulk(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)
	r := httptest.NewRequest(http.MethodGet, "/v1/"+bulkParent+"/bulkJobs/j1:errors", nil)
	r.Header.Set("Authorization", "Bearer abc.def")
	w := serve(h, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	for k, want := range map[string]string{
		"Content-Type":        "text/csv; charset=utf-8",
		"Content-Disposition": "attachment; filename=bulk-job-j1-errors.csv",
		"Cache-Control":       "no-store",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if want := "local_part,users,line,error\r\nanna,x@example.com,2,user x@example.com is not a member of the organization\r\n"; w.Body.String() != want {
		t.Errorf("body = %q, want %q", w.Body, want)
	}
	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/"+bulkParent+"/bulkJobs/j2:errors", nil))
	if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Body.String(), "bulk job not found") {
		t.Errorf("unknown job: %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	// The job itself keeps its JSON route.
	w = serve(h, httptest.NewRequest(http.MethodGet, "/v1/"+bulkParent+"/bulkJobs/j1", nil))
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"state":"BULK_JOB_STATE_SUCCEEDED"`) {
		t.Errorf("job: %d %s", w.Code, w.Body)
	}
}
