package access

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/errs"
	"golang.org/x/sync/singleflight"
)

// Source tells a person's role in an organization: accounts' store, in
// accounts, or Accounts, elsewhere.
type Source interface {
	// Role is user's role in org, asked on behalf of ctx's caller; an
	// error of kind NotFound when user is not a member.
	Role(ctx context.Context, org, user uuid.UUID) (Role, error)
}

// orgNotFound answers a caller outside the organization, whether or not it
// exists, so that nobody learns which organizations exist.
func orgNotFound() error { return errs.E(errs.NotFound, "organization not found") }

// Roles learns callers' roles in organizations from a Source, remembering
// each answer for a short while: a burst of calls (a frontend page, a
// script) asks the source once, and a role change still takes effect within
// the TTL. Concurrent lookups of one role share one question.
type Roles struct {
	src Source
	ttl time.Duration

	flights singleflight.Group
	mu      sync.Mutex
	cache   map[roleKey]cachedRole

	now func() time.Time // time.Now, but for tests
	// joined, when set, is called once a lookup waits on the source's
	// answer, its own or another's: tests count the callers sharing one.
	joined func()
}

type roleKey struct{ org, user uuid.UUID }

type cachedRole struct {
	role    Role // "": not a member
	expires time.Time
}

const (
	// maxCachedRoles bounds the cache: past it, answers are not kept.
	maxCachedRoles = 10000
	// lookupTimeout bounds a shared lookup, which does not end with the
	// first caller's request (the others still wait for it).
	lookupTimeout = 10 * time.Second
)

// NewRoles returns Roles over src that remembers answers for ttl; 0 asks
// src every time (still sharing concurrent lookups).
func NewRoles(src Source, ttl time.Duration) *Roles {
	return &Roles{src: src, ttl: ttl, cache: map[roleKey]cachedRole{}, now: time.Now}
}

// Access returns ctx's caller and their role in org: an API token's own
// role in its organization, a person's role as a member. A caller outside
// org gets NotFound, whether or not org exists.
func (r *Roles) Access(ctx context.Context, org uuid.UUID) (Caller, Role, error) {
	c, err := CallerFrom(ctx)
	if err != nil {
		return c, "", err
	}
	if c.IsToken() {
		if c.TokenOrg != org {
			return c, "", orgNotFound()
		}
		return c, c.TokenRole, nil
	}
	role, err := r.role(ctx, org, c.UserID)
	if err != nil {
		return c, "", err
	}
	if role == "" {
		return c, "", orgNotFound()
	}
	return c, role, nil
}

// Manage is Access for owners and admins only.
func (r *Roles) Manage(ctx context.Context, org uuid.UUID) (Caller, error) {
	c, role, err := r.Access(ctx, org)
	if err != nil {
		return c, err
	}
	if !role.CanManage() {
		return c, errs.E(errs.PermissionDenied, "only owners and admins can do this")
	}
	return c, nil
}

// role is user's role in org, "" when they are not a member. It is only
// ever asked about the caller: an answer cached for one user must not be
// handed to another who may not see it.
func (r *Roles) role(ctx context.Context, org, user uuid.UUID) (Role, error) {
	key := roleKey{org, user}
	if role, ok := r.cached(key); ok {
		return role, nil
	}
	ch := r.flights.DoChan(key.org.String()+"/"+key.user.String(), func() (any, error) {
		// A flight that just ended may have left the answer, after this
		// caller missed it above.
		if role, ok := r.cached(key); ok {
			return role, nil
		}
		// The lookup outlives the caller who started it, whose
		// cancellation must not fail the others sharing it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		role, err := r.src.Role(ctx, org, user)
		if errs.Is(err, errs.NotFound) {
			role, err = "", nil
		}
		if err != nil {
			return Role(""), err
		}
		r.remember(key, role)
		return role, nil
	})
	if r.joined != nil {
		r.joined()
	}
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(Role), nil
	case <-ctx.Done():
		return "", fmt.Errorf("role in %s: %w", org, ctx.Err())
	}
}

// cached returns the role remembered under key, if it is still fresh.
func (r *Roles) cached(key roleKey) (Role, bool) {
	if r.ttl <= 0 {
		return "", false
	}
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	return c.role, ok && r.now().Before(c.expires)
}

// remember keeps role for the TTL, unless the cache is full of live
// answers.
func (r *Roles) remember(key roleKey, role Role) {
	if r.ttl <= 0 {
		return
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCachedRoles {
		for k, c := range r.cache {
			if !now.Before(c.expires) {
				delete(r.cache, k)
			}
		}
	}
	if len(r.cache) < maxCachedRoles {
		r.cache[key] = cachedRole{role: role, expires: now.Add(r.ttl)}
	}
}
