package mailboxes_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

type env struct {
	pool     *pgxpool.Pool // the mailboxes schema
	auth     accountsv1.AuthServiceClient
	orgs     accountsv1.OrganizationServiceClient
	services mailboxesv1.MailServiceServiceClient
	addrs    mailboxesv1.AddressServiceClient
	reserve  mailboxesv1.ReservationServiceClient
	svc      *mailboxes.Service
	cc       *grpc.ClientConn
	// dns is the DNS server the service asks for verification records,
	// where tests publish what a customer would.
	dns *dns.LocalServer
}

func (e *env) conn(*testing.T) *grpc.ClientConn { return e.cc }

// start runs accounts and mailboxes on one gRPC server over loopback
// (servicetest), as `mailplane dev` does, against a fresh database.
func start(t *testing.T) *env {
	t.Helper()
	return startWith(t, mailboxes.Config{})
}

// startWith is start with the mailboxes settings c (its AccountsAddr set
// here). The service works its jobs (bulk creations), not its periodic
// work, which tests call themselves.
func startWith(t *testing.T, c mailboxes.Config) *env {
	t.Helper()
	return startEnv(t, c, true)
}

// startEnv is startWith, where the service works its jobs only if work is
// set: a test that runs the service itself (Service.Run) passes false.
func startEnv(t *testing.T, c mailboxes.Config, work bool) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t,
		pgtest.Schema{Name: accounts.Schema, Migrations: accounts.Migrations},
		pgtest.Schema{Name: mailboxes.Schema, Migrations: mailboxes.Migrations})
	pools := map[string]*pgxpool.Pool{}
	for _, schema := range []string{accounts.Schema, mailboxes.Schema} {
		pool, err := pg.Connect(ctx, url, schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		pools[schema] = pool
	}
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zone.Close() })
	var svc *mailboxes.Service
	s := servicetest.Start(t, func(s *servicetest.Server) error {
		err := accounts.Register(s.GRPC.Server, pools[accounts.Schema], accounts.Config{
			AccessTokenTTL: 15 * time.Minute, RefreshTokenTTL: time.Hour, SignInPerEmail: 100, SignInPerClient: 1000, SignInWindow: time.Minute,
			TokenSigningKey: s.SigningKey(), PublicURL: "https://app.mailplane.test",
		}, s.Log)
		if err != nil {
			return err
		}
		c.AccountsAddr = s.Addr
		c.DomainCheckInterval = 50 * time.Millisecond
		resolver, err := dns.NewResolver(zone.Addr(), 5*time.Second)
		if err != nil {
			return err
		}
		svc, err = mailboxes.Register(s.GRPC.Server, pools[mailboxes.Schema], c, resolver, s.Log)
		return err
	})
	conn := s.Conn
	if work {
		t.Cleanup(workJobs(t, svc))
	}
	return &env{
		pool: pools[mailboxes.Schema], auth: accountsv1.NewAuthServiceClient(conn), orgs: accountsv1.NewOrganizationServiceClient(conn),
		services: mailboxesv1.NewMailServiceServiceClient(conn), addrs: mailboxesv1.NewAddressServiceClient(conn),
		reserve: mailboxesv1.NewReservationServiceClient(conn), svc: svc, cc: conn, dns: zone,
	}
}

// workJobs starts svc working its jobs, as a process would, and returns
// what stops it.
func workJobs(t *testing.T, svc *mailboxes.Service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.WorkJobs(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("jobs: %v", err)
		}
	}
}

// publish puts ms's verification record in the test's DNS, as its
// organization would in its zone.
func (e *env) publish(ms *mailboxesv1.MailService) {
	r := ms.GetVerificationRecord()
	e.dns.SetTXT(r.GetName(), 0, r.GetValue())
}

