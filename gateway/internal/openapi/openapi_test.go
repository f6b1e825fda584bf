package openapi

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// doc is the part of an OpenAPI v2 document these tests read.
type doc struct {
	Paths       map[string]map[string]operation
	Definitions map[string]schema
	Tags        []struct{ Name, Description string }
}

type operation struct {
	OperationID string
	Summary     string
	Description string
	Tags        []string
	Parameters  []struct {
		Name, In, Description string
		Schema                *schema
	}
}

type schema struct {
	Ref         string `json:"$ref"`
	Description string
	Properties  map[string]schema
	Items       *schema
}

func served(t *testing.T) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal([]byte(Document()), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDocument: the served document holds the generated routes and the
// hand-written ones, and every definition a path refers to exists.
func TestDocument(t *testing.T) {
	d := served(t)
	for path, method := range map[string]string{
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses":                   "post",
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses:template":          "get",
		"/v1/organizations/{organization}/mailServices/{mailService}/addresses:bulkCreate":        "post",
		"/v1/organizations/{organization}/dataProcessingAgreement":                                "get",
		"/v1/organizations/{organization}/mailServices/{mailService}/lists/{list}/members:export": "get",
	} {
		if _, ok := d.Paths[path][method]; !ok {
			t.Errorf("%s %s is missing", strings.ToUpper(method), path)
		}
	}
	doc := Document()
	for _, ref := range strings.Split(doc, `"$ref": "#/definitions/`)[1:] {
		name := ref[:strings.IndexByte(ref, '"')]
		if _, ok := d.Definitions[name]; !ok {
			t.Errorf("$ref to a missing definition %s", name)
		}
	}
	if !strings.Contains(doc, `"title": "Mailplane REST API"`) {
		t.Error("the document's title is not Mailplane's")
	}
}

// TestPathsAreExpanded: every route reads as it is called, each path
// parameter one segment of a resource name, and one path holds the
// operations of one service (the generator's default, /v1/{name}, put
// GetMailService and DeleteApiToken under one key).
func TestPathsAreExpanded(t *testing.T) {
	d := served(t)
	param := regexp.MustCompile(`\{[^}]*\}`)
	// A parameter is a lowerCamelCase word after the collection it names.
	segment := regexp.MustCompile(`^[a-z][A-Za-z]*$`)
	for path, ops := range d.Paths {
		segs := strings.Split(path, "/")
		for i, s := range segs {
			p := param.FindString(s)
			if p == "" {
				continue
			}
			name := p[1 : len(p)-1]
			if !segment.MatchString(name) || i == 0 || !strings.HasPrefix(segs[i-1], name) {
				t.Errorf("%s: parameter %s does not name the collection before it", path, p)
			}
		}
		for _, bad := range []string{"{name", "{parent", "{addresse}"} {
			if strings.Contains(path, bad) {
				t.Errorf("%s: collapsed or misspelled parameter %s", path, bad)
			}
		}
		var tag string
		for method, op := range ops {
			if len(op.Tags) != 1 {
				t.Errorf("%s %s: tags %v, want one (its service)", method, path, op.Tags)
				continue
			}
			if tag == "" {
				tag = op.Tags[0]
			} else if op.Tags[0] != tag {
				t.Errorf("%s mixes the operations of %s and %s", path, tag, op.Tags[0])
			}
		}
	}

	addr := d.Paths["/v1/organizations/{organization}/mailServices/{mailService}/addresses/{address}"]
	for method, id := range map[string]string{
		"get":    "AddressService_GetAddress",
		"patch":  "AddressService_UpdateAddress",
		"delete": "AddressService_DeleteAddress",
	} {
		if got := addr[method].OperationID; got != id {
			t.Errorf("%s on an address: operation %q, want %q", method, got, id)
		}
	}
}

// TestOperations: every operation has a unique id, Service_Method, and its
// service's tag, which the document describes.
func TestOperations(t *testing.T) {
	d := served(t)
	described := make(map[string]bool)
	for _, tag := range d.Tags {
		described[tag.Name] = tag.Description != ""
	}
	used := make(map[string]bool)
	ids := make(map[string]string)
	for path, ops := range d.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			if prev, ok := ids[op.OperationID]; ok {
				t.Errorf("%s and %s share the operation id %q", prev, where, op.OperationID)
			}
			ids[op.OperationID] = where
			svc, _, ok := strings.Cut(op.OperationID, "_")
			if !ok || len(op.Tags) != 1 || op.Tags[0] != svc {
				t.Errorf("%s: operation %q tagged %v, want Service_Method tagged Service", where, op.OperationID, op.Tags)
			}
			for _, tag := range op.Tags {
				used[tag] = true
				if !described[tag] {
					t.Errorf("%s: tag %s is not described among the document's tags", where, tag)
				}
			}
		}
	}
	for _, tag := range d.Tags {
		if !used[tag.Name] {
			t.Errorf("tag %s has no operation: a service without REST routes shows as an empty section", tag.Name)
		}
	}
}

