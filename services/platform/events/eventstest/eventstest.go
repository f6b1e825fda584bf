// Package eventstest checks a service's <svc>events package in its tests.
package eventstest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"
)

// CheckSubjects fails t unless the Subjects function of the Go file lists
// every exported constant the file declares, once, and nothing else: a subject
// left out of Subjects would be missing from the catalog, and its consumers
// would not start. Constants holding wildcards ("*.audit.recorded") are
// filters, not subjects, and are not listed.
func CheckSubjects(t testing.TB, file string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var consts, listed []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.GenDecl:
			if d.Tok != token.CONST {
				continue
			}
			for _, s := range d.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if lit, ok := valueAt(vs, i).(*ast.BasicLit); !n.IsExported() || ok && strings.ContainsAny(lit.Value, "*>") {
						continue
					}
					consts = append(consts, n.Name)
				}
			}
		case *ast.FuncDecl:
			if d.Name.Name != "Subjects" || d.Body == nil {
				continue
			}
			ast.Inspect(d.Body, func(n ast.Node) bool {
				if lit, ok := n.(*ast.CompositeLit); ok {
					for _, e := range lit.Elts {
						if id, ok := e.(*ast.Ident); ok {
							listed = append(listed, id.Name)
						}
					}
				}
				return true
			})
		}
	}
	if len(consts) == 0 {
		t.Fatalf("%s declares no subject", file)
	}
	for _, c := range consts {
		if !slices.Contains(listed, c) {
			t.Errorf("%s: Subjects does not list %s", file, c)
		}
	}
	for i, l := range listed {
		switch {
		case !slices.Contains(consts, l):
			t.Errorf("%s: Subjects lists %s, not a subject constant of the file", file, l)
		case slices.Contains(listed[:i], l):
			t.Errorf("%s: Subjects lists %s twice", file, l)
		}
	}
}

// valueAt is the expression giving the i-th name of vs its value, or nil.
func valueAt(vs *ast.ValueSpec, i int) ast.Expr {
	if i < len(vs.Values) {
		return vs.Values[i]
	}
	return nil
}
