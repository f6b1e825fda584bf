package accounts_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func TestDataProcessingAgreement(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	admin := e.signUp(t, "admin@example.com")
	member := e.signUp(t, "member@example.com")
	e.signUp(t, "stranger@example.com")
	org := owner.Organization.Name
	e.join(t, org, admin.User, "admin")
	e.join(t, org, member.User, "member")
	asOwner := e.as(t, "owner@example.com")
	req := &accountsv1.GetDataProcessingAgreementRequest{Name: org}

	_, err := e.orgs.GetDataProcessingAgreement(e.as(t, "member@example.com"), req)
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.orgs.GetDataProcessingAgreement(e.as(t, "stranger@example.com"), req)
	wantCode(t, err, codes.NotFound)
	// The legal name starts as the display name, but there is no address yet.
	_, err = e.orgs.GetDataProcessingAgreement(asOwner, req)
	wantCode(t, err, codes.FailedPrecondition)
	if got := reason(err); got != "LEGAL_DETAILS_MISSING" {
		t.Errorf("reason = %q, want LEGAL_DETAILS_MISSING", got)
	}

	_, err = e.orgs.UpdateOrganization(asOwner, &accountsv1.UpdateOrganizationRequest{
		Organization: &accountsv1.Organization{Name: org, LegalName: "Zoë Müller GmbH", Address: "Bahnhofstrasse 12\n8001 Zürich"},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"legal_name", "address"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"owner@example.com", "admin@example.com"} {
		before := time.Now().UTC().Format(time.DateOnly)
		resp, err := e.orgs.GetDataProcessingAgreement(e.as(t, who), req)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		after := time.Now().UTC().Format(time.DateOnly)
		if !bytes.HasPrefix(resp.Pdf, []byte("%PDF-")) {
			t.Errorf("%s got %d bytes that are not a PDF", who, len(resp.Pdf))
		}
		if n := resp.FileName; n != "mailplane-dpa-zoe-muller-gmbh-"+before+".pdf" && n != "mailplane-dpa-zoe-muller-gmbh-"+after+".pdf" {
			t.Errorf("%s: file name %q", who, n)
		}
	}

	got := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "accounts.dpa.download"})
	want := []auditLine{
		{"admin@example.com", "accounts.dpa.download", org, accountsv1.Outcome_OUTCOME_SUCCEEDED},
		{"owner@example.com", "accounts.dpa.download", org, accountsv1.Outcome_OUTCOME_SUCCEEDED},
		{"owner@example.com", "accounts.dpa.download", org, accountsv1.Outcome_OUTCOME_FAILED},
		{"member@example.com", "accounts.dpa.download", org, accountsv1.Outcome_OUTCOME_DENIED},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit log, newest first (-want +got):\n%s", diff)
	}
}
