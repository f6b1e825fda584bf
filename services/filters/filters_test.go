package filters_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

type env struct {
	t        *testing.T
	srv      *servicetest.Server
	svc      *filters.Service
	pool     *pgxpool.Pool
	rules    filtersv1.RuleServiceClient
	settings filtersv1.FilterSettingsServiceClient
	org      uuid.UUID
	ms       string
	admin    context.Context
	js       jetstream.JetStream
	ctx      context.Context
	inst     *fakeInstaller
	// wait bounds eventually; 0: 15 s.
	wait time.Duration
}

// patience is how long eventually waits.
func (e *env) patience() time.Duration {
	if e.wait == 0 {
		return 15 * time.Second
	}
	return e.wait
}

// start runs the service on a fresh database with a fake accounts (whose
// members are people of role member) and a fake installer, its
// consumers on a stream of the test's own, and its jobs when work is set.
func start(t *testing.T, work bool) *env {
	t.Helper()
	return startWith(t, work, fakeCompiler{})
}

// startWith is start with compiler (nil: the service's own).
func startWith(t *testing.T, work bool, compiler filters.Compiler) *env {
	t.Helper()
	inst := &fakeInstaller{got: map[string]filters.Scripts{}}
	e := startConfig(t, work, filters.Config{MaxRules: 5, Compiler: compiler, Installer: inst})
	e.inst = inst
	return e
}

// startConfig is start with c (AccountsAddr set here).
func startConfig(t *testing.T, work bool, c filters.Config) *env {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewMigratedDatabase(t, pgtest.Schema{Name: filters.Schema, Migrations: filters.Migrations})
	pool, err := pg.Connect(ctx, url, filters.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t, pool: pool, org: uuid.Must(uuid.NewV7())}
	accounts := &fakeAccounts{org: e.org}
	e.srv = servicetest.Start(t, func(s *servicetest.Server) error {
		accountsv1.RegisterOrganizationServiceServer(s.GRPC.Server, accounts)
		c.AccountsAddr = s.Addr
		if c.ReportAddr == "" {
			c.ReportAddr, c.ReportsPerHour = "127.0.0.1:0", 3
		}
		e.svc, err = filters.Register(s.GRPC.Server, pool, c, s.Log)
		if err != nil {
			return err
		}
		return e.svc.Listen()
	})
	e.rules = filtersv1.NewRuleServiceClient(e.srv.Conn)
	e.settings = filtersv1.NewFilterSettingsServiceClient(e.srv.Conn)
	e.ms = "organizations/" + e.org.String() + "/mailServices/" + uuid.Must(uuid.NewV7()).String()
	e.admin = e.as(e.org, "admin")

	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	if err := events.EnsureStream(cctx, js, "FILTERSTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	for _, sub := range e.svc.Subscriptions() {
		c := &events.Consumer{JS: js, Pool: pool, Stream: "FILTERSTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		go c.Run(cctx)
	}
	e.js, e.ctx = js, cctx
	if work {
		done := make(chan error, 1)
		go func() { done <- e.svc.RunForTest(cctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return e
}

// fakeAccounts answers GetMember: every user is a member of org, for
// callers of org; others get NOT_FOUND, as accounts does.
type fakeAccounts struct {
	accountsv1.UnimplementedOrganizationServiceServer
	org uuid.UUID
}

func (f *fakeAccounts) GetMember(ctx context.Context, req *accountsv1.GetMemberRequest) (*accountsv1.GetMemberResponse, error) {
	prefix := "organizations/" + f.org.String() + "/members/"
	if len(req.GetName()) <= len(prefix) || req.GetName()[:len(prefix)] != prefix {
		return nil, status.Error(codes.NotFound, "organization not found")
	}
	p, _ := auth.FromContext(ctx)
	return &accountsv1.GetMemberResponse{Member: &accountsv1.Member{Name: req.GetName(), User: "users/" + p.UserID, Role: accountsv1.Role_ROLE_MEMBER}}, nil
}

type fakeCompiler struct{}

// Compile writes the rules' names in order, and the anti-spam switch.
func (fakeCompiler) Compile(rules []*filters.Rule, st *filters.Settings) (filters.Scripts, error) {
	s := fmt.Sprintf("anti_spam=%v", st.AntiSpam)
	for _, r := range rules {
		s += ";" + r.DisplayName
	}
	return filters.Scripts{"personal": s}, nil
}

// fakeInstaller records what it installs; down fails every install.
type fakeInstaller struct {
	mu   sync.Mutex
	down bool
	got  map[string]filters.Scripts
}

func (f *fakeInstaller) Install(_ context.Context, login string, s filters.Scripts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("dovecot is down")
	}
	f.got[login] = s
	return nil
}

func (f *fakeInstaller) installed(login string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[login]["personal"]
}

// as is a caller with role in org, through an API token.
func (e *env) as(org uuid.UUID, role string) context.Context {
	return e.srv.As(e.t, auth.Principal{TokenID: uuid.NewString(), OrganizationID: org.String(), Role: role})
}

// person is a signed-in user.
func (e *env) person(user uuid.UUID) context.Context {
	return e.srv.As(e.t, auth.Principal{UserID: user.String()})
}

type user struct {
	id      uuid.UUID
	filters bool
}

// announce publishes mailboxes' address event for a new address of the
// mail service with users, and returns its name.
func (e *env) announce(subject, name, local string, users ...user) string {
	e.t.Helper()
	if name == "" {
		name = e.ms + "/addresses/" + uuid.Must(uuid.NewV7()).String()
	}
	a := &mailboxesv1.Address{Name: name, LocalPart: local, Email: local + "@example.test"}
	for _, u := range users {
		a.Users = append(a.Users, &mailboxesv1.AddressUser{User: "users/" + u.id.String(), Rights: &mailboxesv1.Rights{Filters: u.filters, Devices: true}})
	}
	data, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: a, Login: local + "@example.test"})
	if _, err := e.js.Publish(e.ctx, "mp."+subject, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		e.t.Fatal(err)
	}
	return name
}

// known waits until the service has heard of address.
func (e *env) known(address string) {
	e.t.Helper()
	e.eventually("address "+address+" known", func() bool {
		_, err := e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: address + "/filterSettings"})
		return err == nil
	})
}