// createVerified claims a domain, publishes its record and verifies it: a
// mail service ready to serve mail, as most tests need.
func (e *env) createVerified(t *testing.T, ctx context.Context, req *mailboxesv1.CreateMailServiceRequest) (*mailboxesv1.CreateMailServiceResponse, error) {
	t.Helper()
	resp, err := e.services.CreateMailService(ctx, req)
	if err != nil {
		return nil, err
	}
	e.publish(resp.GetMailService())
	v, err := e.services.VerifyMailService(ctx, &mailboxesv1.VerifyMailServiceRequest{Name: resp.GetMailService().GetName()})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if v.GetMailService().GetState() != mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED {
		return nil, fmt.Errorf("verify %s: %v (%s)", v.GetMailService().GetDomain(), v.GetMailService().GetState(), v.GetMailService().GetLastCheckResult())
	}
	return &mailboxesv1.CreateMailServiceResponse{MailService: v.GetMailService()}, nil
}

const password = "a long enough password"

type person struct {
	ctx   context.Context
	token string // access token
	user  string // users/{id}
	org   string // their own organization
}

func (e *env) person(t *testing.T, email string) person {
	t.Helper()
	ctx := context.Background()
	up, err := e.auth.SignUp(ctx, &accountsv1.SignUpRequest{Email: email, Password: password, DisplayName: email, OrganizationDisplayName: email + "'s"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: email, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return person{ctx: metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+in.AccessToken), token: in.AccessToken, user: up.User.Name, org: up.Organization.Name}
}

// join makes p a member of org through an invitation, as a person would.
func (e *env) join(t *testing.T, owner person, p person, email string, role accountsv1.Role) {
	t.Helper()
	inv, err := accountsv1.NewInvitationServiceClient(e.conn(t)).CreateInvitation(owner.ctx, &accountsv1.CreateInvitationRequest{Parent: owner.org, Invitation: &accountsv1.Invitation{Email: email, Role: role}})
	if err != nil {
		t.Fatal(err)
	}
	tok := inv.Link[strings.LastIndex(inv.Link, "/")+1:]
	if _, err := accountsv1.NewInvitationServiceClient(e.conn(t)).AcceptInvitation(p.ctx, &accountsv1.AcceptInvitationRequest{Token: tok}); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, want codes.Code) *status.Status {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("got %v (%q), want %v", st.Code(), st.Message(), want)
	}
	return st
}

func field(err error) string {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	return ""
}

