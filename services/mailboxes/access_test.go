package mailboxes_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// refusals returns the refused actions in the outbox's audit records, as
// "actor action target".
func (e *env) refusals(t *testing.T) []string {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), "SELECT payload FROM outbox WHERE subject = 'mailboxes.audit.recorded' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var payload []byte
		var ev accountsv1.AuditRecorded
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		if en := ev.GetEntry(); en.GetOutcome() == accountsv1.Outcome_OUTCOME_DENIED {
			if en.GetDetails()["reason"] == "" {
				t.Errorf("refusal %s without a reason", en.GetAction())
			}
			out = append(out, en.GetActor()+" "+en.GetAction()+" "+en.GetTarget())
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRefusalsAudited: a member's refused actions land in the audit log,
// whichever RPC refused them.
func TestRefusalsAudited(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	member := e.person(t, "member@example.com")
	e.join(t, owner, member, "member@example.com", accountsv1.Role_ROLE_MEMBER)
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	name := ms.MailService.Name

	_, err = e.addrs.CreateAddress(member.ctx, &mailboxesv1.CreateAddressRequest{Parent: name, Address: &mailboxesv1.Address{LocalPart: "sales"}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = mailboxesv1.NewSignatureServiceClient(e.cc).CreateSignature(member.ctx, &mailboxesv1.CreateSignatureRequest{Parent: name, Signature: &mailboxesv1.Signature{DisplayName: "Mine", Template: "{{name}}"}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.services.DeleteMailService(member.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied)
	// A stranger is told nothing exists, and writes nothing in the log.
	stranger := e.person(t, "stranger@example.com")
	_, err = e.services.DeleteMailService(stranger.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: name})
	wantCode(t, err, codes.NotFound)

	want := []string{
		member.user + " mailboxes.address.create " + name,
		member.user + " mailboxes.signature.create " + name,
		member.user + " mailboxes.mailService.delete " + name,
	}
	if diff := cmp.Diff(want, e.refusals(t)); diff != "" {
		t.Errorf("refusals audited (-want +got)\n%s", diff)
	}
}

// TestOnlyOwnersActOnOwners: an admin manages addresses, but cannot take an
// owner off one, delete one an owner uses, or revoke an owner's device
// password.
func TestOnlyOwnersActOnOwners(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	admin := e.person(t, "admin@example.com")
	member := e.person(t, "member@example.com")
	e.join(t, owner, admin, "admin@example.com", accountsv1.Role_ROLE_ADMIN)
	e.join(t, owner, member, "member@example.com", accountsv1.Role_ROLE_MEMBER)
	ms, err := e.services.CreateMailService(owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(local string, users ...string) *mailboxesv1.Address {
		t.Helper()
		resp, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name,
			Address: &mailboxesv1.Address{LocalPart: local}, Access: &mailboxesv1.AddressAccess{Users: users}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Address
	}
	setUsers := func(p person, a *mailboxesv1.Address, users ...*mailboxesv1.AddressUser) error {
		_, err := e.addrs.UpdateAddress(p.ctx, &mailboxesv1.UpdateAddressRequest{Address: &mailboxesv1.Address{Name: a.Name, Users: users},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users"}}})
		return err
	}
	shared := create("shared", owner.user, admin.user, member.user)
	devices := mailboxesv1.NewDevicePasswordServiceClient(e.cc)
	dp, err := devices.CreateDevicePassword(owner.ctx, &mailboxesv1.CreateDevicePasswordRequest{Parent: shared.Name, DevicePassword: &mailboxesv1.DevicePassword{DeviceName: "phone"}})
	if err != nil {
		t.Fatal(err)
	}
	user := func(name string) *mailboxesv1.AddressUser { return &mailboxesv1.AddressUser{User: name} }

	// The admin may take a member off, not an owner, nor cut an owner's rights.
	wantCode(t, setUsers(admin, shared, user(admin.user), user(member.user)), codes.PermissionDenied)
	wantCode(t, setUsers(admin, shared, user(admin.user), user(member.user),
		&mailboxesv1.AddressUser{User: owner.user, Rights: &mailboxesv1.Rights{AutoReply: true}}), codes.PermissionDenied)
	if err := setUsers(admin, shared, user(owner.user), user(admin.user)); err != nil {
		t.Errorf("admin takes a member off: %v", err)
	}
	_, err = devices.DeleteDevicePassword(admin.ctx, &mailboxesv1.DeleteDevicePasswordRequest{Name: dp.DevicePassword.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.addrs.DeleteAddress(admin.ctx, &mailboxesv1.DeleteAddressRequest{Name: shared.Name})
	wantCode(t, err, codes.PermissionDenied)

	got, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: shared.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Address.Users) != 2 {
		t.Errorf("users after the refusals: %v", got.Address.Users)
	}
	list, err := devices.ListDevicePasswords(owner.ctx, &mailboxesv1.ListDevicePasswordsRequest{Parent: shared.Name})
	if err != nil || len(list.DevicePasswords) != 1 {
		t.Errorf("owner's device passwords after the refusal: %v %v", list, err)
	}

	// An admin deletes an address no owner uses; an owner, any.
	if _, err := e.addrs.DeleteAddress(admin.ctx, &mailboxesv1.DeleteAddressRequest{Name: create("team", admin.user, member.user).Name}); err != nil {
		t.Errorf("admin deletes an address without owners: %v", err)
	}
	if _, err := devices.DeleteDevicePassword(owner.ctx, &mailboxesv1.DeleteDevicePasswordRequest{Name: dp.DevicePassword.Name}); err != nil {
		t.Errorf("owner revokes their device password: %v", err)
	}
	if _, err := e.addrs.DeleteAddress(owner.ctx, &mailboxesv1.DeleteAddressRequest{Name: shared.Name}); err != nil {
		t.Errorf("owner deletes the shared address: %v", err)
	}
	if n := len(e.refusals(t)); n != 4 {
		t.Errorf("%d refusals audited, want 4", n)
	}
}
