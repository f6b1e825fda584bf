package gateway

import (
	_ "embed"
	"fmt"
	"net/http"
	"regexp"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.yaml.in/yaml/v3"
)

// httpRules is the REST routes' configuration, which grpc-gateway's
// generator read: the edge reads it too, for what the generated handlers
// do not say at run time.
//
//go:embed http.yaml
var httpRules []byte

// bodyRoutes returns the routes whose every field comes from the path or
// the body (body "*"), as "METHOD pattern" in grpc-gateway's Pattern.String
// form. Their generated handlers never read the query, so an unknown
// parameter there would be ignored where every other route refuses it.
func bodyRoutes() (map[string]bool, error) {
	var svc struct {
		HTTP struct {
			Rules []struct {
				Selector string
				Get      string
				Post     string
				Put      string
				Patch    string
				Delete   string
				Body     string
			}
		}
	}
	if err := yaml.Unmarshal(httpRules, &svc); err != nil {
		return nil, fmt.Errorf("http.yaml: %w", err)
	}
	routes := make(map[string]bool)
	for _, r := range svc.HTTP.Rules {
		if r.Body != "*" {
			continue
		}
		for method, path := range map[string]string{http.MethodGet: r.Get, http.MethodPost: r.Post, http.MethodPut: r.Put, http.MethodPatch: r.Patch, http.MethodDelete: r.Delete} {
			if path != "" {
				routes[method+" "+barePathVar.ReplaceAllString(path, "{$1=*}")] = true
			}
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("http.yaml: no route with body \"*\"")
	}
	return routes, nil
}

// barePathVar is a path variable without a pattern ("{name}"), which
// Pattern.String writes as "{name=*}".
var barePathVar = regexp.MustCompile(`\{([a-z_.]+)\}`)

// checkQuery refuses a query parameter on a route whose fields all come
// from the path and the body, naming it as the query parser names an
// unknown one on every other route.
func checkQuery(mux *runtime.ServeMux, routes map[string]bool) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			if r.URL.RawQuery != "" {
				if p, ok := runtime.HTTPPattern(r.Context()); ok && routes[r.Method+" "+p.String()] {
					for key := range r.URL.Query() {
						_, out := runtime.MarshalerForRequest(mux, r)
						err := &inputError{field: key, desc: "unknown query parameter", query: true}
						runtime.HTTPError(r.Context(), mux, out, w, r, err.status())
						return
					}
				}
			}
			next(w, r, params)
		}
	}
}
