package lists_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
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

// rpc is one method of the lists API and the resource its request names.
type rpc struct {
	method protoreflect.MethodDescriptor
	target string
	// read: a member of the organization may call it.
	read bool
}

// rpcs is every unary method of the managers' services, each with the
// resource it acts on; a method added to the proto without a row here
// fails the test, so none escapes the attack.
func (e *attackEnv) rpcs(t *testing.T) []rpc {
	t.Helper()
	targets := map[string]string{
		"CreateList": e.ms, "GetList": e.list, "ListLists": e.ms, "UpdateList": e.list, "DeleteList": e.list,
		"CreateMember": e.list, "BatchCreateMembers": e.list, "UpdateMember": e.member, "ListMembers": e.list, "DeleteMember": e.member,
		"EnableMemberDelivery": e.member, "ExportMembers": e.list,
		"ListHeldPosts": e.list, "AcceptHeldPost": e.held, "RejectHeldPost": e.held, "DiscardHeldPost": e.held,
		"ListSubscriptionRequests": e.list, "AcceptSubscriptionRequest": e.request,
		"RejectSubscriptionRequest": e.request, "DiscardSubscriptionRequest": e.request,
		"GetFormSettings": e.forms, "UpdateFormSettings": e.forms, "GenerateForms": e.list,
	}
	reads := map[string]bool{"GetList": true, "ListLists": true, "ListMembers": true}
	var out []rpc
	for _, fd := range []protoreflect.FileDescriptor{listsv1.File_mailplane_lists_v1_lists_proto, listsv1.File_mailplane_lists_v1_forms_proto} {
		svcs := fd.Services()
		for i := range svcs.Len() {
			svc := svcs.Get(i)
			if svc.Name() == "PublicFormService" {
				continue // no caller to attack: see TestAttackPublic
			}
			ms := svc.Methods()
			for j := range ms.Len() {
				m := ms.Get(j)
				target, ok := targets[string(m.Name())]
				if !ok {
					t.Errorf("%s has no row in the attack table", m.FullName())
					continue
				}
				out = append(out, rpc{method: m, target: target, read: reads[string(m.Name())]})
			}
		}
	}
	return out
}

// request builds r's request naming target: its name or parent, or the
// name of the resource it carries (UpdateList's list).
func request(t *testing.T, r rpc, target string) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(r.method.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	m := mt.New()
	fields := m.Descriptor().Fields()
	for _, n := range []protoreflect.Name{"name", "parent"} {
		if fd := fields.ByName(n); fd != nil {
			m.Set(fd, protoreflect.ValueOfString(target))
			return valid(m.Interface())
		}
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() {
			if nfd := fd.Message().Fields().ByName("name"); nfd != nil {
				sub := m.Mutable(fd).Message()
				sub.Set(nfd, protoreflect.ValueOfString(target))
				return valid(m.Interface())
			}
		}
	}
	t.Fatalf("%s: no field to name %s in", r.method.FullName(), target)
	return nil
}

// valid fills what a request needs besides its resource, so that a
// refusal is the attack's doing, not a missing field's.
func valid(m proto.Message) proto.Message {
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
	return m
}

// ignored are fields a request may carry that the service does not read
// (output only, or the resource's name on create): any value is fine as
// long as nothing breaks.
var ignored = map[string]bool{
	"list.name": true, "list.address": true, "member.name": true, "member.last_bounce_diagnostic": true,
}

// call invokes r with req as ctx's caller and returns its error.
func (e *attackEnv) call(ctx context.Context, r rpc, req proto.Message) error {
	full := "/" + string(r.method.Parent().FullName()) + "/" + string(r.method.Name())
	resp, err := protoregistry.GlobalTypes.FindMessageByName(r.method.Output().FullName())
	if err != nil {
		return err
	}
	if r.method.IsStreamingServer() {
		s, err := e.srv.Conn.NewStream(ctx, &streamDesc, full)
		if err != nil {
			return err
		}
		if err := s.SendMsg(req); err != nil {
			return err
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		return s.RecvMsg(resp.New().Interface())
	}
	return e.srv.Conn.Invoke(ctx, full, req, resp.New().Interface())
}

var streamDesc = grpc.StreamDesc{ServerStreams: true}

// never are the codes an attack must not get: a bug, not an answer.
func never(t *testing.T, what string, err error) {
	t.Helper()
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DataLoss:
		t.Errorf("%s: %v", what, err)
	}
}

