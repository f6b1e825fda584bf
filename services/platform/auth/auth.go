// Package auth issues and verifies the access tokens that callers present to
// every service. Tokens are JWTs signed with Ed25519 (EdDSA): only the
// accounts service holds the private key; every other service verifies with
// the public key, locally, with no call per request.
//
// Every access token names its session (the "sid" claim): a person's
// sign-in or an API token. The accounts service publishes the sessions it
// revokes (SessionsRevoked); each process applies them to its Verifier,
// which refuses the tokens of a revoked session from then on.
package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const issuer = "mailplane"

// Principal is who is calling: a person (UserID) or a machine's API token
// (TokenID), which acts in one organization with one role.
type Principal struct {
	// UserID is the user's id (the {user} of "users/{user}").
	UserID string
	// TokenID is the API token's id; OrganizationID and Role say where and
	// as what it acts ("owner", "admin" or "member").
	TokenID        string
	OrganizationID string
	Role           string
	// LoginPending marks a person who must choose a new login email before
	// anything else; only methods that allow it serve them.
	LoginPending bool
	// SessionID is the session the token belongs to: a person's sign-in
	// (its refresh token family) or, for an API token, the token's id.
	// Empty in tokens issued before sessions were named.
	SessionID string
}

// claims are the JWT's claims. Typ tells an API token's access token from a
// person's.
type claims struct {
	jwt.RegisteredClaims
	Typ  string `json:"typ,omitempty"`
	Org  string `json:"org,omitempty"`
	Role string `json:"role,omitempty"`
	Sid  string `json:"sid,omitempty"`
}

