package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

// The lists' public web endpoints: what a form pasted on any website posts
// to, and where one-click unsubscribe links (RFC 8058) point. They are no
// JSON API: a plain HTML form posts application/x-www-form-urlencoded and
// is answered with a redirect or a page; JavaScript may post JSON and is
// answered JSON. So they are served beside the grpc-gateway mux, with
// their own body limit and their own CORS (per list, from its form
// settings), not the API's.
const (
	// formsPrefix starts every path of the public form endpoints.
	formsPrefix = "/forms/"
	// maxFormBody caps a form's body: an address, a name, a URL.
	maxFormBody = 16 << 10
)

// formsHandler serves the public form endpoints through the lists
// service's PublicFormService.
type formsHandler struct {
	client  listspb.PublicFormServiceClient
	mux     *runtime.ServeMux // for JSON errors, the same as the API's
	trusted []netip.Prefix
	log     *slog.Logger
}

func newFormsHandler(lists *grpc.ClientConn, mux *runtime.ServeMux, trusted []netip.Prefix, log *slog.Logger) http.Handler {
	h := &formsHandler{client: listspb.NewPublicFormServiceClient(lists), mux: mux, trusted: trusted, log: log}
	m := http.NewServeMux()
	m.HandleFunc("POST /forms/{list}/{action}", h.submit)
	m.HandleFunc("OPTIONS /forms/{list}/{action}", h.preflight)
	m.HandleFunc("GET /forms/one-click", h.oneClickPage)
	m.HandleFunc("POST /forms/one-click", h.oneClick)
	return m
}

// formAction maps the path's action to the request's.
var formAction = map[string]listspb.FormAction{
	"subscribe":   listspb.FormAction_FORM_ACTION_SUBSCRIBE,
	"unsubscribe": listspb.FormAction_FORM_ACTION_UNSUBSCRIBE,
}

// formFields is a form's body, from either encoding. Website is the
// honeypot.
type formFields struct {
	List     string `json:"list"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Redirect string `json:"redirect"`
	Website  string `json:"website"`
}

// outgoing is the request's context with what the backends learn of it:
// the client's address as the edge established it (trusted proxies
// only), and the request id.
func (h *formsHandler) outgoing(r *http.Request) *http.Request {
	md := outgoingMetadata(h.trusted)(r.Context(), r)
	return r.WithContext(metadata.NewOutgoingContext(r.Context(), md))
}

// submit takes a subscribe or unsubscribe form.
func (h *formsHandler) submit(w http.ResponseWriter, r *http.Request) {
	action, ok := formAction[r.PathValue("action")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	r = h.outgoing(r)
	list := r.PathValue("list")
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	asJSON := ct == "application/json"
	fail := func(err error) {
		if asJSON {
			h.jsonError(w, r, err)
			return
		}
		h.errorPage(w, r, err)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBody))
	if err != nil {
		fail(&runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge,
			Err: status.Errorf(codes.InvalidArgument, "the form is larger than %d KiB", maxFormBody>>10)})
		return
	}
	var f formFields
	switch ct {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			fail(inputStatus("body", "not a valid URL-encoded form"))
			return
		}
		// Fields a page adds of its own (a consent box) are ignored: the
		// form is the website's.
		f = formFields{List: v.Get("list"), Email: v.Get("email"), Name: v.Get("name"), Redirect: v.Get("redirect"), Website: v.Get("website")}
	case "application/json":
		if err := decodeFormJSON(body, &f); err != nil {
			fail(err)
			return
		}
		origin := r.Header.Get("Origin")
		if origin != "" {
			// A browser lets JavaScript of another origin post JSON only
			// after a preflight; refuse the origins the list does not
			// allow here too, before anything is done.
			got, err := h.client.CheckFormOrigin(r.Context(), &listspb.CheckFormOriginRequest{List: list, Origin: origin})
			if err != nil {
				fail(err)
				return
			}
			if !got.GetAllowed() {
				fail(status.Error(codes.PermissionDenied, "the list does not allow forms on "+origin))
				return
			}
			allowOrigin(w, origin)
		}
	default:
		fail(&runtime.HTTPStatusError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: status.Error(codes.InvalidArgument, "send the form as application/x-www-form-urlencoded or application/json")})
		return
	}
	if err := notUTF8("list", list, "email", f.Email, "name", f.Name, "redirect", f.Redirect, "website", f.Website); err != nil {
		fail(err)
		return
	}
	if f.List != "" && !strings.EqualFold(f.List, list) {
		fail(inputStatus("list", "the body names another list than the path"))
		return
	}
	resp, err := h.client.SubmitForm(r.Context(), &listspb.SubmitFormRequest{
		List: list, Action: action, Email: f.Email, DisplayName: f.Name, RedirectUrl: f.Redirect, Trap: f.Website})
	if err != nil {
		fail(err)
		return
	}
	if asJSON {
		b, _ := protojson.Marshal(resp)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
		return
	}
	if u := resp.GetRedirectUrl(); u != "" {
		// The service checked it against the list's allowed URLs.
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	p := resp.GetPage()
	writePage(w, http.StatusOK, page{Lang: p.GetLanguage(), Title: p.GetTitle(), Message: p.GetMessage()})
}

// decodeFormJSON decodes one JSON object of formFields, refusing unknown
// members and text after it.
func decodeFormJSON(body []byte, f *formFields) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(f); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) && ute.Field != "" {
			return inputStatus(ute.Field, "want a string")
		}
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return inputStatus(strings.Trim(name, `"`), "unknown field")
		}
		return inputStatus("body", "not a JSON object: "+err.Error())
	}
	if dec.More() {
		return inputStatus("body", "text after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return inputStatus("body", "text after the JSON object")
	}
	return nil
}

