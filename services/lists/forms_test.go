package lists_test

import (
	"context"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// formsEnv is start's env with a list team@example.test in French.
type formsEnv struct {
	*env
	list   *listsv1.List
	forms  listsv1.FormServiceClient
	public listsv1.PublicFormServiceClient
}

func startForms(t *testing.T) *formsEnv {
	t.Helper()
	e := start(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{
		LocalPart: "team", DisplayName: "Team", Language: listsv1.Language_LANGUAGE_FR,
		SubscriptionPolicy: listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_OPEN,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return &formsEnv{env: e, list: created.GetList(), forms: listsv1.NewFormServiceClient(e.srv.Conn), public: listsv1.NewPublicFormServiceClient(e.srv.Conn)}
}

func (e *formsEnv) setRedirects(urls ...string) {
	e.t.Helper()
	if _, err := e.forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: &listsv1.FormSettings{
		Name: e.list.GetName() + "/formSettings", RedirectUrls: urls}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *formsEnv) isMember(email string) bool {
	e.t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM members WHERE email = $1`, email).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n == 1
}

// localized returns the LocalizedMessage and ErrorInfo metadata of err.
func localized(t *testing.T, err error) (*errdetails.LocalizedMessage, map[string]string) {
	t.Helper()
	var lm *errdetails.LocalizedMessage
	var md map[string]string
	for _, d := range status.Convert(err).Details() {
		switch d := d.(type) {
		case *errdetails.LocalizedMessage:
			lm = d
		case *errdetails.ErrorInfo:
			md = d.GetMetadata()
		}
	}
	if lm == nil {
		t.Fatalf("%v: no LocalizedMessage", err)
	}
	return lm, md
}

// TestFormSettings: redirect URLs and origins are checked (https, no
// user, no fragment, at most 20), canonical, and only managers see them.
func TestFormSettings(t *testing.T) {
	e := startForms(t)
	name := e.list.GetName() + "/formSettings"
	update := func(s *listsv1.FormSettings) (*listsv1.UpdateFormSettingsResponse, error) {
		s.Name = name
		return e.forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: s})
	}
	for _, tc := range []struct {
		in    *listsv1.FormSettings
		field string
	}{
		{&listsv1.FormSettings{RedirectUrls: []string{"http://example.com/thanks"}}, "formSettings.redirectUrls[0]"},
		{&listsv1.FormSettings{RedirectUrls: []string{"https://ok.example", "javascript:alert(1)"}}, "formSettings.redirectUrls[1]"},
		{&listsv1.FormSettings{RedirectUrls: []string{"https://user@example.com/"}}, "formSettings.redirectUrls[0]"},
		{&listsv1.FormSettings{RedirectUrls: []string{"https://example.com/#x"}}, "formSettings.redirectUrls[0]"},
		{&listsv1.FormSettings{RedirectUrls: []string{"//example.com/"}}, "formSettings.redirectUrls[0]"},
		{&listsv1.FormSettings{AllowedOrigins: []string{"https://example.com/page"}}, "formSettings.allowedOrigins[0]"},
		{&listsv1.FormSettings{AllowedOrigins: make([]string, 21)}, "formSettings.allowedOrigins"},
		{&listsv1.FormSettings{RedirectUrls: []string{"https://example.com/" + strings.Repeat("a", 500)}}, "formSettings.redirectUrls[0]"},
	} {
		_, err := update(tc.in)
		wantCode(t, err, codes.InvalidArgument, tc.field)
	}
	got, err := update(&listsv1.FormSettings{RedirectUrls: []string{"https://Example.COM/", "https://example.com/thanks?x=1", "http://localhost:3000/ok"},
		AllowedOrigins: []string{"https://App.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "[https://example.com https://example.com/thanks?x=1 http://localhost:3000/ok] [https://app.example.org]"
	if s := strings.Join([]string{strings.Join(got.GetFormSettings().GetRedirectUrls(), " "), strings.Join(got.GetFormSettings().GetAllowedOrigins(), " ")}, "] ["); "["+s+"]" != want {
		t.Errorf("settings [%s], want %s", s, want)
	}
	read, err := e.forms.GetFormSettings(e.admin, &listsv1.GetFormSettingsRequest{Name: name})
	if err != nil || len(read.GetFormSettings().GetRedirectUrls()) != 3 {
		t.Errorf("get: %v, %v", read, err)
	}
	_, err = e.forms.GetFormSettings(e.as(e.org, "member"), &listsv1.GetFormSettingsRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied, "")
}

// TestGenerateForms: the forms post to the edge's form endpoint of the
// list, in its language, with labels, the honeypot and only an allowed
// redirect.
func TestGenerateForms(t *testing.T) {
	e := startForms(t)
	e.setRedirects("https://example.com")
	got, err := e.forms.GenerateForms(e.admin, &listsv1.GenerateFormsRequest{Name: e.list.GetName(), RedirectUrl: "https://example.com/merci?a=1&b=2"})
	if err != nil {
		t.Fatal(err)
	}
	sub, unsub := got.GetSubscribeHtml(), got.GetUnsubscribeHtml()
	for _, want := range []string{
		`action="http://localhost:8080/forms/team@example.test/subscribe"`, `method="post"`,
		`name="list" value="team@example.test"`, `name="redirect" value="https://example.com/merci?a=1&amp;b=2"`,
		`<label for="mailplane-team-subscribe-email"`, `id="mailplane-team-subscribe-email" type="email" name="email" required`,
		`name="name"`, `name="website" tabindex="-1"`, `aria-hidden="true"`, `S’abonner`, `Adresse e-mail`,
	} {
		if !strings.Contains(sub, want) {
			t.Errorf("subscribe form without %s:\n%s", want, sub)
		}
	}
	if strings.Contains(sub, "<script") || !strings.Contains(unsub, "/forms/team@example.test/unsubscribe") || strings.Contains(unsub, `name="name"`) || !strings.Contains(unsub, "Se désabonner") {
		t.Errorf("unsubscribe form:\n%s", unsub)
	}
	_, err = e.forms.GenerateForms(e.admin, &listsv1.GenerateFormsRequest{Name: e.list.GetName(), RedirectUrl: "https://evil.example/"})
	wantCode(t, err, codes.InvalidArgument, "redirectUrl")
}

// TestSubmitForm: a form subscribes (an open list: at once) and asks to
// unsubscribe (confirmed by mail), answering the same
// whether the address is a member or not; a filled honeypot does
// nothing; refusals carry the reason in the list's language naming the
// owner's address; calls are limited per client address.
func TestSubmitForm(t *testing.T) {
	e := startForms(t)
	e.setRedirects("https://example.com/thanks")
	ctx := context.Background()
	submit := func(r *listsv1.SubmitFormRequest) (*listsv1.SubmitFormResponse, error) {
		if r.List == "" {
			r.List = "Team@Example.test"
		}
		return e.public.SubmitForm(ctx, r)
	}
	join := &listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "zoe@example.org", DisplayName: "Zoé", RedirectUrl: "https://example.com/thanks"}
	first, err := submit(join)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetRedirectUrl() != "https://example.com/thanks" || first.GetPage().GetLanguage() != "fr" || !e.isMember("zoe@example.org") {
		t.Errorf("subscribe: %v, member %v", first, e.isMember("zoe@example.org"))
	}
	again, err := submit(join)
	if err != nil || again.String() != first.String() {
		t.Errorf("again: %v, %v; want the first answer %v", again, err, first)
	}
	trapped, err := submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "bot@example.org", RedirectUrl: "https://example.com/thanks", Trap: "https://spam.example"})
	if err != nil || trapped.GetRedirectUrl() != first.GetRedirectUrl() || e.isMember("bot@example.org") {
		t.Errorf("honeypot: %v, %v, member %v; want success and nothing done", trapped, err, e.isMember("bot@example.org"))
	}

	// Whatever else a bot sends, a filled honeypot succeeds, sending it
	// nowhere the list does not allow.
	trappedBad, err := submit(&listsv1.SubmitFormRequest{Email: "not an address", RedirectUrl: "https://evil.example/", Trap: "x"})
	if err != nil || trappedBad.GetRedirectUrl() != "" || trappedBad.GetPage().GetTitle() != first.GetPage().GetTitle() {
		t.Errorf("honeypot with bad input: %v, %v; want success without redirect", trappedBad, err)
	}

	_, err = submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "not an address"})
	wantCode(t, err, codes.InvalidArgument, "email")
	lm, md := localized(t, err)
	if lm.GetLocale() != "fr" || !strings.Contains(lm.GetMessage(), "n’est pas valide") || !strings.Contains(lm.GetMessage(), "team-owner@example.test") || md["contact"] != "team-owner@example.test" || md["title"] == "" {
		t.Errorf("refusal: %v %v", lm, md)
	}
	_, err = submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "ann@example.org", RedirectUrl: "https://evil.example/thanks"})
	wantCode(t, err, codes.InvalidArgument, "redirectUrl")
	if e.isMember("ann@example.org") {
		t.Error("a refused redirect subscribed anyway")
	}
	_, err = submit(&listsv1.SubmitFormRequest{Email: "ann@example.org"})
	wantCode(t, err, codes.InvalidArgument, "action")
	_, err = submit(&listsv1.SubmitFormRequest{List: "nobody@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "ann@example.org"})
	wantCode(t, err, codes.NotFound, "")
	_, err = submit(&listsv1.SubmitFormRequest{List: "team-leave@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "ann@example.org"})
	wantCode(t, err, codes.NotFound, "") // a robot address is not a list
	_, err = submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "ann\x00@example.org"})
	wantCode(t, err, codes.InvalidArgument, "email")

	// Leaving by form is confirmed by mail (requestLeave): the member
	// stays until then, and a leave token waits.
	leave := &listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_UNSUBSCRIBE, Email: "zoe@example.org"}
	left, err := submit(leave)
	if err != nil || !e.isMember("zoe@example.org") {
		t.Fatalf("unsubscribe: %v, member %v", err, e.isMember("zoe@example.org"))
	}
	var tokens int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM tokens WHERE action = 'leave' AND email = 'zoe@example.org'`).Scan(&tokens); err != nil || tokens != 1 {
		t.Errorf("leave tokens: %d (%v), want 1", tokens, err)
	}
	var via string
	if err := e.pool.QueryRow(ctx, `SELECT joined_by FROM members WHERE email = 'zoe@example.org'`).Scan(&via); err != nil || !strings.Contains(via, "form") {
		t.Errorf("joined by %q (%v), want the form named", via, err)
	}
	stranger, err := submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_UNSUBSCRIBE, Email: "never@example.org"})
	if err != nil || stranger.String() != left.String() {
		t.Errorf("unsubscribing a stranger: %v, %v; want the member's answer %v", stranger, err, left)
	}

	// 9 calls counted so far (unknown lists are refused before the
	// count, the NUL before the service); the limit is 20 per client
	// address.
	for i := 10; i <= 20; i++ {
		if _, err := submit(&listsv1.SubmitFormRequest{Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "bot@example.org", Trap: "x"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err = submit(join)
	wantCode(t, err, codes.ResourceExhausted, "")
}

// TestCheckFormOrigin: the origins of the redirect URLs and the allowed
// origins may post from JavaScript; no other.
func TestCheckFormOrigin(t *testing.T) {
	e := startForms(t)
	if _, err := e.forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: &listsv1.FormSettings{
		Name: e.list.GetName() + "/formSettings", RedirectUrls: []string{"https://example.com/thanks"}, AllowedOrigins: []string{"https://app.example.org"}}}); err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://example.com": true, "https://EXAMPLE.com": true, "https://app.example.org": true,
		"http://example.com": false, "https://evil.example": false, "null": false, "": false,
	} {
		got, err := e.public.CheckFormOrigin(context.Background(), &listsv1.CheckFormOriginRequest{List: "team@example.test", Origin: origin})
		if err != nil || got.GetAllowed() != want {
			t.Errorf("origin %q: %v, %v; want %v", origin, got, err, want)
		}
	}
}

