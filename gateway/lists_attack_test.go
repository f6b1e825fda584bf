package gateway

import (
	"strings"
	"testing"
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
