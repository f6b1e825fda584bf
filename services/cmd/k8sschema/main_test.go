package main

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

// doc is a cut-down swagger.json: a grouped kind, a core kind, a kind
// defined twice, and the shared types the strict rewrite changes.
const doc = `{"definitions": {
  "io.k8s.api.networking.v1.NetworkPolicy": {
    "description": "drop me",
    "type": "object",
    "properties": {
      "kind": {"type": "string"},
      "spec": {"$ref": "#/definitions/io.k8s.api.networking.v1.NetworkPolicySpec"}
    },
    "x-kubernetes-group-version-kind": [{"group": "networking.k8s.io", "kind": "NetworkPolicy", "version": "v1"}]
  },
  "io.k8s.api.networking.v1.NetworkPolicySpec": {
    "type": "object",
    "properties": {
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "description": {"type": "string", "description": "a field named description"}
    }
  },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
  "io.k8s.api.core.v1.ResourceList": {
    "type": "object",
    "properties": {"cpu": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"}},
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "ResourceList", "version": "v1"}]
  },
  "io.k8s.api.core.v1.Old": {
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]
  },
  "io.k8s.api.core.v1.Pod": {
    "type": "object",
    "properties": {"kind": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]
  }
}}`

func TestConvert(t *testing.T) {
	files, err := convert([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	// kubeconform's {{ .ResourceKind }}{{ .KindSuffix }}.json.
	want := []string{"networkpolicy-networking-v1.json", "pod-v1.json", "resourcelist-v1.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}

	var np map[string]any
	if err := json.Unmarshal(files["networkpolicy-networking-v1.json"], &np); err != nil {
		t.Fatal(err)
	}
	if _, ok := np["description"]; ok {
		t.Error("descriptions kept")
	}
	if np["additionalProperties"] != false {
		t.Errorf("root allows unknown fields: additionalProperties %v", np["additionalProperties"])
	}
	defs := np["definitions"].(map[string]any)
	var got []string
	for n := range defs {
		got = append(got, n)
	}
	slices.Sort(got)
	// Only what the kind reaches, so each file stands alone.
	wantDefs := []string{"io.k8s.api.networking.v1.NetworkPolicySpec", "io.k8s.apimachinery.pkg.util.intstr.IntOrString"}
	if !slices.Equal(got, wantDefs) {
		t.Errorf("definitions %v, want %v", got, wantDefs)
	}
	spec := defs["io.k8s.api.networking.v1.NetworkPolicySpec"].(map[string]any)
	props := spec["properties"].(map[string]any)
	if _, ok := props["description"]; !ok {
		t.Error("the property named description was dropped with the descriptions")
	}
	if labels := props["labels"].(map[string]any); !reflect.DeepEqual(labels["additionalProperties"], map[string]any{"type": "string"}) {
		t.Errorf("a map's value schema was replaced: %v", labels)
	}
	ios := defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
	wantIOS := map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	if !reflect.DeepEqual(ios, wantIOS) {
		t.Errorf("IntOrString %v, want %v", ios, wantIOS)
	}

	var rl map[string]any
	if err := json.Unmarshal(files["resourcelist-v1.json"], &rl); err != nil {
		t.Fatal(err)
	}
	q := rl["definitions"].(map[string]any)["io.k8s.apimachinery.pkg.api.resource.Quantity"]
	wantQ := map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
	if !reflect.DeepEqual(q, wantQ) {
		t.Errorf("Quantity %v, want %v (cpu: 2 is valid YAML for the API server)", q, wantQ)
	}

	// Pod is defined twice: the first by name wins, every time.
	var pod map[string]any
	if err := json.Unmarshal(files["pod-v1.json"], &pod); err != nil {
		t.Fatal(err)
	}
	if _, ok := pod["properties"]; ok {
		t.Errorf("pod-v1.json from io.k8s.api.core.v1.Pod, want the first by name (io.k8s.api.core.v1.Old)")
	}
}

func TestConvertRefusesBrokenDocuments(t *testing.T) {
	for name, in := range map[string]string{
		"not JSON":          `{`,
		"no definitions":    `{"definitions": {}}`,
		"no kinds":          `{"definitions": {"a": {"type": "object"}}}`,
		"dangling $ref":     `{"definitions": {"a": {"properties": {"b": {"$ref": "#/definitions/missing"}}, "x-kubernetes-group-version-kind": [{"kind": "A", "version": "v1"}]}}}`,
		"reference outside": `{"definitions": {"a": {"properties": {"b": {"$ref": "other.json#/x"}}, "x-kubernetes-group-version-kind": [{"kind": "A", "version": "v1"}]}}}`,
	} {
		if _, err := convert([]byte(in)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
