package gateway

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"google.golang.org/grpc"
)

// TestFormsAttack: bytes that are not UTF-8 in any field a public form or
// one-click URL carries are refused 400 naming the field, before the
// service is asked (a proto string must be UTF-8: the call would fail as
// an internal error).
func TestFormsAttack(t *testing.T) {
	edge, fake := startFormsEdge(t)
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, path, ct, body, field string
	}{
		{"email", "POST", "/forms/team@example.test/subscribe", form, "email=a%FF%40b.example", "email"},
		{"name", "POST", "/forms/team@example.test/subscribe", form, "email=a%40b.example&name=%C3", "name"},
		{"redirect", "POST", "/forms/team@example.test/subscribe", form, "email=a%40b.example&redirect=https://a.example/%FF", "redirect"},
		{"website", "POST", "/forms/team@example.test/subscribe", form, "email=a%40b.example&website=%FF", "website"},
		{"list in the path", "POST", "/forms/t%FFeam@example.test/subscribe", form, "email=a%40b.example", "list"},
		{"list in the path, JSON", "POST", "/forms/t%FFeam@example.test/subscribe", "application/json", `{"email":"a@b.example"}`, "list"},
		{"token of the page", "GET", "/forms/one-click?token=%FF", "", "", "token"},
		{"token of the POST", "POST", "/forms/one-click?token=%FF", form, "List-Unsubscribe=One-Click", "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(edge, formRequest(tc.method, tc.path, tc.ct, tc.body))
			if w.Code != 400 || !strings.Contains(w.Body.String(), tc.field) {
				t.Errorf("%d, want 400 naming %s:\n%.500s", w.Code, tc.field, w.Body)
			}
		})
	}
	if len(fake.submits) != 0 || fake.oneClick != 0 {
		t.Errorf("the service was asked: %v, %d one-click", fake.submits, fake.oneClick)
	}
}

// TestListsRESTAttack: the lists' REST routes refuse unknown JSON fields,
// bytes that are not UTF-8 in a body, a path or a query, 400 naming the
// field, never a 500.
func TestListsRESTAttack(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	listspb.RegisterFormServiceServer(srv, fakeFormService{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	edge := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)
	const list = "/v1/organizations/o/mailServices/m/lists/l"
	for _, tc := range []struct {
		name, method, path, body, field string
	}{
		{"unknown JSON field", "PATCH", list + "/formSettings", `{"redirectUrls":[],"owner":"me"}`, "owner"},
		{"unknown nested JSON field", "PATCH", list + "/formSettings", `{"redirectUrls":[],"name":{"x":1}}`, "name"},
		{"not UTF-8 in the body", "PATCH", list + "/formSettings", "{\"redirectUrls\":[\"https://a.example/\xff\"]}", "redirectUrls"},
		{"not UTF-8 in the query", "GET", list + ":generateForms?redirectUrl=%FF", "", "redirectUrl"},
		{"not UTF-8 in the path", "GET", "/v1/organizations/o%FF/mailServices/m/lists/l:generateForms", "", "name"},
		{"not UTF-8 in the path of a PATCH", "PATCH", "/v1/organizations/o/mailServices/m/lists/l%C3/formSettings", `{"redirectUrls":[]}`, "name"},
		{"unknown query parameter", "GET", list + ":generateForms?admin=1", "", "admin"},
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
}
