package mailboxes

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
)

func TestCheckAddress(t *testing.T) {
	type out struct {
		LocalPart string
		Aliases   []string
		Redirects []string
		// Field is the request field an error names; empty: no error.
		Field string
	}
	many := func(n int, f func(i int) string) []string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return s
	}
	tests := []struct {
		name  string
		kind  string
		local string
		alias []string
		dests []string
		want  out
	}{
		{"mailbox", "mailbox", " Anna.Smith ", nil, nil, out{LocalPart: "Anna.Smith"}},
		{"aliases folded and once each", "mailbox", "anna", []string{"ASmith", "asmith", "a.s"}, nil,
			out{LocalPart: "anna", Aliases: []string{"asmith", "a.s"}}},
		{"no local part", "mailbox", "", nil, nil, out{Field: "address.localPart"}},
		{"two dots", "mailbox", "a..b", nil, nil, out{Field: "address.localPart"}},
		{"the mail system's own", "mailbox", "Mailer-Daemon", nil, nil, out{Field: "address.localPart"}},
		{"postmaster must receive", "no_reply", "postmaster", nil, nil, out{Field: "address.kind"}},
		{"postmaster as a mailbox", "mailbox", "postmaster", nil, nil, out{LocalPart: "postmaster"}},
		{"alias of itself", "mailbox", "Anna", []string{"bob", "anna"}, nil, out{Field: "address.aliases"}},
		{"bad alias", "mailbox", "anna", []string{"bob", "b@b"}, nil, out{Field: "address.aliases[1]"}},
		{"forbidden alias", "mailbox", "anna", []string{"mailer-daemon"}, nil, out{Field: "address.aliases[0]"}},
		{"too many aliases", "mailbox", "anna", many(maxAliases+1, func(i int) string { return "a" + strings.Repeat("x", i) }), nil,
			out{Field: "address.aliases"}},
		{"mailbox with destinations", "mailbox", "anna", nil, []string{"x@example.com"}, out{Field: "address.redirectDestinations"}},
		{"redirect", "redirect", "sales", nil, []string{" Anna@Example.COM "},
			out{LocalPart: "sales", Redirects: []string{"anna@example.com"}}},
		{"redirect without destinations", "redirect", "sales", nil, nil, out{Field: "address.redirectDestinations"}},
		{"bad destination", "redirect", "sales", nil, []string{"a@example.com", "not an address"}, out{Field: "address.redirectDestinations[1]"}},
		{"too many destinations", "redirect", "sales", nil, many(maxRedirects+1, func(int) string { return "a@example.com" }),
			out{Field: "address.redirectDestinations"}},
		{"catch-all ignores its local part", "catch_all", "whatever", nil, []string{"a@example.com"},
			out{LocalPart: "*", Redirects: []string{"a@example.com"}}},
		{"catch-all without destinations", "catch_all", "", nil, nil, out{Field: "address.redirectDestinations"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &mailboxesv1.Address{LocalPart: tt.local, Aliases: tt.alias, RedirectDestinations: tt.dests}
			var got out
			var err error
			got.LocalPart, got.Aliases, got.Redirects, err = checkAddress(in, tt.kind)
			if err != nil {
				var e *errs.Error
				if !errors.As(err, &e) || e.Kind != errs.InvalidArgument || len(e.Fields) != 1 {
					t.Fatalf("checkAddress: %v, want one InvalidArgument field", err)
				}
				got = out{Field: e.Fields[0].Field}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("checkAddress (-want +got):\n%s", diff)
			}
		})
	}
}
