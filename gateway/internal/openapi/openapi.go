// Package openapi holds the REST API's OpenAPI v2 document, generated from
// the .proto files and gateway/http.yaml by `make generate`.
package openapi

import _ "embed"

//go:embed mailplane.swagger.json
var document string

// Document returns the OpenAPI v2 (Swagger) document as JSON.
func Document() string { return document }
