package lists_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/mailboxes"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

type env struct {
	t        *testing.T
	accounts *fakeAccounts
	srv      *servicetest.Server
	pool     *pgxpool.Pool
	lists    listsv1.ListServiceClient
	members  listsv1.MemberServiceClient
	addrs    mailboxesv1.AddressServiceClient
	org      uuid.UUID
	admin    context.Context
	ms       string // a verified mail service, example.test
}

// start runs mailboxes and lists on one gRPC server, as `mailplane dev`
// does, against a fresh database, with one organization (its callers are
// API tokens, whose role mailboxes and lists read from the token) owning a
// verified mail service, example.test.
func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t,
		pgtest.Schema{Name: mailboxes.Schema, Migrations: mailboxes.Migrations},
		pgtest.Schema{Name: lists.Schema, Migrations: lists.Migrations})
	pools := map[string]*pgxpool.Pool{}
	for _, schema := range []string{mailboxes.Schema, lists.Schema} {
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
	resolver, err := dns.NewResolver(zone.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	org := uuid.Must(uuid.NewV7())
	accounts := &fakeAccounts{org: org, emails: map[string]string{modUser: modEmail}}
	s := servicetest.Start(t, func(s *servicetest.Server) error {
		accountsv1.RegisterOrganizationServiceServer(s.GRPC.Server, accounts)
		if _, err := mailboxes.Register(s.GRPC.Server, pools[mailboxes.Schema], mailboxes.Config{AccountsAddr: s.Addr}, resolver, s.Log); err != nil {
			return err
		}
		_, err := lists.Register(s.GRPC.Server, pools[lists.Schema], lists.Config{AccountsAddr: s.Addr, MailboxesAddr: s.Addr, EdgeURL: "http://localhost:8080"}, s.Log)
		return err
	})
	e := &env{t: t, srv: s, pool: pools[lists.Schema], lists: listsv1.NewListServiceClient(s.Conn), members: listsv1.NewMemberServiceClient(s.Conn),
		addrs: mailboxesv1.NewAddressServiceClient(s.Conn), org: org, accounts: accounts}
	e.admin = e.as(e.org, "admin")
	services := mailboxesv1.NewMailServiceServiceClient(s.Conn)
	created, err := services.CreateMailService(e.admin, &mailboxesv1.CreateMailServiceRequest{Parent: "organizations/" + e.org.String(), MailService: &mailboxesv1.MailService{Domain: "example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := created.GetMailService().GetVerificationRecord()
	zone.SetTXT(rec.GetName(), 0, rec.GetValue())
	if _, err := services.VerifyMailService(e.admin, &mailboxesv1.VerifyMailServiceRequest{Name: created.GetMailService().GetName()}); err != nil {
		t.Fatal(err)
	}
	e.ms = created.GetMailService().GetName()
	return e
}

// modUser is a member of the test's organization, modEmail their login.
const (
	modUser  = "users/0193d2a5-0000-7000-8000-000000000001"
	modEmail = "mod@example.org"
)

// fakeAccounts stands for the accounts service: BatchGetMembers answers
// the members of org it knows (user name to login email), for callers of
// org only, as accounts does.
type fakeAccounts struct {
	accountsv1.UnimplementedOrganizationServiceServer
	org    uuid.UUID
	mu     sync.Mutex
	emails map[string]string
}

func (f *fakeAccounts) BatchGetMembers(ctx context.Context, req *accountsv1.BatchGetMembersRequest) (*accountsv1.BatchGetMembersResponse, error) {
	p, _ := auth.FromContext(ctx)
	if req.GetParent() != "organizations/"+f.org.String() || p.OrganizationID != f.org.String() {
		return nil, status.Error(codes.NotFound, "organization not found")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &accountsv1.BatchGetMembersResponse{}
	for _, n := range req.GetNames() {
		user := "users/" + n[strings.LastIndexByte(n, '/')+1:]
		if email, ok := f.emails[user]; ok {
			resp.Members = append(resp.Members, &accountsv1.Member{Name: n, User: user, Email: email, Role: accountsv1.Role_ROLE_MEMBER})
		} else if !req.GetAllowMissing() {
			return nil, status.Error(codes.NotFound, "member not found")
		}
	}
	return resp, nil
}

// as is a caller with role in org, through an API token.
func (e *env) as(org uuid.UUID, role string) context.Context {
	return e.srv.As(e.t, auth.Principal{TokenID: uuid.NewString(), OrganizationID: org.String(), Role: role})
}

func (e *env) createAddress(localPart string) error {
	_, err := e.addrs.CreateAddress(e.admin, &mailboxesv1.CreateAddressRequest{Parent: e.ms, Address: &mailboxesv1.Address{LocalPart: localPart}})
	return err
}

func wantCode(t *testing.T, err error, want codes.Code, mention string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != want {
		t.Fatalf("got %v, want %v", err, want)
	}
	text := st.Message()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				text += " " + v.GetField()
			}
		}
	}
	if mention != "" && !strings.Contains(text, mention) {
		t.Errorf("error %v does not mention %s", err, mention)
	}
}

// TestListLifecycle: a list reserves its address and robot addresses in
// mailboxes, so no address can take them; it is read, listed and
// updated; deleting it gives the addresses back.
func TestListLifecycle(t *testing.T) {
	e := start(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{
		LocalPart: "Team", Description: "The team", SubjectPrefix: "[team]", ModeratorPassword: "a long moderator secret",
		Moderators: []*listsv1.Moderator{{Email: "boss@elsewhere.example"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := created.GetList()
	if l.GetAddress() != "Team@example.test" || l.GetDisplayName() != "Team" || !l.GetHasModeratorPassword() || l.GetModeratorPassword() != "" ||
		l.GetLanguage() != listsv1.Language_LANGUAGE_EN || l.GetSubscriptionPolicy() != listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM ||
		l.GetPostingPolicy() != listsv1.PostingPolicy_POSTING_POLICY_MEMBERS || l.GetReplyTo() != listsv1.ReplyTo_REPLY_TO_SENDER ||
		l.GetMaxMessageBytes() != 10<<20 {
		t.Errorf("created = %v", l)
	}
	for _, lp := range []string{"team", "TEAM-request", "team-join", "team-leave", "team-owner", "team-bounces", "team-confirm"} {
		if err := e.createAddress(lp); !strings.Contains(status.Convert(err).Message(), "reserved by the lists service") {
			t.Errorf("address %s while the list holds it: %v, want it refused as reserved by the lists service", lp, err)
		}
	}
	got, err := e.lists.GetList(e.as(e.org, "member"), &listsv1.GetListRequest{Name: l.GetName()})
	if err != nil || got.GetList().GetDescription() != "The team" {
		t.Errorf("get as a member: %v, %v", got, err)
	}
	page, err := e.lists.ListLists(e.admin, &listsv1.ListListsRequest{Parent: e.ms})
	if err != nil || len(page.GetLists()) != 1 {
		t.Errorf("list lists: %v, %v", page, err)
	}
	up, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: &listsv1.List{Name: l.GetName(), ReplyTo: listsv1.ReplyTo_REPLY_TO_VIA_LIST, Description: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"reply_to"}}})
	if err != nil || up.GetList().GetReplyTo() != listsv1.ReplyTo_REPLY_TO_VIA_LIST || up.GetList().GetDescription() != "The team" || up.GetList().GetLocalPart() != "Team" {
		t.Errorf("update reply_to: %v, %v", up.GetList(), err)
	}
	if _, err := e.lists.DeleteList(e.admin, &listsv1.DeleteListRequest{Name: l.GetName()}); err != nil {
		t.Fatal(err)
	}
	for _, lp := range []string{"team", "team-request", "team-bounces"} {
		if err := e.createAddress(lp); err != nil {
			t.Errorf("address %s once the list is deleted: %v", lp, err)
		}
	}
	_, err = e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: l.GetName()})
	wantCode(t, err, codes.NotFound, "")
}

// TestTakenAddress: a list whose address or a robot address is taken is
// refused, naming it, and reserves nothing.
func TestTakenAddress(t *testing.T) {
	e := start(t)
	if err := e.createAddress("news-join"); err != nil {
		t.Fatal(err)
	}
	_, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "news"}})
	wantCode(t, err, codes.AlreadyExists, "news-join@example.test")
	for _, lp := range []string{"news", "news-request"} {
		if err := e.createAddress(lp); err != nil {
			t.Errorf("address %s after the refused list: %v (its reservation was kept)", lp, err)
		}
	}
}