var oneClickRE = regexp.MustCompile(`<(https://edge\.example/forms/one-click\?token=[A-Za-z0-9_-]+)>`)

// oneClickTokens adds members to e's list, posts to it through a lists
// replica whose edge-url is https, and returns the one-click token of each
// member's copy, checking the copies' List-Unsubscribe headers.
func oneClickTokens(t *testing.T, fe *formsEnv, members ...string) map[string]string {
	t.Helper()
	relay := smtptest.Start(t)
	for _, m := range append(members, "cat@example.net") {
		if _, err := fe.members.CreateMember(fe.admin, &listsv1.CreateMemberRequest{Parent: fe.list.GetName(), Member: &listsv1.Member{Email: m}, Silent: true}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := lists.Register(grpc.NewServer(), fe.pool, lists.Config{AccountsAddr: fe.srv.Addr, MailboxesAddr: fe.srv.Addr,
		LMTPAddr: "127.0.0.1:0", EdgeURL: "https://edge.example/", Relay: lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS}}, fe.srv.Log)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.RunForTest(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e := &mailEnv{env: fe.env, lmtp: svc.LMTPAddr(), list: fe.list, svc: svc}
	post := "From: Cat <cat@example.net>\nTo: team@example.test\nSubject: hi\nMessage-ID: <p@example.net>\n\nHello.\n"
	if got := e.deliver("cat@example.net", []string{"team@example.test"}, post); got["team@example.test"].code != 250 {
		t.Fatalf("post: %v", got)
	}
	// The copies of the post; the relay takes the list's letters too
	// (confirmations of earlier requests).
	var copies []*mail.Message
	var to []string
	for deadline := time.Now().Add(30 * time.Second); len(copies) < len(members); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d copies of the post reached the relay, want %d", len(copies), len(members))
		}
		copies, to = nil, nil
		for _, m := range relay.Messages() {
			if msg := m.Parsed(t); msg.Header.Get("Message-Id") == "<p@example.net>" {
				copies, to = append(copies, msg), append(to, m.To[0])
			}
		}
	}
	tokens := map[string]string{}
	for i, msg := range copies {
		h := msg.Header
		lu := h.Get("List-Unsubscribe")
		found := oneClickRE.FindStringSubmatch(lu)
		if found == nil || !strings.Contains(lu, "<mailto:team-leave@example.test>") || h.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
			t.Fatalf("copy to %v: List-Unsubscribe %q, -Post %q", to[i], lu, h.Get("List-Unsubscribe-Post"))
		}
		local, _, _ := strings.Cut(to[i], "@")
		if strings.Contains(lu, local) || strings.Contains(lu, "%40") {
			t.Errorf("the address shows in %q", lu)
		}
		u, _ := url.Parse(found[1])
		tokens[to[i]] = u.Query().Get("token")
	}
	return tokens
}