const (
	typAPIToken     = "api_token"
	typLoginPending = "login_pending"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the caller, if the request was authenticated.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Signer issues access tokens.
type Signer struct {
	key ed25519.PrivateKey
	ttl time.Duration
}

// NewSigner returns a signer whose tokens live for ttl.
func NewSigner(key ed25519.PrivateKey, ttl time.Duration) *Signer {
	return &Signer{key: key, ttl: ttl}
}

// Sign returns an access token for userID and when it expires.
func (s *Signer) Sign(userID string, now time.Time) (string, time.Time, error) {
	return s.sign(claims{RegisteredClaims: registered(userID, now, s.ttl)}, now.Add(s.ttl))
}

// SignLoginPending returns an access token for userID that only methods
// allowing a pending login accept.
func (s *Signer) SignLoginPending(userID string, now time.Time) (string, time.Time, error) {
	return s.sign(claims{RegisteredClaims: registered(userID, now, s.ttl), Typ: typLoginPending}, now.Add(s.ttl))
}

// SignSession returns an access token for userID in session sid, which
// revoking the session makes worthless at once; with loginPending, only
// methods allowing a pending login accept it.
func (s *Signer) SignSession(userID, sid string, loginPending bool, now time.Time) (string, time.Time, error) {
	c := claims{RegisteredClaims: registered(userID, now, s.ttl), Sid: sid}
	if loginPending {
		c.Typ = typLoginPending
	}
	return s.sign(c, now.Add(s.ttl))
}

// SignAPIToken returns an access token, living ttl, for the API token
// tokenID acting in organization org with role. Its session is the API
// token: revoking the token revokes the session.
func (s *Signer) SignAPIToken(tokenID, org, role string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	return s.sign(claims{RegisteredClaims: registered(tokenID, now, ttl), Typ: typAPIToken, Org: org, Role: role, Sid: tokenID}, now.Add(ttl))
}

func registered(subject string, now time.Time, ttl time.Duration) jwt.RegisteredClaims {
	return jwt.RegisteredClaims{
		Issuer:    issuer,
		Subject:   subject,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
}

func (s *Signer) sign(c claims, exp time.Time) (string, time.Time, error) {
	signed, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(s.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign access token: %w", err)
	}
	return signed, exp, nil
}

// TTL is how long the signer's tokens live.
func (s *Signer) TTL() time.Duration { return s.ttl }

// Verifier checks access tokens. It remembers the tokens it verified until
// they expire: a client sends the same token with every call for minutes,
// and an Ed25519 check costs more than the rest of a small request. It
// also remembers the sessions revoked (Revoke) and refuses their tokens.
type Verifier struct {
	parser *jwt.Parser
	key    ed25519.PublicKey

	mu       sync.Mutex
	verified map[string]verified

	// revoked maps a revoked session's id to when its last token expires
	// (a time.Time); read on every call, written once per revocation, which
	// is what sync.Map is for: reads take no lock.
	revoked sync.Map
	// rmu serialises revocations, counted in size; pruned is size after
	// the last time expired ones were forgotten.
	rmu          sync.Mutex
	size, pruned int
	now          func() time.Time
}

type verified struct {
	p       Principal
	expires time.Time
}

// maxVerified bounds the verified-token cache; past it, expired entries go.
const maxVerified = 10000

// leeway is the clock skew tolerated between the accounts service and a
// verifier.
const leeway = 5 * time.Second

// NewVerifier returns a verifier for tokens signed by key's private half.
func NewVerifier(key ed25519.PublicKey) *Verifier {
	return &Verifier{
		key:      key,
		verified: map[string]verified{},
		now:      time.Now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(leeway),
		),
	}
}

// ErrInvalidToken is returned for any token that is malformed, forged or
// expired; callers are not told which.
var ErrInvalidToken = errors.New("invalid or expired access token")

// Verify returns the principal a valid token was issued to.
func (v *Verifier) Verify(token string) (Principal, error) {
	now := time.Now()
	v.mu.Lock()
	hit, ok := v.verified[token]
	v.mu.Unlock()
	if ok && now.Before(hit.expires) {
		if v.isRevoked(hit.p.SessionID) {
			return Principal{}, ErrInvalidToken
		}
		return hit.p, nil
	}
	p, exp, err := v.verify(token)
	if err != nil {
		return Principal{}, err
	}
	if v.isRevoked(p.SessionID) {
		return Principal{}, ErrInvalidToken
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= maxVerified {
		for k, e := range v.verified {
			if !now.Before(e.expires) {
				delete(v.verified, k)
			}
		}
	}
	if len(v.verified) < maxVerified {
		v.verified[token] = verified{p: p, expires: exp}
	}
	return p, nil
}

// isRevoked reports whether session sid was revoked. A session is never
// issued tokens again after its revocation, so no expiry needs checking
// here: an entry outlives every token of its session.
func (v *Verifier) isRevoked(sid string) bool {
	if sid == "" {
		return false
	}
	_, ok := v.revoked.Load(sid)
	return ok
}

// Revoke refuses every token of session sid from now on. until is when its
// last token expires at the latest: the revocation is forgotten (past the
// clock-skew leeway) after it, when no token of the session is valid anyway.
func (v *Verifier) Revoke(sid string, until time.Time) {
	if sid == "" {
		return
	}
	until = until.Add(leeway)
	now := v.now()
	if !now.Before(until) {
		return
	}
	v.rmu.Lock()
	defer v.rmu.Unlock()
	if u, ok := v.revoked.Load(sid); !ok {
		v.revoked.Store(sid, until)
		v.size++
	} else if u.(time.Time).Before(until) {
		v.revoked.Store(sid, until)
	}
	// Forget what has expired whenever the set has doubled since the last
	// time: amortised, a revocation costs O(1).
	if v.size > 2*v.pruned+1024 {
		v.revoked.Range(func(k, u any) bool {
			if !now.Before(u.(time.Time)) {
				v.revoked.Delete(k)
				v.size--
			}
			return true
		})
		v.pruned = v.size
	}
}

// Revoked is how many revoked sessions v remembers.
func (v *Verifier) Revoked() int {
	v.rmu.Lock()
	defer v.rmu.Unlock()
	return v.size
}

func (v *Verifier) verify(token string) (Principal, time.Time, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil })
	if err != nil || c.Subject == "" || c.ExpiresAt == nil {
		return Principal{}, time.Time{}, ErrInvalidToken
	}
	exp := c.ExpiresAt.Time
	p, err := c.principal()
	p.SessionID = c.Sid
	return p, exp, err
}

func (c claims) principal() (Principal, error) {
	switch c.Typ {
	case "":
		return Principal{UserID: c.Subject}, nil
	case typLoginPending:
		return Principal{UserID: c.Subject, LoginPending: true}, nil
	case typAPIToken:
		if c.Org == "" || c.Role == "" {
			return Principal{}, ErrInvalidToken
		}
		return Principal{TokenID: c.Subject, OrganizationID: c.Org, Role: c.Role}, nil
	}
	return Principal{}, ErrInvalidToken
}

// ParsePrivateKey decodes a base64 (standard) Ed25519 seed of 32 bytes.
func ParsePrivateKey(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.SeedSize {
		return nil, errors.New("want the base64 of a 32-byte Ed25519 seed")
	}
	return ed25519.NewKeyFromSeed(b), nil
}

// ParsePublicKey decodes a base64 (standard) Ed25519 public key of 32 bytes.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("want the base64 of a 32-byte Ed25519 public key")
	}
	return ed25519.PublicKey(b), nil
}