// TestAccessAndInput: members read, admins act, another organization gets
// NotFound; bad input names its field.
func TestAccessAndInput(t *testing.T) {
	e := start(t)
	_, err := e.lists.CreateList(e.as(e.org, "member"), &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "x"}})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.lists.CreateList(e.as(uuid.Must(uuid.NewV7()), "owner"), &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "x"}})
	wantCode(t, err, codes.NotFound, "")
	for _, c := range []struct {
		list  *listsv1.List
		field string
	}{
		{&listsv1.List{LocalPart: "bad local"}, "list.localPart"},
		{&listsv1.List{LocalPart: "-x"}, "list.localPart"},
		{&listsv1.List{LocalPart: strings.Repeat("a", 51)}, "list.localPart"},
		{&listsv1.List{LocalPart: "ok", Moderators: []*listsv1.Moderator{{Email: "not an email"}}}, "list.moderators[0].email"},
		{&listsv1.List{LocalPart: "ok", Moderators: []*listsv1.Moderator{{}}}, "list.moderators[0]"},
		{&listsv1.List{LocalPart: "ok", MaxMessageBytes: 1 << 40}, "list.maxMessageBytes"},
		{&listsv1.List{LocalPart: "ok", ModeratorPassword: "short"}, "list.moderatorPassword"},
		{&listsv1.List{LocalPart: "ok", Language: 99}, "list.language"},
	} {
		_, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: c.list})
		wantCode(t, err, codes.InvalidArgument, c.field)
	}
}

