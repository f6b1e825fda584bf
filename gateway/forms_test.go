package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

// fakeForms is the lists service's public form API as the edge sees it:
// it records what it was asked and answers as the real one does.
type fakeForms struct {
	listspb.UnimplementedPublicFormServiceServer
	mu       sync.Mutex
	submits  []*listspb.SubmitFormRequest
	clients  []string
	oneClick int
}

func (f *fakeForms) SubmitForm(ctx context.Context, req *listspb.SubmitFormRequest) (*listspb.SubmitFormResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submits = append(f.submits, req)
	md, _ := metadata.FromIncomingContext(ctx)
	f.clients = append(f.clients, strings.Join(md.Get("x-forwarded-for"), ";"))
	switch req.GetEmail() {
	case "bad":
		st, _ := status.New(codes.InvalidArgument, "email: want an address").WithDetails(
			&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "email", Description: "want an address"}}},
			&errdetails.ErrorInfo{Reason: "FORM_REFUSED", Domain: "mailplane", Metadata: map[string]string{"title": "Votre demande n’a pas pu être prise en compte", "contact": "team-owner@example.test"}},
			&errdetails.LocalizedMessage{Locale: "fr", Message: "L’adresse e-mail n’est pas valide. Pour obtenir de l’aide, écrivez à team-owner@example.test."})
		return nil, st.Err()
	case "many":
		st, _ := status.New(codes.ResourceExhausted, "too many requests").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(90 * time.Second)})
		return nil, st.Err()
	case "boom":
		return nil, status.Error(codes.Internal, "internal error")
	}
	return &listspb.SubmitFormResponse{RedirectUrl: req.GetRedirectUrl(), Page: &listspb.FormPage{Language: "fr", Title: "Merci", Message: "Votre demande <b> a bien été reçue."}}, nil
}

func (f *fakeForms) CheckFormOrigin(_ context.Context, req *listspb.CheckFormOriginRequest) (*listspb.CheckFormOriginResponse, error) {
	return &listspb.CheckFormOriginResponse{Allowed: req.GetList() == "team@example.test" && req.GetOrigin() == "https://site.example"}, nil
}

func (f *fakeForms) GetUnsubscribePage(_ context.Context, req *listspb.GetUnsubscribePageRequest) (*listspb.GetUnsubscribePageResponse, error) {
	if req.GetToken() != "good" {
		return nil, status.Error(codes.InvalidArgument, "token: not a valid one-click token")
	}
	return &listspb.GetUnsubscribePageResponse{Page: &listspb.FormPage{Language: "de", Title: "Abbestellen", Message: "Wirklich?"}, Button: "Abbestellen"}, nil
}

func (f *fakeForms) OneClickUnsubscribe(_ context.Context, req *listspb.OneClickUnsubscribeRequest) (*listspb.OneClickUnsubscribeResponse, error) {
	if req.GetToken() != "good" {
		return nil, status.Error(codes.InvalidArgument, "token: not a valid one-click token")
	}
	f.mu.Lock()
	f.oneClick++
	f.mu.Unlock()
	return &listspb.OneClickUnsubscribeResponse{Page: &listspb.FormPage{Language: "de", Title: "Abbestellen", Message: "Erledigt."}}, nil
}

func startFormsEdge(t *testing.T, trusted ...netip.Prefix) (http.Handler, *fakeForms) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fake := &fakeForms{}
	listspb.RegisterPublicFormServiceServer(srv, fake)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return newEdge(t, Config{AccountsAddr: lis.Addr().String(), CORSOrigins: []string{"https://app.example"}, TrustedProxies: trusted}, nil), fake
}

func formRequest(method, path, contentType, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.RemoteAddr = "203.0.113.7:5555"
	return r
}

