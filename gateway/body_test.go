package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"

	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxespb "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
)

// echoes answers creates and updates with what it received, so that tests
// see what the edge decoded from a body.
type echoes struct {
	mailboxespb.UnimplementedAddressServiceServer
	mailboxespb.UnimplementedDevicePasswordServiceServer
	accountspb.UnimplementedOrganizationServiceServer
}

func (echoes) CreateAddress(_ context.Context, req *mailboxespb.CreateAddressRequest) (*mailboxespb.CreateAddressResponse, error) {
	return &mailboxespb.CreateAddressResponse{Address: req.GetAddress()}, nil
}

func (echoes) CreateDevicePassword(_ context.Context, req *mailboxespb.CreateDevicePasswordRequest) (*mailboxespb.CreateDevicePasswordResponse, error) {
	return &mailboxespb.CreateDevicePasswordResponse{DevicePassword: req.GetDevicePassword()}, nil
}

func (echoes) UpdateOrganization(_ context.Context, req *accountspb.UpdateOrganizationRequest) (*accountspb.UpdateOrganizationResponse, error) {
	return &accountspb.UpdateOrganizationResponse{Organization: req.GetOrganization()}, nil
}

func (echoes) ListMembers(_ context.Context, req *accountspb.ListMembersRequest) (*accountspb.ListMembersResponse, error) {
	return &accountspb.ListMembersResponse{
		Members:       []*accountspb.Member{{Name: req.GetParent(), DisplayName: strconv.Itoa(int(req.GetPageSize()))}},
		NextPageToken: req.GetPageToken(),
	}, nil
}

