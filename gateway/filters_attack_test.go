package gateway

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	filterspb "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"google.golang.org/grpc"
)

// TestFiltersRESTAttack: the filters' REST routes refuse unknown JSON
// fields, bytes that are not UTF-8 in a body, a path or a query, 400
// naming the field, before the service is asked; never a 500.
func TestFiltersRESTAttack(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		asked.Add(1)
		return h(ctx, req)
	}))
	filterspb.RegisterRuleServiceServer(srv, filterspb.UnimplementedRuleServiceServer{})
	filterspb.RegisterFilterSettingsServiceServer(srv, filterspb.UnimplementedFilterSettingsServiceServer{})
	filterspb.RegisterFilterRunServiceServer(srv, filterspb.UnimplementedFilterRunServiceServer{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	edge := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)
	const addr = "/v1/organizations/o/mailServices/m/addresses/a"
	const rule = `{"displayName":"r","actions":[{"kind":"ACTION_KIND_MOVE","folder":"Work"}]`
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"unknown JSON field of a rule", "POST", addr + "/rules", rule + `,"owner":"me"}`, "owner"},
		{"unknown JSON field of a condition", "POST", addr + "/rules", rule + `,"conditions":[{"field":"FIELD_FROM","script":"x"}]}`, "script"},
		{"unknown JSON field of an action", "PATCH", addr + "/rules/r", `{"actions":[{"kind":"ACTION_KIND_MOVE","sieve":"x"}]}`, "sieve"},
		{"unknown JSON field of the settings", "PATCH", addr + "/filterSettings", `{"antiSpam":false,"admin":true}`, "admin"},
		{"unknown JSON field of a batch", "POST", "/v1/organizations/o/mailServices/m/filterSettings:batchUpdate", `{"antiSpam":false,"everyone":true}`, "everyone"},
		{"unknown JSON field of an import", "POST", addr + "/filterSettings:importSenders", `{"csv":"a.example","merge":true}`, "merge"},
		{"unknown JSON field of a run", "POST", addr + "/filterRuns", `{"dryRun":true,"state":"FILTER_RUN_STATE_SUCCEEDED","owner":1}`, "owner"},
		{"not UTF-8 in a rule's name", "POST", addr + "/rules", "{\"displayName\":\"r\xff\",\"actions\":[]}", "displayName"},
		{"not UTF-8 in a condition's value", "POST", addr + "/rules", "{\"displayName\":\"r\",\"conditions\":[{\"field\":\"FIELD_FROM\",\"value\":\"\xc3\"}]}", "value"},
		{"not UTF-8 in a folder", "PATCH", addr + "/filterSettings", "{\"spamFolder\":\"Sp\xffam\"}", "spamFolder"},
		{"not UTF-8 in a blocked sender", "PATCH", addr + "/filterSettings", "{\"blockedSenders\":[\"a.example\",\"\xff.example\"]}", "blockedSenders"},
		{"not UTF-8 in the CSV", "POST", addr + "/filterSettings:importSenders", "{\"csv\":\"sender,list\\n\xff.example,block\\n\"}", "csv"},
		{"not UTF-8 in a reordered rule", "POST", addr + "/rules:reorder", "{\"rules\":[\"x\xff\"]}", "rules"},
		{"not UTF-8 in a batch's address", "POST", "/v1/organizations/o/mailServices/m/filterSettings:batchUpdate", "{\"addresses\":[\"\xff\"],\"antiSpam\":true}", "addresses"},
		{"not UTF-8 in a run's folder", "POST", addr + "/filterRuns", "{\"folder\":\"\xff\"}", "folder"},
		{"not UTF-8 in the query", "GET", addr + "/filterRuns?pageToken=%FF", "", "pageToken"},
		{"not UTF-8 in the path", "GET", "/v1/organizations/o/mailServices/m/addresses/a%FF/rules", "", "parent"},
		{"not UTF-8 in the path of a PATCH", "PATCH", addr + "/rules/r%C3", `{"displayName":"x"}`, "name"},
		{"not UTF-8 in the path of an export", "GET", "/v1/organizations/o%FF/mailServices/m/addresses/a/filterSettings:exportSenders", "", "name"},
		{"unknown query parameter", "GET", addr + "/filterRuns?all=1", "", "all"},
		{"unknown JSON field of a mail service's settings", "PATCH", "/v1/organizations/o/mailServices/m/filterSettings", `{"rejectBlocked":true,"owner":1}`, "owner"},
		{"not UTF-8 in a mail service's blocked sender", "PATCH", "/v1/organizations/o/mailServices/m/filterSettings", "{\"blockedSenders\":[\"\xff.example\"]}", "blockedSenders"},
		{"unknown JSON field of a mail service's import", "POST", "/v1/organizations/o/mailServices/m/filterSettings:importSenders", `{"csv":"a.example","merge":true}`, "merge"},
		{"not UTF-8 in the path of a mail service's export", "GET", "/v1/organizations/o%FF/mailServices/m/filterSettings:exportSenders", "", "name"},
		{"an enum that does not exist", "POST", addr + "/rules", `{"displayName":"r","actions":[{"kind":"ACTION_KIND_EXECUTE"}]}`, "kind"},
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