func TestMailServices(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	member := e.person(t, "member@example.com")
	e.join(t, owner, member, "member@example.com", accountsv1.Role_ROLE_MEMBER)
	stranger := e.person(t, "stranger@example.com")
	create := func(p person, org, domain string) (*mailboxesv1.MailService, error) {
		resp, err := e.services.CreateMailService(p.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: org, MailService: &mailboxesv1.MailService{Domain: domain}})
		return resp.GetMailService(), err
	}

	verified, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: " Bücher.Example. "}})
	if err != nil {
		t.Fatal(err)
	}
	ms := verified.GetMailService()
	if ms.Domain != "xn--bcher-kva.example" || ms.UnicodeDomain != "bücher.example" || ms.DisplayName != "bücher.example" {
		t.Errorf("mail service %v", ms)
	}
	for _, bad := range []string{"localhost", "exa mple.com", "-a.example", "example.123", strings.Repeat("a", 64) + ".example"} {
		_, err := create(owner, owner.org, bad)
		if wantCode(t, err, codes.InvalidArgument); field(err) != "mailService.domain" {
			t.Errorf("%q: field %q", bad, field(err))
		}
	}
	_, err = create(stranger, stranger.org, "XN--BCHER-KVA.example")
	wantCode(t, err, codes.AlreadyExists)
	_, err = create(member, owner.org, "member.example")
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.services.GetMailService(stranger.ctx, &mailboxesv1.GetMailServiceRequest{Name: ms.Name})
	wantCode(t, err, codes.NotFound)
	if _, err := e.services.GetMailService(member.ctx, &mailboxesv1.GetMailServiceRequest{Name: ms.Name}); err != nil {
		t.Errorf("member reads the mail service: %v", err)
	}

	renamed, err := e.services.UpdateMailService(owner.ctx, &mailboxesv1.UpdateMailServiceRequest{
		MailService: &mailboxesv1.MailService{Name: ms.Name, DisplayName: "Books"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	if err != nil || renamed.MailService.DisplayName != "Books" {
		t.Fatalf("rename: %v %v", renamed, err)
	}

	// Delete, restore, delete again and purge after 30 days.
	del, err := e.services.DeleteMailService(owner.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: ms.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got := del.MailService.PurgeTime.AsTime().Sub(del.MailService.DeleteTime.AsTime()); got != 30*24*time.Hour {
		t.Errorf("purge after %v, want 30 days", got)
	}
	list, _ := e.services.ListMailServices(owner.ctx, &mailboxesv1.ListMailServicesRequest{Parent: owner.org})
	all, _ := e.services.ListMailServices(owner.ctx, &mailboxesv1.ListMailServicesRequest{Parent: owner.org, ShowDeleted: true})
	if len(list.MailServices) != 0 || len(all.MailServices) != 1 {
		t.Errorf("lists: %d active, %d with deleted", len(list.MailServices), len(all.MailServices))
	}
	if _, err := e.services.UndeleteMailService(owner.ctx, &mailboxesv1.UndeleteMailServiceRequest{Name: ms.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.services.DeleteMailService(owner.ctx, &mailboxesv1.DeleteMailServiceRequest{Name: ms.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET delete_time = now() - interval '31 days'"); err != nil {
		t.Fatal(err)
	}
	_, err = e.services.UndeleteMailService(owner.ctx, &mailboxesv1.UndeleteMailServiceRequest{Name: ms.Name})
	wantCode(t, err, codes.NotFound)
	// Mail services made before their creation was announced are announced
	// once (accounts learns its organizations' domains from it).
	announced := func() (n int) {
		e.pool.QueryRow(context.Background(), "SELECT count(*) FROM outbox WHERE subject = 'mailboxes.mail_service.created'").Scan(&n)
		return n
	}
	before := announced()
	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET announced = false"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.AnnounceMailServices(context.Background()); err != nil || n != 1 || announced() != before+1 {
		t.Errorf("announced %d (%v), %d events after %d", n, err, announced(), before)
	}
	if n, err := e.svc.AnnounceMailServices(context.Background()); err != nil || n != 0 {
		t.Errorf("announced %d again (%v)", n, err)
	}

	// Usage Dovecot reported for the domain's mailboxes goes with it.
	if _, err := e.pool.Exec(context.Background(), "INSERT INTO dovecot_quota (login, bytes) VALUES ('info@xn--bcher-kva.example', 5000), ('info@other.example', 7000)"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := create(stranger, stranger.org, "bücher.example"); err != nil {
		t.Errorf("a purged domain is free again: %v", err)
	}
	var logins []string
	rows, _ := e.pool.Query(context.Background(), "SELECT login FROM dovecot_quota")
	if logins, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || strings.Join(logins, ",") != "info@other.example" {
		t.Errorf("usage left after the purge: %v %v", logins, err)
	}
}

func TestAddresses(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	anna := e.person(t, "anna@example.com")
	bob := e.person(t, "bob@example.com")
	e.join(t, owner, anna, "anna@example.com", accountsv1.Role_ROLE_MEMBER)
	e.join(t, owner, bob, "bob@example.com", accountsv1.Role_ROLE_MEMBER)
	outsider := e.person(t, "outsider@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	create := func(a *mailboxesv1.Address, access *mailboxesv1.AddressAccess) (*mailboxesv1.CreateAddressResponse, error) {
		return e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: a, Access: access})
	}

	sales, err := create(&mailboxesv1.Address{LocalPart: "Sales", Aliases: []string{"vente", "Verkauf"}},
		&mailboxesv1.AddressAccess{Caller: true, Users: []string{anna.user}, InviteEmails: []string{"Temp@Partner.example"}})
	if err != nil {
		t.Fatal(err)
	}
	a := sales.Address
	if a.Email != "Sales@acme.example" || a.Kind != mailboxesv1.AddressKind_ADDRESS_KIND_MAILBOX || len(a.Users) != 3 || strings.Join(a.Aliases, ",") != "vente,verkauf" {
		t.Errorf("address %v", a)
	}
	if !strings.HasPrefix(sales.InvitationLinks["temp@partner.example"], "https://app.mailplane.test/invitations/") {
		t.Errorf("invitation links %v", sales.InvitationLinks)
	}

	bad := []struct {
		name  string
		a     *mailboxesv1.Address
		acc   *mailboxesv1.AddressAccess
		code  codes.Code
		field string
	}{
		{"same local part, other case", &mailboxesv1.Address{LocalPart: "sales"}, nil, codes.AlreadyExists, ""},
		{"an alias's local part", &mailboxesv1.Address{LocalPart: "VENTE"}, nil, codes.InvalidArgument, "address.localPart"},
		{"an alias taken as an alias", &mailboxesv1.Address{LocalPart: "fresh", Aliases: []string{"free", "verkauf"}}, nil, codes.InvalidArgument, "address.aliases[1]"},
		{"an alias taken as an address", &mailboxesv1.Address{LocalPart: "fresh", Aliases: []string{"SALES"}}, nil, codes.AlreadyExists, ""},
		{"its own local part as an alias", &mailboxesv1.Address{LocalPart: "Fresh", Aliases: []string{"fresh"}}, nil, codes.InvalidArgument, "address.aliases"},
		{"two dots", &mailboxesv1.Address{LocalPart: "a..b"}, nil, codes.InvalidArgument, "address.localPart"},
		{"a space", &mailboxesv1.Address{LocalPart: "a b"}, nil, codes.InvalidArgument, "address.localPart"},
		{"65 bytes", &mailboxesv1.Address{LocalPart: strings.Repeat("a", 65)}, nil, codes.InvalidArgument, "address.localPart"},
		{"mailer-daemon", &mailboxesv1.Address{LocalPart: "MAILER-DAEMON"}, nil, codes.InvalidArgument, "address.localPart"},
		{"no-reply postmaster", &mailboxesv1.Address{LocalPart: "postmaster", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_NO_REPLY}, nil, codes.InvalidArgument, "address.kind"},
		{"redirect without destinations", &mailboxesv1.Address{LocalPart: "fw", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT}, nil, codes.InvalidArgument, "address.redirectDestinations"},
		{"redirect to garbage", &mailboxesv1.Address{LocalPart: "fw", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT, RedirectDestinations: []string{"ok@x.example", "nope"}}, nil, codes.InvalidArgument, "address.redirectDestinations[1]"},
		{"redirect with users", &mailboxesv1.Address{LocalPart: "fw", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT, RedirectDestinations: []string{"ok@x.example"}}, &mailboxesv1.AddressAccess{Caller: true}, codes.InvalidArgument, "access"},
		{"a non-member as user", &mailboxesv1.Address{LocalPart: "x"}, &mailboxesv1.AddressAccess{Users: []string{outsider.user}}, codes.InvalidArgument, "access.users[0]"},
		{"a bad invitee", &mailboxesv1.Address{LocalPart: "x"}, &mailboxesv1.AddressAccess{InviteEmails: []string{"nope"}}, codes.InvalidArgument, "access.inviteEmails[0]"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := create(tt.a, tt.acc)
			wantCode(t, err, tt.code)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}
	// The same person invited twice is invited once.
	twice, err := create(&mailboxesv1.Address{LocalPart: "guests"}, &mailboxesv1.AddressAccess{InviteEmails: []string{"Guest@Partner.example", "guest@partner.example"}})
	if err != nil || len(twice.GetAddress().GetUsers()) != 1 {
		t.Errorf("invited twice: %v, %v", twice.GetAddress().GetUsers(), err)
	}
	// A refused create leaves nothing: "fresh" and its free alias are free.
	if _, err := create(&mailboxesv1.Address{LocalPart: "fresh", Aliases: []string{"free"}}, nil); err != nil {
		t.Errorf("after refused creates: %v", err)
	}

	// Special addresses.
	_, err = create(&mailboxesv1.Address{Kind: mailboxesv1.AddressKind_ADDRESS_KIND_CATCH_ALL}, nil)
	if wantCode(t, err, codes.InvalidArgument); field(err) != "address.redirectDestinations" {
		t.Errorf("catch-all without a destination: %v", err)
	}
	catchAll := &mailboxesv1.Address{Kind: mailboxesv1.AddressKind_ADDRESS_KIND_CATCH_ALL, RedirectDestinations: []string{"Sales@acme.example"}}
	if _, err := create(catchAll, nil); err != nil {
		t.Fatal(err)
	}
	_, err = create(catchAll, nil)
	wantCode(t, err, codes.AlreadyExists)
	if _, err := create(&mailboxesv1.Address{LocalPart: "no-reply", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_NO_REPLY}, &mailboxesv1.AddressAccess{Caller: true}); err != nil {
		t.Fatal(err)
	}
	fw, err := create(&mailboxesv1.Address{LocalPart: "fw", Kind: mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT, RedirectDestinations: []string{"Boss@Elsewhere.example", "sales@acme.example"}}, nil)
	if err != nil || strings.Join(fw.Address.RedirectDestinations, ",") != "boss@elsewhere.example,sales@acme.example" {
		t.Fatalf("redirect: %v %v", fw, err)
	}
	// Nobody yet: the address exists with no user.
	if _, err := create(&mailboxesv1.Address{LocalPart: "info"}, nil); err != nil {
		t.Fatal(err)
	}

	// Reservations keep local parts for other services.
	res, err := e.reserve.CreateReservation(owner.ctx, &mailboxesv1.CreateReservationRequest{Parent: parent, LocalPart: "Team", Holder: "lists"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = create(&mailboxesv1.Address{LocalPart: "team"}, nil)
	if wantCode(t, err, codes.InvalidArgument); !strings.Contains(status.Convert(err).Message(), "lists") {
		t.Errorf("reserved: %v", err)
	}
	_, err = e.reserve.CreateReservation(owner.ctx, &mailboxesv1.CreateReservationRequest{Parent: parent, LocalPart: "sales", Holder: "lists"})
	wantCode(t, err, codes.AlreadyExists)
	if _, err := e.reserve.DeleteReservation(owner.ctx, &mailboxesv1.DeleteReservationRequest{Name: res.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := create(&mailboxesv1.Address{LocalPart: "team"}, nil); err != nil {
		t.Errorf("after release: %v", err)
	}

	// Members see only what they were given.
	if _, err := e.addrs.GetAddress(anna.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name}); err != nil {
		t.Errorf("anna reads her address: %v", err)
	}
	_, err = e.addrs.GetAddress(bob.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	wantCode(t, err, codes.NotFound)
	_, err = e.addrs.GetAddress(outsider.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	wantCode(t, err, codes.NotFound)
	annaList, _ := e.addrs.ListAddresses(anna.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent})
	bobList, _ := e.addrs.ListAddresses(bob.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent})
	if len(annaList.GetAddresses()) != 1 || len(bobList.GetAddresses()) != 0 {
		t.Errorf("anna sees %d, bob %d addresses", len(annaList.GetAddresses()), len(bobList.GetAddresses()))
	}
	var names []string
	token := ""
	for {
		page, err := e.addrs.ListAddresses(owner.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page.Addresses {
			names = append(names, x.LocalPart)
		}
		if token = page.NextPageToken; token == "" {
			break
		}
	}
	if got := strings.Join(names, ","); got != "*,fresh,fw,guests,info,no-reply,Sales,team" {
		t.Errorf("owner's pages: %s", got)
	}
	_, err = e.addrs.UpdateAddress(anna.ctx, &mailboxesv1.UpdateAddressRequest{Address: &mailboxesv1.Address{Name: a.Name}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"quota_bytes"}}})
	wantCode(t, err, codes.PermissionDenied)

	// The access list changes: bob in (without the devices right), anna out.
	up, err := e.addrs.UpdateAddress(owner.ctx, &mailboxesv1.UpdateAddressRequest{
		Address:    &mailboxesv1.Address{Name: a.Name, Users: []*mailboxesv1.AddressUser{{User: bob.user, Rights: &mailboxesv1.Rights{AutoReply: true}}}, Aliases: []string{"ventes"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"users", "aliases"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Address.Users) != 1 || up.Address.Users[0].User != bob.user || up.Address.Users[0].Rights.Devices || strings.Join(up.Address.Aliases, ",") != "ventes" {
		t.Errorf("updated %v", up.Address)
	}
	_, err = e.addrs.GetAddress(anna.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	wantCode(t, err, codes.NotFound)
	if _, err := create(&mailboxesv1.Address{LocalPart: "vente"}, nil); err != nil {
		t.Errorf("a dropped alias is free again: %v", err)
	}

	// The usage Dovecot reports shows on the address, and goes with it.
	if _, err := e.pool.Exec(context.Background(), "INSERT INTO dovecot_quota (login, bytes) VALUES ('sales@acme.example', 12345)"); err != nil {
		t.Fatal(err)
	}
	if got, err := e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name}); err != nil || got.GetAddress().GetUsageBytes() != 12345 {
		t.Errorf("usage %d (%v), want 12345", got.GetAddress().GetUsageBytes(), err)
	}
	if _, err := e.addrs.DeleteAddress(owner.ctx, &mailboxesv1.DeleteAddressRequest{Name: a.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = e.addrs.GetAddress(owner.ctx, &mailboxesv1.GetAddressRequest{Name: a.Name})
	wantCode(t, err, codes.NotFound)
	var usage int
	if e.pool.QueryRow(context.Background(), "SELECT count(*) FROM dovecot_quota").Scan(&usage); usage != 0 {
		t.Errorf("%d usage rows left after the address was deleted", usage)
	}

	var events, audits int
	e.pool.QueryRow(context.Background(), "SELECT count(*) FILTER (WHERE subject LIKE 'mailboxes.address.%'), count(*) FILTER (WHERE subject = 'mailboxes.audit.recorded') FROM outbox").Scan(&events, &audits)
	if events < 8 || audits < 10 {
		t.Errorf("%d address events and %d audit records in the outbox", events, audits)
	}
}

// TestConcurrentCreates: creates arriving together are committed together
// (pg.Group), yet each answers on its own: of three creates of one local
// part (in any case) exactly one succeeds and the others learn that it is
// taken, and an alias two creates both want goes to one of them.
func TestConcurrentCreates(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "busy.example"}})
	if err != nil {
		t.Fatal(err)
	}
	type attempt struct {
		local, alias string
		err          error
	}
	var attempts []*attempt
	for i := range 10 {
		for _, local := range []string{fmt.Sprintf("team%d", i), fmt.Sprintf("Team%d", i), fmt.Sprintf("TEAM%d", i)} {
			attempts = append(attempts, &attempt{local: local})
		}
		attempts = append(attempts, &attempt{local: fmt.Sprintf("solo%d", i)})
	}
	attempts = append(attempts, &attempt{local: "left", alias: "both"}, &attempt{local: "right", alias: "both"})
	var wg sync.WaitGroup
	for _, a := range attempts {
		wg.Go(func() {
			in := &mailboxesv1.Address{LocalPart: a.local}
			if a.alias != "" {
				in.Aliases = []string{a.alias}
			}
			_, a.err = e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.MailService.Name, Address: in})
		})
	}
	wg.Wait()

	created := map[string]int{} // lower-cased local part -> creates that succeeded
	for _, a := range attempts {
		key := strings.ToLower(a.local)
		if a.alias != "" {
			key = a.alias
		}
		switch st := status.Convert(a.err); {
		case a.err == nil:
			created[key]++
		case st.Code() == codes.AlreadyExists && a.alias == "":
		case st.Code() == codes.InvalidArgument && a.alias != "" && field(a.err) == "address.aliases[0]":
		default:
			t.Errorf("create %q: %v %q", a.local, st.Code(), st.Message())
		}
	}
	for i := range 10 {
		for _, key := range []string{fmt.Sprintf("team%d", i), fmt.Sprintf("solo%d", i)} {
			if created[key] != 1 {
				t.Errorf("%s created %d times, want once", key, created[key])
			}
		}
	}
	if created["both"] != 1 {
		t.Errorf("the shared alias went to %d addresses, want one", created["both"])
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM addresses`).Scan(&n); err != nil || n != 21 {
		t.Errorf("%d addresses stored (%v), want 21", n, err)
	}
}
