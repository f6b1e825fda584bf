package lists_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"google.golang.org/grpc/codes"
)

// TestBatchCreateMembers: a moderator adds members by the batch, in one
// transaction: welcomed unless silent, counted once; a member role is
// denied, another organization finds no list; bad input, duplicates and
// addresses that are members already are named by index and add nothing;
// the cap on a list's members holds.
func TestBatchCreateMembers(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	created, err := e.lists.CreateList(e.admin, &listsv1.CreateListRequest{Parent: e.ms, List: &listsv1.List{LocalPart: "club"}})
	if err != nil {
		t.Fatal(err)
	}
	list := created.GetList().GetName()
	reqs := func(emails ...string) []*listsv1.CreateMemberRequest {
		var rs []*listsv1.CreateMemberRequest
		for _, a := range emails {
			rs = append(rs, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: a}, Silent: true})
		}
		return rs
	}
	count := func() int32 {
		t.Helper()
		l, err := e.lists.GetList(e.admin, &listsv1.GetListRequest{Name: list})
		if err != nil {
			t.Fatal(err)
		}
		return l.GetList().GetMemberCount()
	}
	letters := func() []string {
		t.Helper()
		rows, _ := e.pool.Query(ctx, "SELECT args->>'to' FROM river_job WHERE kind = 'list_letter' ORDER BY 1")
		to, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return to
	}
	audits := func() int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE subject LIKE '%audit%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	_, err = e.members.BatchCreateMembers(e.as(e.org, "member"), &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("eve@example.org")})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.members.BatchCreateMembers(e.as(uuid.Must(uuid.NewV7()), "owner"), &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("eve@example.org")})
	wantCode(t, err, codes.NotFound, "")

	rs := reqs("ann@example.org", "Bob@Example.org", "carl@example.com")
	rs[0].Silent = false
	rs[1].Silent, rs[1].Notice = false, "Hello Bob."
	rs[2].Member.DisplayName = "Carl"
	before := audits()
	got, err := e.members.BatchCreateMembers(e.admin, &listsv1.BatchCreateMembersRequest{Parent: list, Requests: rs})
	if err != nil {
		t.Fatal(err)
	}
	var emails []string
	for _, m := range got.GetMembers() {
		emails = append(emails, m.GetEmail())
	}
	if want := []string{"ann@example.org", "Bob@Example.org", "carl@example.com"}; !slices.Equal(emails, want) || got.GetMembers()[2].GetDisplayName() != "Carl" || got.GetMembers()[0].GetName() == "" {
		t.Errorf("batch gave %v, want %q in order", got.GetMembers(), want)
	}
	if n := count(); n != 3 {
		t.Errorf("member count %d, want 3", n)
	}
	if to, want := letters(), []string{"Bob@Example.org", "ann@example.org"}; !slices.Equal(to, want) {
		t.Errorf("welcomes queued to %q, want %q (the third is silent)", to, want)
	}
	if n := audits() - before; n != 1 {
		t.Errorf("%d audit records for the batch, want 1", n)
	}
	_, err = e.members.BatchCreateMembers(e.admin, &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("dan@example.org", "Bob@example.ORG", "carl@example.com")})
	wantCode(t, err, codes.AlreadyExists, "requests[1].member.email requests[2].member.email")
	before = audits()

	// Nothing of a refused batch is added.
	for _, c := range []struct {
		req   *listsv1.BatchCreateMembersRequest
		code  codes.Code
		field string
	}{
		{&listsv1.BatchCreateMembersRequest{Parent: list}, codes.InvalidArgument, "requests"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs(make([]string, 1001)...)}, codes.InvalidArgument, "requests"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("dan@example.org", "nope")}, codes.InvalidArgument, "requests[1].member.email"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("dan@example.org", "x@example.org", "dan@EXAMPLE.org")}, codes.InvalidArgument, "requests[2].member.email"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("dan@example.org", "Bob@example.ORG", "carl@example.com")}, codes.AlreadyExists, "requests[2].member.email"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: []*listsv1.CreateMemberRequest{{Parent: e.ms + "/lists/other", Member: &listsv1.Member{Email: "dan@example.org"}}}}, codes.InvalidArgument, "requests[0].parent"},
		{&listsv1.BatchCreateMembersRequest{Parent: list, Requests: []*listsv1.CreateMemberRequest{{Parent: list, Member: &listsv1.Member{Email: "dan@example.org"}, Notice: string(make([]rune, 5001))}}}, codes.InvalidArgument, "requests[0].notice"},
	} {
		_, err := e.members.BatchCreateMembers(e.admin, c.req)
		wantCode(t, err, c.code, c.field)
	}
	if n := count(); n != 3 {
		t.Errorf("member count %d after refused batches, want 3", n)
	}
	var dan int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM members WHERE email = 'dan@example.org'").Scan(&dan); err != nil || dan != 0 {
		t.Errorf("dan after refused batches: %d rows (%v)", dan, err)
	}
	if n := audits() - before; n != 0 {
		t.Errorf("refused batches wrote %d audit records", n)
	}

	// The cap: a batch that would pass 100,000 members adds nobody.
	if _, err := e.pool.Exec(ctx, "UPDATE lists SET member_count = 99998"); err != nil {
		t.Fatal(err)
	}
	_, err = e.members.BatchCreateMembers(e.admin, &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("x1@example.org", "x2@example.org", "x3@example.org")})
	wantCode(t, err, codes.ResourceExhausted, "100000")
	if _, err := e.members.BatchCreateMembers(e.admin, &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs("x1@example.org", "x2@example.org")}); err != nil {
		t.Errorf("a batch that fills the list: %v", err)
	}
	_, err = e.members.CreateMember(e.admin, &listsv1.CreateMemberRequest{Parent: list, Member: &listsv1.Member{Email: "x3@example.org"}})
	wantCode(t, err, codes.ResourceExhausted, "100000")

	// 1,000 at once.
	var many []string
	for i := range 1000 {
		many = append(many, fmt.Sprintf("m%04d@example.net", i))
	}
	if _, err := e.pool.Exec(ctx, "UPDATE lists SET member_count = 5"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.members.BatchCreateMembers(e.admin, &listsv1.BatchCreateMembersRequest{Parent: list, Requests: reqs(many...)}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1005 {
		t.Errorf("member count %d, want 1005", n)
	}
}
