package lists

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Limits of the form settings and the public form endpoint.
const (
	maxFormURLs     = 20
	maxFormURLBytes = 500
	// FormWindow and FormsPerClient bound the public calls one client
	// address makes: a person submits a form a few times at most, a bot
	// that mails confirmations to strangers is stopped early.
	DefaultFormWindow     = 10 * time.Minute
	DefaultFormsPerClient = 20
)

// FormLimit bounds the public form calls per client address.
type FormLimit struct {
	Window time.Duration
	Calls  int
}

const (
	selectForms = `SELECT redirect_urls, allowed_origins FROM list_forms WHERE list_id = $1`
	// ensureForms makes a list's row the first time it is needed, with its
	// one-click key; concurrent callers both read the one stored.
	ensureForms = `
INSERT INTO list_forms (list_id, one_click_key) VALUES ($1, $2)
ON CONFLICT (list_id) DO UPDATE SET list_id = EXCLUDED.list_id
RETURNING redirect_urls, allowed_origins, one_click_key`
	updateForms = `UPDATE list_forms SET redirect_urls = $2, allowed_origins = $3, update_time = now() WHERE list_id = $1`
	// hitForm counts one call in key's window, starting a new window when
	// the current one is over (accounts' sign-in counters, the same way).
	hitForm = `
INSERT INTO form_hits AS h (key, window_start, hits) VALUES ($1, $2, 1)
ON CONFLICT (key) DO UPDATE SET
    window_start = CASE WHEN h.window_start <= $2 - $3::interval THEN $2 ELSE h.window_start END,
    hits         = CASE WHEN h.window_start <= $2 - $3::interval THEN 1 ELSE h.hits + 1 END
RETURNING hits, window_start`
	pruneFormHits = `
DELETE FROM form_hits WHERE key IN (
    SELECT key FROM form_hits WHERE window_start <= $1::timestamptz - $2::interval LIMIT 100)`
	// listByAddress finds a list by its own address (not a robot's).
	listByAddress = listColumns + ` WHERE lower(domain) = lower($1) AND local_key = lower($2)`
)

// formSettings are a list's form settings as stored.
type formSettings struct {
	redirects, origins []string
}

func formSettingsName(ids listIDs) string {
	return listName(ids.org, ids.ms, ids.list) + "/formSettings"
}

// loadForms returns a list's form settings, empty when none were set.
func loadForms(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, list uuid.UUID) (formSettings, error) {
	var f formSettings
	err := q.QueryRow(ctx, selectForms, list).Scan(&f.redirects, &f.origins)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return f, fmt.Errorf("read form settings: %w", err)
	}
	return f, nil
}

// ensureFormsRow returns a list's form settings and one-click key, making
// its row with a new random key the first time.
func ensureFormsRow(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, list uuid.UUID) (formSettings, []byte, error) {
	var f formSettings
	key := make([]byte, 32) // AES-256
	rand.Read(key)
	if err := q.QueryRow(ctx, ensureForms, list, key).Scan(&f.redirects, &f.origins, &key); err != nil {
		return f, nil, fmt.Errorf("form settings of %s: %w", list, err)
	}
	return f, key, nil
}

