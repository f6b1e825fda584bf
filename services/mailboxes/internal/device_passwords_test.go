package mailboxes

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/internal/migrations"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"google.golang.org/protobuf/proto"
)

func TestNewSecret(t *testing.T) {
	format := regexp.MustCompile(`^[` + secretAlphabet + `]{4}(-[` + secretAlphabet + `]{4}){3}$`)
	seen := map[string]bool{}
	used := map[rune]bool{}
	for range 1000 {
		s := newSecret()
		if !format.MatchString(s) {
			t.Fatalf("newSecret() = %q, want four dash-separated groups of four from %q", s, secretAlphabet)
		}
		if seen[s] {
			t.Fatalf("newSecret() repeated %q", s)
		}
		seen[s] = true
		for _, r := range strings.ReplaceAll(s, "-", "") {
			used[r] = true
		}
	}
	// 16,000 draws from 32 characters: all of them show up.
	if len(used) != len(secretAlphabet) {
		t.Errorf("newSecret used %d of the %d characters", len(used), len(secretAlphabet))
	}
	if len(secretAlphabet) != 32 || strings.ContainsAny(secretAlphabet, "lo01") {
		t.Errorf("secretAlphabet %q: want 32 characters without l, o, 0, 1", secretAlphabet)
	}
}

func TestSecretHash(t *testing.T) {
	const want = "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab" // sha256("abcdefgh")
	for _, typed := range []string{"abcd-efgh", "abcdefgh", "ABCD-EFGH", "abcd efgh", "AbCd EfGh"} {
		if got := secretHash(typed); got != want {
			t.Errorf("secretHash(%q) = %s, want %s", typed, got, want)
		}
	}
	if secretHash("abcd-efgi") == want {
		t.Error("secretHash ignores a changed character")
	}
}

func TestCanCreateDevicePassword(t *testing.T) {
	anna, bob := uuid.New(), uuid.New()
	a := &Address{LocalPart: "sales", Domain: "example.com", Users: []AddressUser{
		{UserID: &anna},
		{UserID: &bob, Rights: &Rights{AutoReply: true}},
		{Email: "carol@example.org", Invitation: "invitations/x"},
	}}
	for _, tc := range []struct {
		name   string
		caller access.Caller
		want   errs.Kind // 0 (Internal): allowed
	}{
		{"user with default rights", access.Caller{UserID: anna}, 0},
		{"user without the devices right", access.Caller{UserID: bob}, errs.PermissionDenied},
		{"not a user (an owner, say)", access.Caller{UserID: uuid.New()}, errs.FailedPrecondition},
		{"API token", access.Caller{TokenID: uuid.New(), TokenOrg: uuid.New(), TokenRole: access.Owner}, errs.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := canCreateDevicePassword(a, tc.caller)
			if tc.want == 0 {
				if err != nil {
					t.Fatalf("got %v, want allowed", err)
				}
				return
			}
			if errs.KindOf(err) != tc.want {
				t.Fatalf("got %v (%v), want %v", err, errs.KindOf(err), tc.want)
			}
		})
	}
	b := *a
	b.Users = []AddressUser{{UserID: &bob, Rights: &Rights{Devices: true}}}
	if err := canCreateDevicePassword(&b, access.Caller{UserID: bob}); err != nil {
		t.Errorf("user with the devices right: %v", err)
	}
}

// fakeAccounts gives each user a role in every organization.
type fakeAccounts map[uuid.UUID]access.Role

func (f fakeAccounts) Role(_ context.Context, _, user uuid.UUID) (access.Role, error) {
	if r, ok := f[user]; ok {
		return r, nil
	}
	return "", errs.E(errs.NotFound, "member not found")
}

func (f fakeAccounts) Members(_ context.Context, _ uuid.UUID, users []uuid.UUID) (map[uuid.UUID]access.Role, error) {
	roles := map[uuid.UUID]access.Role{}
	for _, u := range users {
		if r, ok := f[u]; ok {
			roles[u] = r
		}
	}
	return roles, nil
}

func (f fakeAccounts) Invite(context.Context, uuid.UUID, string, string) (string, string, error) {
	return "", "", errors.New("no invitations here")
}

func (f fakeAccounts) MemberEmails(context.Context, uuid.UUID, map[string]bool) (map[string]uuid.UUID, error) {
	return map[string]uuid.UUID{}, nil
}