// startEchoes serves echoes, fakeAuth and fakeUsers on a loopback port.
func startEchoes(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	mailboxespb.RegisterAddressServiceServer(srv, echoes{})
	mailboxespb.RegisterDevicePasswordServiceServer(srv, echoes{})
	accountspb.RegisterOrganizationServiceServer(srv, echoes{})
	accountspb.RegisterAuthServiceServer(srv, fakeAuth{})
	accountspb.RegisterUserServiceServer(srv, fakeUsers{})
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

const (
	addressesPath = "/v1/organizations/acme/mailServices/ms1/addresses"
	devicePwPath  = "/v1/organizations/acme/mailServices/ms1/addresses/a1/devicePasswords"
)

// violation is the one field violation of a 400, or "" when it has none.
func violation(t *testing.T, w *httptest.ResponseRecorder) (field, desc string) {
	t.Helper()
	var st rpcStatus
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	for _, d := range st.Details {
		if vs, ok := d["fieldViolations"].([]any); ok && len(vs) == 1 {
			v := vs[0].(map[string]any)
			return v["field"].(string), v["description"].(string)
		}
	}
	return "", ""
}

func request(method, path, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

// TestUnknownFieldsRefused: a field or enum name the API does not know is a
// 400 naming it by its JSON path, never dropped (a dropped protocol made a
// device password valid for every protocol).
func TestUnknownFieldsRefused(t *testing.T) {
	h := newEdge(t, Config{AccountsAddr: startEchoes(t)}, nil)

	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantField string
		wantDesc  string // a part of the description
	}{
		{
			name:   "unknown enum name, nested",
			method: http.MethodPost, path: addressesPath,
			body:      `{"address":{"localPart":"anna","kind":"MAILBOX"}}`,
			wantField: "address.kind", wantDesc: `unknown value "MAILBOX"; one of ADDRESS_KIND_MAILBOX, ADDRESS_KIND_NO_REPLY`,
		},
		{
			name:   "unknown enum name in a list",
			method: http.MethodPost, path: devicePwPath,
			body:      `{"deviceName":"iPhone","protocols":["MAIL_PROTOCOL_SMTP","PROTOCOL_IMAP"]}`,
			wantField: "protocols[1]", wantDesc: `unknown value "PROTOCOL_IMAP"; one of MAIL_PROTOCOL_IMAP, MAIL_PROTOCOL_SMTP`,
		},
		{
			name:   "unknown field at the top",
			method: http.MethodPost, path: "/v1/auth:signIn",
			body:      `{"email":"a@example.com","password":"x","rememberMe":true}`,
			wantField: "rememberMe", wantDesc: "unknown field",
		},
		{
			name:   "unknown field, nested",
			method: http.MethodPost, path: addressesPath,
			body:      `{"address":{"localPart":"anna","users":[{"email":"b@example.com"},{"email":"c@example.com","rol":"x"}]}}`,
			wantField: "address.users[1].rol", wantDesc: "unknown field",
		},
		{
			name:   "unknown field in a patch",
			method: http.MethodPatch, path: "/v1/organizations/acme?updateMask=displayName",
			body:      `{"displayName":"Acme","dispayName":"Acme"}`,
			wantField: "dispayName", wantDesc: "unknown field",
		},
		{
			name:   "wrong type",
			method: http.MethodPost, path: addressesPath,
			body:      `{"address":{"localPart":"anna","quotaBytes":"lots"}}`,
			wantField: "address.quotaBytes", wantDesc: "must be an integer",
		},
		{
			name:   "a bad value deep in a long list",
			method: http.MethodPost, path: devicePwPath,
			body:      `{"deviceName":"iPhone","protocols":[` + strings.Repeat(`"MAIL_PROTOCOL_IMAP",`, 1500) + `"IMAP"]}`,
			wantField: "protocols", wantDesc: "holds a value that is not valid",
		},
		{
			name:   "object expected",
			method: http.MethodPost, path: addressesPath,
			body:      `{"address":"anna"}`,
			wantField: "address", wantDesc: "must be a JSON object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, request(tt.method, tt.path, "application/json", tt.body))
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", w.Code, w.Body)
			}
			field, desc := violation(t, w)
			if field != tt.wantField || !strings.Contains(desc, tt.wantDesc) {
				t.Errorf("violation = %q: %q, want %q: …%s…", field, desc, tt.wantField, tt.wantDesc)
			}
		})
	}

	// What the API knows still gets through, under JSON or proto names.
	ok := []struct {
		name, method, path, body string
		want                     string // the echo, as protojson
	}{
		{
			name:   "address",
			method: http.MethodPost, path: addressesPath,
			body: `{"address":{"local_part":"anna","kind":"ADDRESS_KIND_NO_REPLY","aliases":["a"]}}`,
			want: `{"address":{"localPart":"anna","kind":"ADDRESS_KIND_NO_REPLY","aliases":["a"]}}`,
		},
		{
			name:   "device password",
			method: http.MethodPost, path: devicePwPath,
			body: `{"deviceName":"iPhone","protocols":["MAIL_PROTOCOL_IMAP"]}`,
			want: `{"devicePassword":{"deviceName":"iPhone","protocols":["MAIL_PROTOCOL_IMAP"]}}`,
		},
		{
			name:   "patch",
			method: http.MethodPatch, path: "/v1/organizations/acme?updateMask=displayName",
			body: `{"displayName":"Acme"}`,
			want: `{"name":"organizations/acme","displayName":"Acme"}`,
		},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, request(tt.method, tt.path, "application/json; charset=utf-8", tt.body))
			if w.Code != http.StatusOK {
				t.Fatalf("status = %d, body %s", w.Code, w.Body)
			}
			var got, want any
			json.Unmarshal(w.Body.Bytes(), &got)
			json.Unmarshal([]byte(tt.want), &want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("backend got (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBodyRefused: a body that is not JSON is refused with 415 before any
// backend sees it, text after the JSON document with 400; a request without
// a body passes whatever its Content-Type.
func TestBodyRefused(t *testing.T) {
	h := newEdge(t, Config{AccountsAddr: startEchoes(t)}, nil)
	const signIn = `{"email":"wrong@example.com","password":"x"}`

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantMessage string
	}{
		{name: "text/plain", contentType: "text/plain;charset=UTF-8", body: signIn, wantStatus: 415, wantMessage: "send the request body as JSON with Content-Type: application/json"},
		{name: "form", contentType: "application/x-www-form-urlencoded", body: signIn, wantStatus: 415},
		{name: "no content type", body: signIn, wantStatus: 415},
		{name: "not UTF-8", contentType: "application/json; charset=iso-8859-1", body: signIn, wantStatus: 415},
		{name: "malformed content type", contentType: "application/json; charset", body: signIn, wantStatus: 415},
		{name: "a second document", contentType: "application/json", body: signIn + `{"email":"x"}`, wantStatus: 400, wantMessage: "request body: text after the JSON document"},
		{name: "trailing text", contentType: "application/json", body: signIn + "garbage", wantStatus: 400, wantMessage: "request body: text after the JSON document"},
		{name: "not JSON", contentType: "application/json", body: `{"email":`, wantStatus: 400, wantMessage: "request body: not valid JSON: unexpected EOF"},
		{name: "JSON", contentType: "application/json", body: signIn + "\n", wantStatus: 401},
		{name: "JSON with charset", contentType: "application/json; charset=utf-8", body: signIn, wantStatus: 401},
		{name: "a +json type", contentType: "application/merge-patch+json", body: signIn, wantStatus: 401},
		// An empty body is an empty message, which the backend judges.
		{name: "empty body", contentType: "text/plain", wantStatus: 400, wantMessage: "invalid request"},
		{name: "unknown route", path: "/v1/nothing:here", contentType: "text/plain", body: signIn, wantStatus: 404},
		// A route that takes no body ignores one (this backend has no
		// such method: 501 shows the request reached it).
		{name: "a body where none is taken", method: http.MethodDelete, path: "/v1/organizations/acme/members/u1", contentType: "text/plain", body: "x", wantStatus: 501},
		{name: "too large", contentType: "application/json", body: `{"email":"` + strings.Repeat("a", maxBodyBytes) + `"}`, wantStatus: 413, wantMessage: "the request body is larger than 4 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/auth:signIn"
			}
			w := serve(h, request(method, path, tt.contentType, tt.body))
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d; body %s", w.Code, tt.wantStatus, w.Body)
			}
			var st rpcStatus
			if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
				t.Fatalf("decode %s: %v", w.Body, err)
			}
			if tt.wantMessage != "" && st.Message != tt.wantMessage {
				t.Errorf("message = %q, want %q", st.Message, tt.wantMessage)
			}
		})
	}
}