func (e *env) eventually(what string, check func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(e.patience()); !check(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			var jobs []string
			rows, _ := e.pool.Query(context.Background(), `SELECT kind || ' ' || state || ' ' || attempt || ' ' || coalesce(errors::text, '') FROM river_job`)
			for rows != nil && rows.Next() {
				var j string
				_ = rows.Scan(&j)
				jobs = append(jobs, j)
			}
			var installed map[string]filters.Scripts
			if e.inst != nil {
				installed = e.inst.got
			}
			e.t.Fatalf("%s: not after %v (jobs: %v; installed: %v)", what, e.patience(), jobs, installed)
		}
	}
}

func moveTo(folder string) *filtersv1.Action {
	return &filtersv1.Action{Kind: filtersv1.ActionKind_ACTION_KIND_MOVE, Folder: folder}
}

func rule(name string) *filtersv1.Rule {
	return &filtersv1.Rule{DisplayName: name,
		Conditions: []*filtersv1.Condition{{Field: filtersv1.Field_FIELD_FROM, Operator: filtersv1.Operator_OPERATOR_CONTAINS, Value: "boss@"}},
		Actions:    []*filtersv1.Action{moveTo("Work/Boss")}}
}

func names(rules []*filtersv1.Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.GetDisplayName())
	}
	return out
}

// errorReason is the ErrorInfo reason of err, "" without one.
func errorReason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func wantCode(t *testing.T, err error, code codes.Code, field string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want %v", err, code)
	}
	if field == "" {
		return
	}
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
		}
	}
	t.Fatalf("%v names no field %s", err, field)
}

