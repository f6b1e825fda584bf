// Package apidocs serves the REST API's reference page: Swagger UI (the
// npm package swagger-ui-dist, its bundle and stylesheet; README.md gives
// the pinned version and how to update it) rendering /openapi.json, with
// every asset embedded so that the page works offline and under a strict
// Content-Security-Policy.
package apidocs

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"path"
	"strings"
)

// Version is the pinned version of the npm package swagger-ui-dist whose
// files are embedded.
const Version = "5.36.0"

// assets holds swagger-ui-dist's swagger-ui-bundle.js and swagger-ui.css,
// each gzip-compressed.
//
//go:embed assets/*.gz
var assets embed.FS

// page renders /openapi.json. The URLs of the assets carry the version,
// so that they may be cached for a year.
const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mailplane REST API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css?v=` + Version + `">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js?v=` + Version + `"></script>
<script src="/docs/init.js?v=` + Version + `"></script>
</body>
</html>
`

// initScript starts Swagger UI; a file of its own so that the CSP allows
// no inline script. validatorUrl null: the badge would send the document
// to validator.swagger.io.
const initScript = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
  showExtensions: true,
  showCommonExtensions: true,
  tryItOutEnabled: false,
  persistAuthorization: false
});
`

// csp allows the page its own scripts, styles and the API document, and
// nothing from elsewhere; Swagger UI sets some styles inline and draws its
// icons as data: URLs.
const csp = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Page serves the reference page at /docs.
func Page(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-cache")
	io.WriteString(w, page)
}

// Init serves the script that starts Swagger UI.
func Init(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	io.WriteString(w, initScript)
}

// Asset serves one of the embedded files by its name ("swagger-ui-bundle.js"),
// gzip-encoded as embedded to clients that take it (every browser),
// decompressed for the others; false when there is no such file.
func Asset(w http.ResponseWriter, r *http.Request, name string) bool {
	gz, err := assets.ReadFile("assets/" + name + ".gz")
	if err != nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(name)])
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		w.Write(gz)
		return true
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		http.Error(w, "the asset is damaged", http.StatusInternalServerError)
		return true
	}
	io.Copy(w, zr)
	return true
}

// Names are the embedded files' names, for routing.
func Names() []string {
	entries, _ := assets.ReadDir("assets")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".gz"))
	}
	return names
}

// acceptsGzip reports whether an Accept-Encoding value takes gzip (and
// does not refuse it with q=0).
func acceptsGzip(ae string) bool {
	for part := range strings.SplitSeq(ae, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.TrimSpace(name) != "*" {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return !strings.HasPrefix(q, "q=0") || strings.Trim(strings.TrimPrefix(q, "q=0"), ".0") != ""
	}
	return false
}
