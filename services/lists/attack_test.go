package lists_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/platform/attacktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// attackEnv is an organization with a list holding two members, and the
// names of every kind of resource the lists API takes.
type attackEnv struct {
	*env
	list, member, held, request, forms string
}

func startAttack(t *testing.T) *attackEnv {
	t.Helper()
	e := start(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "team"}})
	if err != nil {
		t.Fatal(err)
	}
	l := created.GetList().GetName()
	var member string
	for _, addr := range []string{"a@example.org", "b@example.org"} {
		m, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: l, Member: &listsv1.Member{Email: addr}})
		if err != nil {
			t.Fatal(err)
		}
		member = m.GetMember().GetName()
	}
	return &attackEnv{env: e, list: l, member: member,
		held:    l + "/heldPosts/" + uuid.NewString(),
		request: l + "/subscriptionRequests/" + uuid.NewString(),
		forms:   l + "/formSettings"}
}

// suite is the attack on every unary method of the managers' services,
// each with the resource it acts on; a method added to the proto without
// a row here fails the test, so none escapes the attack.
func (e *attackEnv) suite() *attacktest.Suite {
	return &attacktest.Suite{
		Conn:  e.srv.Conn,
		Files: []protoreflect.FileDescriptor{listsv1.File_mailplane_lists_v1_lists_proto, listsv1.File_mailplane_lists_v1_forms_proto},
		Skip:  []string{"PublicFormService"}, // no caller to attack: see TestAttackPublic
		Targets: map[string]string{
			"CreateList": e.ms, "GetList": e.list, "ListLists": e.ms, "UpdateList": e.list, "DeleteList": e.list,
			"CreateMember": e.list, "BatchCreateMembers": e.list, "UpdateMember": e.member, "ListMembers": e.list, "DeleteMember": e.member,
			"EnableMemberDelivery": e.member, "ExportMembers": e.list,
			"ListHeldPosts": e.list, "AcceptHeldPost": e.held, "RejectHeldPost": e.held, "DiscardHeldPost": e.held,
			"ListSubscriptionRequests": e.list, "AcceptSubscriptionRequest": e.request,
			"RejectSubscriptionRequest": e.request, "DiscardSubscriptionRequest": e.request,
			"GetFormSettings": e.forms, "UpdateFormSettings": e.forms, "GenerateForms": e.list,
		},
		Reads: map[string]bool{"GetList": true, "ListLists": true, "ListMembers": true},
		Valid: valid,
		// Output only, or the resource's name on create.
		Ignored: []string{"list.name", "list.address", "member.name", "member.last_bounce_diagnostic"},
	}
}

// valid fills what a request needs besides its resource, so that a
// refusal is the attack's doing, not a missing field's.
func valid(m proto.Message) {
	switch r := m.(type) {
	case *listsv1.CreateListRequest:
		r.List = &listsv1.List{LocalPart: "fresh"}
	case *listsv1.UpdateListRequest:
		r.List.Description = "new"
		r.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"description"}}
	case *listsv1.CreateMemberRequest:
		r.Member = &listsv1.Member{Email: "new@example.org"}
	case *listsv1.BatchCreateMembersRequest:
		r.Requests = []*listsv1.CreateMemberRequest{{Parent: r.Parent, Member: &listsv1.Member{Email: "new@example.org"}}}
	case *listsv1.UpdateMemberRequest:
		r.Member.DisplayName = "New"
		r.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}
	case *listsv1.RejectHeldPostRequest:
		r.Reason = "no"
	case *listsv1.UpdateFormSettingsRequest:
		r.FormSettings.RedirectUrls = []string{"https://example.test/thanks"}
		r.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"redirect_urls", "allowed_origins"}}
	}
}

