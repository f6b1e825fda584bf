package apidocs

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAsset: a browser gets the embedded gzip as it is; a client that
// takes no gzip gets the same file decompressed; an unknown name is not
// served.
func TestAsset(t *testing.T) {
	names := Names()
	if len(names) != 2 {
		t.Fatalf("assets %v, want the bundle and the stylesheet", names)
	}
	for _, name := range names {
		r := httptest.NewRequest("GET", "/docs/"+name, nil)
		r.Header.Set("Accept-Encoding", "gzip, deflate, br")
		w := httptest.NewRecorder()
		if !Asset(w, r, name) || w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: %v, want gzip", name, w.Header())
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		unzipped, _ := io.ReadAll(zr)

		r = httptest.NewRequest("GET", "/docs/"+name, nil)
		r.Header.Set("Accept-Encoding", "gzip;q=0, identity")
		w = httptest.NewRecorder()
		Asset(w, r, name)
		if w.Header().Get("Content-Encoding") != "" || !bytes.Equal(w.Body.Bytes(), unzipped) || len(unzipped) < 10000 {
			t.Errorf("%s without gzip: %v, %d bytes, want the same %d", name, w.Header(), w.Body.Len(), len(unzipped))
		}
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/") {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
	if Asset(httptest.NewRecorder(), httptest.NewRequest("GET", "/docs/x", nil), "../apidocs.go") {
		t.Error("a name outside the assets is served")
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"":                  false,
		"gzip":              true,
		"GZIP;q=0.5":        true,
		"br, gzip;q=0":      false,
		"gzip;q=0.000":      false,
		"gzip;q=0.1":        true,
		"*":                 true,
		"deflate, identity": false,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", ae, got, want)
		}
	}
}
