package gateway

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/felixge/httpsnoop"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

type requestIDKey struct{}

// requestIDFrom returns the id requestID gave the request.
func requestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// requestID gives every request an id, answered in X-Request-Id. A client
// (or a proxy in front) may choose it, so that one id follows a request
// across systems; one that could upset a log or a header is replaced.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// validRequestID reports whether id is 1 to 128 characters of [A-Za-z0-9._-].
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range []byte(id) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// outgoingMetadata returns what the backends learn about an HTTP request
// beyond what grpc-gateway forwards itself (Authorization as
// "authorization"). grpc-gateway lets these values replace any it derived.
func outgoingMetadata(trusted []netip.Prefix) func(context.Context, *http.Request) metadata.MD {
	return func(_ context.Context, r *http.Request) metadata.MD {
		md := metadata.Pairs("x-forwarded-for", forwardedFor(r, trusted))
		if id := requestIDFrom(r.Context()); id != "" {
			md.Set("x-request-id", id)
		}
		// checkIdempotencyKey has refused a key that is not valid.
		if key := r.Header.Get(idempotencyKeyHeader); key != "" {
			md.Set("idempotency-key", key)
		}
		return md
	}
}

// idempotencyKeyHeader names the key a client gives a create so that
// sending it again answers the first outcome again instead of creating
// twice (the services keep the outcomes; AIP-155's request_id, in a header).
const idempotencyKeyHeader = "Idempotency-Key"

// maxIdempotencyKey is the longest Idempotency-Key taken.
const maxIdempotencyKey = 128

// checkIdempotencyKey is the mux middleware that refuses a request whose
// Idempotency-Key is not one value of 1 to 128 printable ASCII characters,
// so that what the backends get as "idempotency-key" is always one valid
// key.
func checkIdempotencyKey(mux *runtime.ServeMux) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			keys, sent := r.Header[idempotencyKeyHeader]
			if sent && (len(keys) != 1 || keys[0] == "" || len(keys[0]) > maxIdempotencyKey || !printableASCII(keys[0])) {
				_, out := runtime.MarshalerForRequest(mux, r)
				be := &inputError{field: idempotencyKeyHeader, desc: fmt.Sprintf("must be one value of 1 to %d printable ASCII characters", maxIdempotencyKey)}
				runtime.HTTPError(r.Context(), mux, out, w, r, be.status())
				return
			}
			next(w, r, params)
		}
	}
}

// forwardedFor is the X-Forwarded-For chain handed to the backends, ending
// with the client's address: the accounts service takes the last hop as the
// client for sign-in rate limits, so the last hop must be one a client cannot
// choose. That is the peer the edge saw, unless the peer is a trusted proxy
// (an ingress), whose own X-Forwarded-For entry is then believed, and so on
// leftwards through trusted proxies. grpc-gateway appends the peer too, but
// silently leaves it out when RemoteAddr has no port; building the chain
// here keeps the guarantee.
func forwardedFor(r *http.Request, trusted []netip.Prefix) string {
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		if !printableASCII(v) {
			continue
		}
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	if peer == "" || !printableASCII(peer) {
		peer = "unknown"
	}
	hops = append(hops, peer)
	for len(hops) > 1 && isTrusted(hops[len(hops)-1], trusted) {
		hops = hops[:len(hops)-1]
	}
	return strings.Join(hops, ", ")
}

func isTrusted(hop string, trusted []netip.Prefix) bool {
	ip, err := netip.ParseAddr(hop)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// printableASCII reports whether s is a valid gRPC metadata text value.
func printableASCII(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// accessLog logs one line per request once it is answered.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := httpsnoop.CaptureMetrics(next, w, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", m.Code),
			slog.Int64("bytes", m.Written),
			slog.Float64("durationMs", float64(m.Duration.Microseconds())/1000),
			slog.String("requestId", requestIDFrom(r.Context())),
			slog.String("remoteAddr", r.RemoteAddr),
		)
	})
}

// cors lets the browser origins in origins ("*": any) call the API. It
// answers preflight requests itself. Tokens travel in the Authorization
// header, never in cookies, so credentials are not allowed.
func cors(origins []string, next http.Handler) http.Handler {
	// Browsers send the origin lower-case and without a trailing slash;
	// forgive a configured one that is written otherwise.
	allowed := make([]string, 0, len(origins))
	for _, o := range origins {
		allowed = append(allowed, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/"))
	}
	anyOrigin := slices.Contains(allowed, "*")

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		origin := r.Header.Get("Origin")
		ok := origin != "" && (anyOrigin || slices.Contains(allowed, strings.ToLower(origin)))
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""

		// The answer depends on the origin: caches must not hand one
		// origin's answer to another.
		h.Add("Vary", "Origin")
		if preflight {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			if ok {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-Id")
				h.Set("Access-Control-Max-Age", "7200") // the most Chromium honours
			}
			// A disallowed origin gets no CORS headers, which is how a
			// browser learns it may not send the request.
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ok {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, Content-Disposition, Location, WWW-Authenticate")
		}
		next.ServeHTTP(w, r)
	})
}

// labelRoute is the mux middleware that names the request's route in the
// edge's request metrics (http.route, otelhttp's labeler): the pattern of
// the route it matched ("/v1/{name=organizations/*}"), never the path a
// client sent, whose ids would make a series per resource. A request
// that matches no route (404) gets no route.
func labelRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			setRoute(r, p.String())
		}
		next(w, r, params)
	}
}

// labelServeMuxRoute is labelRoute for a handler routed by an
// http.ServeMux (the form endpoints), once it has served r: the mux
// leaves the pattern it matched in r ("POST /forms/{list}/{action}"),
// whose method part is the request's own label already.
func labelServeMuxRoute(r *http.Request) {
	if r.Pattern == "" {
		return
	}
	_, route, found := strings.Cut(r.Pattern, " ")
	if !found {
		route = r.Pattern
	}
	setRoute(r, route)
}

// setRoute labels r's metrics with its route and names its span after
// it, as the HTTP conventions do ("GET /v1/users/me"): otelhttp starts
// the span before any routing, with the method alone for a name.
func setRoute(r *http.Request, route string) {
	l, _ := otelhttp.LabelerFromContext(r.Context())
	l.Add(attribute.String("http.route", route))
	span := trace.SpanFromContext(r.Context())
	span.SetName(r.Method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}
