package access_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// fakeAccounts answers GetMember and BatchGetMembers from roles, for callers
// who present a token, counting the calls. While gate is set, GetMember
// waits for it to close.
type fakeAccounts struct {
	accountsv1.UnimplementedOrganizationServiceServer
	roles   map[string]accountsv1.Role // member name → role
	gets    atomic.Int32
	batches atomic.Int32
	gate    chan struct{}
	err     error // answered instead, when set
}

func (f *fakeAccounts) GetMember(ctx context.Context, req *accountsv1.GetMemberRequest) (*accountsv1.GetMemberResponse, error) {
	f.gets.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	r, ok := f.roles[req.GetName()]
	if !ok {
		return nil, status.Error(codes.NotFound, "member not found")
	}
	return &accountsv1.GetMemberResponse{Member: member(req.GetName(), r)}, nil
}

func (f *fakeAccounts) BatchGetMembers(ctx context.Context, req *accountsv1.BatchGetMembersRequest) (*accountsv1.BatchGetMembersResponse, error) {
	f.batches.Add(1)
	if err := f.check(ctx); err != nil {
		return nil, err
	}
	if len(req.GetNames()) > 1000 || !req.GetAllowMissing() {
		return nil, status.Error(codes.InvalidArgument, "bad batch")
	}
	resp := &accountsv1.BatchGetMembersResponse{}
	for _, n := range req.GetNames() {
		if r, ok := f.roles[n]; ok {
			resp.Members = append(resp.Members, member(n, r))
		}
	}
	return resp, nil
}

// check refuses a call without the caller's token, which must travel on.
func (f *fakeAccounts) check(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if len(md.Get("authorization")) == 0 {
		return status.Error(codes.Unauthenticated, "no token")
	}
	return f.err
}

func member(name string, r accountsv1.Role) *accountsv1.Member {
	user := name[strings.LastIndex(name, "/")+1:]
	return &accountsv1.Member{Name: name, User: "users/" + user, Role: r}
}

// serve runs f on a real gRPC server and returns a client connection to it.
func serve(t testing.TB, f *fakeAccounts) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	accountsv1.RegisterOrganizationServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// as returns a context of a request from user, as the gRPC server hands
// it to a handler: verified principal and incoming token.
func as(ctx context.Context, p auth.Principal) context.Context {
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer t"))
	return auth.WithPrincipal(ctx, p)
}

func name(org, user uuid.UUID) string {
	return "organizations/" + org.String() + "/members/" + user.String()
}

func TestAccess(t *testing.T) {
	org, other := uuid.New(), uuid.New()
	admin, stranger := uuid.New(), uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{name(org, admin): accountsv1.Role_ROLE_ADMIN}}
	roles := access.NewRoles(access.NewAccounts(serve(t, f)), 5*time.Second)
	token := uuid.New()
	tests := []struct {
		name     string
		p        auth.Principal
		org      uuid.UUID
		want     access.Role
		kind     errs.Kind
		wantGets int32
	}{
		{"a member", auth.Principal{UserID: admin.String()}, org, access.Admin, 0, 1},
		{"a member's other organization", auth.Principal{UserID: admin.String()}, other, "", errs.NotFound, 1},
		{"a stranger", auth.Principal{UserID: stranger.String()}, org, "", errs.NotFound, 1},
		{"a token in its organization", auth.Principal{TokenID: token.String(), OrganizationID: org.String(), Role: "member"}, org, access.Member, 0, 0},
		{"a token elsewhere", auth.Principal{TokenID: token.String(), OrganizationID: org.String(), Role: "owner"}, other, "", errs.NotFound, 0},
		{"a token with no role", auth.Principal{TokenID: token.String(), OrganizationID: org.String()}, org, "", errs.Unauthenticated, 0},
		{"a bad user id", auth.Principal{UserID: "me"}, org, "", errs.Unauthenticated, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.gets.Load()
			_, got, err := roles.Access(as(t.Context(), tt.p), tt.org)
			if tt.kind != 0 {
				if !errs.Is(err, tt.kind) {
					t.Fatalf("err %v, want kind %v", err, tt.kind)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("role %q, want %q", got, tt.want)
			}
			if n := f.gets.Load() - before; n != tt.wantGets {
				t.Errorf("%d GetMember calls, want %d", n, tt.wantGets)
			}
		})
	}
	if _, _, err := roles.Access(context.Background(), org); !errs.Is(err, errs.Unauthenticated) {
		t.Errorf("no caller: %v, want Unauthenticated", err)
	}
}

// Accounts' refusals are translated, never forwarded: PermissionDenied is
// NotFound (and remembered, as a non-member is), unreachable is Unavailable
// (which a caller may retry). Other errors are not remembered.
func TestAccessAccountsErrors(t *testing.T) {
	org, user := uuid.New(), uuid.New()
	for _, tt := range []struct {
		err   error
		want  codes.Code
		calls int32
	}{
		{status.Error(codes.PermissionDenied, "no"), codes.NotFound, 1},
		{status.Error(codes.Unauthenticated, "expired"), codes.Unauthenticated, 2},
		{status.Error(codes.Unavailable, "down"), codes.Unavailable, 2},
		{status.Error(codes.Internal, "boom"), codes.Internal, 2},
	} {
		f := &fakeAccounts{err: tt.err}
		roles := access.NewRoles(access.NewAccounts(serve(t, f)), 5*time.Second)
		_, _, err := roles.Access(as(t.Context(), auth.Principal{UserID: user.String()}), org)
		if got := grpcserver.Status(err).Code(); got != tt.want {
			t.Errorf("accounts answering %v: %v (%v), want %v", status.Code(tt.err), got, err, tt.want)
		}
		roles.Access(as(t.Context(), auth.Principal{UserID: user.String()}), org)
		if n := f.gets.Load(); n != tt.calls {
			t.Errorf("accounts answering %v: %d calls for two lookups, want %d", status.Code(tt.err), n, tt.calls)
		}
	}
}

