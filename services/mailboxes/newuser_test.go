package mailboxes_test

import (
	"context"
	"strings"
	"testing"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// TestAddressForANewUser creates an address together with a user whose
// login is the address, who then chooses a password and signs in.
func TestAddressForANewUser(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(local string, nu *mailboxesv1.NewUser) (*mailboxesv1.CreateAddressResponse, error) {
		return e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name,
			Address: &mailboxesv1.Address{LocalPart: local}, Access: &mailboxesv1.AddressAccess{NewUser: nu}})
	}
	_, err = create("blank", &mailboxesv1.NewUser{DisplayName: " "})
	wantCode(t, err, codes.InvalidArgument)

	resp, err := create("Volunteer", &mailboxesv1.NewUser{DisplayName: "Val Volunteer"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.NewUserSetupLink, "https://app.mailplane.test/setup/") || len(resp.Address.Users) != 1 {
		t.Fatalf("response %v", resp)
	}
	ctx := context.Background()
	_, err = e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "volunteer@acme.example", Password: password})
	wantCode(t, err, codes.Unauthenticated)
	token := resp.NewUserSetupLink[strings.LastIndex(resp.NewUserSetupLink, "/")+1:]
	if _, err := e.auth.SetInitialPassword(ctx, &accountsv1.SetInitialPasswordRequest{Token: token, Password: password}); err != nil {
		t.Fatal(err)
	}
	_, err = e.auth.SetInitialPassword(ctx, &accountsv1.SetInitialPasswordRequest{Token: token, Password: password})
	wantCode(t, err, codes.NotFound)
	in, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "volunteer@acme.example", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	asNew := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+in.AccessToken)
	if _, err := e.addrs.GetAddress(asNew, &mailboxesv1.GetAddressRequest{Name: resp.Address.Name}); err != nil {
		t.Errorf("the new user reads their address: %v", err)
	}
}

// TestNoAddressInADeletedMailService: once a mail service is deleted, no
// address is made in it, even right after one was.
func TestNoAddressInADeletedMailService(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "gone.example"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(local string) error {
		_, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name, Address: &mailboxesv1.Address{LocalPart: local}})
		return err
	}
	if err := create("first"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.services.DeleteMailService(owner.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: ms.MailService.Name}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, create("second"), codes.NotFound)
	wantCode(t, create("first"), codes.NotFound)
}
