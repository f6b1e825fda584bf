package mailboxes

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
)

func TestCheckTemplate(t *testing.T) {
	for _, tt := range []struct {
		name, template string
		ok             bool
	}{
		{"plain text", "Best regards,\nThe team", true},
		{"every placeholder", "{{name}}\n{{email}}\n{{organization}}", true},
		{"spaces inside the braces", "{{ name }} <{{email }}>", true},
		{"a placeholder twice", "{{name}} {{name}}", true},
		{"single braces", "{name} and } and {", true},
		{"closing braces alone", "}} is fine", true},
		{"10000 characters", strings.Repeat("é", 10000), true},
		{"blank", " \n\t", false},
		{"10001 characters", strings.Repeat("é", 10001), false},
		{"unknown placeholder", "{{phone}}", false},
		{"wrong case", "{{Name}}", false},
		{"empty placeholder", "{{}}", false},
		{"unclosed", "Hi {{name", false},
		{"unclosed after a good one", "{{name}} {{email", false},
		{"nested", "{{ {{name}} }}", false},
		{"two in one", "{{name email}}", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkTemplate(tt.template)
			if tt.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if got := fieldOf(err); got != "signature.template" {
				t.Fatalf("got %v (field %q), want an error on signature.template", err, got)
			}
		})
	}
}

func TestCheckLabel(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{" Sales ", "Sales", true},
		{strings.Repeat("ü", 100), strings.Repeat("ü", 100), true},
		{"", "", false},
		{"   ", "", false},
		{strings.Repeat("ü", 101), "", false},
		{"a\nb", "", false},
		{"Anna's iPhone", "Anna's iPhone", true},
	} {
		got, err := checkLabel("signature.displayName", tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !tt.ok && fieldOf(err) != "signature.displayName" {
			t.Errorf("%q: %v; want an error on signature.displayName", tt.in, err)
		}
	}
}

func TestCanChooseSignature(t *testing.T) {
	anna, bob := uuid.New(), uuid.New()
	a := &Address{LocalPart: "sales", Domain: "example.com", Users: []AddressUser{
		{UserID: &anna},
		{UserID: &bob, Rights: &Rights{AutoReply: true}},
		{Email: "pending@example.net"},
	}}
	for _, tt := range []struct {
		name   string
		c      access.Caller
		paths  []string
		reason string // "" when allowed
		kind   errs.Kind
	}{
		{"default rights", access.Caller{UserID: anna}, []string{"signature"}, "", 0},
		{"other fields too", access.Caller{UserID: anna}, []string{"signature", "quota_bytes"}, "", errs.PermissionDenied},
		{"no fields", access.Caller{UserID: anna}, nil, "", errs.PermissionDenied},
		{"without the right", access.Caller{UserID: bob}, []string{"signature"}, "SIGNATURES_RIGHT_REQUIRED", errs.PermissionDenied},
		{"not a user", access.Caller{UserID: uuid.New()}, []string{"signature"}, "SIGNATURES_RIGHT_REQUIRED", errs.PermissionDenied},
		{"an API token", access.Caller{TokenID: uuid.New()}, []string{"signature"}, "SIGNATURES_RIGHT_REQUIRED", errs.PermissionDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := canChooseSignature(a, tt.c, tt.paths)
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			e, ok := err.(*errs.Error)
			if !ok || e.Kind != tt.kind || e.Reason != tt.reason {
				t.Fatalf("got %#v, want %v with reason %q", err, tt.kind, tt.reason)
			}
		})
	}
}

func TestParseAddressSignature(t *testing.T) {
	org, ms, sig := uuid.New(), uuid.New(), uuid.New()
	a := &Address{OrganizationID: org, MailServiceID: ms}
	got, err := parseAddressSignature(a, signatureName(org, ms, sig))
	if err != nil || got == nil || *got != sig {
		t.Fatalf("own mail service's signature: %v, %v", got, err)
	}
	if got, err := parseAddressSignature(a, ""); got != nil || err != nil {
		t.Fatalf("no signature: %v, %v", got, err)
	}
	for _, bad := range []string{
		signatureName(org, uuid.New(), sig),
		signatureName(uuid.New(), ms, sig),
		mailServiceName(org, ms) + "/signatures/nope",
		mailServiceName(org, ms),
	} {
		if _, err := parseAddressSignature(a, bad); fieldOf(err) != "address.signature" {
			t.Errorf("%s: %v; want an error on address.signature", bad, err)
		}
	}
}