// TestEverythingIsDescribed: a frontend developer reads the document, not
// the .proto files, so every operation, parameter a caller sets, definition
// and property says what it is. A comment on the rpc, field or message in
// the .proto file becomes its description.
func TestEverythingIsDescribed(t *testing.T) {
	d := served(t)
	for path, ops := range d.Paths {
		for method, op := range ops {
			where := strings.ToUpper(method) + " " + path
			if op.Summary == "" && op.Description == "" {
				t.Errorf("%s (%s) has no description: comment the rpc", where, op.OperationID)
			}
			for _, p := range op.Parameters {
				switch {
				case p.In == "body" && p.Schema != nil:
					checkProperties(t, where+" body", *p.Schema)
				case p.Description == "":
					t.Errorf("%s: %s parameter %s has no description: comment the field", where, p.In, p.Name)
				}
			}
		}
	}
	for name, s := range d.Definitions {
		if s.Description == "" {
			t.Errorf("definition %s has no description: comment the message or enum", name)
		}
		checkProperties(t, name, s)
	}
}

// checkProperties reports the properties of s, and of the objects inlined in
// it, that have no description.
func checkProperties(t *testing.T, where string, s schema) {
	t.Helper()
	for name, p := range s.Properties {
		if p.Description == "" {
			t.Errorf("%s.%s has no description: comment the field", where, name)
		}
		checkProperties(t, where+"."+name, p)
		if p.Items != nil {
			checkProperties(t, where+"."+name+"[]", *p.Items)
		}
	}
}

func TestMergeRefusesAGeneratedPath(t *testing.T) {
	_, err := merge([]byte(`{"paths": {"/v1/x": {}}}`), []byte(`{"paths": {"/v1/x": {}}}`), []byte(`{}`))
	if err == nil {
		t.Fatal("a hand-written route over a generated one was accepted")
	}
}

func TestTidyPathParams(t *testing.T) {
	in := `{"/v1/mailServices/{mailService}/addresses/{addresse}:verb": {"get": {"parameters": [
		{"name": "mailService", "in": "path"},
		{"name": "addresse", "in": "path"},
		{"name": "pageSize", "in": "query"}]}}}`
	var paths map[string]any
	if err := decode([]byte(in), &paths); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(tidyPathParams(paths))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"/v1/mailServices/{mailService}/addresses/{address}:verb":{"get":{"parameters":[` +
		`{"description":"The mail service's ID: the segment after mailServices/ in its resource name.","in":"path","name":"mailService"},` +
		`{"description":"The address's ID: the segment after addresses/ in its resource name.","in":"path","name":"address"},` +
		`{"in":"query","name":"pageSize"}]}}}`
	if string(out) != want {
		t.Errorf("tidyPathParams =\n%s\nwant\n%s", out, want)
	}
}

// TestExamples: the main routes carry a request and a response example,
// and an example that does not fit its schema (a field the API does not
// have, a value outside an enum) stops the document from being built.
func TestExamples(t *testing.T) {
	var d struct {
		Paths map[string]map[string]struct {
			Parameters []struct {
				In     string
				Schema struct{ Example any }
			}
			Responses map[string]struct{ Examples map[string]any }
		}
	}
	if err := json.Unmarshal([]byte(Document()), &d); err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{
		"post /v1/auth:signIn",
		"post /v1/organizations/{organization}/mailServices/{mailService}/addresses",
		"post /v1/organizations/{organization}/mailServices/{mailService}/addresses/{address}/rules",
		"post /v1/organizations/{organization}/mailServices/{mailService}/lists",
	} {
		method, path, _ := strings.Cut(route, " ")
		op := d.Paths[path][method]
		body := false
		for _, p := range op.Parameters {
			body = body || (p.In == "body" && p.Schema.Example != nil)
		}
		if !body || op.Responses["200"].Examples["application/json"] == nil {
			t.Errorf("%s has no request or response example", route)
		}
	}

	for name, ex := range map[string]string{
		"unknown field": `{"post /v1/auth:signIn": {"request": {"email": "a@b.example", "passwd": "x"}}}`,
		"bad enum":      `{"post /v1/organizations/{organization}/mailServices/{mailService}/addresses/{address}/rules": {"request": {"match": "MATCH_SOME"}}}`,
		"int64 number":  `{"post /v1/organizations/{organization}/mailServices/{mailService}/addresses": {"request": {"address": {"quotaBytes": 5}}}}`,
		"no route":      `{"post /v1/nowhere": {"request": {}}}`,
	} {
		if _, err := merge(generated, handWritten, []byte(ex)); err == nil {
			t.Errorf("%s: the example is taken", name)
		}
	}
}

// TestEnums: every enum lists its values and describes each one (the
// .proto comments), so that a frontend needs nothing but the reference.
func TestEnums(t *testing.T) {
	var d struct {
		Definitions map[string]struct {
			Enum        []string
			Description string
		}
	}
	if err := json.Unmarshal([]byte(Document()), &d); err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, def := range d.Definitions {
		for _, v := range def.Enum {
			n++
			if !strings.Contains(def.Description, " - "+v+": ") {
				t.Errorf("%s: the value %s is not described", name, v)
			}
		}
	}
	if n < 100 {
		t.Errorf("%d enum values, want every enum's", n)
	}
}
