package lists

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

// TestRedirectAllowed: a form may send people only to an exact URL of the
// settings or under one of their origins; nothing that merely looks like
// one.
func TestRedirectAllowed(t *testing.T) {
	f := formSettings{redirects: []string{"https://example.com/thanks?x=1", "https://club.example", "http://localhost:3000/ok"}}
	for u, want := range map[string]bool{
		"https://example.com/thanks?x=1":            true,
		"https://club.example/any/page?q=2":         true,
		"https://CLUB.example/":                     true,
		"http://localhost:3000/ok":                  true,
		"https://example.com/thanks":                false, // not the exact URL
		"https://example.com/thanks?x=1&y=2":        false,
		"https://example.com/other":                 false,
		"http://club.example/":                      false, // another scheme is another origin
		"https://club.example:8443/":                false,
		"https://club.example.evil.example/":        false,
		"https://evil.example/https://club.example": false,
		"https://user@club.example/":                false,
		"//club.example/":                           false,
		"javascript:alert(1)":                       false,
		"https://club.example/#frag":                false,
		"https://club.example\\@evil.example/":      false,
		"":                                          false,
	} {
		if got := f.redirectAllowed(u); got != want {
			t.Errorf("redirectAllowed(%q) = %v, want %v", u, got, want)
		}
	}
}

// TestOriginAllowed: the allowed origins and the redirect URLs' origins,
// in any case; never "null" or none.
func TestOriginAllowed(t *testing.T) {
	f := formSettings{redirects: []string{"https://example.com/thanks"}, origins: []string{"https://app.example.org"}}
	for o, want := range map[string]bool{
		"https://example.com": true, "https://Example.COM": true, "https://app.example.org": true, "https://app.example.org/": true,
		"http://example.com": false, "https://example.com:444": false, "https://sub.example.com": false, "null": false, "": false,
	} {
		if got := f.originAllowed(o); got != want {
			t.Errorf("originAllowed(%q) = %v, want %v", o, got, want)
		}
	}
}

// TestCheckFormSettings: origins are stored canonical and once; a bad
// entry is named by its index.
func TestCheckFormSettings(t *testing.T) {
	var f formSettings
	err := checkFormSettings(&listsv1.FormSettings{RedirectUrls: []string{" https://Example.com/ ", "https://example.com", "https://example.com/Thanks"},
		AllowedOrigins: []string{"https://A.example"}}, []string{"redirect_urls", "allowed_origins"}, &f)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.redirects, " ") + " | " + strings.Join(f.origins, " "); got != "https://example.com https://example.com/Thanks | https://a.example" {
		t.Errorf("settings %q", got)
	}
	err = checkFormSettings(&listsv1.FormSettings{AllowedOrigins: []string{"https://a.example", "https://b.example/path"}}, []string{"allowed_origins"}, &f)
	if err == nil || !strings.Contains(err.Error(), "formSettings.allowedOrigins[1]") {
		t.Errorf("error %v, want the second origin named", err)
	}
}

// TestOneClickToken: a token opens under its list's key only, hides the
// address, and a changed byte is refused.
func TestOneClickToken(t *testing.T) {
	aead := func() cipher.AEAD {
		key := make([]byte, 32)
		rand.Read(key)
		block, _ := aes.NewCipher(key)
		a, _ := cipher.NewGCM(block)
		return a
	}
	mine, other := aead(), aead()
	list := uuid.Must(uuid.NewV7())
	tok := sealToken(mine, list, "Ann@example.org")
	if strings.Contains(tok, "Ann") || len(tok) > maxTokenBytes {
		t.Errorf("token %q", tok)
	}
	if again := sealToken(mine, list, "Ann@example.org"); again == tok {
		t.Error("two copies got the same token: the nonce is not fresh")
	}
	id, b, ok := tokenList(tok)
	if !ok || id != list {
		t.Fatalf("tokenList = %v, %v", id, ok)
	}
	if key, ok := openToken(mine, b); !ok || key != "Ann@example.org" {
		t.Errorf("openToken = %q, %v", key, ok)
	}
	if _, ok := openToken(other, b); ok {
		t.Error("another list's key opened the token")
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		if key, ok := openToken(mine, c); ok {
			t.Errorf("byte %d changed, still opens as %q", i, key)
		}
	}
	// The list id is authenticated: a token moved to another list's id
	// does not open, even under that list's key.
	moved := append([]byte(nil), b...)
	copy(moved, uuid.Must(uuid.NewV7()).NodeID())
	if _, ok := openToken(mine, moved); ok {
		t.Error("a token with another list id opened")
	}
	for _, bad := range []string{"", "!!!", base64.RawURLEncoding.EncodeToString(make([]byte, 20)), strings.Repeat("A", maxTokenBytes+1)} {
		if _, _, ok := tokenList(bad); ok {
			t.Errorf("tokenList(%q) took it", bad)
		}
	}
}

// TestFormHTMLEscapes: what a manager chose (the redirect) cannot break
// out of its attribute.
func TestFormHTMLEscapes(t *testing.T) {
	l := &list{localPart: "team", domain: "example.test", language: int16(listsv1.Language_LANGUAGE_DE)}
	got, err := formHTML("https://edge.example", l, listsv1.FormAction_FORM_ACTION_SUBSCRIBE, `https://example.com/?a="><script>x</script>`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "<script>") || !strings.Contains(got, "Abonnieren") || !strings.Contains(got, `action="https://edge.example/forms/team@example.test/subscribe"`) {
		t.Errorf("form:\n%s", got)
	}
}
