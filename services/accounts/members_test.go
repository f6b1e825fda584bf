package accounts_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// GetMember and BatchGetMembers answer members of the caller's own
// organization; everyone else, and anyone removed, is NOT_FOUND.
func TestGetMembers(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	member := e.signUp(t, "member@example.com")
	leaver := e.signUp(t, "leaver@example.com")
	stranger := e.signUp(t, "stranger@example.com")
	org := owner.Organization.Name
	e.join(t, org, member.User, "member")
	e.join(t, org, leaver.User, "admin")
	asOwner, asMember, asStranger := e.as(t, "owner@example.com"), e.as(t, "member@example.com"), e.as(t, "stranger@example.com")
	name := func(u *accountsv1.User) string { return org + "/members/" + strings.TrimPrefix(u.Name, "users/") }
	if _, err := e.orgs.DeleteMember(asOwner, &accountsv1.DeleteMemberRequest{Name: name(leaver.User)}); err != nil {
		t.Fatal(err)
	}
	tokenCtx := func(ctx context.Context, org string) context.Context {
		t.Helper()
		tok, err := e.tokens.CreateApiToken(ctx, &accountsv1.CreateApiTokenRequest{Parent: org, ApiToken: &accountsv1.ApiToken{DisplayName: "sync", Role: accountsv1.Role_ROLE_MEMBER}})
		if err != nil {
			t.Fatal(err)
		}
		return e.withToken(t, tok.GetSecret())
	}
	asToken, asStrangerToken := tokenCtx(asOwner, org), tokenCtx(asStranger, stranger.Organization.Name)

	get := []struct {
		who  string
		ctx  context.Context
		name string
		want codes.Code
	}{
		{"a member, about the owner", asMember, name(owner.User), codes.OK},
		{"a member, about themselves", asMember, name(member.User), codes.OK},
		{"the organization's API token", asToken, name(owner.User), codes.OK},
		{"about a removed member", asOwner, name(leaver.User), codes.NotFound},
		{"the removed member", e.as(t, "leaver@example.com"), name(owner.User), codes.NotFound},
		{"about another organization's member", asOwner, name(stranger.User), codes.NotFound},
		{"another organization's member", asStranger, name(owner.User), codes.NotFound},
		{"another organization's API token", asStrangerToken, name(owner.User), codes.NotFound},
		{"a bad name", asOwner, org + "/users/x", codes.InvalidArgument},
	}
	for _, tt := range get {
		t.Run("GetMember/"+tt.who, func(t *testing.T) {
			got, err := e.orgs.GetMember(tt.ctx, &accountsv1.GetMemberRequest{Name: tt.name})
			if status.Code(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err == nil && got.GetMember().GetName() != tt.name {
				t.Errorf("got member %q, want %q", got.GetMember().GetName(), tt.name)
			}
		})
	}
	got, err := e.orgs.GetMember(asMember, &accountsv1.GetMemberRequest{Name: name(owner.User)})
	if err != nil {
		t.Fatal(err)
	}
	if m := got.GetMember(); m.GetRole() != accountsv1.Role_ROLE_OWNER || m.GetUser() != owner.User.Name || m.GetEmail() != "owner@example.com" {
		t.Errorf("owner as a member sees them: %v", m)
	}

	roles := func(ms []*accountsv1.Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.GetName()+" "+m.GetRole().String())
		}
		return out
	}
	all := []string{name(member.User), name(leaver.User), name(stranger.User), name(owner.User)}
	batch := []struct {
		who     string
		ctx     context.Context
		names   []string
		missing bool
		want    codes.Code
		members []string
	}{
		{"a member, allowing missing", asMember, all, true, codes.OK,
			[]string{name(member.User) + " ROLE_MEMBER", name(owner.User) + " ROLE_OWNER"}},
		{"the organization's API token", asToken, all, true, codes.OK,
			[]string{name(member.User) + " ROLE_MEMBER", name(owner.User) + " ROLE_OWNER"}},
		{"a member, all present", asMember, []string{name(owner.User), name(member.User)}, false, codes.OK,
			[]string{name(owner.User) + " ROLE_OWNER", name(member.User) + " ROLE_MEMBER"}},
		{"a member, one missing", asMember, all, false, codes.NotFound, nil},
		{"none", asMember, nil, false, codes.OK, nil},
		{"another organization's member", asStranger, all, true, codes.NotFound, nil},
		{"the removed member", e.as(t, "leaver@example.com"), all, true, codes.NotFound, nil},
		{"another organization's API token", asStrangerToken, all, true, codes.NotFound, nil},
		{"a name outside parent", asOwner, []string{stranger.Organization.Name + "/members/" + strings.TrimPrefix(stranger.User.Name, "users/")}, true, codes.InvalidArgument, nil},
	}
	for _, tt := range batch {
		t.Run("BatchGetMembers/"+tt.who, func(t *testing.T) {
			got, err := e.orgs.BatchGetMembers(tt.ctx, &accountsv1.BatchGetMembersRequest{Parent: org, Names: tt.names, AllowMissing: tt.missing})
			if status.Code(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if diff := cmp.Diff(tt.members, roles(got.GetMembers())); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
		})
	}
	tooMany := make([]string, 1001)
	for i := range tooMany {
		tooMany[i] = name(owner.User)
	}
	_, err = e.orgs.BatchGetMembers(asOwner, &accountsv1.BatchGetMembersRequest{Parent: org, Names: tooMany})
	wantCode(t, err, codes.InvalidArgument)
}