// TestBulkCreateJSON: the upload's JSON form, {"csv": base64}, which the
// docs promise, starts the same job as the file itself.
func TestBulkCreateJSON(t *testing.T) {
	addr, got := startBulk(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)
	const path = "/v1/organizations/acme/mailServices/ms1/addresses:bulkCreate"
	file := "local_part\r\nanna\r\n"

	body, _ := protojson.Marshal(&mailboxespb.CreateBulkJobRequest{Csv: []byte(file)})
	w := serve(h, request(http.MethodPost, path, "application/json", string(body)))
	if w.Code != http.StatusAccepted {
		t.Fatalf("status = %d, body %s", w.Code, w.Body)
	}
	if rec := <-got; rec.parent != bulkParent || string(rec.csv) != file {
		t.Errorf("backend got %q, %q", rec.parent, rec.csv)
	}
	if loc := w.Header().Get("Location"); loc != "/v1/"+bulkParent+"/bulkJobs/j1" {
		t.Errorf("Location = %q", loc)
	}

	b64 := base64.StdEncoding.EncodeToString([]byte(file))
	for _, tt := range []struct{ name, body, wantField string }{
		{"unknown field", `{"csv":"` + b64 + `","dryRun":true}`, "dryRun"},
		{"not base64", `{"csv":"not base64!"}`, "csv"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(h, request(http.MethodPost, path, "application/json", tt.body))
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", w.Code, w.Body)
			}
			if field, _ := violation(t, w); field != tt.wantField {
				t.Errorf("field = %q, want %q", field, tt.wantField)
			}
		})
	}
	select {
	case rec := <-got:
		t.Errorf("the backend got a refused request: %q", rec.csv)
	default:
	}
}

// TestUnknownQueryParametersRefused: a query parameter the API does not know
// is a 400 naming it, like an unknown body field, not ignored.
func TestUnknownQueryParametersRefused(t *testing.T) {
	h := newEdge(t, Config{AccountsAddr: startEchoes(t)}, nil)
	const members = "/v1/organizations/acme/members"

	for _, tt := range []struct{ query, wantField string }{
		{"pageSise=10", "pageSise"},
		{"pageSize=ten", "pageSize"},
		{"pageToken=a&page_token=b", "page_token"},
		{"member.role=x", "member.role"},
	} {
		t.Run(tt.query, func(t *testing.T) {
			w := serve(h, httptest.NewRequest(http.MethodGet, members+"?"+tt.query, nil))
			if field, _ := violation(t, w); w.Code != http.StatusBadRequest || field != tt.wantField {
				t.Errorf("got %d %s, want 400 naming %s", w.Code, w.Body, tt.wantField)
			}
		})
	}
	for _, query := range []string{"pageSize=10&pageToken=t", "page_size=10&page_token=t", "pageSize=10&pageToken=t&parent=organizations/other"} {
		t.Run(query, func(t *testing.T) {
			w := serve(h, httptest.NewRequest(http.MethodGet, members+"?"+query, nil))
			want := map[string]any{"members": []any{map[string]any{"name": "organizations/acme", "displayName": "10"}}, "nextPageToken": "t"}
			var got map[string]any
			json.Unmarshal(w.Body.Bytes(), &got)
			if w.Code != http.StatusOK || !cmp.Equal(want, got) {
				t.Errorf("got %d %s, want 200 %v", w.Code, w.Body, want)
			}
		})
	}
}

