package mailboxes_test

import (
	"fmt"
	"strings"
	"testing"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"google.golang.org/grpc/codes"
)

// ListAddresses filters by local part and user, sorts by local part or
// create time either way, counts what matches and pages with tokens bound
// to the query.
func TestListAddresses(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	anna := e.person(t, "anna@example.com")
	e.join(t, owner, anna, "anna@example.com", accountsv1.Role_ROLE_MEMBER)
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	// In creation order; anna uses Sales and support.
	for _, lp := range []string{"Sales", "info", "sales-eu", "support", "billing", "salt"} {
		access := &mailboxesv1.AddressAccess{Caller: true}
		if lp == "Sales" || lp == "support" {
			access.Users = []string{anna.user}
		}
		if _, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: &mailboxesv1.Address{LocalPart: lp}, Access: access}); err != nil {
			t.Fatal(err)
		}
	}

	// list pages through every address p sees, size at a time.
	list := func(p person, filter, orderBy string, size int32) (string, int32) {
		t.Helper()
		var got []string
		var total int32 = -1
		token := ""
		for {
			page, err := e.addrs.ListAddresses(p.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent, Filter: filter, OrderBy: orderBy, PageSize: size, PageToken: token})
			if err != nil {
				t.Fatalf("filter %q order %q: %v", filter, orderBy, err)
			}
			if total != -1 && page.TotalSize != total {
				t.Errorf("filter %q order %q: total %d, then %d", filter, orderBy, total, page.TotalSize)
			}
			total = page.TotalSize
			for _, a := range page.Addresses {
				got = append(got, a.LocalPart)
			}
			if token = page.NextPageToken; token == "" {
				return strings.Join(got, ","), total
			}
			if len(page.Addresses) != int(size) {
				t.Fatalf("a page of %d, size %d, before the last", len(page.Addresses), size)
			}
		}
	}
	for _, tt := range []struct {
		p               person
		filter, orderBy string
		want            string
	}{
		{owner, "", "", "billing,info,Sales,sales-eu,salt,support"},
		{owner, "", "local_part desc", "support,salt,sales-eu,Sales,info,billing"},
		{owner, "", "create_time", "Sales,info,sales-eu,support,billing,salt"},
		{owner, "", "createTime desc", "salt,billing,support,sales-eu,info,Sales"},
		{owner, `local_part = "sales"`, "", "Sales"},
		{owner, `local_part = "SAL*"`, "", "Sales,sales-eu,salt"},
		{owner, `localPart = sale*`, "local_part desc", "sales-eu,Sales"},
		{owner, `local_part = "nobody*"`, "", ""},
		{owner, `user = "` + anna.user + `"`, "", "Sales,support"},
		{owner, `user = "` + anna.user + `" AND local_part = "s*"`, "create_time desc", "support,Sales"},
		{owner, `user = "` + owner.user + `"`, "", "billing,info,Sales,sales-eu,salt,support"},
		{anna, "", "", "Sales,support"},
		{anna, `local_part = "i*"`, "", ""},
	} {
		want := tt.want
		wantTotal := int32(0)
		if want != "" {
			wantTotal = int32(strings.Count(want, ",") + 1)
		}
		for _, size := range []int32{1, 2, 4, 0} {
			got, total := list(tt.p, tt.filter, tt.orderBy, size)
			if got != want || total != wantTotal {
				t.Errorf("filter %q order %q size %d: %s (total %d), want %s (total %d)", tt.filter, tt.orderBy, size, got, total, want, wantTotal)
			}
		}
	}

	// A token belongs to its query.
	first, err := e.addrs.ListAddresses(owner.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent, Filter: `local_part = "s*"`, PageSize: 1})
	if err != nil || first.NextPageToken == "" || first.TotalSize != 4 {
		t.Fatalf("first page %v, %v", first, err)
	}
	if strings.Contains(first.NextPageToken, "sales") {
		t.Errorf("token %q shows the local part", first.NextPageToken)
	}
	bad := []struct {
		name  string
		req   *mailboxesv1.ListAddressesRequest
		field string
	}{
		{"another filter", &mailboxesv1.ListAddressesRequest{Filter: `local_part = "sa*"`, PageToken: first.NextPageToken}, "pageToken"},
		{"another order", &mailboxesv1.ListAddressesRequest{Filter: `local_part = "s*"`, OrderBy: "local_part desc", PageToken: first.NextPageToken}, "pageToken"},
		{"a local part for a token", &mailboxesv1.ListAddressesRequest{PageToken: "sales"}, "pageToken"},
		{"unknown filter field", &mailboxesv1.ListAddressesRequest{Filter: `kind = "mailbox"`}, "filter"},
		{"prefix of a user", &mailboxesv1.ListAddressesRequest{Filter: `user = "users/*"`}, "filter"},
		{"not a user name", &mailboxesv1.ListAddressesRequest{Filter: `user = "anna"`}, "filter"},
		{"OR", &mailboxesv1.ListAddressesRequest{Filter: `local_part = a OR local_part = b`}, "filter"},
		{"a filter too long", &mailboxesv1.ListAddressesRequest{Filter: fmt.Sprintf("local_part = %q", strings.Repeat("a", 600))}, "filter"},
		{"unknown order", &mailboxesv1.ListAddressesRequest{OrderBy: "quota_bytes"}, "orderBy"},
		{"negative size", &mailboxesv1.ListAddressesRequest{PageSize: -1}, "pageSize"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Parent = parent
			_, err := e.addrs.ListAddresses(owner.ctx, tt.req)
			wantCode(t, err, codes.InvalidArgument)
			if field(err) != tt.field {
				t.Errorf("field %q, want %q", field(err), tt.field)
			}
		})
	}
	if next, err := e.addrs.ListAddresses(owner.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent, Filter: ` local_part="s*" `, PageSize: 1, PageToken: first.NextPageToken}); err != nil || len(next.Addresses) != 1 || next.Addresses[0].LocalPart != "sales-eu" {
		t.Errorf("the same filter spelled differently: %v, %v", next, err)
	}
}
