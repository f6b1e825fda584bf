package auth_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/mailplane/mailplane/services/platform/auth"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func TestSignVerify(t *testing.T) {
	pub, priv := newKey(t)
	s := auth.NewSigner(priv, 15*time.Minute)
	now := time.Now()
	tok, exp, err := s.Sign("u_123", now)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(15 * time.Minute); !exp.Equal(want) {
		t.Errorf("Sign expiry = %v, want %v", exp, want)
	}
	if s.TTL() != 15*time.Minute {
		t.Errorf("TTL() = %v, want 15m", s.TTL())
	}
	got, err := auth.NewVerifier(pub).Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if diff := cmp.Diff(auth.Principal{UserID: "u_123"}, got); diff != "" {
		t.Errorf("Verify principal (-want +got):\n%s", diff)
	}
}

// segments splits a compact JWT into its decoded header and claims and its
// raw signature.
func segments(t *testing.T, tok string) (header, claims, sig string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", tok, len(parts))
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	c, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return string(h), string(c), parts[2]
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyRejects(t *testing.T) {
	pub, priv := newKey(t)
	_, otherPriv := newKey(t)
	now := time.Now()
	valid, _, err := auth.NewSigner(priv, 15*time.Minute).Sign("u_123", now)
	if err != nil {
		t.Fatal(err)
	}
	header, claims, sig := segments(t, valid)
	if !strings.Contains(claims, `"sub":"u_123"`) || !strings.Contains(header, `"alg":"EdDSA"`) {
		t.Fatalf("unexpected token layout: %s %s", header, claims)
	}
	exp := now.Add(time.Hour).Unix()

	// sign signs claims with our key but lets a case choose them freely.
	sign := func(method jwt.SigningMethod, key any, c jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	mustSign := func(s *auth.Signer, at time.Time) string {
		t.Helper()
		tok, _, err := s.Sign("u_123", at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"three garbage segments", "a.b.c"},
		{"expired an hour ago", mustSign(auth.NewSigner(priv, 15*time.Minute), now.Add(-time.Hour))},
		{"expired beyond the leeway", mustSign(auth.NewSigner(priv, time.Minute), now.Add(-time.Minute-10*time.Second))},
		{"forged with another key", mustSign(auth.NewSigner(otherPriv, 15*time.Minute), now)},
		{
			"claims tampered, signature kept",
			enc(header) + "." + enc(strings.Replace(claims, `"sub":"u_123"`, `"sub":"u_admin"`, 1)) + "." + sig,
		},
		{
			"signature tampered",
			strings.Join(strings.Split(valid, ".")[:2], ".") + "." + enc("not the signature of these claims, but 64 bytes of something"),
		},
		{"signature stripped", strings.Join(strings.Split(valid, ".")[:2], ".") + "."},
		{
			`alg "none"`,
			enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(claims) + ".",
		},
		{
			`alg "none" with the original signature`,
			enc(`{"alg":"none","typ":"JWT"}`) + "." + enc(claims) + "." + sig,
		},
		{
			"HS256 keyed with the public key",
			sign(jwt.SigningMethodHS256, []byte(pub), jwt.MapClaims{"iss": "mailplane", "sub": "u_123", "exp": exp}),
		},
		{
			"HS256 with a guessed secret",
			sign(jwt.SigningMethodHS256, []byte("secret"), jwt.MapClaims{"iss": "mailplane", "sub": "u_123", "exp": exp}),
		},
		{
			"no expiry",
			sign(jwt.SigningMethodEdDSA, priv, jwt.MapClaims{"iss": "mailplane", "sub": "u_123"}),
		},
		{
			"other issuer",
			sign(jwt.SigningMethodEdDSA, priv, jwt.MapClaims{"iss": "someone-else", "sub": "u_123", "exp": exp}),
		},
		{
			"no issuer",
			sign(jwt.SigningMethodEdDSA, priv, jwt.MapClaims{"sub": "u_123", "exp": exp}),
		},
		{
			"no subject",
			sign(jwt.SigningMethodEdDSA, priv, jwt.MapClaims{"iss": "mailplane", "exp": exp}),
		},
		{
			"not valid yet",
			sign(jwt.SigningMethodEdDSA, priv, jwt.MapClaims{"iss": "mailplane", "sub": "u_123", "exp": exp, "nbf": now.Add(30 * time.Minute).Unix()}),
		},
	}
	v := auth.NewVerifier(pub)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(tt.token)
			if !errors.Is(err, auth.ErrInvalidToken) {
				t.Errorf("Verify = %+v, %v; want ErrInvalidToken", p, err)
			}
			if p != (auth.Principal{}) {
				t.Errorf("Verify returned principal %+v with an invalid token", p)
			}
		})
	}
}