func TestRulesCRUDAndOrder(t *testing.T) {
	e := start(t, true)
	addr := e.announce(mailboxesevents.AddressCreated, "", "sales")
	e.known(addr)
	var made []*filtersv1.Rule
	for _, n := range []string{"a", "b", "c"} {
		resp, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule(n)})
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, resp.GetRule())
	}
	first := int32(0)
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule("first"), Position: &first}); err != nil {
		t.Fatal(err)
	}
	list, err := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: addr})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(list.GetRules()); !slices.Equal(got, []string{"first", "a", "b", "c"}) {
		t.Fatalf("order %v", got)
	}
	// c to the top, then a to the end (a position past it).
	moved, err := e.rules.MoveRule(e.admin, &filtersv1.MoveRuleRequest{Name: made[2].GetName(), Position: 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(moved.GetRules()); !slices.Equal(got, []string{"c", "first", "a", "b"}) {
		t.Fatalf("after move up %v", got)
	}
	moved, err = e.rules.MoveRule(e.admin, &filtersv1.MoveRuleRequest{Name: made[0].GetName(), Position: 99})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(moved.GetRules()); !slices.Equal(got, []string{"c", "first", "b", "a"}) {
		t.Fatalf("after move down %v", got)
	}
	// The whole order at once; a rule missing or named twice is refused.
	list, _ = e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: addr})
	var order []string
	for _, r := range slices.Backward(list.GetRules()) {
		order = append(order, r.GetName())
	}
	re, err := e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: addr, Rules: order})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(re.GetRules()); !slices.Equal(got, []string{"a", "b", "first", "c"}) {
		t.Fatalf("after reorder %v", got)
	}
	_, err = e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: addr, Rules: order[:3]})
	wantCode(t, err, codes.InvalidArgument, "rules")
	_, err = e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: addr, Rules: append(order[:3:3], order[0])})
	wantCode(t, err, codes.InvalidArgument, "rules[3]")
	if _, err := e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: addr, Rules: nil}); err == nil {
		t.Fatal("an empty order accepted")
	}
	var back []string
	for _, r := range list.GetRules() {
		back = append(back, r.GetName())
	}
	if _, err := e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: addr, Rules: back}); err != nil {
		t.Fatal(err)
	}
	// Disable, then enable with a mask (false is not "set" without one).
	up, err := e.rules.UpdateRule(e.admin, &filtersv1.UpdateRuleRequest{Rule: &filtersv1.Rule{Name: made[1].GetName(), Disabled: true}})
	if err != nil || !up.GetRule().GetDisabled() || up.GetRule().GetDisplayName() != "b" {
		t.Fatalf("disable: %v %v", up, err)
	}
	up, err = e.rules.UpdateRule(e.admin, &filtersv1.UpdateRuleRequest{Rule: &filtersv1.Rule{Name: made[1].GetName()}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"disabled"}}})
	if err != nil || up.GetRule().GetDisabled() {
		t.Fatalf("enable: %v %v", up, err)
	}
	got, err := e.rules.GetRule(e.admin, &filtersv1.GetRuleRequest{Name: made[1].GetName()})
	if err != nil || got.GetRule().GetPosition() != 2 || got.GetRule().GetActions()[0].GetFolder() != "Work/Boss" {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := e.rules.DeleteRule(e.admin, &filtersv1.DeleteRuleRequest{Name: made[2].GetName()}); err != nil {
		t.Fatal(err)
	}
	list, _ = e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: addr})
	for i, r := range list.GetRules() {
		if r.GetPosition() != int32(i) {
			t.Fatalf("positions not dense after delete: %v", list.GetRules())
		}
	}
	_, err = e.rules.GetRule(e.admin, &filtersv1.GetRuleRequest{Name: made[2].GetName()})
	wantCode(t, err, codes.NotFound, "")
	// The last state is what gets installed.
	e.eventually("scripts installed", func() bool { return e.inst.installed("sales@example.test") == "anti_spam=true;first;b;a" })
}

