// Command k8sschema turns Kubernetes' OpenAPI v2 document (swagger.json, as
// shipped in the k8s.io/kubernetes module under api/openapi-spec) into the
// strict standalone JSON schemas kubeconform reads: one file per kind,
// <kind>[-<group>]-<version>.json, lower-cased, the group cut at its first
// dot (networking.k8s.io/v1 NetworkPolicy: networkpolicy-networking-v1.json).
//
// kubeconform's own schemas come from a GitHub repository this project's
// machines cannot reach; the same document is in the Go module proxy, so
// `make k8s-check` builds them here:
//
//	k8sschema -spec .../api/openapi-spec/swagger.json -out DIR
//	kubeconform -strict -schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json' ...
//
// Each file is the kind's definition with every definition it reaches
// copied under "definitions", so the document's own "#/definitions/..."
// references resolve inside the file. As in kubeconform's -strict schemas,
// an object with listed properties allows no others (a misspelt field
// fails), int-or-string fields take both, and quantities take numbers.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

func main() {
	spec := flag.String("spec", "", "Kubernetes swagger.json (OpenAPI v2)")
	out := flag.String("out", "", "directory the schemas are written to (created)")
	flag.Parse()
	if err := run(*spec, *out); err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
}

func run(spec, out string) error {
	if spec == "" || out == "" {
		return errors.New("-spec and -out are required")
	}
	b, err := os.ReadFile(spec)
	if err != nil {
		return err
	}
	files, err := convert(b)
	if err != nil {
		return fmt.Errorf("%s: %w", spec, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(out, name), body, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("k8sschema: %d schemas in %s\n", len(files), out)
	return nil
}

type gvk struct {
	Group, Version, Kind string
}

// fileName is where kubeconform's schema-location template
// {{ .ResourceKind }}{{ .KindSuffix }}.json looks for k.
func (k gvk) fileName() string {
	name := strings.ToLower(k.Kind)
	if k.Group != "" {
		name += "-" + strings.ToLower(strings.Split(k.Group, ".")[0])
	}
	return name + "-" + strings.ToLower(k.Version) + ".json"
}

// convert returns the schema files, by name, of every kind the document
// defines.
func convert(doc []byte) (map[string][]byte, error) {
	var sw struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(doc, &sw); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(sw.Definitions) == 0 {
		return nil, errors.New("no definitions")
	}
	defs := make(map[string]map[string]any, len(sw.Definitions))
	for name, d := range sw.Definitions {
		defs[name] = strict(d).(map[string]any)
	}
	// A quantity is a string that YAML writers often leave a bare number
	// (cpu: 2), which the API server takes.
	if q, ok := defs[quantity]; ok {
		delete(q, "type")
		q["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}
	}
	// In name order, so that a kind defined twice (the document keeps an
	// old definition for compatibility) always gets the same one.
	names := make([]string, 0, len(defs))
	for name := range defs {
		names = append(names, name)
	}
	slices.Sort(names)
	files := map[string][]byte{}
	for _, name := range names {
		for _, k := range kinds(sw.Definitions[name]) {
			fn := k.fileName()
			if _, dup := files[fn]; dup {
				continue
			}
			root := clone(defs[name])
			reached := map[string]any{}
			if err := reach(defs, root, reached); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if len(reached) > 0 {
				root["definitions"] = reached
			}
			body, err := json.Marshal(root)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			files[fn] = body
		}
	}
	if len(files) == 0 {
		return nil, errors.New("no definition has x-kubernetes-group-version-kind")
	}
	return files, nil
}

const quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"

// kinds are a definition's x-kubernetes-group-version-kind entries.
func kinds(d map[string]any) []gvk {
	list, _ := d["x-kubernetes-group-version-kind"].([]any)
	var out []gvk
	for _, e := range list {
		m, _ := e.(map[string]any)
		g, _ := m["group"].(string)
		v, _ := m["version"].(string)
		k, _ := m["kind"].(string)
		if v != "" && k != "" {
			out = append(out, gvk{g, v, k})
		}
	}
	return out
}

const refPrefix = "#/definitions/"

// reach copies into reached every definition v refers to, transitively.
func reach(defs map[string]map[string]any, v any, reached map[string]any) error {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name, found := strings.CutPrefix(ref, refPrefix)
			if !found {
				return fmt.Errorf("reference %q outside the document's definitions", ref)
			}
			if _, done := reached[name]; done {
				return nil
			}
			d, ok := defs[name]
			if !ok {
				return fmt.Errorf("reference to undefined %q", name)
			}
			reached[name] = d
			return reach(defs, d, reached)
		}
		for _, e := range v {
			if err := reach(defs, e, reached); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := reach(defs, e, reached); err != nil {
				return err
			}
		}
	}
	return nil
}

// strict rewrites one schema the way kubeconform's -strict schemas are
// made: no descriptions (size), closed objects, and int-or-string taking
// both.
func strict(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if k == "description" {
				continue
			}
			if k == "properties" {
				// Property names are data, not keywords: a property may be
				// called "description" or "format".
				props := map[string]any{}
				for p, s := range e.(map[string]any) {
					props[p] = strict(s)
				}
				out[k] = props
				continue
			}
			out[k] = strict(e)
		}
		if _, ok := out["properties"]; ok {
			if _, set := out["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		if out["format"] == "int-or-string" {
			delete(out, "type")
			delete(out, "format")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = strict(e)
		}
		return out
	}
	return v
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}