// TestAttackOtherOrganization: another organization's caller, naming this
// organization's resources as they are or under its own organization's
// id, is told NotFound by every method, and nothing changes.
func TestAttackOtherOrganization(t *testing.T) {
	e := startAttack(t)
	other := uuid.Must(uuid.NewV7())
	for _, r := range e.rpcs(t) {
		for _, target := range []string{r.target, strings.Replace(r.target, e.org.String(), other.String(), 1)} {
			for _, role := range []string{"owner", "member"} {
				err := e.call(e.as(other, role), r, request(t, r, target))
				// Under its own organization's name a member is refused
				// as a member before anything is looked up: no leak.
				own := target != r.target
				if own && r.method.Name() == "ListLists" && err == nil {
					continue // an empty page: the mail service is not theirs; checked below
				}
				if own && role == "member" && !r.read && status.Code(err) == codes.PermissionDenied {
					continue
				}
				if status.Code(err) != codes.NotFound {
					t.Errorf("%s on %s as another organization's %s: %v, want NotFound", r.method.Name(), target, role, err)
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
	for _, r := range e.rpcs(t) {
		err := e.call(member, r, request(t, r, r.target))
		switch {
		case r.read && err != nil:
			t.Errorf("%s as a member: %v, want an answer", r.method.Name(), err)
		case !r.read && status.Code(err) != codes.PermissionDenied:
			t.Errorf("%s as a member: %v, want PermissionDenied", r.method.Name(), err)
		}
	}
}

// hostile are values no text field takes.
var hostile = map[string]string{
	"NUL":         "a\x00b",
	"escape":      "a\x1b[31mb",
	"C1":          "a\u0085b",
	"bidi":        "a\u202eb",
	"DEL":         "a\x7fb",
	"a megabyte":  strings.Repeat("x", 1<<20),
	"header feed": "x\r\nBcc: victim@example.org",
}

// TestAttackStrings: every string field of every request, at any depth,
// given a hostile value (the resource names too), is refused with
// InvalidArgument naming the field; nothing answers Internal.
func TestAttackStrings(t *testing.T) {
	e := startAttack(t)
	for _, r := range e.rpcs(t) {
		for _, path := range stringFields(r.method.Input(), "", 0) {
			for what, v := range hostile {
				req := request(t, r, r.target)
				setPath(req.ProtoReflect(), path, v)
				err := e.call(e.admin, r, req)
				never(t, fmt.Sprintf("%s %s %s", r.method.Name(), path, what), err)
				if ignored[path[strings.LastIndex(path, "]")+1:]] || ignored[strings.TrimPrefix(path[strings.LastIndex(path, "]")+1:], ".")] {
					continue
				}
				multiline := what == "header feed" && multilineField(path)
				if status.Code(err) != codes.InvalidArgument && !multiline {
					t.Errorf("%s with %s in %s: %v, want InvalidArgument", r.method.Name(), what, path, err)
					continue
				}
				if err != nil && !multiline {
					wantCode(t, err, codes.InvalidArgument, jsonPath(r.method.Input(), path))
				}
			}
		}
	}
}

// multilineField: fields whose text may hold line breaks.
func multilineField(path string) bool {
	for _, f := range []string{"description", "footer_text", "footer_html", "welcome_message", "goodbye_message", "notice", "reason"} {
		if strings.HasSuffix(path, f) {
			return true
		}
	}
	return false
}

// stringFields lists the string fields of md, as dotted paths of field
// names (a list's first element "[0]"), two messages deep.
func stringFields(md protoreflect.MessageDescriptor, prefix string, depth int) []string {
	var out []string
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch {
		case fd.IsMap():
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			out = append(out, prefix+string(fd.Name())+"[0]")
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind && depth < 2:
			out = append(out, stringFields(fd.Message(), prefix+string(fd.Name())+"[0].", depth+1)...)
		case fd.IsList():
		case fd.Kind() == protoreflect.StringKind:
			out = append(out, prefix+string(fd.Name()))
		case fd.Kind() == protoreflect.MessageKind && depth < 2 && !strings.HasPrefix(string(fd.Message().FullName()), "google.protobuf"):
			out = append(out, stringFields(fd.Message(), prefix+string(fd.Name())+".", depth+1)...)
		}
	}
	return out
}

// setPath sets the string at path ("list.moderators[0].email") to v; a
// list gets one element.
func setPath(m protoreflect.Message, path, v string) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		name, isList := strings.CutSuffix(p, "[0]")
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if isList {
			// The first element, made when the request has none.
			l := m.Mutable(fd).List()
			if l.Len() == 0 {
				l.Append(l.NewElement())
			}
			m = l.Get(0).Message()
			continue
		}
		m = m.Mutable(fd).Message()
	}
	last := parts[len(parts)-1]
	name, isList := strings.CutSuffix(last, "[0]")
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if isList {
		l := m.Mutable(fd).List()
		l.Truncate(0)
		l.Append(protoreflect.ValueOfString(v))
		return
	}
	m.Set(fd, protoreflect.ValueOfString(v))
}

// jsonPath is path as errors name it: JSON names.
func jsonPath(md protoreflect.MessageDescriptor, path string) string {
	var out []string
	for _, p := range strings.Split(path, ".") {
		name, isList := strings.CutSuffix(p, "[0]")
		fd := md.Fields().ByName(protoreflect.Name(name))
		if isList {
			out = append(out, fd.JSONName()+"[0]")
		} else {
			out = append(out, fd.JSONName())
		}
		if fd.Kind() == protoreflect.MessageKind {
			md = fd.Message()
		}
	}
	return strings.Join(out, ".")
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

	for _, r := range e.rpcs(t) {
		fields := r.method.Input().Fields()
		tok, size := fields.ByName("page_token"), fields.ByName("page_size")
		if tok == nil {
			continue
		}
		for _, forged := range []string{"garbage", "AAAA", strings.Repeat("A", 4096), page.GetNextPageToken() + "x"} {
			req := request(t, r, r.target)
			req.ProtoReflect().Set(tok, protoreflect.ValueOfString(forged))
			err := e.call(e.admin, r, req)
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("%s with page token %.20q: %v, want InvalidArgument", r.method.Name(), forged, err)
			}
		}
		for _, n := range []int32{-1, 1 << 30} {
			req := request(t, r, r.target)
			req.ProtoReflect().Set(size, protoreflect.ValueOfInt32(n))
			err := e.call(e.admin, r, req)
			never(t, fmt.Sprintf("%s page size %d", r.method.Name(), n), err)
		}
	}
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