func TestRulesCapAndBadInput(t *testing.T) {
	e := start(t, false)
	addr := e.announce(mailboxesevents.AddressCreated, "", "caps")
	e.known(addr)
	for i := range 5 {
		if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule("six")})
	wantCode(t, err, codes.ResourceExhausted, "")
	if r := errorReason(err); r != "TOO_MANY_RULES" {
		t.Errorf("reason %q, want TOO_MANY_RULES", r)
	}

	bad := []struct {
		field string
		edit  func(r *filtersv1.Rule)
	}{
		{"rule.conditions[0].value", func(r *filtersv1.Rule) {
			r.Conditions[0].Operator, r.Conditions[0].Value = filtersv1.Operator_OPERATOR_REGEX, "(unclosed"
		}},
		{"rule.actions[0].folder", func(r *filtersv1.Rule) { r.Actions[0].Folder = "Bad*Folder" }},
		{"rule.actions[0].folder", func(r *filtersv1.Rule) { r.Actions[0].Folder = "a//b" }},
		{"rule.actions", func(r *filtersv1.Rule) { r.Actions = nil }},
		{"rule.conditions[0].header", func(r *filtersv1.Rule) {
			r.Conditions[0].Field, r.Conditions[0].Header = filtersv1.Field_FIELD_HEADER, "X-Bad: injected"
		}},
		{"rule.conditions[0].value", func(r *filtersv1.Rule) { r.Conditions[0].Value = "a\"\r\nstop;" }},
		{"rule.conditions[0].operator", func(r *filtersv1.Rule) {
			r.Conditions[0].Field, r.Conditions[0].Operator = filtersv1.Field_FIELD_BODY, filtersv1.Operator_OPERATOR_REGEX
		}},
		{"rule.conditions[0].sizeBytes", func(r *filtersv1.Rule) {
			r.Conditions[0] = &filtersv1.Condition{Field: filtersv1.Field_FIELD_SIZE}
		}},
		{"rule.actions[0].kind", func(r *filtersv1.Rule) {
			r.Actions = []*filtersv1.Action{{Kind: filtersv1.ActionKind_ACTION_KIND_STOP}, moveTo("Later")}
		}},
		{"rule.displayName", func(r *filtersv1.Rule) { r.DisplayName = " " }},
		{"rule.actions[0].address", func(r *filtersv1.Rule) {
			r.Actions[0] = &filtersv1.Action{Kind: filtersv1.ActionKind_ACTION_KIND_FORWARD, Address: "nobody"}
		}},
	}
	list, _ := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: addr})
	for _, b := range bad {
		r := rule("bad")
		b.edit(r)
		// Checked on update too, with the rule's own name.
		r.Name = list.GetRules()[0].GetName()
		_, err := e.rules.UpdateRule(e.admin, &filtersv1.UpdateRuleRequest{Rule: r, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}})
		wantCode(t, err, codes.InvalidArgument, b.field)
	}
}

func TestAccess(t *testing.T) {
	e := start(t, false)
	alice, bob, carol := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	addr := e.announce(mailboxesevents.AddressCreated, "", "team", user{alice, true}, user{bob, false})
	e.known(addr)
	// Alice holds the filters right.
	if _, err := e.rules.CreateRule(e.person(alice), &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule("mine")}); err != nil {
		t.Fatal(err)
	}
	// Bob is a user without it; Carol is no user of the address; a
	// member's token has no user at all.
	for _, ctx := range []context.Context{e.person(bob), e.person(carol), e.as(e.org, "member")} {
		_, err := e.rules.ListRules(ctx, &filtersv1.ListRulesRequest{Parent: addr})
		wantCode(t, err, codes.PermissionDenied, "")
		_, err = e.settings.GetFilterSettings(ctx, &filtersv1.GetFilterSettingsRequest{Name: addr + "/filterSettings"})
		wantCode(t, err, codes.PermissionDenied, "")
	}
	_, err := e.settings.BatchUpdateFilterSettings(e.person(alice), &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AntiSpam: proto.Bool(false)})
	wantCode(t, err, codes.PermissionDenied, "")
	// Another organization's admin, with the real name or theirs.
	other := uuid.Must(uuid.NewV7())
	_, err = e.rules.ListRules(e.as(other, "admin"), &filtersv1.ListRulesRequest{Parent: addr})
	wantCode(t, err, codes.NotFound, "")
	// Mailboxes takes the right from Alice: she is refused from then on.
	e.announce(mailboxesevents.AddressUpdated, addr, "team", user{alice, false})
	e.eventually("the right taken", func() bool {
		_, err := e.rules.ListRules(e.person(alice), &filtersv1.ListRulesRequest{Parent: addr})
		return status.Code(err) == codes.PermissionDenied
	})
	// A deleted address is gone, rules and all.
	e.announce(mailboxesevents.AddressDeleted, addr, "team")
	e.eventually("the address deleted", func() bool {
		_, err := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: addr})
		return status.Code(err) == codes.NotFound
	})
}

