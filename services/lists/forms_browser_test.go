package lists_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/gateway"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/browsertest"
	"github.com/mailplane/mailplane/services/platform/servicetest"
)

// TestFormsInChromium: the generated subscribe form, pasted on a page of
// another origin than the edge's, is filled and submitted in headless
// Chromium: a person lands on the list's allowed page and waits for the
// confirmation mail (a pending request in the database); a bot that fills
// the honeypot lands there too and nothing is stored; an address the
// service refuses shows the error page in the list's language, naming the
// list's owner address. JavaScript of the site may post JSON while the
// list allows the site's origin, and no longer once it does not. A
// one-click link opened in the browser unsubscribes only by its button.
func TestFormsInChromium(t *testing.T) {
	browser := browsertest.New(t)
	e := startForms(t)
	if _, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: &listsv1.List{Name: e.list.GetName(),
		SubscriptionPolicy: listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM}}); err != nil {
		t.Fatal(err)
	}

	// The edge, in front of the services, on its own origin.
	edge := httptest.NewUnstartedServer(nil)
	edgeURL := "http://" + edge.Listener.Addr().String()
	h, closeEdge, err := gateway.New(t.Context(), gateway.Config{AccountsAddr: e.srv.Addr}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEdge() })
	edge.Config.Handler = h
	edge.Start()
	t.Cleanup(edge.Close)

	// The customer's website, on another origin, with the form pasted in.
	var formHTML string
	site := httptest.NewUnstartedServer(nil)
	siteURL := "http://" + site.Listener.Addr().String()
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/":
			io.WriteString(w, "<!doctype html><html><head><title>Our club</title></head><body><h1>Join our list</h1>\n"+formHTML+"</body></html>")
		case "/thanks":
			io.WriteString(w, `<!doctype html><html><body><h1 id="landed">Thanks!</h1></body></html>`)
		default:
			http.NotFound(w, r)
		}
	})
	site.Start()
	t.Cleanup(site.Close)

	// A lists replica that knows the edge's URL writes the form.
	gen := servicetest.Start(t, func(s *servicetest.Server) error {
		_, err := lists.Register(s.GRPC.Server, e.pool, lists.Config{AccountsAddr: s.Addr, MailboxesAddr: e.srv.Addr, EdgeURL: edgeURL}, s.Log)
		return err
	})
	genAdmin := gen.As(t, auth.Principal{TokenID: uuid.NewString(), OrganizationID: e.org.String(), Role: "admin"})
	e.setRedirects(siteURL + "/thanks")
	forms, err := listsv1.NewFormServiceClient(gen.Conn).GenerateForms(genAdmin, &listsv1.GenerateFormsRequest{Name: e.list.GetName(), RedirectUrl: siteURL + "/thanks"})
	if err != nil {
		t.Fatal(err)
	}
	formHTML = forms.GetSubscribeHtml()
	if !strings.Contains(formHTML, `action="`+edgeURL+`/forms/team@example.test/subscribe"`) {
		t.Fatalf("the form does not post to the edge:\n%s", formHTML)
	}

	const email, name, website = chromedp.CSS("#mailplane-team-subscribe-email"), chromedp.CSS("#mailplane-team-subscribe-name"), chromedp.CSS("#mailplane-team-subscribe-website")
	submit := func(address, trap string, wait chromedp.CSS) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		steps := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(siteURL + "/"),
			chromedp.WaitVisible(email),
			chromedp.SendKeys(email, address),
			chromedp.SendKeys(name, "Ann Example"),
		}
		if trap != "" {
			// Off screen for a person; a bot fills whatever field it finds.
			steps = append(steps, chromedp.SetValue(website, trap))
		}
		steps = append(steps, chromedp.Click(chromedp.CSS(`form.mailplane-subscribe button[type="submit"]`)), chromedp.WaitVisible(wait))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("submit %s: %v", address, err)
		}
		location, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return location
	}
	pending := func(address string) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM subscription_requests WHERE email = $1 AND state = 1`, address).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A person: redirected to the site's page, the request waits for the
	// confirmation.
	if got := submit("ann@example.org", "", "#landed"); got != siteURL+"/thanks" {
		t.Errorf("landed on %s, want %s/thanks", got, siteURL)
	}
	if pending("ann@example.org") != 1 || e.isMember("ann@example.org") {
		t.Errorf("ann: %d pending, member %v; want 1 pending request", pending("ann@example.org"), e.isMember("ann@example.org"))
	}

	// A bot: the same landing, nothing stored.
	if got := submit("bot@example.org", "https://spam.example", "#landed"); got != siteURL+"/thanks" {
		t.Errorf("bot landed on %s, want %s/thanks", got, siteURL)
	}
	if pending("bot@example.org") != 0 || e.isMember("bot@example.org") {
		t.Error("the honeypot let a request through")
	}

	// An address the browser takes but the service refuses: the error
	// page, in French, naming the owner's address.
	submit("ann@localhost", "", "main p")
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	lang, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "lang"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if lang.Value != "fr" || !strings.Contains(text, "team-owner@example.test") || !strings.Contains(text, "n’est pas valide") {
		t.Errorf("error page (lang %q):\n%s", lang.Value, text)
	}
	if pending("ann@localhost") != 0 {
		t.Error("a refused address was stored")
	}

	// JavaScript of the site posts JSON: the browser asks first
	// (preflight), the list allows the origin of its redirect URL.
	fetch := func(address string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(browser, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate(siteURL+"/"), chromedp.WaitVisible(email)); err != nil {
			t.Fatal(err)
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(`+strconv.Quote(edgeURL+"/forms/team@example.test/subscribe")+`, {
			method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({email: `+strconv.Quote(address)+`})})
			.then(r => r.json().then(b => r.status + " " + b.page.language), e => "blocked: " + e.message)`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := fetch("cat@example.org"); got != "200 fr" || pending("cat@example.org") != 1 {
		t.Errorf("fetch from the site: %q, %d pending; want 200 and a request", got, pending("cat@example.org"))
	}
	// Once the list no longer allows the site, the browser refuses to send.
	e.setRedirects("https://elsewhere.example/thanks")
	if got := fetch("dan@example.org"); !strings.HasPrefix(got, "blocked") || pending("dan@example.org") != 0 {
		t.Errorf("fetch from a site the list does not allow: %q, %d pending; want blocked, nothing stored", got, pending("dan@example.org"))
	}

	// A member opens the one-click link of a copy: the page asks, and only
	// its button unsubscribes (the page's CSP lets it post to itself).
	token := oneClickTokens(t, e, "eve@example.org")["eve@example.org"]
	ctx, cancel = context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(edgeURL+"/forms/one-click?token="+token), chromedp.WaitVisible(chromedp.CSS("main button"))); err != nil {
		t.Fatal(err)
	}
	if !e.isMember("eve@example.org") {
		t.Fatal("opening the one-click link unsubscribed")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("main button")), chromedp.WaitNotPresent(chromedp.CSS("main form"))); err != nil {
		t.Fatal(err)
	}
	if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main"))); err != nil || !strings.Contains(text, "Vous ne recevrez plus les messages de team@example.test") || e.isMember("eve@example.org") {
		t.Errorf("after the button: %q (%v), member %v", text, err, e.isMember("eve@example.org"))
	}
}
