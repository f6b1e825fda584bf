package gateway

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	importspb "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"google.golang.org/grpc"
)

// TestImportsRESTAttack: the imports' REST routes refuse unknown JSON
// fields, values of the wrong kind, enums that do not exist, and bytes
// that are not UTF-8 in a body, a path or a query, 400 naming the field,
// before the service is asked; never a 500. (NUL, valid UTF-8, is the
// service's to refuse: services/imports' TestAttackREST.) No imports
// route is served without a caller, and the edge keeps no rate of its
// own (the service counts source logins): there is no flood to try here.
func TestImportsRESTAttack(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		asked.Add(1)
		return h(ctx, req)
	}
	countStream := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		asked.Add(1)
		return h(srv, ss)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(count), grpc.StreamInterceptor(countStream))
	importspb.RegisterImportServiceServer(srv, importspb.UnimplementedImportServiceServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	edge := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)
	const jobs = "/v1/organizations/o/importJobs"
	const src = `{"host":"imap.example.net","login":"a","password":"p"`
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"unknown JSON field of a job", "POST", jobs, `{"destination":"d","sources":[` + src + `}],"state":"STATE_SUCCEEDED","owner":"me"}`, "owner"},
		{"unknown JSON field of a source", "POST", jobs, `{"destination":"d","sources":[` + src + `,"insecure":true}]}`, "insecure"},
		{"unknown JSON field of a progress", "POST", jobs, `{"destination":"d","progress":{"messagesCopied":"1","extra":1}}`, "extra"},
		{"unknown JSON field of a cancel", "POST", jobs + "/j:cancel", `{"force":true}`, "force"},
		{"unknown JSON field of a bulk import", "POST", jobs + ":bulkCreate", `{"csv":"source\n","dryRun":true}`, "dryRun"},
		{"a security that does not exist", "POST", jobs, `{"destination":"d","sources":[` + src + `,"security":"SECURITY_NONE"}]}`, "security"},
		{"a port that is not a number", "POST", jobs, `{"destination":"d","sources":[` + src + `,"port":"imaps"}]}`, "port"},
		{"a port past int32", "POST", jobs, `{"destination":"d","sources":[` + src + `,"port":4294967296}]}`, "port"},
		{"sources not a list", "POST", jobs, `{"destination":"d","sources":` + src + `}}`, "sources"},
		{"not UTF-8 in the destination", "POST", jobs, "{\"destination\":\"d\xff\"}", "destination"},
		{"not UTF-8 in a password", "POST", jobs, "{\"destination\":\"d\",\"sources\":[{\"host\":\"h\",\"password\":\"p\xc3\"}]}", "password"},
		{"not UTF-8 in a host", "POST", jobs, "{\"destination\":\"d\",\"sources\":[{\"host\":\"h\xff\"}]}", "host"},
		{"not UTF-8 in the CSV", "POST", jobs + ":bulkCreate", "{\"csv\":\"source\\n\xff\"}", "csv"},
		{"not UTF-8 in the query", "GET", jobs + "?parentJob=%FF", "", "parentJob"},
		{"not UTF-8 in the page token", "GET", jobs + "/j/failures?pageToken=%C3", "", "pageToken"},
		{"not UTF-8 in the path of a job", "GET", jobs + "/j%FF", "", "name"},
		{"not UTF-8 in the path of a create", "POST", "/v1/organizations/o%FF/importJobs", `{"destination":"d"}`, "parent"},
		{"not UTF-8 in the path of a cancel", "POST", jobs + "/j%C3:cancel", `{}`, "name"},
		{"not UTF-8 in the path of a watch", "GET", jobs + "/j%FF:watch", "", "name"},
		{"not UTF-8 in the path of the failures", "GET", jobs + "/j%FF/failures", "", "parent"},
		{"not UTF-8 in the path of the template", "GET", "/v1/organizations/o%FF/importJobs:template", "", "organization"},
		{"not UTF-8 in the path of a bulk import", "POST", "/v1/organizations/o%FF/importJobs:bulkCreate", `{"csv":"x"}`, "parent"},
		{"unknown query parameter", "GET", jobs + "?creator=users/u", "", "creator"},
		{"a page size that is not a number", "GET", jobs + "?pageSize=all", "", "pageSize"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				r.Header.Set("Content-Type", "application/json")
			}
			w := serve(edge, r)
			if w.Code != 400 || !strings.Contains(w.Body.String(), tc.field) {
				t.Errorf("%d, want 400 naming %s: %.300s", w.Code, tc.field, w.Body)
			}
		})
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the service was asked %d times", n)
	}
}