func TestSettingsDefaultsAndUpdate(t *testing.T) {
	e := start(t, false)
	addr := e.announce(mailboxesevents.AddressCreated, "", "info")
	e.known(addr)
	name := addr + "/filterSettings"
	got, err := e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	st := got.GetFilterSettings()
	if !st.GetAntiSpam() || !st.GetAdFilter() || st.GetSpamFolder() != "Spam" || st.GetNewsletterFolder() != "Newsletters" || st.GetExternalMention() {
		t.Fatalf("defaults %v", st)
	}
	up, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: name, SpamFolder: "Junk", BlockedSenders: []string{"Spammer@Bad.example", "bad.example", "bad.example"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := up.GetFilterSettings(); s.GetSpamFolder() != "Junk" || !slices.Equal(s.GetBlockedSenders(), []string{"spammer@bad.example", "bad.example"}) || !s.GetAntiSpam() {
		t.Fatalf("updated %v", s)
	}
	// No job runs here: the change waits to be installed, and says so.
	if s := up.GetFilterSettings(); s.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_PENDING || s.GetPendingSince() == nil {
		t.Errorf("after the update: %v since %v, want PENDING", s.GetInstallState(), s.GetPendingSince())
	}
	// A redelivered or later created event keeps the customer's choice.
	e.announce(mailboxesevents.AddressCreated, addr, "info")
	e.announce(mailboxesevents.AddressUpdated, addr, "info")
	time.Sleep(300 * time.Millisecond)
	got, _ = e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: name})
	if got.GetFilterSettings().GetSpamFolder() != "Junk" {
		t.Fatalf("the event reset the settings: %v", got)
	}
	_, err = e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{FilterSettings: &filtersv1.FilterSettings{Name: name, AllowedSenders: []string{"ok.example", "not an address"}}})
	wantCode(t, err, codes.InvalidArgument, "filterSettings.allowedSenders[1]")
	_, err = e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{FilterSettings: &filtersv1.FilterSettings{Name: name, NewsletterFolder: "News\x01"}})
	wantCode(t, err, codes.InvalidArgument, "filterSettings.newsletterFolder")
	// What the platform compiler refuses is refused here, named.
	_, err = e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{FilterSettings: &filtersv1.FilterSettings{Name: name, SpamFolder: "Spam${x}"}})
	wantCode(t, err, codes.InvalidArgument, "filterSettings.spamFolder")

	// Refused by the mail server a day ago: FAILED since then; the next
	// change waits from now on.
	if _, err := e.pool.Exec(context.Background(), `UPDATE pending_installs SET since = now() - interval '1 day', failed_time = now() - interval '1 day', failure = 'refused'`); err != nil {
		t.Fatal(err)
	}
	if s := e.installState(addr); s.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_FAILED || time.Since(s.GetPendingSince().AsTime()) < 23*time.Hour {
		t.Errorf("after a refusal a day ago: %v since %v, want FAILED a day ago", s.GetInstallState(), s.GetPendingSince().AsTime())
	}
	up, err = e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{FilterSettings: &filtersv1.FilterSettings{Name: name, SpamFolder: "Junk mail"}})
	if err != nil {
		t.Fatal(err)
	}
	if s := up.GetFilterSettings(); s.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_PENDING || time.Since(s.GetPendingSince().AsTime()) > time.Hour {
		t.Errorf("the change after the refusal: %v since %v, want PENDING from now", s.GetInstallState(), s.GetPendingSince().AsTime())
	}
}