// TestMembers: a moderator adds members (once each), they are listed by
// address with a search and a count, and removing one erases the address,
// keeping only when consent was given and withdrawn.
func TestMembers(t *testing.T) {
	e := start(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "club"}})
	if err != nil {
		t.Fatal(err)
	}
	list := created.GetList().GetName()
	var names []string
	for _, email := range []string{"ann@example.org", "Bob@Example.org", "anna@example.net", "carl@example.com"} {
		m, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: email}})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.GetMember().GetName())
	}
	_, err = e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: "Bob@EXAMPLE.ORG"}})
	wantCode(t, err, codes.AlreadyExists, "")
	_, err = e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: "nope"}})
	wantCode(t, err, codes.InvalidArgument, "member.email")
	_, err = e.members.CreateMember(e.as(e.org, "member"), &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: "eve@example.org"}})
	wantCode(t, err, codes.PermissionDenied, "")

	emails := func(req *listsv1.ListMembersRequest) ([]string, int32, string) {
		t.Helper()
		req.Parent = list
		resp, err := e.members.ListMembers(e.as(e.org, "member"), req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range resp.GetMembers() {
			out = append(out, m.GetEmail())
		}
		return out, resp.GetTotalSize(), resp.GetNextPageToken()
	}
	got, total, _ := emails(&listsv1.ListMembersRequest{Filter: `email = "ANN*"`})
	if want := []string{"ann@example.org", "anna@example.net"}; !slices.Equal(got, want) || total != 2 {
		t.Errorf("search ann*: %q (%d), want %q", got, total, want)
	}
	got, _, _ = emails(&listsv1.ListMembersRequest{Filter: `email = "bob@example.org"`})
	if want := []string{"Bob@Example.org"}; !slices.Equal(got, want) {
		t.Errorf("exact bob: %q, want %q", got, want)
	}
	first, total, next := emails(&listsv1.ListMembersRequest{PageSize: 3})
	rest, _, last := emails(&listsv1.ListMembersRequest{PageSize: 3, PageToken: next})
	if len(first) != 3 || len(rest) != 1 || total != 4 || next == "" || last != "" {
		t.Errorf("pages: %q then %q (total %d)", first, rest, total)
	}

	if _, err := e.members.DeleteMember(e.admin, &listsv1.DeleteMemberRequest{Name: names[0]}); err != nil {
		t.Fatal(err)
	}
	_, err = e.members.DeleteMember(e.admin, &listsv1.DeleteMemberRequest{Name: names[0]})
	wantCode(t, err, codes.NotFound, "")
	var left, consents int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM members WHERE email ILIKE 'ann@%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("ann's address after removal: %d rows (%v)", left, err)
	}
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM consents").Scan(&consents); err != nil || consents != 1 {
		t.Errorf("consent records: %d (%v), want 1", consents, err)
	}
	l, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: list})
	if err != nil || l.GetList().GetMemberCount() != 3 {
		t.Errorf("member count: %v, %v; want 3", l.GetList().GetMemberCount(), err)
	}
}
