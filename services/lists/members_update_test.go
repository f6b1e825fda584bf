package lists_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestUpdateMember: a manager changes a member's name and whether they
// get their own posts, and a member who asked for them gets a copy of
// their post while others who did not still get none of theirs.
func TestUpdateMember(t *testing.T) {
	relay := smtptest.Start(t)
	e := startMail(t, lists.Relay{Addr: relay.Addr, Username: relay.Username, Password: relay.Password, TLS: relay.ClientTLS})
	resp, err := e.members.ListMembers(e.admin, &listsv1.ListMembersRequest{Parent: e.list.GetName(), Filter: `email = "ann@example.org"`})
	if err != nil || len(resp.GetMembers()) != 1 {
		t.Fatalf("find ann: %v %v", resp, err)
	}
	ann := resp.GetMembers()[0]
	if ann.GetReceiveOwnPosts() {
		t.Fatal("a new member receives their own posts; want not by default")
	}

	up := func(m *listsv1.Member, paths ...string) (*listsv1.Member, error) {
		req := &listsv1.UpdateMemberRequest{Member: m}
		if paths != nil {
			req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
		}
		r, err := e.members.UpdateMember(e.admin, req)
		return r.GetMember(), err
	}
	got, err := up(&listsv1.Member{Name: ann.GetName(), ReceiveOwnPosts: true})
	if err != nil || !got.GetReceiveOwnPosts() || got.GetEmail() != "ann@example.org" {
		t.Fatalf("update: %v %v", got, err)
	}
	// A masked field set to its zero value is changed; one left out of
	// the mask is not.
	got, err = up(&listsv1.Member{Name: ann.GetName(), DisplayName: "Ann E.", ReceiveOwnPosts: false}, "display_name")
	if err != nil || got.GetDisplayName() != "Ann E." || !got.GetReceiveOwnPosts() {
		t.Fatalf("update display_name only: %v %v", got, err)
	}

	_, err = up(&listsv1.Member{Name: ann.GetName(), DisplayName: strings.Repeat("é", 101)}, "display_name")
	wantCode(t, err, codes.InvalidArgument, "member.displayName")
	_, err = up(&listsv1.Member{Name: ann.GetName(), Email: "eve@example.org"}, "email")
	wantCode(t, err, codes.InvalidArgument, "")
	_, err = up(&listsv1.Member{Name: e.list.GetName() + "/members/" + uuid.NewString(), DisplayName: "x"})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.members.UpdateMember(e.as(e.org, "member"), &listsv1.UpdateMemberRequest{Member: &listsv1.Member{Name: ann.GetName(), DisplayName: "x"}})
	wantCode(t, err, codes.PermissionDenied, "")
	// Another organization's manager naming this member under their own
	// organization finds nothing.
	other := uuid.Must(uuid.NewV7())
	foreign := strings.Replace(ann.GetName(), e.org.String(), other.String(), 1)
	_, err = e.members.UpdateMember(e.as(other, "owner"), &listsv1.UpdateMemberRequest{Member: &listsv1.Member{Name: foreign, DisplayName: "x"}})
	wantCode(t, err, codes.NotFound, "")

	if got := e.deliver("ann@example.org", []string{"team@example.test"}, firstPost); got["team@example.test"].code != 250 {
		t.Fatalf("ann's post: %v", got)
	}
	e.waitPosts(1)
	if got := e.deliver("bob@example.org", []string{"team@example.test"}, replyPost); got["team@example.test"].code != 250 {
		t.Fatalf("bob's reply: %v", got)
	}
	e.waitPosts(2)
	copies := map[string][]string{}
	for _, m := range relay.Messages() {
		id := m.Parsed(t).Header.Get("Message-Id")
		copies[id] = append(copies[id], m.To...)
	}
	if got := strings.Join(copies["<first@example.org>"], " "); !strings.Contains(got, "ann@example.org") {
		t.Errorf("ann's post went to %s; ann asked for her own posts", got)
	}
	if got := strings.Join(copies["<reply@example.org>"], " "); strings.Contains(got, "bob@") {
		t.Errorf("bob's reply went to %s; bob did not ask for his own posts", got)
	}
}
