package mailboxes

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestPeopleLeaveAddresses takes people off an address in each way there
// is: an administrator's update, a member removed from the organization, a
// released login, a deleted user. Each time their device passwords stop
// working and are announced as revoked, and nobody else's are touched.
func TestPeopleLeaveAddresses(t *testing.T) {
	f := newDevicePasswordFixture(t)
	ctx := t.Context()
	device := func(user uuid.UUID, name string) {
		t.Helper()
		if _, err := f.pool.Exec(ctx, `INSERT INTO device_passwords (id, address_id, user_id, device_name, secret_sha256)
SELECT gen_random_uuid(), address_id, $1, $2, md5($2) FROM address_users WHERE user_id = $1`, user, name); err != nil {
			t.Fatal(err)
		}
	}
	setUsers := func(users ...uuid.UUID) {
		t.Helper()
		var in []*mailboxesv1.AddressUser
		for _, u := range users {
			in = append(in, &mailboxesv1.AddressUser{User: userName(u)})
		}
		_, err := f.srv.UpdateAddress(f.as(t, f.owner), &mailboxesv1.UpdateAddressRequest{
			Address: &mailboxesv1.Address{Name: f.address, Users: in}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users"}},
		})
		if err != nil {
			t.Fatalf("update users: %v", err)
		}
	}
	apply := func(ev proto.Message) {
		t.Helper()
		if err := pg.InTx(ctx, f.pool, func(tx pgx.Tx) error { return ApplyPersonLeft(ctx, tx, ev) }); err != nil {
			t.Fatalf("apply %T: %v", ev, err)
		}
	}
	working := func() []string {
		t.Helper()
		rows, _ := f.pool.Query(ctx, "SELECT device_name FROM device_passwords WHERE revoke_time IS NULL ORDER BY device_name")
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	revokedEvents := func() []string {
		t.Helper()
		rows, _ := f.pool.Query(ctx, "SELECT payload FROM outbox WHERE subject = 'mailboxes.device_password.revoked' ORDER BY seq")
		payloads, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range payloads {
			var ev mailboxesv1.DevicePasswordRevoked
			if err := proto.Unmarshal(p, &ev); err != nil {
				t.Fatal(err)
			}
			got = append(got, ev.GetDevicePassword().GetDeviceName()+" by "+ev.GetActor())
		}
		return got
	}
	check := func(step string, want []string) {
		t.Helper()
		if diff := cmp.Diff(want, working()); diff != "" {
			t.Errorf("%s: working device passwords (-want +got)\n%s", step, diff)
		}
	}

	device(f.anna, "anna phone")
	device(f.bob, "bob phone")
	setUsers(f.bob)
	check("anna taken off by an update", []string{"bob phone"})

	setUsers(f.anna, f.bob)
	device(f.anna, "anna tablet")
	other := uuid.New()
	apply(&accountsv1.MemberDeleted{Member: &accountsv1.Member{Name: organizationName(other) + "/members/" + f.anna.String()}, Actor: userName(f.owner)})
	check("anna removed from another organization", []string{"anna tablet", "bob phone"})
	apply(&accountsv1.MemberDeleted{Member: &accountsv1.Member{Name: organizationName(f.org) + "/members/" + f.anna.String()}, Actor: userName(f.owner)})
	check("anna removed from the organization", []string{"bob phone"})

	apply(&accountsv1.LoginReleased{User: userName(f.bob), ReleasedEmail: "info@example.com", Actor: userName(f.owner)})
	check("another address's login released", []string{"bob phone"})
	apply(&accountsv1.LoginReleased{User: userName(f.bob), ReleasedEmail: "Sales@EXAMPLE.com", Actor: userName(f.owner)})
	check("bob's login released", []string{})

	setUsers(f.anna)
	device(f.anna, "anna laptop")
	apply(&accountsv1.UserDeleted{User: userName(f.anna)})
	check("anna deleted", []string{})

	// On a deleted mail service (still restorable) too.
	setUsers(f.anna)
	device(f.anna, "anna watch")
	if _, err := f.pool.Exec(ctx, "UPDATE mail_services SET delete_time = now()"); err != nil {
		t.Fatal(err)
	}
	apply(&accountsv1.MemberDeleted{Member: &accountsv1.Member{Name: organizationName(f.org) + "/members/" + f.anna.String()}, Actor: userName(f.owner)})
	check("anna removed while the mail service is deleted", []string{})

	owner, anna := userName(f.owner), userName(f.anna)
	want := []string{"anna phone by " + owner, "anna tablet by " + owner, "bob phone by " + owner, "anna laptop by " + anna, "anna watch by " + owner}
	if diff := cmp.Diff(want, revokedEvents()); diff != "" {
		t.Errorf("revoked events (-want +got)\n%s", diff)
	}
	var users int
	if err := f.pool.QueryRow(ctx, "SELECT count(*) FROM address_users").Scan(&users); err != nil || users != 0 {
		t.Errorf("%d address users left (%v), want none", users, err)
	}
}