// TestVerifyLeeway checks that a few seconds of clock skew between the
// accounts service and a verifier do not reject a fresh token.
func TestVerifyLeeway(t *testing.T) {
	pub, priv := newKey(t)
	tok, _, err := auth.NewSigner(priv, time.Minute).Sign("u_123", time.Now().Add(-time.Minute-2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewVerifier(pub).Verify(tok); err != nil {
		t.Errorf("Verify(token expired 2s ago) = %v, want it accepted within the leeway", err)
	}
}

func TestParseKeys(t *testing.T) {
	pub, priv := newKey(t)
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	pubB64 := base64.StdEncoding.EncodeToString(pub)

	gotPriv, err := auth.ParsePrivateKey(seed)
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if !gotPriv.Equal(priv) {
		t.Error("ParsePrivateKey(seed) is not the key the seed came from")
	}
	gotPub, err := auth.ParsePublicKey(pubB64)
	if err != nil {
		t.Fatalf("ParsePublicKey: %v", err)
	}
	if !gotPub.Equal(pub) {
		t.Error("ParsePublicKey returned another key")
	}
	// The parsed halves work together.
	tok, _, err := auth.NewSigner(gotPriv, time.Minute).Sign("u_1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewVerifier(gotPub).Verify(tok); err != nil {
		t.Errorf("token signed with the parsed private key: %v", err)
	}

	std := base64.StdEncoding.EncodeToString
	bad := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"not base64", "not base64!"},
		{"URL-safe base64", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32))},
		{"31 bytes", std(make([]byte, 31))},
		{"33 bytes", std(make([]byte, 33))},
		{"64-byte private key instead of a seed", std(priv)},
		{"hex", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := auth.ParsePrivateKey(tt.in); err == nil {
				t.Errorf("ParsePrivateKey(%q) = %x, want an error", tt.in, k)
			} else if want := "want the base64 of a 32-byte Ed25519 seed"; err.Error() != want {
				t.Errorf("ParsePrivateKey error = %q, want %q", err, want)
			}
			if k, err := auth.ParsePublicKey(tt.in); err == nil {
				t.Errorf("ParsePublicKey(%q) = %x, want an error", tt.in, k)
			} else if want := "want the base64 of a 32-byte Ed25519 public key"; err.Error() != want {
				t.Errorf("ParsePublicKey error = %q, want %q", err, want)
			}
		})
	}
}

func TestPrincipalContext(t *testing.T) {
	ctx := context.Background()
	if p, ok := auth.FromContext(ctx); ok {
		t.Errorf("FromContext(empty) = %+v, true; want false", p)
	}
	p, ok := auth.FromContext(auth.WithPrincipal(ctx, auth.Principal{UserID: "u_9"}))
	if !ok || p.UserID != "u_9" {
		t.Errorf("FromContext = %+v, %v; want u_9, true", p, ok)
	}
}

func TestAPITokenPrincipal(t *testing.T) {
	pub, priv := newKey(t)
	s := auth.NewSigner(priv, 15*time.Minute)
	now := time.Now()
	tok, exp, err := s.SignAPIToken("t_1", "o_1", "admin", time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Minute)) {
		t.Errorf("expiry %v, want a minute from now", exp)
	}
	got, err := auth.NewVerifier(pub).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(auth.Principal{TokenID: "t_1", OrganizationID: "o_1", Role: "admin", SessionID: "t_1"}, got); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	// An API token's access token without its organization is no token.
	bad, _, _ := s.SignAPIToken("t_1", "", "admin", time.Minute, now)
	if _, err := auth.NewVerifier(pub).Verify(bad); err == nil {
		t.Error("API token access token without organization accepted")
	}
}

// TestVerifyCache: a verified token is remembered until it expires, and
// only that exact token is.
func TestVerifyCache(t *testing.T) {
	pub, priv := newKey(t)
	v := auth.NewVerifier(pub)
	tok, _, err := auth.NewSigner(priv, 2*time.Second).Sign("u_1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if p, err := v.Verify(tok); err != nil || p.UserID != "u_1" {
			t.Fatalf("Verify = %v, %v", p, err)
		}
	}
	if _, err := v.Verify(tok + "x"); err == nil {
		t.Error("a token one byte longer than a cached one was accepted")
	}
	// Past its expiry (and the parser's 5 s leeway) the cached token is
	// checked again and refused.
	old, _, _ := auth.NewSigner(priv, time.Second).Sign("u_2", time.Now().Add(-10*time.Second))
	if _, err := v.Verify(old); err == nil {
		t.Error("an expired token was accepted")
	}
}
