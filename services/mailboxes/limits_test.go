package mailboxes_test

import (
	"fmt"
	"strings"
	"testing"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// TestAddressCaps: an address holds at most 50 aliases and 100 users, on
// create and update, and a taken alias among many is named.
func TestAddressCaps(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(a *mailboxesv1.Address, acc *mailboxesv1.AddressAccess) (*mailboxesv1.Address, error) {
		resp, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name, Address: a, Access: acc})
		return resp.GetAddress(), err
	}
	_, err = create(&mailboxesv1.Address{LocalPart: "many", Aliases: names("m", 51)}, nil)
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases" {
		t.Errorf("51 aliases: field %q", field(err))
	}
	_, err = create(&mailboxesv1.Address{LocalPart: "crowd"}, &mailboxesv1.AddressAccess{InviteEmails: strings.Split(strings.Join(names("p", 101), "@x.example ")+"@x.example", " ")})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "access" {
		t.Errorf("101 invitees: field %q", field(err))
	}
	if _, err := create(&mailboxesv1.Address{LocalPart: "taken", Aliases: []string{"a30"}}, nil); err != nil {
		t.Fatal(err)
	}
	a, err := create(&mailboxesv1.Address{LocalPart: "fifty", Aliases: names("b", 50)}, nil)
	if err != nil {
		t.Fatalf("50 aliases: %v", err)
	}
	update := func(aliases []string) error {
		_, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{Address: &mailboxesv1.Address{Name: a.Name, Aliases: aliases},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"aliases"}}})
		return err
	}
	err = update(names("c", 51))
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases" {
		t.Errorf("update to 51 aliases: field %q", field(err))
	}
	err = update(names("a", 50))
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.aliases[30]" {
		t.Errorf("update with a taken alias: field %q (%v)", field(err), err)
	}
	got, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	if err != nil || len(got.Address.Aliases) != 50 || got.Address.Aliases[0] != "b0" {
		t.Errorf("after the refused updates: %v, %v", got.GetAddress().GetAliases(), err)
	}
	if err := update(names("a", 30)); err != nil {
		t.Errorf("update to 30 free aliases: %v", err)
	}
	if _, err := create(&mailboxesv1.Address{LocalPart: "b0"}, nil); err != nil {
		t.Errorf("an alias given up is free: %v", err)
	}
}
