package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mailplane/mailplane/gateway"
	"github.com/mailplane/mailplane/services/platform/browsertest"
)

// TestAPIDocsInChromium: the edge's /docs page renders /openapi.json in
// headless Chromium with nothing from the network but the edge (the
// Redoc bundle is embedded), no console error, no CSP violation, and
// shows every service's routes: each tag of the document in the
// navigation, and an operation path of each service.
func TestAPIDocsInChromium(t *testing.T) {
	browser := browsertest.New(t)

	// The page needs no backend: gRPC connections are made lazily.
	h, closeEdge, err := gateway.New(t.Context(), gateway.Config{AccountsAddr: "127.0.0.1:1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeEdge() })
	edge := httptest.NewServer(h)
	t.Cleanup(edge.Close)

	var doc struct {
		Tags  []struct{ Name string }
		Paths map[string]any
	}
	resp, err := http.Get(edge.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}

	errs, err := browsertest.Listen(browser)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(edge.URL+"/docs"), chromedp.WaitVisible(chromedp.CSS(".swagger-ui .opblock-tag"))); err != nil {
		t.Fatalf("the page did not render: %v (errors: %q)", err, errs.List())
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "Mailplane REST API") {
		t.Error("the page does not show the API's title")
	}
	if len(doc.Tags) < 10 {
		t.Fatalf("the document has %d tags, want every service's", len(doc.Tags))
	}
	for _, tag := range doc.Tags {
		if !strings.Contains(text, tag.Name) {
			t.Errorf("the page does not show the routes of %s", tag.Name)
		}
	}
	for _, service := range []string{"/v1/auth:signIn", "/addresses", "/security:diagnose", "/lists", "/rules"} {
		found := false
		for p := range doc.Paths {
			if strings.Contains(p, service) && strings.Contains(text, p) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("the page shows no path containing %s", service)
		}
	}
	if e := errs.List(); len(e) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(e, "\n"))
	}
}