func (f formSettings) proto(ids listIDs) *listsv1.FormSettings {
	return &listsv1.FormSettings{Name: formSettingsName(ids), RedirectUrls: nonNil(f.redirects), AllowedOrigins: nonNil(f.origins)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// parseFormURL checks a form setting's URL: https (http only on loopback,
// for development), a host, no user, no fragment. origin reports whether
// it is an origin (no path but "/", no query), returned in canonical form.
func parseFormURL(s string) (u *url.URL, origin bool, err error) {
	if len(s) > maxFormURLBytes {
		return nil, false, fmt.Errorf("at most %d bytes", maxFormURLBytes)
	}
	u, err = url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return nil, false, errors.New(`want an https URL like "https://example.com/thanks"`)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback(u.Hostname()):
	default:
		return nil, false, errors.New("want https (http only for localhost)")
	}
	if u.User != nil || u.Fragment != "" || strings.ContainsAny(s, " \t\r\n\\") {
		return nil, false, errors.New("no user, fragment, spaces or backslashes")
	}
	// The host as browsers send it in Origin and go to: ASCII. A Unicode
	// host ("bücher.example", "allowed。example", whose ideographic full
	// stop browsers read as a dot) would never match the Origin a browser
	// sends, nor the string a redirect is compared with.
	if h := u.Hostname(); !loopback(h) && net.ParseIP(h) == nil {
		ascii, _, err := validate.Domain(h)
		if err != nil {
			return nil, false, fmt.Errorf("host %q: %v", h, err)
		}
		if ascii != strings.ToLower(h) {
			return nil, false, fmt.Errorf("write the host in ASCII: %s", ascii)
		}
	}
	origin = (u.Path == "" || u.Path == "/") && u.RawQuery == "" && !u.ForceQuery
	return u, origin, nil
}

// loopback reports whether host is this machine: localhost or a loopback IP.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// originOf is u's origin as a browser sends it: scheme://host[:port], in
// lower case.
func originOf(u *url.URL) string {
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// checkFormSettings canonicalizes and checks in's lists; errors name the
// fields.
func checkFormSettings(in *listsv1.FormSettings, paths []string, f *formSettings) error {
	var v []errs.FieldViolation
	check := func(field string, urls []string, originsOnly bool) []string {
		if len(urls) > maxFormURLs {
			v = append(v, errs.FieldViolation{Field: "formSettings." + field, Description: fmt.Sprintf("at most %d", maxFormURLs)})
			return nil
		}
		var out []string
		for i, s := range urls {
			s = strings.TrimSpace(s)
			u, origin, err := parseFormURL(s)
			if err == nil && originsOnly && !origin {
				err = errors.New(`want an origin like "https://example.com", without a path`)
			}
			if err != nil {
				v = append(v, errs.FieldViolation{Field: fmt.Sprintf("formSettings.%s[%d]", field, i), Description: err.Error()})
				continue
			}
			if origin {
				s = originOf(u)
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	for _, p := range paths {
		switch p {
		case "redirect_urls":
			f.redirects = check("redirectUrls", in.GetRedirectUrls(), false)
		case "allowed_origins":
			f.origins = check("allowedOrigins", in.GetAllowedOrigins(), true)
		}
	}
	if len(v) > 0 {
		return errs.Fields(v...)
	}
	return nil
}

// redirectAllowed reports whether the list lets a form send people to s:
// s is one of its redirect URLs, or under one of its origins.
func (f formSettings) redirectAllowed(s string) bool {
	u, _, err := parseFormURL(s)
	if err != nil {
		return false
	}
	for _, r := range f.redirects {
		if r == s {
			return true
		}
		if ru, origin, err := parseFormURL(r); err == nil && origin && originOf(ru) == originOf(u) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a page of origin may post from JavaScript:
// an allowed origin, or the origin of a redirect URL.
func (f formSettings) originAllowed(origin string) bool {
	origin = strings.ToLower(strings.TrimSuffix(origin, "/"))
	if origin == "" || origin == "null" {
		return false
	}
	if slices.Contains(f.origins, origin) {
		return true
	}
	for _, r := range f.redirects {
		if u, _, err := parseFormURL(r); err == nil && originOf(u) == origin {
			return true
		}
	}
	return false
}

func parseFormSettings(field, name string) (listIDs, error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}/lists/{list}/formSettings")
	if err != nil {
		return listIDs{}, err
	}
	return listIDs{ids[0], ids[1], ids[2]}, nil
}

// GetFormSettings returns a list's form settings.
func (s *Server) GetFormSettings(ctx context.Context, req *listsv1.GetFormSettingsRequest) (*listsv1.GetFormSettingsResponse, error) {
	ids, err := parseFormSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.roles.Manage(ctx, ids.org); err != nil {
		return nil, err
	}
	if _, err := findList(ctx, s.pool, ids); err != nil {
		return nil, err
	}
	f, err := loadForms(ctx, s.pool, ids.list)
	if err != nil {
		return nil, err
	}
	return &listsv1.GetFormSettingsResponse{FormSettings: f.proto(ids)}, nil
}

// UpdateFormSettings changes a list's form settings.
func (s *Server) UpdateFormSettings(ctx context.Context, req *listsv1.UpdateFormSettingsRequest) (*listsv1.UpdateFormSettingsResponse, error) {
	in := req.GetFormSettings()
	ids, err := parseFormSettings("formSettings.name", in.GetName())
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "redirect_urls", "allowed_origins")
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	var f formSettings
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := findList(ctx, tx, ids); err != nil {
			return err
		}
		if f, _, err = ensureFormsRow(ctx, tx, ids.list); err != nil {
			return err
		}
		if err := checkFormSettings(in, paths, &f); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, updateForms, ids.list, nonNil(f.redirects), nonNil(f.origins)); err != nil {
			return fmt.Errorf("update form settings: %w", err)
		}
		return audit(ctx, tx, ids.org, c, "lists.form_settings.update", in.GetName(), map[string]string{
			"redirectUrls": strings.Join(f.redirects, " "), "allowedOrigins": strings.Join(f.origins, " ")})
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.UpdateFormSettingsResponse{FormSettings: f.proto(ids)}, nil
}

// GenerateForms writes the HTML of a list's subscribe and unsubscribe
// forms.
func (s *Server) GenerateForms(ctx context.Context, req *listsv1.GenerateFormsRequest) (*listsv1.GenerateFormsResponse, error) {
	ids, err := parseList("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.roles.Manage(ctx, ids.org); err != nil {
		return nil, err
	}
	l, err := findList(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	if s.forms.edgeURL == "" {
		return nil, errs.E(errs.FailedPrecondition, "the lists service has no edge-url setting: forms have no address to post to")
	}
	f, err := loadForms(ctx, s.pool, ids.list)
	if err != nil {
		return nil, err
	}
	if r := req.GetRedirectUrl(); r != "" && !f.redirectAllowed(r) {
		return nil, errs.Field("redirectUrl", "not one of the list's form settings' redirect URLs, nor under one of its origins")
	}
	sub, err := formHTML(s.forms.edgeURL, l, listsv1.FormAction_FORM_ACTION_SUBSCRIBE, req.GetRedirectUrl())
	if err != nil {
		return nil, err
	}
	unsub, err := formHTML(s.forms.edgeURL, l, listsv1.FormAction_FORM_ACTION_UNSUBSCRIBE, req.GetRedirectUrl())
	if err != nil {
		return nil, err
	}
	return &listsv1.GenerateFormsResponse{SubscribeHtml: sub, UnsubscribeHtml: unsub}, nil
}

// formPath is the edge's path of a list's public form endpoint for an
// action ("subscribe" or "unsubscribe"); the edge routes
// /forms/{list}/{action}.
func formPath(address, action string) string {
	return "/forms/" + url.PathEscape(address) + "/" + action
}

// formTemplate is a form to paste on any page: no script, inline styles
// only (a page's own CSS still applies), every input labelled. The
// honeypot sits off screen and out of the tab order, hidden from screen
// readers, so that only a bot fills it.
var formTemplate = template.Must(template.New("form").Parse(`<form class="mailplane-{{.Kind}}" action="{{.Action}}" method="post" accept-charset="utf-8" style="max-width:28em;font:inherit">
  <input type="hidden" name="list" value="{{.List}}">
{{- if .Redirect}}
  <input type="hidden" name="redirect" value="{{.Redirect}}">
{{- end}}
  <p style="margin:0 0 .75em"><label for="{{.ID}}-email" style="display:block;margin-bottom:.25em">{{.EmailLabel}}</label>
    <input id="{{.ID}}-email" type="email" name="email" required maxlength="254" autocomplete="email" style="box-sizing:border-box;width:100%;padding:.4em;font:inherit"></p>
{{- if .NameLabel}}
  <p style="margin:0 0 .75em"><label for="{{.ID}}-name" style="display:block;margin-bottom:.25em">{{.NameLabel}}</label>
    <input id="{{.ID}}-name" type="text" name="name" maxlength="100" autocomplete="name" style="box-sizing:border-box;width:100%;padding:.4em;font:inherit"></p>
{{- end}}
  <div aria-hidden="true" style="position:absolute;left:-10000px;top:auto;width:1px;height:1px;overflow:hidden">
    <label for="{{.ID}}-website">{{.TrapLabel}}</label>
    <input id="{{.ID}}-website" type="text" name="website" tabindex="-1" autocomplete="off" value="">
  </div>
  <p style="margin:0"><button type="submit" style="padding:.45em 1.2em;font:inherit;cursor:pointer">{{.Button}}</button></p>
</form>
`))

func formHTML(edge string, l *list, action listsv1.FormAction, redirect string) (string, error) {
	t := texts(l.language)
	address := l.localPart + "@" + l.domain
	d := struct {
		Kind, Action, List, Redirect, ID         string
		EmailLabel, NameLabel, TrapLabel, Button string
	}{List: address, Redirect: redirect, EmailLabel: t.email, TrapLabel: t.trap, ID: "mailplane-" + strings.ToLower(l.localPart)}
	switch action {
	case listsv1.FormAction_FORM_ACTION_SUBSCRIBE:
		d.Kind, d.NameLabel, d.Button = "subscribe", t.name, t.subscribe
	default:
		d.Kind, d.Button = "unsubscribe", t.unsubscribe
	}
	d.ID += "-" + d.Kind
	d.Action = strings.TrimSuffix(edge, "/") + formPath(address, d.Kind)
	var b bytes.Buffer
	if err := formTemplate.Execute(&b, d); err != nil {
		return "", fmt.Errorf("form html: %w", err)
	}
	return b.String(), nil
}

// publicLimit counts a public call from the client's address and refuses
// it past the limit, saying when to retry.
func (s *Server) publicLimit(ctx context.Context, route string) error {
	key := route + " client:" + grpcserver.ClientAddr(ctx)
	now := time.Now()
	var n int
	var start time.Time
	if err := s.pool.QueryRow(ctx, hitForm, key, now, s.forms.limit.Window).Scan(&n, &start); err != nil {
		return fmt.Errorf("count form call: %w", err)
	}
	if n == 1 {
		// A window started: a few dead counters go, so that the table
		// holds about one window's, however many addresses call.
		if _, err := s.pool.Exec(ctx, pruneFormHits, now, s.forms.limit.Window); err != nil {
			return fmt.Errorf("prune form calls: %w", err)
		}
	}
	if n > s.forms.limit.Calls {
		e := errs.E(errs.ResourceExhausted, "too many requests from your address; try again later").WithReason("TOO_MANY_REQUESTS")
		e.RetryAfter = max(time.Until(start.Add(s.forms.limit.Window)).Round(time.Second), time.Second)
		return e
	}
	return nil
}

// publicList finds the list whose address is address; NotFound (in
// English: there is no list to take a language from) when none is.
func publicList(ctx context.Context, s *Server, field, address string) (*list, error) {
	at := strings.LastIndexByte(address, '@')
	if at <= 0 || at == len(address)-1 {
		return nil, errs.Field(field, "want a list's address, like team@example.com")
	}
	rows, _ := s.pool.Query(ctx, listByAddress, address[at+1:], address[:at])
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "no list %s", address).WithReason("LIST_NOT_FOUND")
	}
	if err != nil {
		return nil, fmt.Errorf("find list %s: %w", address, err)
	}
	return l, nil
}

// SubmitForm does what a web form asks, by the list's policy. The answer
// is the same whether the address is a member or not, and for a filled
// honeypot, which does nothing.
func (s *Server) SubmitForm(ctx context.Context, req *listsv1.SubmitFormRequest) (*listsv1.SubmitFormResponse, error) {
	// The list first, so that even the limit's refusal is in its language.
	l, err := publicList(ctx, s, "list", strings.TrimSpace(req.GetList()))
	if err != nil {
		return nil, err
	}
	t := texts(l.language)
	if err := s.publicLimit(ctx, "form"); err != nil {
		return nil, refusal(l, err, t.tooMany)
	}
	f, err := loadForms(ctx, s.pool, l.id)
	if err != nil {
		return nil, err
	}
	redirect := req.GetRedirectUrl()
	redirectOK := redirect == "" || f.redirectAllowed(redirect)
	action := req.GetAction()
	address := l.localPart + "@" + l.domain
	resp := &listsv1.SubmitFormResponse{RedirectUrl: redirect, Page: &listsv1.FormPage{Language: t.code, Title: t.thanks, Message: fmt.Sprintf(t.joinAsked, address)}}
	if action == listsv1.FormAction_FORM_ACTION_UNSUBSCRIBE {
		resp.Page.Message = fmt.Sprintf(t.leaveAsked, address)
	}
	if req.GetTrap() != "" {
		// A bot is told it succeeded whatever else it sent, so that it
		// learns nothing; it is sent nowhere the list does not allow.
		if !redirectOK {
			resp.RedirectUrl = ""
		}
		s.log.InfoContext(ctx, "form honeypot filled: nothing done", "list", address, "client", grpcserver.ClientAddr(ctx))
		return resp, nil
	}
	if !redirectOK {
		return nil, refusal(l, errs.Field("redirectUrl", "not a URL the list allows"), t.badRedirect)
	}
	if action != listsv1.FormAction_FORM_ACTION_SUBSCRIBE && action != listsv1.FormAction_FORM_ACTION_UNSUBSCRIBE {
		return nil, refusal(l, errs.Field("action", "want FORM_ACTION_SUBSCRIBE or FORM_ACTION_UNSUBSCRIBE"), t.failed)
	}
	email := strings.TrimSpace(req.GetEmail())
	if err := validate.Email(email); err != nil || email == "" {
		return nil, refusal(l, errs.Field("email", "want an address like ann@example.com"), t.badEmail)
	}
	name := strings.TrimSpace(req.GetDisplayName())
	if action == listsv1.FormAction_FORM_ACTION_SUBSCRIBE {
		err = s.formJoin(ctx, l, email, name)
	} else {
		err = s.formLeave(ctx, l, email)
	}
	if err != nil {
		if errs.KindOf(err) == errs.Internal {
			return nil, err
		}
		return nil, refusal(l, err, t.failed)
	}
	return resp, nil
}

// CheckFormOrigin says whether a page of origin may post to the list's
// form endpoint from JavaScript.
func (s *Server) CheckFormOrigin(ctx context.Context, req *listsv1.CheckFormOriginRequest) (*listsv1.CheckFormOriginResponse, error) {
	if err := s.publicLimit(ctx, "preflight"); err != nil {
		return nil, err
	}
	l, err := publicList(ctx, s, "list", req.GetList())
	if err != nil {
		return nil, err
	}
	f, err := loadForms(ctx, s.pool, l.id)
	if err != nil {
		return nil, err
	}
	return &listsv1.CheckFormOriginResponse{Allowed: f.originAllowed(req.GetOrigin())}, nil
}

// ownerAddress is where people write about a list: its -owner robot,
// which reaches the moderators.
func ownerAddress(l *list) string { return l.localPart + "-owner@" + l.domain }

// refusal is e as a gRPC status that also carries, for the person in
// front of a form, what went wrong in the list's language and whom to
// write to (google.rpc.LocalizedMessage), and the page's title and the
// owner's address (google.rpc.ErrorInfo metadata "title" and "contact"),
// so that the edge can show an error page without knowing the list.
func refusal(l *list, e error, text string) error {
	var ee *errs.Error
	if !errors.As(e, &ee) {
		return e
	}
	t := texts(l.language)
	st := status.New(grpcserver.Status(ee).Code(), ee.Message)
	var ds []protoadapt.MessageV1
	if len(ee.Fields) > 0 {
		br := &errdetails.BadRequest{}
		for _, f := range ee.Fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Description})
		}
		ds = append(ds, protoadapt.MessageV1Of(br))
	}
	reason := ee.Reason
	if reason == "" {
		reason = "FORM_REFUSED"
	}
	ds = append(ds,
		protoadapt.MessageV1Of(&errdetails.ErrorInfo{Reason: reason, Domain: "mailplane", Metadata: map[string]string{"title": t.sorry, "contact": ownerAddress(l)}}),
		protoadapt.MessageV1Of(&errdetails.LocalizedMessage{Locale: t.code, Message: text + " " + fmt.Sprintf(t.contact, ownerAddress(l))}))
	if ee.RetryAfter > 0 {
		ds = append(ds, protoadapt.MessageV1Of(&errdetails.RetryInfo{RetryDelay: durationpb.New(ee.RetryAfter)}))
	}
	if withDetails, err := st.WithDetails(ds...); err == nil {
		st = withDetails
	}
	return st.Err()
}
