package accounts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
)

// ListMembers filters by login and role, sorts by join time or login
// either way, counts what matches and pages with tokens bound to the query.
func TestListMembers(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	orgID := strings.TrimPrefix(org, "organizations/")
	joined := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Joined in this order, a day apart, after the owner.
	for i, j := range []struct{ email, role string }{
		{"carl@example.com", "member"},
		{"anna@example.com", "admin"},
		{"anne@example.com", "member"},
		{"bob@example.com", "member"},
		{"ann@example.org", "admin"},
	} {
		u := e.signUp(t, j.email)
		_, err := e.pool.Exec(context.Background(), "INSERT INTO memberships (organization_id, user_id, role, create_time) VALUES ($1, $2, $3, $4)",
			orgID, strings.TrimPrefix(u.User.Name, "users/"), j.role, joined.AddDate(0, 0, i))
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.pool.Exec(context.Background(), "UPDATE memberships SET create_time = $2 WHERE organization_id = $1 AND role = 'owner'", orgID, joined.AddDate(0, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	asOwner := e.as(t, "owner@example.com")

	// list pages through every member, size at a time, and returns their
	// logins and the total each page gave.
	list := func(filter, orderBy string, size int32) (string, int32) {
		t.Helper()
		var got []string
		var total int32 = -1
		token := ""
		for {
			page, err := e.orgs.ListMembers(asOwner, &accountsv1.ListMembersRequest{Parent: org, Filter: filter, OrderBy: orderBy, PageSize: size, PageToken: token})
			if err != nil {
				t.Fatalf("filter %q order %q: %v", filter, orderBy, err)
			}
			if total != -1 && page.TotalSize != total {
				t.Errorf("filter %q order %q: total %d, then %d", filter, orderBy, total, page.TotalSize)
			}
			total = page.TotalSize
			for _, m := range page.Members {
				got = append(got, strings.TrimSuffix(m.Email, "@example.com"))
			}
			if token = page.NextPageToken; token == "" {
				return strings.Join(got, ","), total
			}
		}
	}
	for _, tt := range []struct{ filter, orderBy, want string }{
		{"", "", "owner,carl,anna,anne,bob,ann@example.org"},
		{"", "create_time desc", "ann@example.org,bob,anne,anna,carl,owner"},
		{"", "email", "ann@example.org,anna,anne,bob,carl,owner"},
		{"", "email desc", "owner,carl,bob,anne,anna,ann@example.org"},
		{`email = "ANN*"`, "", "anna,anne,ann@example.org"},
		{`email = "anna@example.com"`, "", "anna"},
		{`role = "ROLE_ADMIN"`, "email", "ann@example.org,anna"},
		{`role = ROLE_MEMBER AND email = "an*"`, "", "anne"},
		{`role = "ROLE_OWNER"`, "", "owner"},
		{`email = "zed*"`, "", ""},
	} {
		wantTotal := int32(0)
		if tt.want != "" {
			wantTotal = int32(strings.Count(tt.want, ",") + 1)
		}
		for _, size := range []int32{1, 2, 0} {
			if got, total := list(tt.filter, tt.orderBy, size); got != tt.want || total != wantTotal {
				t.Errorf("filter %q order %q size %d: %s (total %d), want %s (total %d)", tt.filter, tt.orderBy, size, got, total, tt.want, wantTotal)
			}
		}
	}

	first, err := e.orgs.ListMembers(asOwner, &accountsv1.ListMembersRequest{Parent: org, OrderBy: "email", PageSize: 2})
	if err != nil || first.NextPageToken == "" {
		t.Fatalf("first page %v, %v", first, err)
	}
	for _, tt := range []struct {
		name  string
		req   *accountsv1.ListMembersRequest
		field string
	}{
		{"another order", &accountsv1.ListMembersRequest{OrderBy: "email desc", PageToken: first.NextPageToken}, "pageToken"},
		{"another filter", &accountsv1.ListMembersRequest{OrderBy: "email", Filter: `role = "ROLE_ADMIN"`, PageToken: first.NextPageToken}, "pageToken"},
		{"not a token", &accountsv1.ListMembersRequest{PageToken: "MTIzNDU2"}, "pageToken"},
		{"unknown role", &accountsv1.ListMembersRequest{Filter: `role = "admin"`}, "filter"},
		{"role prefix", &accountsv1.ListMembersRequest{Filter: `role = "ROLE_*"`}, "filter"},
		{"unknown field", &accountsv1.ListMembersRequest{Filter: `display_name = "Someone"`}, "filter"},
		{"unknown order", &accountsv1.ListMembersRequest{OrderBy: "role"}, "orderBy"},
		{"negative size", &accountsv1.ListMembersRequest{PageSize: -2}, "pageSize"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Parent = org
			_, err := e.orgs.ListMembers(asOwner, tt.req)
			if st := wantCode(t, err, codes.InvalidArgument); len(fieldsOf(st)) == 0 || fieldsOf(st)[0] != tt.field {
				t.Errorf("fields %v, want %s", fieldsOf(st), tt.field)
			}
		})
	}
}