// notUTF8 refuses the first of its field, value pairs whose value is not
// UTF-8: a proto string must be, and the call would fail as an internal
// error before reaching the service.
func notUTF8(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !utf8.ValidString(pairs[i+1]) {
			return inputStatus(pairs[i], "must be valid UTF-8")
		}
	}
	return nil
}

// inputStatus is InvalidArgument naming field.
func inputStatus(field, desc string) error {
	st, _ := status.New(codes.InvalidArgument, field+": "+desc).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: desc}}})
	return st.Err()
}

// allowOrigin lets origin's JavaScript read the answer. No credentials:
// the endpoints take none.
func allowOrigin(w http.ResponseWriter, origin string) {
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Add("Vary", "Origin")
}

// preflight answers a browser asking whether JavaScript of its page's
// origin may post JSON: yes when the list allows the origin, for POST
// with a Content-Type, and nothing else.
func (h *formsHandler) preflight(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	w.Header().Add("Vary", "Access-Control-Request-Method")
	w.Header().Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if _, ok := formAction[r.PathValue("action")]; !ok || origin == "" || r.Header.Get("Access-Control-Request-Method") != http.MethodPost {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	for _, hdr := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		if hdr = strings.TrimSpace(hdr); hdr != "" && !strings.EqualFold(hdr, "content-type") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	r = h.outgoing(r)
	got, err := h.client.CheckFormOrigin(r.Context(), &listspb.CheckFormOriginRequest{List: r.PathValue("list"), Origin: origin})
	if err == nil && got.GetAllowed() {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.Header().Set("Access-Control-Max-Age", "7200")
	}
	// A refused origin, an unknown list: no CORS headers, which is how a
	// browser learns it may not post.
	w.WriteHeader(http.StatusNoContent)
}

// oneClickPage is what a one-click link shows when opened: a question
// and a button that posts what RFC 8058's POST posts. It unsubscribes
// nobody: mail scanners open links.
func (h *formsHandler) oneClickPage(w http.ResponseWriter, r *http.Request) {
	if err := notUTF8("token", r.URL.Query().Get("token")); err != nil {
		h.errorPage(w, r, err)
		return
	}
	r = h.outgoing(r)
	resp, err := h.client.GetUnsubscribePage(r.Context(), &listspb.GetUnsubscribePageRequest{Token: r.URL.Query().Get("token")})
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	p := resp.GetPage()
	writePage(w, http.StatusOK, page{Lang: p.GetLanguage(), Title: p.GetTitle(), Message: p.GetMessage(),
		Button: resp.GetButton(), Action: "?token=" + url.QueryEscape(r.URL.Query().Get("token"))})
}

// oneClick unsubscribes: a POST of List-Unsubscribe=One-Click, as a mail
// client sends it (RFC 8058 §3.2: URL-encoded or multipart) or the
// page's button.
func (h *formsHandler) oneClick(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch ct {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxFormBody)
	default:
		err = &runtime.HTTPStatusError{HTTPStatus: http.StatusUnsupportedMediaType,
			Err: status.Error(codes.InvalidArgument, "send List-Unsubscribe=One-Click as application/x-www-form-urlencoded or multipart/form-data")}
	}
	if err == nil {
		err = notUTF8("token", r.URL.Query().Get("token"))
	}
	if err == nil && r.PostForm.Get("List-Unsubscribe") != "One-Click" {
		err = inputStatus("List-Unsubscribe", `want "One-Click"`)
	}
	if err != nil {
		var he *runtime.HTTPStatusError
		if !errors.As(err, &he) && status.Code(err) == codes.Unknown {
			err = inputStatus("body", "not a valid form")
		}
		h.errorPage(w, r, err)
		return
	}
	r = h.outgoing(r)
	resp, err := h.client.OneClickUnsubscribe(r.Context(), &listspb.OneClickUnsubscribeRequest{Token: r.URL.Query().Get("token")})
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	p := resp.GetPage()
	writePage(w, http.StatusOK, page{Lang: p.GetLanguage(), Title: p.GetTitle(), Message: p.GetMessage()})
}