func (f fakeAccounts) CreateMember(context.Context, uuid.UUID, string, string) (uuid.UUID, string, error) {
	return uuid.Nil, "", errors.New("not used")
}

// devicePasswordFixture is a mail service with one address, sales, used by
// anna (all rights) and bob (no devices right).
type devicePasswordFixture struct {
	srv                        *Server
	pool                       *pgxpool.Pool
	address                    string
	org                        uuid.UUID
	owner, anna, bob, stranger uuid.UUID
}

func newDevicePasswordFixture(t *testing.T) *devicePasswordFixture {
	t.Helper()
	pool := pgtest.NewPool(t, "mailboxes", migrations.FS)
	f := &devicePasswordFixture{pool: pool, org: uuid.New(), owner: uuid.New(), anna: uuid.New(), bob: uuid.New(), stranger: uuid.New()}
	f.srv = NewServer(pool, fakeAccounts{f.owner: access.Owner, f.anna: access.Member, f.bob: access.Member, f.stranger: access.Member}, slog.New(slog.DiscardHandler))
	ms, addr := uuid.New(), uuid.New()
	ctx := t.Context()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO mail_services (id, organization_id, domain, display_name, state) VALUES ($1, $2, 'example.com', 'Example', 'verified')`, []any{ms, f.org}},
		{`INSERT INTO addresses (id, mail_service_id, local_part, local_key, kind) VALUES ($1, $2, 'sales', 'sales', 'mailbox')`, []any{addr, ms}},
		{`INSERT INTO local_parts (mail_service_id, local_key, address_id) VALUES ($1, 'sales', $2)`, []any{ms, addr}},
		{`INSERT INTO address_users (address_id, user_id) VALUES ($1, $2)`, []any{addr, f.anna}},
		{`INSERT INTO address_users (address_id, user_id, rights) VALUES ($1, $2, '{"autoReply": true, "devices": false, "filters": true, "signatures": true}')`, []any{addr, f.bob}},
	} {
		if _, err := pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	f.address = addressName(f.org, ms, addr)
	return f
}

func (f *devicePasswordFixture) as(t *testing.T, user uuid.UUID) context.Context {
	return auth.WithPrincipal(t.Context(), auth.Principal{UserID: user.String()})
}

func (f *devicePasswordFixture) create(t *testing.T, user uuid.UUID, device string) (*mailboxesv1.CreateDevicePasswordResponse, error) {
	return f.srv.CreateDevicePassword(f.as(t, user), &mailboxesv1.CreateDevicePasswordRequest{
		Parent: f.address, DevicePassword: &mailboxesv1.DevicePassword{DeviceName: device},
	})
}

func (f *devicePasswordFixture) list(t *testing.T, user uuid.UUID) []string {
	t.Helper()
	resp, err := f.srv.ListDevicePasswords(f.as(t, user), &mailboxesv1.ListDevicePasswordsRequest{Parent: f.address})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var names []string
	for _, d := range resp.GetDevicePasswords() {
		names = append(names, d.GetDeviceName())
	}
	return names
}

func TestCreateDevicePassword(t *testing.T) {
	f := newDevicePasswordFixture(t)
	resp, err := f.create(t, f.anna, "  Anna's phone ")
	if err != nil {
		t.Fatal(err)
	}
	d := resp.GetDevicePassword()
	if !strings.HasPrefix(d.GetName(), f.address+"/devicePasswords/") || d.GetDeviceName() != "Anna's phone" ||
		d.GetUser() != userName(f.anna) || d.GetCreateTime() == nil || d.GetLastUseTime() != nil {
		t.Errorf("device password = %v", d)
	}
	var stored string
	if err := f.pool.QueryRow(t.Context(), "SELECT secret_sha256 FROM device_passwords").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != secretHash(resp.GetPassword()) {
		t.Errorf("stored %s, want the SHA-256 of the password", stored)
	}
	var audits int
	if err := f.pool.QueryRow(t.Context(), "SELECT count(*) FROM outbox WHERE subject = 'mailboxes.audit.recorded'").Scan(&audits); err != nil || audits != 1 {
		t.Errorf("audit records: %d, %v; want 1", audits, err)
	}

	tokenCtx := auth.WithPrincipal(t.Context(), auth.Principal{TokenID: uuid.NewString(), OrganizationID: f.org.String(), Role: "owner"})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		dev  string
		want errs.Kind
	}{
		{"no device name", f.as(t, f.anna), " ", errs.InvalidArgument},
		{"user without the devices right", f.as(t, f.bob), "Bob's phone", errs.PermissionDenied},
		{"owner who is not a user", f.as(t, f.owner), "Owner's phone", errs.FailedPrecondition},
		{"member who is not a user", f.as(t, f.stranger), "Phone", errs.NotFound},
		{"API token", tokenCtx, "Server", errs.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.srv.CreateDevicePassword(tc.ctx, &mailboxesv1.CreateDevicePasswordRequest{
				Parent: f.address, DevicePassword: &mailboxesv1.DevicePassword{DeviceName: tc.dev},
			})
			if errs.KindOf(err) != tc.want {
				t.Fatalf("got %v (%v), want %v", err, errs.KindOf(err), tc.want)
			}
		})
	}

	t.Run("at most 50 per user and address", func(t *testing.T) {
		if _, err := f.pool.Exec(t.Context(), `INSERT INTO device_passwords (id, address_id, user_id, device_name, secret_sha256)
SELECT gen_random_uuid(), address_id, user_id, 'old ' || i, md5(i::text) FROM device_passwords, generate_series(1, 49) i`); err != nil {
			t.Fatal(err)
		}
		if _, err := f.create(t, f.anna, "one too many"); errs.KindOf(err) != errs.ResourceExhausted {
			t.Fatalf("got %v, want ResourceExhausted", err)
		}
	})
}

func TestListAndDeleteDevicePasswords(t *testing.T) {
	f := newDevicePasswordFixture(t)
	// bob gets the devices right back, for a password of his own.
	if _, err := f.pool.Exec(t.Context(), "UPDATE address_users SET rights = NULL WHERE user_id = $1", f.bob); err != nil {
		t.Fatal(err)
	}
	var names = map[string]string{}
	for _, c := range []struct {
		user   uuid.UUID
		device string
	}{{f.anna, "phone"}, {f.bob, "bob's laptop"}, {f.anna, "tablet"}} {
		resp, err := f.create(t, c.user, c.device)
		if err != nil {
			t.Fatal(err)
		}
		names[c.device] = resp.GetDevicePassword().GetName()
	}

	for _, tc := range []struct {
		name string
		user uuid.UUID
		want []string
	}{
		{"a user sees their own, newest first", f.anna, []string{"tablet", "phone"}},
		{"another user", f.bob, []string{"bob's laptop"}},
		{"an owner sees everyone's", f.owner, []string{"tablet", "bob's laptop", "phone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, f.list(t, tc.user)); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	if _, err := f.srv.ListDevicePasswords(f.as(t, f.stranger), &mailboxesv1.ListDevicePasswordsRequest{Parent: f.address}); errs.KindOf(err) != errs.NotFound {
		t.Errorf("member who is not a user lists: %v, want NotFound", err)
	}

	del := func(user uuid.UUID, name string) error {
		_, err := f.srv.DeleteDevicePassword(f.as(t, user), &mailboxesv1.DeleteDevicePasswordRequest{Name: name})
		return err
	}
	if err := del(f.bob, names["phone"]); errs.KindOf(err) != errs.NotFound {
		t.Errorf("bob revokes anna's: %v, want NotFound", err)
	}
	if err := del(f.anna, names["phone"]); err != nil {
		t.Fatalf("anna revokes hers: %v", err)
	}
	if err := del(f.anna, names["phone"]); errs.KindOf(err) != errs.NotFound {
		t.Errorf("revoked twice: %v, want NotFound", err)
	}
	if err := del(f.owner, names["bob's laptop"]); err != nil {
		t.Fatalf("owner revokes bob's: %v", err)
	}
	if err := del(f.anna, f.address+"/devicePasswords/nope"); errs.KindOf(err) != errs.InvalidArgument {
		t.Errorf("bad name: %v, want InvalidArgument", err)
	}
	if diff := cmp.Diff([]string{"tablet"}, f.list(t, f.owner)); diff != "" {
		t.Errorf("after revocations (-want +got)\n%s", diff)
	}

	rows, err := f.pool.Query(t.Context(), "SELECT payload FROM outbox WHERE subject = 'mailboxes.device_password.revoked' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var actors, revoked []string
	for rows.Next() {
		var payload []byte
		var ev mailboxesv1.DevicePasswordRevoked
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if err := proto.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		actors, revoked = append(actors, ev.GetActor()), append(revoked, ev.GetDevicePassword().GetName())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{names["phone"], names["bob's laptop"]}, revoked); diff != "" {
		t.Errorf("revoked events (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{userName(f.anna), userName(f.owner)}, actors); diff != "" {
		t.Errorf("event actors (-want +got)\n%s", diff)
	}
}

// TestDovecotViews checks what Dovecot reads (deploy/mail/dovecot): only
// working passwords, by lower-case login.
func TestDovecotViews(t *testing.T) {
	f := newDevicePasswordFixture(t)
	resp, err := f.create(t, f.anna, "phone")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	logins := func() []string {
		t.Helper()
		rows, _ := f.pool.Query(ctx, "SELECT login FROM mailboxes.dovecot_device_passwords WHERE secret_sha256 = $1", secretHash(resp.GetPassword()))
		var got []string
		for rows.Next() {
			var l string
			rows.Scan(&l)
			got = append(got, l)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, tc := range []struct {
		name, change string
		want         []string
	}{
		{"working", "", []string{"sales@example.com"}},
		{"local part in capitals", "UPDATE addresses SET local_part = 'Sales'", []string{"sales@example.com"}},
		{"devices right taken away", `UPDATE address_users SET rights = '{"devices": false}'`, nil},
		{"devices right given", `UPDATE address_users SET rights = '{"devices": true}'`, []string{"sales@example.com"}},
		{"user removed", "DELETE FROM address_users WHERE user_id = '" + f.anna.String() + "'", nil},
		{"user back", "INSERT INTO address_users (address_id, user_id) SELECT id, '" + f.anna.String() + "' FROM addresses", []string{"sales@example.com"}},
		{"mail service deleted", "UPDATE mail_services SET delete_time = now()", nil},
		{"mail service restored", "UPDATE mail_services SET delete_time = NULL", []string{"sales@example.com"}},
		{"domain not verified", "UPDATE mail_services SET state = 'pending'", nil},
		{"claim lost", "UPDATE mail_services SET state = 'claim_lost'", nil},
		{"domain verified", "UPDATE mail_services SET state = 'verified'", []string{"sales@example.com"}},
		{"revoked", "UPDATE device_passwords SET revoke_time = now()", nil},
	} {
		if tc.change != "" {
			if _, err := f.pool.Exec(ctx, tc.change); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		if diff := cmp.Diff(tc.want, logins()); diff != "" {
			t.Errorf("%s (-want +got)\n%s", tc.name, diff)
		}
	}
	var home string
	if err := f.pool.QueryRow(ctx, "SELECT address_id::text FROM mailboxes.dovecot_users WHERE login = 'sales@example.com'").Scan(&home); err != nil {
		t.Fatalf("dovecot_users: %v", err)
	}
}

func TestDevicePasswordProtocols(t *testing.T) {
	f := newDevicePasswordFixture(t)
	create := func(protocols ...mailboxesv1.MailProtocol) (*mailboxesv1.DevicePassword, error) {
		resp, err := f.srv.CreateDevicePassword(f.as(t, f.anna), &mailboxesv1.CreateDevicePasswordRequest{
			Parent: f.address, DevicePassword: &mailboxesv1.DevicePassword{DeviceName: "Device", Protocols: protocols},
		})
		return resp.GetDevicePassword(), err
	}
	imap, smtp := mailboxesv1.MailProtocol_MAIL_PROTOCOL_IMAP, mailboxesv1.MailProtocol_MAIL_PROTOCOL_SMTP
	for _, tc := range []struct {
		name string
		in   []mailboxesv1.MailProtocol
		want []mailboxesv1.MailProtocol
	}{
		{"none named: both", nil, []mailboxesv1.MailProtocol{imap, smtp}},
		{"IMAP only", []mailboxesv1.MailProtocol{imap}, []mailboxesv1.MailProtocol{imap}},
		{"SMTP only, named twice", []mailboxesv1.MailProtocol{smtp, smtp}, []mailboxesv1.MailProtocol{smtp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := create(tc.in...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, d.GetProtocols()); diff != "" {
				t.Errorf("protocols (-want +got)\n%s", diff)
			}
		})
	}
	_, err := create(imap, mailboxesv1.MailProtocol_MAIL_PROTOCOL_UNSPECIFIED)
	if errs.KindOf(err) != errs.InvalidArgument || !strings.Contains(err.Error(), "devicePassword.protocols[1]") {
		t.Errorf("unspecified protocol: %v", err)
	}
}
