package lists_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/attacktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// escapes are redirect URLs and origins that try to leave the ones a list
// allows (https://allowed.example/thanks, https://origin.example).
var escapes = []string{
	"//evil.example", "https://allowed.example@evil.example/thanks", "https://evil.example/thanks",
	"javascript:alert(1)", "JavaScript://allowed.example/%0aalert(1)", "data:text/html,<script>alert(1)</script>",
	`https://allowed.example\@evil.example/thanks`, `https:\\evil.example`, "https://allowed。example/thanks",
	"https://allowed.example.evil.example/thanks", "https://origin.example.evil.example/", "http://origin.example/x",
	"https://allowed.example/thanks#x", "https://allowed.example/thanks\r\nLocation: https://evil.example",
	"https://origin.example:444/", "https://evil.example/?https://allowed.example/thanks", "/relative", "",
	"https://bücher.example/", "https://allowed.example%2f@evil.example/", "https://[::1]evil/",
}

// TestAttackRedirects: no escaping redirect is stored, generated into a
// form or followed after a submission; no hostile origin is allowed.
func TestAttackRedirects(t *testing.T) {
	e := startForms(t)
	e.setRedirects("https://allowed.example/thanks", "https://origin.example")
	ctx := context.Background()
	for _, u := range escapes {
		if u == "" {
			continue
		}
		_, err := e.forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: &listsv1.FormSettings{
			Name: e.list.GetName() + "/formSettings", RedirectUrls: []string{"https://allowed.example/thanks", u}}})
		if !strings.HasPrefix(u, "https://") || strings.ContainsAny(u, "@#\\\r\n。ü[") {
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("storing %q: %v, want InvalidArgument", u, err)
				continue
			}
			wantCode(t, err, codes.InvalidArgument, "formSettings.redirectUrls[1]")
		} else if err != nil {
			t.Errorf("storing %q: %v", u, err) // a plain other site: the owner's to allow
		}
	}
	e.setRedirects("https://allowed.example/thanks", "https://origin.example")
	for _, u := range escapes {
		if u == "" {
			continue
		}
		_, err := e.forms.GenerateForms(e.admin, &listsv1.GenerateFormsRequest{Name: e.list.GetName(), RedirectUrl: u})
		wantCode(t, err, codes.InvalidArgument, "redirectUrl")
		got, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: "team@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE,
			Email: fmt.Sprintf("x%d@example.org", len(u)), RedirectUrl: u})
		if err == nil && got.GetRedirectUrl() != "" {
			t.Errorf("submit with redirect %q: sent to %q", u, got.GetRedirectUrl())
		}
		attacktest.Never(t, "submit "+u, err)
		ok, err := e.public.CheckFormOrigin(ctx, &listsv1.CheckFormOriginRequest{List: "team@example.test", Origin: strings.TrimSuffix(u, "/thanks")})
		attacktest.Never(t, "origin "+u, err)
		if ok.GetAllowed() {
			t.Errorf("origin %q allowed", u)
		}
	}
	got, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: "team@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE,
		Email: "fine@example.org", RedirectUrl: "https://origin.example/welcome"})
	if err != nil || got.GetRedirectUrl() != "https://origin.example/welcome" {
		t.Errorf("a redirect under an allowed origin: %v, %v", got, err)
	}
}

// TestAttackPublic: hostile text in every field of the public calls is
// refused naming the field, never answered Internal.
func TestAttackPublic(t *testing.T) {
	e := startForms(t)
	ctx := context.Background()
	for what, v := range attacktest.Hostile {
		for field, call := range map[string]func() error{
			"list": func() error {
				_, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: v, Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "a@example.org"})
				return err
			},
			"email": func() error {
				_, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: "team@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: v})
				return err
			},
			"displayName": func() error {
				_, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: "team@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "a@example.org", DisplayName: v})
				return err
			},
			"redirectUrl": func() error {
				_, err := e.public.SubmitForm(ctx, &listsv1.SubmitFormRequest{List: "team@example.test", Action: listsv1.FormAction_FORM_ACTION_SUBSCRIBE, Email: "a@example.org", RedirectUrl: v})
				return err
			},
			"origin": func() error {
				_, err := e.public.CheckFormOrigin(ctx, &listsv1.CheckFormOriginRequest{List: "team@example.test", Origin: v})
				return err
			},
			"token": func() error {
				_, err := e.public.OneClickUnsubscribe(ctx, &listsv1.OneClickUnsubscribeRequest{Token: v})
				return err
			},
		} {
			err := call()
			if status.Code(err) == codes.ResourceExhausted {
				continue // the per-address limit: also an answer
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s with %s: %v, want InvalidArgument", field, what, err)
				continue
			}
			wantCode(t, err, codes.InvalidArgument, field)
		}
	}
}
