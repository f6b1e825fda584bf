package gateway

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/felixge/httpsnoop"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc"
)

// apiTokenPrefix starts every API token secret; access tokens (JWTs) never
// start so.
const apiTokenPrefix = "mpt_"

// exchanger swaps API token secrets in the Authorization header for the
// short-lived access tokens the services verify themselves, so that no
// service has to look API tokens up. It caches each exchange until shortly
// before the access token expires, so an active token costs accounts one
// call a minute per edge replica. Revoking an API token revokes its access
// tokens in every service at once (they follow the revocations); the first
// 401 a service answers for a cached access token drops it, and the next
// call exchanges again, which a revoked token fails. So the edge needs no
// NATS of its own to honour a revocation within the services' delay.
type exchanger struct {
	client accountsv1.AuthServiceClient
	mux    *runtime.ServeMux
	now    func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]exchanged
}

type exchanged struct {
	access string
	expiry time.Time
}

// maxCachedTokens bounds the cache; past it, expired entries are dropped.
const maxCachedTokens = 10000

func newExchanger(conn *grpc.ClientConn, mux *runtime.ServeMux) *exchanger {
	return &exchanger{client: accountsv1.NewAuthServiceClient(conn), mux: mux, now: time.Now, cache: map[[sha256.Size]byte]exchanged{}}
}

func (x *exchanger) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") || !strings.HasPrefix(secret, apiTokenPrefix) {
			next.ServeHTTP(w, r)
			return
		}
		secret = strings.TrimSpace(secret)
		access, err := x.exchange(r.Context(), secret)
		if err != nil {
			_, outbound := runtime.MarshalerForRequest(x.mux, r)
			runtime.HTTPError(r.Context(), x.mux, outbound, w, r, err)
			return
		}
		r.Header.Set("Authorization", "Bearer "+access)
		refused := false
		next.ServeHTTP(httpsnoop.Wrap(w, httpsnoop.Hooks{
			WriteHeader: func(next httpsnoop.WriteHeaderFunc) httpsnoop.WriteHeaderFunc {
				return func(code int) {
					refused = refused || code == http.StatusUnauthorized
					next(code)
				}
			},
		}), r)
		if refused {
			x.forget(secret)
		}
	})
}

// forget drops secret's cached exchange: a service refused its access
// token, most likely because the API token was revoked.
func (x *exchanger) forget(secret string) {
	key := sha256.Sum256([]byte(secret))
	x.mu.Lock()
	delete(x.cache, key)
	x.mu.Unlock()
}

// exchange returns a valid access token for secret.
func (x *exchanger) exchange(ctx context.Context, secret string) (string, error) {
	key := sha256.Sum256([]byte(secret))
	now := x.now()
	x.mu.Lock()
	e, ok := x.cache[key]
	x.mu.Unlock()
	// Leave the token a few seconds to reach the service.
	if ok && now.Add(5*time.Second).Before(e.expiry) {
		return e.access, nil
	}
	resp, err := x.client.ExchangeApiToken(ctx, &accountsv1.ExchangeApiTokenRequest{Secret: secret})
	if err != nil {
		x.mu.Lock()
		delete(x.cache, key)
		x.mu.Unlock()
		return "", err
	}
	e = exchanged{access: resp.GetAccessToken(), expiry: now.Add(time.Duration(resp.GetExpiresIn()) * time.Second)}
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.cache) >= maxCachedTokens {
		for k, v := range x.cache {
			if !now.Before(v.expiry) {
				delete(x.cache, k)
			}
		}
	}
	if len(x.cache) < maxCachedTokens {
		x.cache[key] = e
	}
	return e.access, nil
}