// A role is remembered for the TTL, a non-member's answer too, and asked
// again after.
func TestRolesCache(t *testing.T) {
	org := uuid.New()
	member, stranger := uuid.New(), uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{name(org, member): accountsv1.Role_ROLE_MEMBER}}
	roles := access.NewRoles(access.NewAccounts(serve(t, f)), 5*time.Second)
	now := time.Now()
	roles.SetClock(func() time.Time { return now })
	lookup := func(user uuid.UUID) error {
		_, _, err := roles.Access(as(t.Context(), auth.Principal{UserID: user.String()}), org)
		return err
	}
	for range 3 {
		if err := lookup(member); err != nil {
			t.Fatal(err)
		}
		if err := lookup(stranger); !errs.Is(err, errs.NotFound) {
			t.Fatalf("stranger: %v, want NotFound", err)
		}
	}
	if n := f.gets.Load(); n != 2 {
		t.Errorf("%d GetMember calls for 3 lookups each of 2 users, want 2", n)
	}
	now = now.Add(5 * time.Second)
	lookup(member)
	lookup(stranger)
	if n := f.gets.Load(); n != 4 {
		t.Errorf("%d GetMember calls after the TTL, want 4", n)
	}
}

// Eight concurrent lookups of one caller's role (a page firing eight calls)
// make one call to accounts, even with no cache.
func TestRolesSingleflight(t *testing.T) {
	org, user := uuid.New(), uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{name(org, user): accountsv1.Role_ROLE_OWNER}, gate: make(chan struct{})}
	roles := access.NewRoles(access.NewAccounts(serve(t, f)), 0)
	var joined atomic.Int32
	roles.OnJoin(func() {
		if joined.Add(1) == 8 {
			close(f.gate) // everyone waits on the one call: let it answer
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, r, err := roles.Access(as(t.Context(), auth.Principal{UserID: user.String()}), org)
			if err != nil || r != access.Owner {
				t.Errorf("role %q, %v; want owner", r, err)
			}
		})
	}
	wg.Wait()
	if n := f.gets.Load(); n != 1 {
		t.Errorf("%d GetMember calls for 8 concurrent lookups, want 1", n)
	}
}

// The caller who started a shared lookup may give up; the others still get
// the answer.
func TestRolesFirstCallerCancels(t *testing.T) {
	org, user := uuid.New(), uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{name(org, user): accountsv1.Role_ROLE_ADMIN}, gate: make(chan struct{})}
	roles := access.NewRoles(access.NewAccounts(serve(t, f)), 0)
	var joined atomic.Int32
	first, cancel := context.WithCancel(t.Context())
	roles.OnJoin(func() {
		if joined.Add(1) == 1 {
			cancel()
		}
	})
	p := auth.Principal{UserID: user.String()}
	if _, _, err := roles.Access(as(first, p), org); err == nil {
		t.Fatal("a cancelled caller got an answer")
	}
	roles.OnJoin(func() { close(f.gate) })
	_, r, err := roles.Access(as(t.Context(), p), org)
	if err != nil || r != access.Admin {
		t.Fatalf("role %q, %v; want admin", r, err)
	}
	if n := f.gets.Load(); n != 1 {
		t.Errorf("%d GetMember calls, want 1 (the second caller joins the first's)", n)
	}
}

// Members asks in batches of at most 1000 and leaves non-members out.
func TestAccountsMembers(t *testing.T) {
	org := uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{}}
	var users []uuid.UUID
	want := map[uuid.UUID]access.Role{}
	for i := range 1500 {
		u := uuid.New()
		users = append(users, u)
		if i%2 == 0 {
			f.roles[name(org, u)] = accountsv1.Role_ROLE_MEMBER
			want[u] = access.Member
		}
	}
	ctx := as(t.Context(), auth.Principal{UserID: users[0].String()})
	got, err := access.NewAccounts(serve(t, f)).Members(ctx, org, users)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d members, want %d", len(got), len(want))
	}
	for u, r := range want {
		if got[u] != r {
			t.Fatalf("user %s: %q, want %q", u, got[u], r)
		}
	}
	if n := f.batches.Load(); n != 2 {
		t.Errorf("%d BatchGetMembers calls for 1500 users, want 2", n)
	}
}

// BenchmarkEightConcurrentLookups reports the calls to accounts that eight
// concurrent lookups of a new caller's role make (rpcs/op): one.
func BenchmarkEightConcurrentLookups(b *testing.B) {
	org := uuid.New()
	f := &fakeAccounts{roles: map[string]accountsv1.Role{}}
	conn := serve(b, f)
	src := access.NewAccounts(conn)
	users := make([]uuid.UUID, b.N)
	for i := range users {
		users[i] = uuid.New()
		f.roles[name(org, users[i])] = accountsv1.Role_ROLE_MEMBER
	}
	b.ResetTimer()
	for i := range b.N {
		roles := access.NewRoles(src, 5*time.Second)
		ctx := as(context.Background(), auth.Principal{UserID: users[i].String()})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if _, _, err := roles.Access(ctx, org); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(f.gets.Load())/float64(b.N), "rpcs/op")
}