// TestAttackOtherOrganization: another organization's caller, naming this
// organization's resources as they are or under its own organization's
// id, is told NotFound by every method, and nothing changes.
func TestAttackOtherOrganization(t *testing.T) {
	e := startAttack(t)
	other := uuid.Must(uuid.NewV7())
	s := e.suite()
	for _, r := range s.Methods(t) {
		for _, target := range []string{r.Target, strings.Replace(r.Target, e.org.String(), other.String(), 1)} {
			for _, role := range []string{"owner", "member"} {
				err := s.Call(e.as(other, role), r, s.Request(t, r, target))
				// Under its own organization's name a member is refused
				// as a member before anything is looked up: no leak.
				own := target != r.Target
				if own && r.Name() == "ListLists" && err == nil {
					continue // an empty page: the mail service is not theirs; checked below
				}
				if own && role == "member" && !r.Read && status.Code(err) == codes.PermissionDenied {
					continue
				}
				if status.Code(err) != codes.NotFound {
					t.Errorf("%s on %s as another organization's %s: %v, want NotFound", r.Name(), target, role, err)
				}
			}
		}
	}
	if _, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: e.list}); err != nil {
		t.Errorf("the list after the attack: %v", err)
	}
	page, err := e.lists.ListLists(e.as(other, "owner"), &listsv1.ListListsRequest{Parent: strings.Replace(e.ms, e.org.String(), other.String(), 1)})
	if err != nil || len(page.GetLists()) != 0 {
		t.Errorf("another organization listing this one's mail service under its own name: %v, %v; want nothing", page, err)
	}
}

// TestAttackMemberRole: a member of the organization (not an admin) is
// refused every manager's method with PermissionDenied; read methods
// answer.
func TestAttackMemberRole(t *testing.T) {
	e := startAttack(t)
	member := e.as(e.org, "member")
	s := e.suite()
	for _, r := range s.Methods(t) {
		err := s.Call(member, r, s.Request(t, r, r.Target))
		switch {
		case r.Read && err != nil:
			t.Errorf("%s as a member: %v, want an answer", r.Name(), err)
		case !r.Read && status.Code(err) != codes.PermissionDenied:
			t.Errorf("%s as a member: %v, want PermissionDenied", r.Name(), err)
		}
	}
}

// TestAttackStrings: every string field of every request, at any depth,
// given a hostile value (the resource names too), is refused with
// InvalidArgument naming the field; nothing answers Internal.
func TestAttackStrings(t *testing.T) {
	e := startAttack(t)
	e.suite().Strings(t, e.admin)
}

// TestAttackPages: forged page tokens and sizes are refused or clamped,
// and a token from one list's pages does not page another's.
func TestAttackPages(t *testing.T) {
	e := startAttack(t)
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "other"}})
	if err != nil {
		t.Fatal(err)
	}
	other := created.GetList().GetName()
	if _, err := e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: other, Member: &listsv1.Member{Email: "z@example.org"}}); err != nil {
		t.Fatal(err)
	}
	page, err := e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list, PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	_, err = e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: other, PageToken: page.GetNextPageToken()})
	wantCode(t, err, codes.InvalidArgument, "pageToken")

	e.suite().PageTokens(t, e.admin, page.GetNextPageToken())
}

// TestAttackCaps: what a manager can push has a cap, refused naming it.
func TestAttackCaps(t *testing.T) {
	e := startAttack(t)
	mods := make([]*listsv1.Moderator, 51)
	for i := range mods {
		mods[i] = &listsv1.Moderator{Email: fmt.Sprintf("m%d@example.org", i)}
	}
	_, err := e.lists.UpdateList(e.admin, &listsv1.UpdateListRequest{List: &listsv1.List{Name: e.list, Moderators: mods}})
	wantCode(t, err, codes.InvalidArgument, "list.moderators")
	urls := make([]string, 21)
	for i := range urls {
		urls[i] = fmt.Sprintf("https://s%d.example/", i)
	}
	forms := listsv1.NewFormServiceClient(e.srv.Conn)
	_, err = forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: &listsv1.FormSettings{Name: e.forms, RedirectUrls: urls}})
	wantCode(t, err, codes.InvalidArgument, "formSettings.redirectUrls")
	_, err = forms.UpdateFormSettings(e.admin, &listsv1.UpdateFormSettingsRequest{FormSettings: &listsv1.FormSettings{Name: e.forms, AllowedOrigins: urls}})
	wantCode(t, err, codes.InvalidArgument, "formSettings.allowedOrigins")

	// 200 lists per mail service: the first made them one.
	for i := 1; i < 200; i++ {
		if _, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: fmt.Sprintf("l%d", i)}}); err != nil {
			t.Fatalf("list %d: %v", i+1, err)
		}
	}
	_, err = e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "one-too-many"}})
	wantCode(t, err, codes.ResourceExhausted, "200")
}