// TestFormPostsNotRerouted: a form POST (which any web page can make a
// browser send) is not turned into the GET of its path, nor into the method
// an X-HTTP-Method-Override header names, as grpc-gateway does by default.
func TestFormPostsNotRerouted(t *testing.T) {
	addr, _ := startBackend(t)
	h := newEdge(t, Config{AccountsAddr: addr}, nil)

	for _, override := range []string{"", "GET"} {
		r := request(http.MethodPost, "/v1/users/me", "application/x-www-form-urlencoded", "a=b")
		if override != "" {
			r.Header.Set("X-HTTP-Method-Override", override)
		}
		if w := serve(h, r); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("form POST with override %q: status = %d, want 405; body %s", override, w.Code, w.Body)
		}
	}
}

// TestInputErrorText: what the generated handlers make of an inputError's
// text is parsed back to the same error, whatever the field holds.
func TestInputErrorText(t *testing.T) {
	for _, want := range []*inputError{
		{desc: "text after the JSON document"},
		{field: "address.kind", desc: `unknown value "X"; one of A, B`},
		{field: `labels["a\": b"]`, desc: "must be a string"},
		{field: "pageSise", desc: "unknown query parameter", query: true},
	} {
		got, ok := parseInputError(want.Error())
		if !ok || *got != *want {
			t.Errorf("parseInputError(%q) = %+v, %v; want %+v", want.Error(), got, ok, want)
		}
	}
	for _, msg := range []string{"", "invalid request", `request body field "unterminated: x`, `request body field "a" no colon`} {
		if got, ok := parseInputError(msg); ok {
			t.Errorf("parseInputError(%q) = %+v, want none", msg, got)
		}
	}
}

// TestQueryRefusedOnBodyRoutes: on every route whose fields all come from
// the path and the body (body "*" in http.yaml), whose generated handler
// never reads the query, a query parameter is a 400 naming it, as on every
// other route, and the backend is not called.
func TestQueryRefusedWhereNoneIsRead(t *testing.T) {
	h := newEdge(t, Config{AccountsAddr: startEchoes(t)}, nil)
	routes, err := queryFreeRoutes()
	if err != nil {
		t.Fatal(err)
	}
	// The routes the generator left without a query parser are exactly
	// the ones queryFreeRoutes finds.
	want := generatedWithoutQuery(t)
	got := make(map[string]bool)
	for _, rpc := range routes {
		parts := strings.Split(rpc, ".")
		got["request_"+parts[len(parts)-2]+"_"+parts[len(parts)-1]+"_0"] = true
	}
	for fn := range want {
		if !got[fn] {
			t.Errorf("%s reads no query, but queryFreeRoutes misses its route", fn)
		}
	}
	for fn := range got {
		if !want[fn] {
			t.Errorf("%s parses the query, but queryFreeRoutes lists its route", fn)
		}
	}
	// A path the route's pattern matches: each variable's segments with
	// "x" for a wildcard.
	variable := regexp.MustCompile(`\{[a-z_.]+=([^}]*)\}`)
	for route := range routes {
		method, pattern, _ := strings.Cut(route, " ")
		path := variable.ReplaceAllStringFunc(pattern, func(v string) string {
			return strings.ReplaceAll(variable.FindStringSubmatch(v)[1], "*", "x")
		})
		t.Run(route, func(t *testing.T) {
			w := serve(h, request(method, path+"?admin=1", "application/json", "{}"))
			if field, _ := violation(t, w); w.Code != http.StatusBadRequest || field != "admin" {
				t.Errorf("%s %s?admin=1: %d %s, want 400 naming admin", method, path, w.Code, w.Body)
			}
		})
	}
	// Without a query, the same route reaches the backend.
	if w := serve(h, request(http.MethodPost, addressesPath, "application/json", `{"address":{"localPart":"ann"}}`)); w.Code != http.StatusOK {
		t.Errorf("create without a query: %d %s", w.Code, w.Body)
	}
}

// generatedWithoutQuery returns the generated request functions that never
// call runtime.PopulateQueryParameters.
func generatedWithoutQuery(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("internal/gen/mailplane/*/v1/*.pb.gw.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("generated handlers: %v (%d files)", err, len(files))
	}
	fns := make(map[string]bool)
	start := regexp.MustCompile(`(?m)^func (request_\w+)\(`)
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		locs := start.FindAllSubmatchIndex(src, -1)
		for i, loc := range locs {
			end := len(src)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			// The next top-level func, request_ or not, ends this one.
			body := src[loc[1]:end]
			if j := bytes.Index(body, []byte("\nfunc ")); j >= 0 {
				body = body[:j]
			}
			if !bytes.Contains(body, []byte("runtime.PopulateQueryParameters(")) {
				fns[string(src[loc[2]:loc[3]])] = true
			}
		}
	}
	return fns
}
