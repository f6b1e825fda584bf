// Package openapi holds the REST API's OpenAPI v2 document: what `make
// generate` makes from the .proto files and gateway/http.yaml
// (mailplane.swagger.json), plus the routes the gateway writes by hand
// because they answer or take something else than JSON (routes.json: the
// CSV template and upload, the DPA's PDF, the lists' members CSV), and the
// request and response examples of the main routes (examples.json, each
// checked against its schema when the document is built).
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
)

//go:embed mailplane.swagger.json
var generated []byte

//go:embed routes.json
var handWritten []byte

//go:embed examples.json
var examples []byte

// Document returns the OpenAPI v2 (Swagger) document as JSON.
func Document() string { return document() }

var document = sync.OnceValue(func() string {
	doc, err := merge(generated, handWritten, examples)
	if err != nil {
		panic(err) // both are embedded: a test catches this before a build ships
	}
	return doc
})

// info replaces what the generator takes from the first .proto file it
// reads (its path as the title, "version not set").
var info = map[string]any{
	"title":   "Mailplane REST API",
	"version": "v1",
	"description": "The REST edge of Mailplane, the control plane of a mail hosting provider. " +
		"Requests and responses are JSON (field names in lowerCamelCase) unless a route says otherwise. " +
		"Sign in with POST /v1/auth:signIn and send the access token as \"Authorization: Bearer <token>\"; " +
		"machines send an API token the same way. An error answers a google.rpc.Status (rpcStatus) " +
		"whose code agrees with the HTTP status.",
}

// merge adds the paths of extra to those of the generated doc, after tidying
// what the generator leaves rough: its title, the path parameters it makes
// from resource names, the tags of services without a REST route, and the
// error schema it describes nowhere; then it adds the request and response
// examples of ex.
func merge(doc, extra, ex []byte) (string, error) {
	var d map[string]any
	if err := decode(doc, &d); err != nil {
		return "", fmt.Errorf("openapi: generated document: %w", err)
	}
	paths, ok := d["paths"].(map[string]any)
	if !ok {
		return "", fmt.Errorf("openapi: generated document has no paths")
	}
	paths = tidyPathParams(paths)
	var e struct{ Paths map[string]any }
	if err := decode(extra, &e); err != nil {
		return "", fmt.Errorf("openapi: routes.json: %w", err)
	}
	for p, ops := range tidyPathParams(e.Paths) {
		if _, ok := paths[p]; ok {
			return "", fmt.Errorf("openapi: routes.json: %s is generated already", p)
		}
		paths[p] = ops
	}
	d["paths"] = paths
	d["info"] = info
	d["tags"] = usedTags(d["tags"], paths)
	defs, _ := d["definitions"].(map[string]any)
	describeErrors(defs)
	if err := addExamples(paths, defs, ex); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	return string(out), err
}

// decode is json.Unmarshal keeping numbers as they were written.
func decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// singular corrects the generator's singulars. expand_slashed_path_patterns
// names the parameter of "addresses/*" by cutting one "s": {addresse}.
var singular = map[string]string{"addresse": "address"}

// tidyPathParams renames the path parameters the generator made up from
// resource-name patterns (see singular) and describes them, since the
// generator gives them no description.
func tidyPathParams(paths map[string]any) map[string]any {
	out := make(map[string]any, len(paths))
	for path, item := range paths {
		segs := strings.Split(path, "/")
		collection := make(map[string]string) // parameter -> the segment before it
		for i, s := range segs {
			name, rest, ok := pathParam(s)
			if !ok {
				continue
			}
			if fixed, ok := singular[name]; ok {
				name = fixed
				segs[i] = "{" + name + "}" + rest
			}
			if i > 0 {
				collection[name] = segs[i-1]
			}
		}
		ops, _ := item.(map[string]any)
		for _, op := range ops {
			op, _ := op.(map[string]any)
			params, _ := op["parameters"].([]any)
			for _, p := range params {
				p, _ := p.(map[string]any)
				if p["in"] != "path" {
					continue
				}
				name, _ := p["name"].(string)
				if fixed, ok := singular[name]; ok {
					name = fixed
					p["name"] = name
				}
				if c, ok := collection[name]; ok && p["description"] == nil {
					p["description"] = fmt.Sprintf("The %s's ID: the segment after %s/ in its resource name.", words(name), c)
				}
			}
		}
		out[strings.Join(segs, "/")] = item
	}
	return out
}

// pathParam splits a path segment "{name}:verb" into "name" and ":verb".
func pathParam(seg string) (name, rest string, ok bool) {
	if !strings.HasPrefix(seg, "{") {
		return "", "", false
	}
	name, rest, ok = strings.Cut(seg[1:], "}")
	return name, rest, ok
}

