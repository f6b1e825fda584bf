package accounts_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// join adds user to org with role, as invitations will.
func (e *env) join(t *testing.T, org string, u *accountsv1.User, role string) {
	t.Helper()
	_, err := e.pool.Exec(context.Background(), "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)",
		strings.TrimPrefix(org, "organizations/"), strings.TrimPrefix(u.Name, "users/"), role)
	if err != nil {
		t.Fatal(err)
	}
}

type auditLine struct {
	Actor, Action, Target string
	Outcome               accountsv1.Outcome
}

func (e *env) auditLog(t *testing.T, ctx context.Context, req *accountsv1.ListAuditEntriesRequest) []auditLine {
	t.Helper()
	resp, err := e.audit.ListAuditEntries(ctx, req)
	if err != nil {
		t.Fatalf("list audit entries: %v", err)
	}
	var lines []auditLine
	for _, a := range resp.AuditEntries {
		lines = append(lines, auditLine{a.ActorDisplayName, a.Action, a.Target, a.Outcome})
	}
	return lines
}

func TestAuditLog(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	member := e.signUp(t, "member@example.com")
	org := owner.Organization.Name
	e.join(t, org, member.User, "member")
	asOwner, asMember := e.as(t, "owner@example.com"), e.as(t, "member@example.com")
	memberName := org + "/members/" + strings.TrimPrefix(member.User.Name, "users/")
	ownerName := org + "/members/" + strings.TrimPrefix(owner.User.Name, "users/")
	before := time.Now()

	_, err := e.orgs.UpdateOrganization(asOwner, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: org, DisplayName: "New name"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.orgs.UpdateOrganization(asMember, &accountsv1.UpdateOrganizationRequest{Organization: &accountsv1.Organization{Name: org, DisplayName: "Mine"}})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.orgs.UpdateMember(asOwner, &accountsv1.UpdateMemberRequest{Member: &accountsv1.Member{Name: memberName, Role: accountsv1.Role_ROLE_ADMIN}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.orgs.UpdateMember(asOwner, &accountsv1.UpdateMemberRequest{Member: &accountsv1.Member{Name: ownerName, Role: accountsv1.Role_ROLE_MEMBER}})
	wantCode(t, err, codes.FailedPrecondition)

	all := &accountsv1.ListAuditEntriesRequest{Parent: org}
	want := []auditLine{
		{"owner@example.com", "accounts.member.update", ownerName, accountsv1.Outcome_OUTCOME_FAILED},
		{"owner@example.com", "accounts.member.update", memberName, accountsv1.Outcome_OUTCOME_SUCCEEDED},
		{"member@example.com", "accounts.organization.update", org, accountsv1.Outcome_OUTCOME_DENIED},
		{"owner@example.com", "accounts.organization.update", org, accountsv1.Outcome_OUTCOME_SUCCEEDED},
		{"owner@example.com", "accounts.organization.create", org, accountsv1.Outcome_OUTCOME_SUCCEEDED},
	}
	if diff := cmp.Diff(want, e.auditLog(t, asOwner, all)); diff != "" {
		t.Errorf("audit log, newest first (-want +got):\n%s", diff)
	}

	// The member just promoted to admin may read it; another organization's
	// owner may not even learn it exists.
	if got := e.auditLog(t, asMember, all); len(got) != 5 {
		t.Errorf("admin sees %d entries, want 5", len(got))
	}
	e.signUp(t, "stranger@example.com")
	_, err = e.audit.ListAuditEntries(e.as(t, "stranger@example.com"), all)
	wantCode(t, err, codes.NotFound)

	// Filters and pages.
	byAction := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "accounts.member.update"})
	if len(byAction) != 2 {
		t.Errorf("action filter: %v", byAction)
	}
	byActor := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Actor: member.User.Name})
	if len(byActor) != 1 || byActor[0].Outcome != accountsv1.Outcome_OUTCOME_DENIED {
		t.Errorf("actor filter: %v", byActor)
	}
	byTarget := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Target: memberName})
	if len(byTarget) != 1 {
		t.Errorf("target filter: %v", byTarget)
	}
	inRange := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, StartTime: timestamppb.New(before)})
	if len(inRange) != 4 {
		t.Errorf("start time filter: %d entries, want the 4 since sign-up", len(inRange))
	}
	_, err = e.audit.ListAuditEntries(asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, StartTime: timestamppb.Now(), EndTime: timestamppb.New(before)})
	wantCode(t, err, codes.InvalidArgument)
	var paged []auditLine
	token := ""
	for {
		resp, err := e.audit.ListAuditEntries(asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range resp.AuditEntries {
			paged = append(paged, auditLine{a.ActorDisplayName, a.Action, a.Target, a.Outcome})
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("paged audit log (-want +got):\n%s", diff)
	}

	// Entries are append-only, even for someone with database access.
	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, "DELETE FROM audit_entries"); err == nil {
		t.Error("an audit entry could be deleted")
	}
	if _, err := e.pool.Exec(ctx, "UPDATE audit_entries SET outcome = 'succeeded'"); err == nil {
		t.Error("an audit entry's outcome could be changed")
	}
	if _, err := e.pool.Exec(ctx, "UPDATE audit_entries SET actor_display_name = 'deleted user' WHERE actor = $1", member.User.Name); err != nil {
		t.Errorf("pseudonymizing an actor: %v", err)
	}
}

// TestAuditFromOtherServices publishes another service's audit record and
// waits for it in the log.
func TestAuditFromOtherServices(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := events.EnsureStream(ctx, js, "AUDITTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	for _, sub := range accounts.Subscriptions(e.pool, log) {
		c := &events.Consumer{JS: js, Pool: e.pool, Stream: "AUDITTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		go c.Run(ctx)
	}
	publish := func(payload []byte) {
		t.Helper()
		_, err := js.Publish(ctx, "mp.mailboxes.audit.recorded", payload, jetstream.WithMsgID(uuid.NewString()))
		if err != nil {
			t.Fatal(err)
		}
	}
	publish([]byte("not a protobuf message \xff\xff"))
	rec, _ := proto.Marshal(&accountsv1.AuditRecorded{
		Organization: org,
		Entry: &accountsv1.AuditEntry{
			Actor: owner.User.Name, Action: "mailboxes.address.create", Target: org + "/mailServices/x/addresses/y",
			ClientAddress: "192.0.2.4", Outcome: accountsv1.Outcome_OUTCOME_SUCCEEDED, Details: map[string]string{"localPart": "y"},
		},
	})
	publish(rec)

	asOwner := e.as(t, "owner@example.com")
	req := &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "mailboxes.address.create"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.audit.ListAuditEntries(asOwner, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.AuditEntries) == 1 {
			got := resp.AuditEntries[0]
			if got.ActorDisplayName != "owner@example.com" || got.ClientAddress != "192.0.2.4" || got.Details["localPart"] != "y" {
				t.Errorf("entry from event = %v", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("audit record from another service never reached the log")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