// TestOneClickUnsubscribe: each copy carries its member's https one-click
// URL (no address in it) with List-Unsubscribe-Post; the token shows a
// page and unsubscribes, erasing the address; a forged one is refused.
func TestOneClickUnsubscribe(t *testing.T) {
	fe := startForms(t)
	tokens := oneClickTokens(t, fe, "ann@example.org", "bob@example.org")

	page, err := fe.public.GetUnsubscribePage(context.Background(), &listsv1.GetUnsubscribePageRequest{Token: tokens["ann@example.org"]})
	if err != nil || page.GetPage().GetLanguage() != "fr" || page.GetButton() == "" || !fe.isMember("ann@example.org") {
		t.Fatalf("page: %v, %v; member %v (opening the page must not unsubscribe)", page, err, fe.isMember("ann@example.org"))
	}
	first, err := fe.public.OneClickUnsubscribe(context.Background(), &listsv1.OneClickUnsubscribeRequest{Token: tokens["ann@example.org"]})
	if err != nil || fe.isMember("ann@example.org") || !fe.isMember("bob@example.org") {
		t.Fatalf("one-click: %v; ann member %v, bob member %v", err, fe.isMember("ann@example.org"), fe.isMember("bob@example.org"))
	}
	again, err := fe.public.OneClickUnsubscribe(context.Background(), &listsv1.OneClickUnsubscribeRequest{Token: tokens["ann@example.org"]})
	if err != nil || again.String() != first.String() {
		t.Errorf("again: %v, %v; want the same answer", again, err)
	}
	var given, withdrawn string
	if err := fe.pool.QueryRow(context.Background(), `SELECT given_by, withdrawn_by FROM consents`).Scan(&given, &withdrawn); err != nil || withdrawn != "one-click unsubscribe" {
		t.Errorf("consent record: %q %q (%v)", given, withdrawn, err)
	}
	bob := tokens["bob@example.org"]
	for _, forged := range []string{"", "x", bob[:len(bob)-2] + "AA", strings.Repeat("A", 2000)} {
		_, err := fe.public.OneClickUnsubscribe(context.Background(), &listsv1.OneClickUnsubscribeRequest{Token: forged})
		wantCode(t, err, codes.InvalidArgument, "token")
	}
	if !fe.isMember("bob@example.org") {
		t.Error("a forged token unsubscribed bob")
	}
}