// words spells a lowerCamelCase name as words: "mailService" is "mail service".
func words(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsUpper(r) {
			b.WriteByte(' ')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// usedTags returns the tags some operation of paths has. The generator
// lists a tag for every service, including those only other services call
// over gRPC (ReservationService, SenderService), which would show in the
// REST documentation as empty sections.
func usedTags(tags any, paths map[string]any) []any {
	used := make(map[string]bool)
	for _, item := range paths {
		ops, _ := item.(map[string]any)
		for _, op := range ops {
			op, _ := op.(map[string]any)
			ts, _ := op["tags"].([]any)
			for _, t := range ts {
				if t, ok := t.(string); ok {
					used[t] = true
				}
			}
		}
	}
	all, _ := tags.([]any)
	var out []any
	for _, t := range all {
		t, _ := t.(map[string]any)
		if name, _ := t["name"].(string); used[name] {
			out = append(out, t)
		}
	}
	return out
}

// describeErrors describes the error body every route answers, which the
// generator writes without descriptions (it is google.rpc.Status, not one of
// ours).
func describeErrors(defs map[string]any) {
	describe := func(def, desc string, props map[string]string) {
		d, ok := defs[def].(map[string]any)
		if !ok {
			return
		}
		if d["description"] == nil {
			d["description"] = desc
		}
		ps, _ := d["properties"].(map[string]any)
		for name, desc := range props {
			if p, ok := ps[name].(map[string]any); ok && p["description"] == nil {
				p["description"] = desc
			}
		}
	}
	describe("rpcStatus", "An error: every route answers one with an HTTP status of 400 or above.", map[string]string{
		"code": "The gRPC status code (google.rpc.Code), which agrees with the HTTP status: " +
			"3 INVALID_ARGUMENT (400), 16 UNAUTHENTICATED (401), 7 PERMISSION_DENIED (403), 5 NOT_FOUND (404), " +
			"6 ALREADY_EXISTS and 10 ABORTED (409), 9 FAILED_PRECONDITION (400), 8 RESOURCE_EXHAUSTED (429), " +
			"14 UNAVAILABLE (503), 13 INTERNAL (500).",
		"message": "What went wrong, in English, for the developer; show your own words to users, " +
			"chosen by code and details.",
		"details": "Machine-readable details: google.rpc.BadRequest names each invalid field (fieldViolations), " +
			"google.rpc.ErrorInfo carries a reason to branch on, google.rpc.RetryInfo says when to try again.",
	})
	describe("protobufAny", "One detail of an error, of the type @type names.", map[string]string{
		"@type": "The detail's type, such as \"type.googleapis.com/google.rpc.BadRequest\"; " +
			"the other properties are that message's fields in JSON.",
	})
}

// addExamples sets the examples of ex ({"post /v1/...": {"request": ...,
// "response": ...}}) on their operations: the request as the body
// schema's example, the response as the 200 response's. Each must
// conform to its schema (known fields, enum values), so that an example
// does not outlive a change of the API.
func addExamples(paths, defs map[string]any, ex []byte) error {
	var all map[string]struct{ Request, Response any }
	if err := decode(ex, &all); err != nil {
		return fmt.Errorf("openapi: examples.json: %w", err)
	}
	for key, e := range all {
		method, path, _ := strings.Cut(key, " ")
		op, ok := dig(paths, path, method)
		if !ok {
			return fmt.Errorf("openapi: examples.json: no operation %s", key)
		}
		if e.Request != nil {
			params, _ := op["parameters"].([]any)
			var body map[string]any
			for _, p := range params {
				if p, ok := p.(map[string]any); ok && p["in"] == "body" {
					body = p
				}
			}
			if body == nil {
				return fmt.Errorf("openapi: examples.json: %s takes no body", key)
			}
			schema, _ := body["schema"].(map[string]any)
			if err := conforms(defs, schema, e.Request, "request"); err != nil {
				return fmt.Errorf("openapi: examples.json: %s: %w", key, err)
			}
			// A $ref's siblings are ignored (OpenAPI v2): wrap it.
			body["schema"] = map[string]any{"allOf": []any{schema}, "example": e.Request}
		}
		if e.Response != nil {
			ok, _ := dig(op, "responses", "200")
			if ok == nil {
				return fmt.Errorf("openapi: examples.json: %s has no 200 response", key)
			}
			schema, _ := ok["schema"].(map[string]any)
			if err := conforms(defs, schema, e.Response, "response"); err != nil {
				return fmt.Errorf("openapi: examples.json: %s: %w", key, err)
			}
			ok["examples"] = map[string]any{"application/json": e.Response}
		}
	}
	return nil
}

// dig follows keys through nested objects.
func dig(m map[string]any, keys ...string) (map[string]any, bool) {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = next
	}
	return m, true
}

// conforms reports the first place where v does not fit schema: a field
// the schema does not have, a value of another JSON type, or a string
// outside an enum.
func conforms(defs map[string]any, schema map[string]any, v any, at string) error {
	for {
		ref, ok := schema["$ref"].(string)
		if !ok {
			break
		}
		schema, _ = defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any)
		if schema == nil {
			return fmt.Errorf("%s: no definition %s", at, ref)
		}
	}
	if all, ok := schema["allOf"].([]any); ok && len(all) == 1 {
		sub, _ := all[0].(map[string]any)
		return conforms(defs, sub, v, at)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		extra, _ := schema["additionalProperties"].(map[string]any)
		if props == nil && extra == nil && schema["type"] != "object" {
			return fmt.Errorf("%s: an object where the schema has %v", at, schema["type"])
		}
		for k, fv := range v {
			sub, ok := props[k].(map[string]any)
			if !ok {
				if extra == nil {
					return fmt.Errorf("%s.%s: no such field", at, k)
				}
				sub = extra
			}
			if err := conforms(defs, sub, fv, at+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if schema["type"] != "array" {
			return fmt.Errorf("%s: an array where the schema has %v", at, schema["type"])
		}
		items, _ := schema["items"].(map[string]any)
		for i, iv := range v {
			if err := conforms(defs, items, iv, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case string:
		if schema["type"] != "string" {
			return fmt.Errorf("%s: a string where the schema has %v", at, schema["type"])
		}
		if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, any(v)) {
			return fmt.Errorf("%s: %q is not one of %v", at, v, enum)
		}
	case json.Number:
		if t := schema["type"]; t != "integer" && t != "number" {
			return fmt.Errorf("%s: a number where the schema has %v (64-bit integers are strings)", at, t)
		}
	case bool:
		if schema["type"] != "boolean" {
			return fmt.Errorf("%s: a boolean where the schema has %v", at, schema["type"])
		}
	}
	return nil
}
