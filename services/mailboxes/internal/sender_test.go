package mailboxes

import (
	"context"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/testing/protocmp"
)

// mismatch is the reason given when addr, in role, is not login's.
func mismatch(addr, role, login string) string {
	return `the address "` + addr + `" ` + role + ` is not "` + login + `" (the address you signed in with) nor one of its aliases`
}

func TestCheckSender(t *testing.T) {
	l := NewLookups(newLookupPool(t))
	tests := []struct {
		name                  string
		login, envelope, from string
		wantAllowed           bool
		wantReason            string
	}{
		{name: "own address", login: "sales@example.com", envelope: "sales@example.com", from: "sales@example.com", wantAllowed: true},
		{name: "case and aliases", login: "SALES@Example.com", envelope: "Contact@EXAMPLE.COM", from: "Info@example.com", wantAllowed: true},
		{name: "From with a display name", login: "sales@example.com", from: `"Sales, Example" <contact@example.com>`, wantAllowed: true},
		{name: "envelope in angle brackets", login: "sales@example.com", envelope: "<sales@example.com>", wantAllowed: true},
		{name: "extension", login: "sales@example.com", envelope: "sales+news@example.com", wantAllowed: true},
		{name: "null sender (bounce)", login: "sales@example.com", envelope: "<>", wantAllowed: true},
		{name: "nothing given", login: "sales@example.com", wantAllowed: true},
		{name: "no-reply sends", login: "noreply@example.com", envelope: "noreply@example.com", from: "donotreply@example.com", wantAllowed: true},
		{name: "IDN domain", login: "info@xn--bcher-kva.example", from: "info@bücher.example", wantAllowed: true},
		{
			name: "a domain not verified sends nothing", login: "sales@pending.example", envelope: "sales@pending.example",
			wantReason: `the address "sales@pending.example" you signed in with cannot send mail`,
		},
		{
			name: "another address of the domain", login: "sales@example.com", envelope: "boss@example.com",
			wantReason: mismatch("boss@example.com", "used as sender", "sales@example.com"),
		},
		{
			name: "another person's address in From", login: "sales@example.com", envelope: "sales@example.com", from: "Boss <boss@other.example>",
			wantReason: mismatch("boss@other.example", "in the From header", "sales@example.com"),
		},
		{
			name: "another mailbox", login: "anna.smith@example.com", envelope: "sales@example.com",
			wantReason: mismatch("sales@example.com", "used as sender", "anna.smith@example.com"),
		},
		{
			name: "an alias of another address", login: "anna.smith@example.com", from: "contact@example.com",
			wantReason: mismatch("contact@example.com", "in the From header", "anna.smith@example.com"),
		},
		{
			name: "a local part only the catch-all receives", login: "sales@example.com", envelope: "nobody@example.com",
			wantReason: mismatch("nobody@example.com", "used as sender", "sales@example.com"),
		},
		{
			name: "a reserved local part", login: "sales@example.com", envelope: "team@example.com",
			wantReason: mismatch("team@example.com", "used as sender", "sales@example.com"),
		},
		{
			name: "an exact address wins over the extension", login: "sales@example.com", envelope: "sales+eu@example.com",
			wantReason: mismatch("sales+eu@example.com", "used as sender", "sales@example.com"),
		},
		{
			name: "malformed sender", login: "sales@example.com", envelope: "sales@example.com@evil.example",
			wantReason: mismatch("sales@example.com@evil.example", "used as sender", "sales@example.com"),
		},
		{
			name: "null sender in From", login: "sales@example.com", from: "<>",
			wantReason: mismatch("<>", "in the From header", "sales@example.com"),
		},
		{
			name: "a redirect cannot send", login: "fwd@example.com", envelope: "fwd@example.com",
			wantReason: `the address "fwd@example.com" you signed in with cannot send mail`,
		},
		{
			name: "a deleted mail service cannot send", login: "old@gone.example", envelope: "OLD@gone.example",
			wantReason: `the address "old@gone.example" you signed in with cannot send mail`,
		},
		{
			name: "a login that is not an address", login: "sales", envelope: "sales@example.com",
			wantReason: `you signed in as "sales", which is not an email address`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, reason, err := l.CheckSender(context.Background(), tt.login, tt.envelope, tt.from)
			if err != nil {
				t.Fatalf("CheckSender: %v", err)
			}
			if allowed != tt.wantAllowed || reason != tt.wantReason {
				t.Errorf("CheckSender(%q, %q, %q) = %v, %q; want %v, %q", tt.login, tt.envelope, tt.from, allowed, reason, tt.wantAllowed, tt.wantReason)
			}
		})
	}
	if _, _, err := closedLookups(t).CheckSender(context.Background(), "sales@example.com", "sales@example.com", ""); err == nil {
		t.Error("CheckSender with the database down: no error")
	}
}

func TestServerCheckSender(t *testing.T) {
	s := NewServer(newLookupPool(t), nil, slog.New(slog.DiscardHandler))
	token := func(org string) context.Context {
		return auth.WithPrincipal(context.Background(), auth.Principal{TokenID: uuid.NewString(), OrganizationID: org, Role: "member"})
	}
	tests := []struct {
		name     string
		ctx      context.Context
		req      *mailboxesv1.CheckSenderRequest
		want     *mailboxesv1.CheckSenderResponse
		wantKind errs.Kind
	}{
		{
			name: "allowed",
			ctx:  token(lookupOrg),
			req:  &mailboxesv1.CheckSenderRequest{Login: "sales@example.com", EnvelopeSender: "sales@example.com", FromHeader: "Sales <contact@example.com>"},
			want: &mailboxesv1.CheckSenderResponse{Allowed: true},
		},
		{
			name: "refused, with the reason",
			ctx:  token(lookupOrg),
			req:  &mailboxesv1.CheckSenderRequest{Login: "sales@example.com", FromHeader: "boss@example.com"},
			want: &mailboxesv1.CheckSenderResponse{Reason: mismatch("boss@example.com", "in the From header", "sales@example.com")},
		},
		{
			name:     "another organization learns nothing",
			ctx:      token(lookupOtherOrg),
			req:      &mailboxesv1.CheckSenderRequest{Login: "sales@example.com", EnvelopeSender: "sales@example.com"},
			wantKind: errs.NotFound,
		},
		{
			name:     "unknown login",
			ctx:      token(lookupOrg),
			req:      &mailboxesv1.CheckSenderRequest{Login: "nobody@example.com", EnvelopeSender: "nobody@example.com"},
			wantKind: errs.NotFound,
		},
		{
			name:     "deleted mail service",
			ctx:      token(lookupOrg),
			req:      &mailboxesv1.CheckSenderRequest{Login: "old@gone.example", EnvelopeSender: "old@gone.example"},
			wantKind: errs.NotFound,
		},
		{
			name:     "malformed login",
			ctx:      token(lookupOrg),
			req:      &mailboxesv1.CheckSenderRequest{Login: "sales"},
			wantKind: errs.InvalidArgument,
		},
		{
			name:     "no caller",
			ctx:      context.Background(),
			req:      &mailboxesv1.CheckSenderRequest{Login: "sales@example.com"},
			wantKind: errs.Unauthenticated,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.CheckSender(tt.ctx, tt.req)
			if tt.wantKind != 0 {
				if k := errs.KindOf(err); k != tt.wantKind {
					t.Fatalf("CheckSender error = %v (kind %v), want kind %v", err, k, tt.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckSender: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("CheckSender (-want +got):\n%s", diff)
			}
		})
	}
}
