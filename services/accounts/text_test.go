package accounts_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestControlCharacters checks that text PostgreSQL cannot store, or that
// would reach mail headers and screens, is refused as a bad field and never
// answered INTERNAL (a NUL byte used to reach the database and answer 500).
func TestControlCharacters(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	ctx := e.as(t, "owner@example.com")
	before, err := e.orgs.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{Name: org})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"organization display name", func() error {
			_, err := e.orgs.UpdateOrganization(ctx, &accountsv1.UpdateOrganizationRequest{
				Organization: &accountsv1.Organization{Name: org, DisplayName: "a\x00b"},
				UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}, "organization.displayName"},
		{"legal name with a bidi override", func() error {
			_, err := e.orgs.UpdateOrganization(ctx, &accountsv1.UpdateOrganizationRequest{
				Organization: &accountsv1.Organization{Name: org, LegalName: "ACME \u202eSA"},
				UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"legal_name"}},
			})
			return err
		}, "organization.legalName"},
		{"user display name", func() error {
			_, err := e.users.UpdateCurrentUser(ctx, &accountsv1.UpdateCurrentUserRequest{
				User:       &accountsv1.User{DisplayName: "Ada\x00"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}},
			})
			return err
		}, "user.displayName"},
		{"sign-up organization name", func() error {
			_, err := e.auth.SignUp(context.Background(), &accountsv1.SignUpRequest{
				Email: "new@example.com", Password: password, DisplayName: "New", OrganizationDisplayName: "Org\x00",
			})
			return err
		}, "organizationDisplayName"},
		{"audit log filter", func() error {
			_, err := e.audit.ListAuditEntries(ctx, &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "x\x00"})
			return err
		}, "action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := wantCode(t, tt.call(), codes.InvalidArgument)
			if diff := cmp.Diff([]string{tt.field}, fieldsOf(st)); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
		})
	}
	after, err := e.orgs.GetOrganization(ctx, &accountsv1.GetOrganizationRequest{Name: org})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, protocmp.Transform()); diff != "" {
		t.Errorf("organization changed by refused updates (-before +after):\n%s", diff)
	}
}
