package gateway

import (
	_ "embed"
	"fmt"
	"net/http"
	"regexp"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// httpRules is the REST routes' configuration, which grpc-gateway's
// generator read: the edge reads it too, for what the generated handlers
// do not say at run time.
//
//go:embed http.yaml
var httpRules []byte

// queryFreeRoutes returns the routes whose generated handlers never read
// the query, keyed "METHOD pattern" in grpc-gateway's Pattern.String form,
// with the RPC's full name as the value. grpc-gateway's generator parses
// the query only for a request field that neither a path variable nor the
// body binds (its Binding.HasQueryParam); on every other route an unknown
// parameter would be ignored where elsewhere it is refused.
func queryFreeRoutes() (map[string]string, error) {
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
	routes := make(map[string]string)
	for _, r := range svc.HTTP.Rules {
		for method, path := range map[string]string{http.MethodGet: r.Get, http.MethodPost: r.Post, http.MethodPut: r.Put, http.MethodPatch: r.Patch, http.MethodDelete: r.Delete} {
			if path == "" {
				continue
			}
			free, err := queryFree(r.Selector, path, r.Body)
			if err != nil {
				return nil, fmt.Errorf("http.yaml: %s: %w", r.Selector, err)
			}
			if free {
				routes[method+" "+barePathVar.ReplaceAllString(path, "{$1=*}")] = r.Selector
			}
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("http.yaml: no route without query parameters")
	}
	return routes, nil
}

// queryFree reports whether the path's variables and the body bind every
// top-level field of the RPC's request. A variable naming a nested field
// ("{address.name=...}") leaves the rest of its message to the query.
func queryFree(selector, path, body string) (bool, error) {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(selector))
	if err != nil {
		return false, err
	}
	m, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return false, fmt.Errorf("not an RPC")
	}
	if body == "*" {
		return true, nil
	}
	bound := map[string]bool{body: true}
	for _, v := range pathVar.FindAllStringSubmatch(path, -1) {
		bound[v[1]] = true
	}
	fields := m.Input().Fields()
	for i := range fields.Len() {
		if !bound[string(fields.Get(i).Name())] {
			return false, nil
		}
	}
	return true, nil
}

// pathVar is a path variable, with or without a pattern; its first group
// is the field path it binds.
var pathVar = regexp.MustCompile(`\{([a-z_.]+)(=[^}]*)?\}`)

// barePathVar is a path variable without a pattern ("{name}"), which
// Pattern.String writes as "{name=*}".
var barePathVar = regexp.MustCompile(`\{([a-z_.]+)\}`)

// checkQuery refuses a query parameter on a route that reads none (see
// queryFreeRoutes), naming it as the query parser names an unknown one on
// every other route.
func checkQuery(mux *runtime.ServeMux, routes map[string]string) runtime.Middleware {
	return func(next runtime.HandlerFunc) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
			if r.URL.RawQuery != "" {
				if p, ok := runtime.HTTPPattern(r.Context()); ok && routes[r.Method+" "+p.String()] != "" {
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