// TestFormSubmit: a plain form is redirected to the URL the service
// allowed, or shown the service's page; JSON is answered JSON; the
// client's address reaches the service as the edge established it.
func TestFormSubmit(t *testing.T) {
	edge, fake := startFormsEdge(t, netip.MustParsePrefix("10.0.0.0/8"))
	const form = "application/x-www-form-urlencoded"

	w := serve(edge, formRequest("POST", "/forms/team@example.test/subscribe", form, "list=team%40example.test&email=ann%40example.org&name=Ann&redirect=https%3A%2F%2Fsite.example%2Fthanks&consent=yes"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://site.example/thanks" {
		t.Fatalf("redirect: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	got := fake.submits[0]
	if got.GetList() != "team@example.test" || got.GetAction() != listspb.FormAction_FORM_ACTION_SUBSCRIBE || got.GetEmail() != "ann@example.org" || got.GetDisplayName() != "Ann" || got.GetTrap() != "" {
		t.Errorf("asked %v", got)
	}

	w = serve(edge, formRequest("POST", "/forms/team@example.test/unsubscribe", form+"; charset=utf-8", "email=ann%40example.org&website=spam"))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, "Votre demande &lt;b&gt; a bien été reçue.") || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("page: %d\n%s", w.Code, body)
	}
	if got := fake.submits[1]; got.GetAction() != listspb.FormAction_FORM_ACTION_UNSUBSCRIBE || got.GetTrap() != "spam" {
		t.Errorf("asked %v; want the honeypot passed on", got)
	}

	r := formRequest("POST", "/forms/team@example.test/subscribe", "application/json", `{"email":"ann@example.org","name":"Ann"}`)
	r.Header.Set("Origin", "https://site.example")
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	w = serve(edge, r)
	var resp map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &resp) != nil || resp["page"] == nil || w.Header().Get("Access-Control-Allow-Origin") != "https://site.example" {
		t.Errorf("JSON: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	// The peer is no trusted proxy: the forwarded entry is not believed.
	if c := fake.clients[2]; !strings.HasSuffix(c, "203.0.113.7") {
		t.Errorf("client seen as %q, want the peer last", c)
	}
	r = formRequest("POST", "/forms/team@example.test/subscribe", form, "email=ann%40example.org")
	r.RemoteAddr = "10.1.2.3:4444"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	serve(edge, r)
	if c := fake.clients[3]; !strings.HasSuffix(c, "198.51.100.1") {
		t.Errorf("client behind a trusted proxy seen as %q, want 198.51.100.1 last", c)
	}
}

// TestFormRefusals: bad input is a clear 4xx (an HTML page for a form,
// the API's JSON error for JSON), never a 500, and never reaches the
// service; the service's refusal is shown in the list's language with
// the address to write to.
func TestFormRefusals(t *testing.T) {
	edge, fake := startFormsEdge(t)
	const form = "application/x-www-form-urlencoded"
	for _, tc := range []struct {
		name, method, path, ct, body string
		code                         int
		mention                      string
	}{
		{"unknown JSON field", "POST", "/forms/team@example.test/subscribe", "application/json", `{"email":"a@b.example","admin":true}`, 400, "admin"},
		{"JSON not an object", "POST", "/forms/team@example.test/subscribe", "application/json", `["a"]`, 400, "body"},
		{"JSON with trailing text", "POST", "/forms/team@example.test/subscribe", "application/json", `{"email":"a@b.example"} {}`, 400, "body"},
		{"JSON number", "POST", "/forms/team@example.test/subscribe", "application/json", `{"email":5}`, 400, "email"},
		{"oversized", "POST", "/forms/team@example.test/subscribe", form, "email=" + strings.Repeat("a", 20<<10), 413, "KiB"},
		{"bad encoding", "POST", "/forms/team@example.test/subscribe", form, "email=%zz", 400, "URL-encoded"},
		{"other type", "POST", "/forms/team@example.test/subscribe", "text/plain", "email=a", 415, "x-www-form-urlencoded"},
		{"another list in the body", "POST", "/forms/team@example.test/subscribe", form, "list=other%40example.test&email=a%40b.example", 400, "list"},
		{"unknown action", "POST", "/forms/team@example.test/delete", form, "email=a%40b.example", 404, ""},
		{"GET a form", "GET", "/forms/team@example.test/subscribe", "", "", 405, ""},
		{"JSON from an origin the list does not allow", "POST", "/forms/team@example.test/subscribe", "application/json", `{"email":"a@b.example"}`, 403, "evil.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := formRequest(tc.method, tc.path, tc.ct, tc.body)
			if strings.Contains(tc.name, "origin") {
				r.Header.Set("Origin", "https://evil.example")
			}
			w := serve(edge, r)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.mention) {
				t.Errorf("%d, want %d mentioning %q:\n%s", w.Code, tc.code, tc.mention, w.Body)
			}
			if w.Header().Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("CORS header on a refusal: %v", w.Header())
			}
		})
	}
	if len(fake.submits) != 0 {
		t.Errorf("the service was asked %v", fake.submits)
	}

	w := serve(edge, formRequest("POST", "/forms/team@example.test/subscribe", form, "email=bad"))
	body := w.Body.String()
	for _, want := range []string{`<html lang="fr">`, "Votre demande n’a pas pu être prise en compte", "n’est pas valide", "team-owner@example.test"} {
		if w.Code != 400 || !strings.Contains(body, want) {
			t.Errorf("refusal page %d without %q:\n%s", w.Code, want, body)
		}
	}
	w = serve(edge, formRequest("POST", "/forms/team@example.test/subscribe", form, "email=many"))
	if w.Code != 429 || w.Header().Get("Retry-After") != "90" {
		t.Errorf("rate limited: %d %v", w.Code, w.Header())
	}
	w = serve(edge, formRequest("POST", "/forms/team@example.test/subscribe", form, "email=boom"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "internal error") || !strings.Contains(w.Body.String(), "try again later") {
		t.Errorf("backend failure: %d\n%s", w.Code, w.Body)
	}
	w = serve(edge, formRequest("POST", "/forms/team@example.test/subscribe", "application/json", `{"email":"bad"}`))
	if w.Code != 400 || !strings.Contains(w.Body.String(), `"field":"email"`) {
		t.Errorf("JSON refusal: %d\n%s", w.Code, w.Body)
	}
}

