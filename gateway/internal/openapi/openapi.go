// Package openapi holds the REST API's OpenAPI v2 document: what `make
// generate` makes from the .proto files and gateway/http.yaml
// (mailplane.swagger.json), plus the routes the gateway writes by hand
// because they answer or take something else than JSON (routes.json: the
// CSV template and upload, the DPA's PDF).
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
)

//go:embed mailplane.swagger.json
var generated []byte

//go:embed routes.json
var handWritten []byte

// Document returns the OpenAPI v2 (Swagger) document as JSON.
func Document() string { return document() }

var document = sync.OnceValue(func() string {
	doc, err := merge(generated, handWritten)
	if err != nil {
		panic(err) // both are embedded: a test catches this before a build ships
	}
	return doc
})

// merge adds the paths of extra to those of doc.
func merge(doc, extra []byte) (string, error) {
	var d map[string]json.RawMessage
	if err := json.Unmarshal(doc, &d); err != nil {
		return "", fmt.Errorf("openapi: generated document: %w", err)
	}
	var paths map[string]json.RawMessage
	if err := json.Unmarshal(d["paths"], &paths); err != nil {
		return "", fmt.Errorf("openapi: generated paths: %w", err)
	}
	var e struct{ Paths map[string]json.RawMessage }
	if err := json.Unmarshal(extra, &e); err != nil {
		return "", fmt.Errorf("openapi: routes.json: %w", err)
	}
	for p, ops := range e.Paths {
		if _, ok := paths[p]; ok {
			return "", fmt.Errorf("openapi: routes.json: %s is generated already", p)
		}
		paths[p] = ops
	}
	var err error
	if d["paths"], err = json.Marshal(paths); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	return string(out), err
}
