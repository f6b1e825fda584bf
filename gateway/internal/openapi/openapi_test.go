package openapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDocument: the served document holds the generated routes and the
// hand-written ones, and every definition a path refers to exists.
func TestDocument(t *testing.T) {
	var d struct {
		Paths       map[string]map[string]json.RawMessage
		Definitions map[string]json.RawMessage
	}
	doc := Document()
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	for path, method := range map[string]string{
		"/v1/{parent}/addresses": "post",
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses:template":   "get",
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses:bulkCreate": "post",
		"/v1/organizations/{organization}/dataProcessingAgreement":                         "get",
	} {
		if _, ok := d.Paths[path][method]; !ok {
			t.Errorf("%s %s is missing", strings.ToUpper(method), path)
		}
	}
	for _, ref := range strings.Split(doc, `"$ref": "#/definitions/`)[1:] {
		name := ref[:strings.IndexByte(ref, '"')]
		if _, ok := d.Definitions[name]; !ok {
			t.Errorf("$ref to a missing definition %s", name)
		}
	}
}

func TestMergeRefusesAGeneratedPath(t *testing.T) {
	_, err := merge([]byte(`{"paths": {"/v1/x": {}}}`), []byte(`{"paths": {"/v1/x": {}}}`))
	if err == nil {
		t.Fatal("a hand-written route over a generated one was accepted")
	}
}
