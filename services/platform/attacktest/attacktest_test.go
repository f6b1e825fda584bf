package attacktest

import (
	"slices"
	"testing"

	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestPaths: string fields are found at depth (lists' first elements
// included, well-known types left out), set where they are, and named as
// errors name them.
func TestPaths(t *testing.T) {
	md := (&filtersv1.CreateRuleRequest{}).ProtoReflect().Descriptor()
	got := StringFields(md)
	for _, want := range []string{"parent", "rule.name", "rule.display_name", "rule.conditions[0].value", "rule.actions[0].folder"} {
		if !slices.Contains(got, want) {
			t.Errorf("StringFields: no %s in %v", want, got)
		}
	}
	req := &filtersv1.CreateRuleRequest{}
	SetPath(req.ProtoReflect(), "rule.conditions[0].value", "v")
	SetPath(req.ProtoReflect(), "rule.display_name", "n")
	if req.GetRule().GetConditions()[0].GetValue() != "v" || req.GetRule().GetDisplayName() != "n" {
		t.Errorf("SetPath: %v", req)
	}
	r := &filtersv1.ReorderRulesRequest{Rules: []string{"a", "b"}}
	SetPath(r.ProtoReflect(), "rules[0]", "x")
	if !slices.Equal(r.GetRules(), []string{"x"}) {
		t.Errorf("SetPath on a list: %v", r.GetRules())
	}
	if got := JSONPath(md, "rule.conditions[0].size_bytes"); got != "rule.conditions[0].sizeBytes" {
		t.Errorf("JSONPath: %s", got)
	}
	imp := (&filtersv1.ImportSendersRequest{}).ProtoReflect().Descriptor()
	if !Multiline(imp, "csv") || Multiline(md, "rule.display_name") {
		t.Error("Multiline: csv is annotated multiline, a rule's name is not")
	}
}

// TestRequest: a request names its target in name, parent or its
// resource's name, then is made valid; an unknown method is an error.
func TestRequest(t *testing.T) {
	s := &Suite{
		Files:   nil,
		Targets: map[string]string{},
		Valid: func(m proto.Message) {
			if r, ok := m.(*listsv1.UpdateListRequest); ok {
				r.List.Description = "d"
			}
		},
	}
	svc := listsv1.File_mailplane_lists_v1_lists_proto.Services().ByName("ListService")
	m := Method{Desc: svc.Methods().ByName("UpdateList"), Target: "organizations/o/mailServices/m/lists/l"}
	req := s.Request(t, m, m.Target).(*listsv1.UpdateListRequest)
	if req.GetList().GetName() != m.Target || req.GetList().GetDescription() != "d" {
		t.Errorf("UpdateList's request: %v", req)
	}
	m = Method{Desc: svc.Methods().ByName("GetList"), Target: "x"}
	if got := s.Request(t, m, "x").(*listsv1.GetListRequest).GetName(); got != "x" {
		t.Errorf("GetList's name: %q", got)
	}
	s.Files = []protoreflect.FileDescriptor{listsv1.File_mailplane_lists_v1_lists_proto}
	ft := &fakeT{}
	s.Methods(ft)
	if ft.errors == 0 {
		t.Error("a method without a row in Targets passed")
	}
}

// fakeT counts the errors of a Suite's checks.
type fakeT struct {
	testing.TB
	errors int
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Errorf(string, ...any) { f.errors++ }
func (f *fakeT) Fatal(...any)          { f.errors++ }
func (f *fakeT) Fatalf(string, ...any) { f.errors++ }