func TestBatchOverThousandAddresses(t *testing.T) {
	e := start(t, false)
	var addrs []string
	for i := range 1000 {
		addrs = append(addrs, e.announce(mailboxesevents.AddressCreated, "", fmt.Sprintf("u%d", i)))
	}
	e.eventually("1,000 addresses known", func() bool {
		var n int
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM settings`).Scan(&n) == nil && n == 1000
	})
	resp, err := e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AntiSpam: proto.Bool(false), AdFilter: proto.Bool(false)})
	if err != nil || resp.GetUpdatedCount() != 1000 {
		t.Fatalf("batch off: %v %v", resp, err)
	}
	var on, pending int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE anti_spam OR ad_filter) FROM settings`).Scan(&on); err != nil || on != 0 {
		t.Fatalf("%d still on (%v)", on, err)
	}
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs`).Scan(&pending); err != nil || pending != 1000 {
		t.Fatalf("%d pending installs (%v)", pending, err)
	}
	// Again: nothing changes.
	resp, err = e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AntiSpam: proto.Bool(false)})
	if err != nil || resp.GetUpdatedCount() != 0 {
		t.Fatalf("batch again: %v %v", resp, err)
	}
	// Two named addresses on.
	resp, err = e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, Addresses: addrs[:2], AntiSpam: proto.Bool(true)})
	if err != nil || resp.GetUpdatedCount() != 2 {
		t.Fatalf("batch named: %v %v", resp, err)
	}
	// Another mail service's address is refused, naming it.
	other := "organizations/" + e.org.String() + "/mailServices/" + uuid.Must(uuid.NewV7()).String() + "/addresses/" + uuid.Must(uuid.NewV7()).String()
	_, err = e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, Addresses: []string{addrs[0], other}, AntiSpam: proto.Bool(true)})
	wantCode(t, err, codes.InvalidArgument, "addresses[1]")
	_, err = e.settings.BatchUpdateFilterSettings(e.as(uuid.Must(uuid.NewV7()), "admin"), &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, AntiSpam: proto.Bool(true)})
	wantCode(t, err, codes.NotFound, "")
}

func TestInstallWaitsForTheMailStore(t *testing.T) {
	e := start(t, true)
	e.inst.mu.Lock()
	e.inst.down = true
	e.inst.mu.Unlock()
	addr := e.announce(mailboxesevents.AddressCreated, "", "later")
	e.known(addr)
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: rule("kept")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	var pending int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("%d pending while down (%v)", pending, err)
	}
	if st := e.installState(addr); st.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_PENDING || st.GetPendingSince() == nil {
		t.Errorf("while the mail store is down: %v since %v, want PENDING since the change", st.GetInstallState(), st.GetPendingSince())
	}
	e.inst.mu.Lock()
	e.inst.down = false
	e.inst.mu.Unlock()
	// The job's next retry (10 s) or the sweep installs it.
	if _, err := e.svc.ReinstallPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.eventually("installed once back", func() bool { return e.inst.installed("later@example.test") == "anti_spam=true;kept" })
	e.eventually("nothing pending", func() bool {
		return e.pool.QueryRow(context.Background(), `SELECT count(*) FROM pending_installs`).Scan(&pending) == nil && pending == 0
	})
	if st := e.installState(addr); st.GetInstallState() != filtersv1.InstallState_INSTALL_STATE_INSTALLED || st.GetPendingSince() != nil {
		t.Errorf("once installed: %v since %v, want INSTALLED", st.GetInstallState(), st.GetPendingSince())
	}
}

// installState reads addr's filter settings as the frontend does, for
// their install state.
func (e *env) installState(addr string) *filtersv1.FilterSettings {
	e.t.Helper()
	got, err := e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: addr + "/filterSettings"})
	if err != nil {
		e.t.Fatal(err)
	}
	return got.GetFilterSettings()
}

func TestInstallsCompiledRules(t *testing.T) {
	e := startWith(t, true, nil)
	addr := e.announce(mailboxesevents.AddressCreated, "", "boss")
	e.known(addr)
	r := rule("from the boss")
	r.Actions = append(r.Actions, &filtersv1.Action{Kind: filtersv1.ActionKind_ACTION_KIND_MARK_FLAGGED})
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: r}); err != nil {
		t.Fatal(err)
	}
	off := rule("off")
	off.Disabled = true
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: off}); err != nil {
		t.Fatal(err)
	}
	e.eventually("the platform scripts installed", func() bool {
		e.inst.mu.Lock()
		defer e.inst.mu.Unlock()
		got := e.inst.got["boss@example.test"]
		// Anti-spam and the ad filter are on by default.
		return strings.Contains(got["before"], `"Spam"`) && strings.Contains(got["after"], `"Newsletters"`)
	})
	e.eventually("the compiled script installed", func() bool {
		s := e.inst.installed("boss@example.test")
		return strings.Contains(s, `fileinto :create "Work/Boss"`) && strings.Contains(s, "# rule 2: off (disabled)") &&
			strings.Contains(s, `"boss@"`) && strings.Contains(s, "\\Flagged")
	})
}

func TestAutoReplyInstalled(t *testing.T) {
	e := startWith(t, true, nil)
	addr := e.announce(mailboxesevents.AddressCreated, "", "away")
	e.known(addr)
	vacation := func(script string) {
		a := &mailboxesv1.Address{Name: addr, LocalPart: "away", Email: "away@example.test"}
		data, _ := proto.Marshal(&mailboxesv1.AddressChanged{Address: a, Login: "away@example.test", VacationSieve: script})
		if _, err := e.js.Publish(e.ctx, "mp."+mailboxesevents.AutoReplyUpdated, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
			t.Fatal(err)
		}
	}
	script := func() string {
		e.inst.mu.Lock()
		defer e.inst.mu.Unlock()
		return e.inst.got["away@example.test"]["vacation"]
	}
	vacation("require \"vacation\";\nvacation \"first\";\n")
	vacation("require \"vacation\";\nvacation \"second\";\n")
	e.eventually("the latest auto-reply installed", func() bool { return strings.Contains(script(), `"second"`) })
	// Off: mailboxes sends an empty script, which empties the installed one.
	vacation("")
	e.eventually("the auto-reply removed", func() bool { return script() == "" && e.inst.installed("away@example.test") != "" })
}

func TestExternalMention(t *testing.T) {
	e := startWith(t, true, nil)
	addr := e.announce(mailboxesevents.AddressCreated, "", "ext")
	e.known(addr)
	before := func() string {
		e.inst.mu.Lock()
		defer e.inst.mu.Unlock()
		return e.inst.got["ext@example.test"]["before"]
	}
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: addr + "/filterSettings", ExternalMention: true},
	}); err != nil {
		t.Fatal(err)
	}
	// No own domain known yet: nothing is marked (all would be external).
	e.eventually("installed without the mention", func() bool { s := before(); return s != "" && !strings.Contains(s, "X-Mailplane-External") })
	// The organization's domain verified: the mention spares it.
	data, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: e.ms, Domain: "Example.test"}})
	if _, err := e.js.Publish(e.ctx, "mp."+mailboxesevents.MailServiceCreated, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		t.Fatal(err)
	}
	e.eventually("installed with the mention", func() bool {
		s := before()
		return strings.Contains(s, "X-Mailplane-External") && strings.Contains(s, `"example.test"`)
	})
}

func TestSendersCSV(t *testing.T) {
	e := start(t, false)
	addr := e.announce(mailboxesevents.AddressCreated, "", "csv")
	e.known(addr)
	name := addr + "/filterSettings"
	imp, err := e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: "sender,list\nspam.example,block\n\"Boss@Work.example\",allow\nads.example\n"})
	if err != nil {
		t.Fatal(err)
	}
	st := imp.GetFilterSettings()
	if !slices.Equal(st.GetBlockedSenders(), []string{"spam.example", "ads.example"}) || !slices.Equal(st.GetAllowedSenders(), []string{"boss@work.example"}) {
		t.Fatalf("imported %v", st)
	}
	// Added to, not replaced, unless asked.
	if _, err := e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: "more.example\n"}); err != nil {
		t.Fatal(err)
	}
	exp, err := e.settings.ExportSenders(e.admin, &filtersv1.ExportSendersRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if want := "sender,list\nspam.example,block\nads.example,block\nmore.example,block\nboss@work.example,allow\n"; exp.GetCsv() != want {
		t.Fatalf("export %q, want %q", exp.GetCsv(), want)
	}
	imp, err = e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: exp.GetCsv(), Replace: true})
	if err != nil || len(imp.GetFilterSettings().GetBlockedSenders()) != 3 {
		t.Fatalf("round trip: %v %v", imp, err)
	}
	// A sender a spreadsheet would run as a formula is exported defused
	// and comes back as it was.
	formula := "=1+cmd@evil.example"
	if _, err := e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: formula + ",allow\n", Replace: true}); err != nil {
		t.Fatal(err)
	}
	exp, err = e.settings.ExportSenders(e.admin, &filtersv1.ExportSendersRequest{Name: name})
	if err != nil || exp.GetCsv() != "sender,list\n'"+formula+",allow\n" {
		t.Fatalf("export of a formula-like sender: %q %v", exp.GetCsv(), err)
	}
	imp, err = e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: exp.GetCsv(), Replace: true})
	if err != nil || !slices.Equal(imp.GetFilterSettings().GetAllowedSenders(), []string{formula}) {
		t.Fatalf("round trip of a defused sender: %v %v", imp, err)
	}
	for _, bad := range []string{"a.example,maybe\n", "a,b,c\n", "\"unclosed\n"} {
		_, err := e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: bad})
		wantCode(t, err, codes.InvalidArgument, "csv")
	}
	_, err = e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: name, Csv: "not a sender\n"})
	wantCode(t, err, codes.InvalidArgument, "csv")
	if !strings.Contains(err.Error(), "row 1") {
		t.Errorf("%v does not name the row", err)
	}
	_, err = e.settings.ExportSenders(e.as(uuid.Must(uuid.NewV7()), "admin"), &filtersv1.ExportSendersRequest{Name: name})
	wantCode(t, err, codes.NotFound, "")
}
