package mailboxes_test

import (
	"strings"
	"testing"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// UpdateAddress follows the one update-mask rule (AIP-134): no mask means
// the fields the request sets, "*" every updatable field.
func TestUpdateAddressMask(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	created, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name,
		Address: &mailboxesv1.Address{LocalPart: "sales", Aliases: []string{"ventes"}}, Access: &mailboxesv1.AddressAccess{Caller: true}})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Address.Name
	update := func(a *mailboxesv1.Address, paths ...string) (*mailboxesv1.Address, error) {
		a.Name = name
		req := &mailboxesv1.UpdateAddressRequest{Address: a}
		if paths != nil {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
		}
		resp, err := e.addrs.UpdateAddress(owner.ctx, req)
		return resp.GetAddress(), err
	}

	// Without a mask, only what is set changes: the aliases and users stay.
	a, err := update(&mailboxesv1.Address{QuotaBytes: 1 << 30})
	if err != nil || a.QuotaBytes != 1<<30 || strings.Join(a.Aliases, ",") != "ventes" || len(a.Users) != 1 {
		t.Fatalf("no mask: %v, %v", a, err)
	}
	// "*" sets every updatable field, clearing those left out.
	a, err = update(&mailboxesv1.Address{Aliases: []string{"verkauf"}}, "*")
	if err != nil || a.QuotaBytes != 0 || strings.Join(a.Aliases, ",") != "verkauf" || len(a.Users) != 0 {
		t.Fatalf("*: %v, %v", a, err)
	}
	// Nothing to change, or a field that cannot change, is refused.
	for _, tt := range []struct {
		name  string
		paths []string
	}{{"nothing set", nil}, {"an empty mask", []string{}}, {"output only", []string{"usage_bytes"}}, {"* among others", []string{"*", "aliases"}}} {
		_, err := update(&mailboxesv1.Address{}, tt.paths...)
		if wantCode(t, err, codes.InvalidArgument); field(err) != "updateMask" {
			t.Errorf("%s: field %q", tt.name, field(err))
		}
	}
}