// TestFormPreflight: a preflight is allowed for the list's origins, POST
// and Content-Type only; the API's CORS origins do not apply here.
func TestFormPreflight(t *testing.T) {
	edge, _ := startFormsEdge(t)
	for _, tc := range []struct {
		origin, method, headers string
		allowed                 bool
	}{
		{"https://site.example", "POST", "content-type", true},
		{"https://site.example", "POST", "", true},
		{"https://app.example", "POST", "content-type", false},
		{"https://evil.example", "POST", "content-type", false},
		{"https://site.example", "PUT", "content-type", false},
		{"https://site.example", "POST", "content-type, authorization", false},
	} {
		r := formRequest("OPTIONS", "/forms/team@example.test/subscribe", "", "")
		r.Header.Set("Origin", tc.origin)
		r.Header.Set("Access-Control-Request-Method", tc.method)
		if tc.headers != "" {
			r.Header.Set("Access-Control-Request-Headers", tc.headers)
		}
		w := serve(edge, r)
		got := w.Header().Get("Access-Control-Allow-Origin") == tc.origin && w.Header().Get("Access-Control-Allow-Methods") == "POST"
		if w.Code != 204 || got != tc.allowed || w.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%+v: %d %v, want allowed %v", tc, w.Code, w.Header(), tc.allowed)
		}
	}
}