// jsonError answers err as the API's JSON error.
func (h *formsHandler) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	_, out := runtime.MarshalerForRequest(h.mux, r)
	runtime.HTTPError(r.Context(), h.mux, out, w, r, err)
}

// errorPage answers err as a page: in the list's language, naming whom to
// write to, when the service said so (google.rpc.LocalizedMessage), in
// English otherwise.
func (h *formsHandler) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		code, err = he.HTTPStatus, he.Err
	}
	st := status.Convert(err)
	if he == nil {
		code = runtime.HTTPStatusFromCode(st.Code())
	}
	p := page{Lang: "en", Title: "Your request could not be taken", Message: st.Message()}
	switch st.Code() {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DeadlineExceeded:
		h.log.WarnContext(r.Context(), "form endpoint failed", "path", r.URL.Path, "requestId", requestIDFrom(r.Context()), "error", err)
		p.Message = "The service is unavailable just now. Please try again later."
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.LocalizedMessage:
			p.Lang, p.Message = d.GetLocale(), d.GetMessage()
		case *errdetails.ErrorInfo:
			if t := d.GetMetadata()["title"]; t != "" {
				p.Title = t
			}
		case *errdetails.RetryInfo:
			if secs := int64(d.GetRetryDelay().AsDuration().Seconds()); secs > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
			}
		}
	}
	writePage(w, code, p)
}

// page is a page of the form endpoints.
type page struct {
	Lang, Title, Message string
	// Button and Action, when set, make a form posting
	// List-Unsubscribe=One-Click to Action.
	Button, Action string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
</head>
<body style="font-family:system-ui,sans-serif;line-height:1.5;max-width:36em;margin:3em auto;padding:0 1em">
<main>
<h1 style="font-size:1.5em">{{.Title}}</h1>
<p>{{.Message}}</p>
{{- if .Button}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="padding:.45em 1.2em;font:inherit;cursor:pointer">{{.Button}}</button>
</form>
{{- end}}
</main>
</body>
</html>
`))

func writePage(w http.ResponseWriter, code int, p page) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, p); err != nil {
		http.Error(w, fmt.Sprintf("page: %v", err), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// The pages are about one person's request: no cache keeps them; no
	// script runs, no other site frames them, and the one-click token in
	// the URL goes to no other site as a Referer.
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}