// TestOneClickEndpoints: a GET shows the button and unsubscribes nobody;
// RFC 8058's POST unsubscribes, URL-encoded or multipart; anything else
// is a 4xx page.
func TestOneClickEndpoints(t *testing.T) {
	edge, fake := startFormsEdge(t)
	w := serve(edge, formRequest("GET", "/forms/one-click?token=good", "", ""))
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `<form method="post" action="?token=good">`) || !strings.Contains(body, `name="List-Unsubscribe" value="One-Click"`) || fake.oneClick != 0 {
		t.Errorf("GET: %d, %d unsubscribed\n%s", w.Code, fake.oneClick, body)
	}
	if w.Header().Get("Referrer-Policy") != "no-referrer" || !strings.Contains(w.Header().Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("GET headers: %v", w.Header())
	}
	w = serve(edge, formRequest("POST", "/forms/one-click?token=good", "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Erledigt.") || fake.oneClick != 1 {
		t.Errorf("POST: %d, %d unsubscribed\n%s", w.Code, fake.oneClick, w.Body)
	}
	multipart := "--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n"
	w = serve(edge, formRequest("POST", "/forms/one-click?token=good", "multipart/form-data; boundary=b", multipart))
	if w.Code != 200 || fake.oneClick != 2 {
		t.Errorf("multipart POST: %d, %d unsubscribed\n%s", w.Code, fake.oneClick, w.Body)
	}
	for _, tc := range []struct {
		path, ct, body string
		code           int
	}{
		{"/forms/one-click?token=good", "application/x-www-form-urlencoded", "List-Unsubscribe=Yes", 400},
		{"/forms/one-click?token=good", "application/x-www-form-urlencoded", "", 400},
		{"/forms/one-click?token=good", "text/plain", "List-Unsubscribe=One-Click", 415},
		{"/forms/one-click?token=forged", "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click", 400},
		{"/forms/one-click?token=good", "multipart/form-data; boundary=b", "--b\r\nbroken", 400},
	} {
		w := serve(edge, formRequest("POST", tc.path, tc.ct, tc.body))
		if w.Code != tc.code {
			t.Errorf("POST %s %q: %d, want %d\n%s", tc.ct, tc.body, w.Code, tc.code, w.Body)
		}
	}
	if w := serve(edge, formRequest("GET", "/forms/one-click?token=forged", "", "")); w.Code != 400 {
		t.Errorf("GET a forged token: %d", w.Code)
	}
	if fake.oneClick != 2 {
		t.Errorf("%d unsubscribed, want 2", fake.oneClick)
	}
}

// fakeFormService answers the managers' form API, echoing what it got.
type fakeFormService struct {
	listspb.UnimplementedFormServiceServer
}

func (fakeFormService) GenerateForms(_ context.Context, req *listspb.GenerateFormsRequest) (*listspb.GenerateFormsResponse, error) {
	return &listspb.GenerateFormsResponse{SubscribeHtml: req.GetName() + " " + req.GetRedirectUrl()}, nil
}

func (fakeFormService) UpdateFormSettings(_ context.Context, req *listspb.UpdateFormSettingsRequest) (*listspb.UpdateFormSettingsResponse, error) {
	return &listspb.UpdateFormSettingsResponse{FormSettings: req.GetFormSettings()}, nil
}

// TestFormServiceRoutes: the managers' form API is routed as the README
// says.
func TestFormServiceRoutes(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	listspb.RegisterFormServiceServer(srv, fakeFormService{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	edge := newEdge(t, Config{AccountsAddr: lis.Addr().String()}, nil)
	const list = "organizations/o/mailServices/m/lists/l"
	w := serve(edge, httptest.NewRequest("GET", "/v1/"+list+":generateForms?redirectUrl=https%3A%2F%2Fsite.example%2Fthanks", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"subscribeHtml":"`+list+` https://site.example/thanks"`) {
		t.Errorf("generateForms: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest("PATCH", "/v1/"+list+"/formSettings", strings.NewReader(`{"redirectUrls":["https://site.example/thanks"]}`))
	r.Header.Set("Content-Type", "application/json")
	w = serve(edge, r)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"name":"`+list+`/formSettings"`) || !strings.Contains(w.Body.String(), `"redirectUrls":["https://site.example/thanks"]`) {
		t.Errorf("update: %d %s", w.Code, w.Body)
	}
}
