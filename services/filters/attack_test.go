package filters_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/attacktest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// attackEnv is an organization with an address (alice its user with the
// "filters" right, bob one without) holding one rule and one run, ended.
type attackEnv struct {
	*env
	runs                filtersv1.FilterRunServiceClient
	addr, rule, fs, run string
	alice, bob          uuid.UUID
}

func startAttack(t *testing.T) *attackEnv {
	t.Helper()
	inst := &fakeInstaller{got: map[string]filters.Scripts{}}
	// No job runs: the IMAP address is never dialled.
	e := &attackEnv{env: startConfig(t, false, filters.Config{Compiler: fakeCompiler{}, Installer: inst, IMAPAddr: "127.0.0.1:1"}),
		alice: uuid.Must(uuid.NewV7()), bob: uuid.Must(uuid.NewV7())}
	e.inst = inst
	e.runs = filtersv1.NewFilterRunServiceClient(e.srv.Conn)
	e.addr = e.announce(mailboxesevents.AddressCreated, "", "team", user{e.alice, true}, user{e.bob, false})
	e.known(e.addr)
	created, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: rule("first")})
	if err != nil {
		t.Fatal(err)
	}
	e.rule, e.fs = created.GetRule().GetName(), e.addr+"/filterSettings"
	run, err := e.runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: e.addr, FilterRun: &filtersv1.FilterRun{DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	e.run = run.GetFilterRun().GetName()
	// Ended, so that another may start.
	if _, err := e.runs.CancelFilterRun(e.admin, &filtersv1.CancelFilterRunRequest{Name: e.run}); err != nil {
		t.Fatal(err)
	}
	return e
}

// suite is the attack on every method of the filters API, each with the
// resource it acts on; a method added to the proto without a row here
// fails the test, so none escapes the attack.
func (e *attackEnv) suite() *attacktest.Suite {
	return &attacktest.Suite{
		Conn:  e.srv.Conn,
		Files: []protoreflect.FileDescriptor{filtersv1.File_mailplane_filters_v1_filters_proto},
		Targets: map[string]string{
			"CreateRule": e.addr, "GetRule": e.rule, "ListRules": e.addr, "UpdateRule": e.rule, "MoveRule": e.rule,
			"ReorderRules": e.addr, "DeleteRule": e.rule,
			"GetFilterSettings": e.fs, "UpdateFilterSettings": e.fs, "BatchUpdateFilterSettings": e.ms,
			"ExportSenders": e.fs, "ImportSenders": e.fs,
			"GetMailServiceFilterSettings": e.ms + "/filterSettings", "UpdateMailServiceFilterSettings": e.ms + "/filterSettings",
			"ExportMailServiceSenders": e.ms + "/filterSettings", "ImportMailServiceSenders": e.ms + "/filterSettings",
			"CreateFilterRun": e.addr, "GetFilterRun": e.run, "ListFilterRuns": e.addr, "CancelFilterRun": e.run,
			"ListFilterRunEntries": e.run,
		},
		Valid: e.valid,
		Ignored: []string{
			// Output only: a new resource's name is made by the service.
			"CreateRule:rule.name", "CreateFilterRun:filter_run.name", "CreateFilterRun:filter_run.error",
		},
	}
}

// admins are the methods only owners and admins may call: the address's
// users with the filters right get PermissionDenied.
var admins = map[string]bool{"BatchUpdateFilterSettings": true,
	"GetMailServiceFilterSettings": true, "UpdateMailServiceFilterSettings": true,
	"ExportMailServiceSenders": true, "ImportMailServiceSenders": true}

// valid fills what a request needs besides its resource, so that a
// refusal is the attack's doing, not a missing field's.
func (e *attackEnv) valid(m proto.Message) {
	switch r := m.(type) {
	case *filtersv1.CreateRuleRequest:
		r.Rule = rule("fresh")
	case *filtersv1.UpdateRuleRequest:
		r.Rule.DisplayName = "renamed"
		r.UpdateMask = &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}
	case *filtersv1.ReorderRulesRequest:
		// Every rule of the address, as it is now (the rule under the
		// address named, when it is not this organization's).
		r.Rules = []string{r.Parent + e.rule[strings.LastIndex(e.rule, "/rules/"):]}
		if page, err := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: r.Parent}); err == nil {
			r.Rules = nil
			for _, x := range page.GetRules() {
				r.Rules = append(r.Rules, x.GetName())
			}
		}
	case *filtersv1.UpdateFilterSettingsRequest:
		// No mask: every field the request sets is read.
		r.FilterSettings.SpamFolder = "Junk"
	case *filtersv1.BatchUpdateFilterSettingsRequest:
		r.AntiSpam = proto.Bool(true)
	case *filtersv1.ImportSendersRequest:
		r.Csv = "spam.example\n"
	case *filtersv1.ImportMailServiceSendersRequest:
		r.Csv = "spam.example\n"
	case *filtersv1.UpdateMailServiceFilterSettingsRequest:
		r.MailServiceFilterSettings.BlockedSenders = []string{"spam.example"}
	case *filtersv1.CreateFilterRunRequest:
		r.FilterRun = &filtersv1.FilterRun{DryRun: true}
	}
}

// TestAttackOtherOrganization: another organization's caller, naming this
// organization's resources as they are or under its own organization's
// id, is told NotFound by every method, and nothing changes.
func TestAttackOtherOrganization(t *testing.T) {
	e := startAttack(t)
	other := uuid.Must(uuid.NewV7())
	s := e.suite()
	for _, m := range s.Methods(t) {
		for _, target := range []string{m.Target, strings.Replace(m.Target, e.org.String(), other.String(), 1)} {
			for _, role := range []string{"owner", "admin", "member"} {
				err := s.Call(e.as(other, role), m, s.Request(t, m, target))
				own := target != m.Target
				// Under its own organization's name: a member is refused
				// as a member before anything is looked up, and the
				// batch over a mail service of its own changes nothing.
				if own && admins[m.Name()] && (m.Name() == "BatchUpdateFilterSettings" && err == nil || role == "member" && status.Code(err) == codes.PermissionDenied) {
					continue
				}
				if status.Code(err) != codes.NotFound {
					t.Errorf("%s on %s as another organization's %s: %v, want NotFound", m.Name(), target, role, err)
				}
			}
		}
	}
	got, err := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: e.addr})
	if err != nil || len(got.GetRules()) != 1 || got.GetRules()[0].GetDisplayName() != "first" {
		t.Errorf("the rules after the attack: %v, %v", got, err)
	}
	st, err := e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: e.fs})
	if err != nil || st.GetFilterSettings().GetSpamFolder() != "Spam" || len(st.GetFilterSettings().GetBlockedSenders()) != 0 {
		t.Errorf("the settings after the attack: %v, %v", st, err)
	}
}

// TestAttackFiltersRight: who may act on an address's rules and settings
// follows the "filters" right: a user of the address without it, a member
// who is not its user and a member's API token are refused every method;
// its user with the right may call each (but the batch update, for
// owners and admins); an admin may call all. Allowed, a call may still
// meet the resource's state (a run that has ended cannot be cancelled):
// FailedPrecondition is an answer.
func TestAttackFiltersRight(t *testing.T) {
	e := startAttack(t)
	s := e.suite()
	refused := map[string]context.Context{
		"its user without the right": e.person(e.bob),
		"a member not its user":      e.person(uuid.Must(uuid.NewV7())),
		"a member's API token":       e.as(e.org, "member"),
	}
	for _, m := range s.Methods(t) {
		for who, ctx := range refused {
			if err := s.Call(ctx, m, s.Request(t, m, m.Target)); status.Code(err) != codes.PermissionDenied {
				t.Errorf("%s as %s: %v, want PermissionDenied", m.Name(), who, err)
			}
		}
	}
	// The calls that answer change things (DeleteRule comes last of the
	// rules' methods): each caller on an address of their own.
	for _, who := range []string{"its user with the right", "an admin"} {
		e := startAttack(t)
		s := e.suite()
		ctx := e.admin
		if who != "an admin" {
			ctx = e.person(e.alice)
		}
		for _, m := range s.Methods(t) {
			err := s.Call(ctx, m, s.Request(t, m, m.Target))
			switch {
			case who != "an admin" && admins[m.Name()]:
				if status.Code(err) != codes.PermissionDenied {
					t.Errorf("%s as %s: %v, want PermissionDenied", m.Name(), who, err)
				}
			case err != nil && status.Code(err) != codes.FailedPrecondition:
				t.Errorf("%s as %s: %v, want an answer", m.Name(), who, err)
			}
		}
	}
}

// TestAttackOtherAddress: alice, with the filters right on one address,
// reaches nothing of another address of the organization: its own names
// are PermissionDenied, its rules and runs named under alice's address are
// NotFound.
func TestAttackOtherAddress(t *testing.T) {
	e := startAttack(t)
	// The second address, its rule and its run, with bob its only user.
	b := *e
	b.addr = e.announce(mailboxesevents.AddressCreated, "", "other", user{e.bob, true})
	e.known(b.addr)
	created, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: b.addr, Rule: rule("theirs")})
	if err != nil {
		t.Fatal(err)
	}
	b.rule, b.fs = created.GetRule().GetName(), b.addr+"/filterSettings"
	run, err := e.runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: b.addr, FilterRun: &filtersv1.FilterRun{DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	b.run = run.GetFilterRun().GetName()
	alice := e.person(e.alice)
	s := b.suite()
	for _, m := range s.Methods(t) {
		if admins[m.Name()] {
			continue // owners and admins only: TestAttackFiltersRight
		}
		if err := s.Call(alice, m, s.Request(t, m, m.Target)); status.Code(err) != codes.PermissionDenied {
			t.Errorf("%s on another address: %v, want PermissionDenied", m.Name(), err)
		}
		if under := strings.Replace(m.Target, b.addr, e.addr, 1); under != m.Target && m.Target != b.addr && m.Target != b.fs {
			if err := s.Call(alice, m, s.Request(t, m, under)); status.Code(err) != codes.NotFound {
				t.Errorf("%s on another address's %s under hers: %v, want NotFound", m.Name(), under, err)
			}
		}
	}
	got, err := e.rules.GetRule(e.admin, &filtersv1.GetRuleRequest{Name: b.rule})
	if err != nil || got.GetRule().GetDisplayName() != "theirs" {
		t.Errorf("their rule after the attack: %v, %v", got, err)
	}
}

// TestAttackStrings: every string field of every request, at any depth,
// given a hostile value (the resource names too), is refused with
// InvalidArgument naming the field; nothing answers Internal.
func TestAttackStrings(t *testing.T) {
	e := startAttack(t)
	e.suite().Strings(t, e.admin)
}

// TestAttackPages: forged page tokens are refused by every method that
// pages, and a token of one address's runs does not page another's.
func TestAttackPages(t *testing.T) {
	e := startAttack(t)
	run, err := e.runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: e.addr, FilterRun: &filtersv1.FilterRun{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.runs.CancelFilterRun(e.admin, &filtersv1.CancelFilterRunRequest{Name: run.GetFilterRun().GetName()}); err != nil {
		t.Fatal(err)
	}
	page, err := e.runs.ListFilterRuns(e.admin, &filtersv1.ListFilterRunsRequest{Parent: e.addr, PageSize: 1})
	if err != nil || page.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	other := e.announce(mailboxesevents.AddressCreated, "", "other")
	e.known(other)
	_, err = e.runs.ListFilterRuns(e.admin, &filtersv1.ListFilterRunsRequest{Parent: other, PageToken: page.GetNextPageToken()})
	attacktest.WantCode(t, err, codes.InvalidArgument, "pageToken")
	_, err = e.runs.ListFilterRunEntries(e.admin, &filtersv1.ListFilterRunEntriesRequest{Parent: e.run, PageToken: page.GetNextPageToken()})
	attacktest.WantCode(t, err, codes.InvalidArgument, "pageToken")
	e.suite().PageTokens(t, e.admin, page.GetNextPageToken())
}

// conditions is n conditions on the sender.
func conditions(n int) []*filtersv1.Condition {
	out := make([]*filtersv1.Condition, n)
	for i := range out {
		out[i] = &filtersv1.Condition{Field: filtersv1.Field_FIELD_FROM, Operator: filtersv1.Operator_OPERATOR_CONTAINS, Value: fmt.Sprintf("s%d@", i)}
	}
	return out
}

// actions is n actions flagging the message.
func actions(n int) []*filtersv1.Action {
	out := make([]*filtersv1.Action, n)
	for i := range out {
		out[i] = &filtersv1.Action{Kind: filtersv1.ActionKind_ACTION_KIND_MARK_FLAGGED}
	}
	return out
}

// TestAttackRuleCaps: a rule past the caps of conditions and actions, an
// invalid regex, a folder name with forbidden characters are refused 400
// naming the rule's field, on creation and on update; the 201st rule of
// an address is refused naming the cap.
func TestAttackRuleCaps(t *testing.T) {
	e := startAttack(t)
	for _, tc := range []struct {
		name  string
		edit  func(*filtersv1.Rule)
		field string
	}{
		{"21 conditions", func(r *filtersv1.Rule) { r.Conditions = conditions(21) }, "rule.conditions"},
		{"11 actions", func(r *filtersv1.Rule) { r.Actions = actions(11) }, "rule.actions"},
		{"invalid regex", func(r *filtersv1.Rule) {
			r.Conditions[0].Operator, r.Conditions[0].Value = filtersv1.Operator_OPERATOR_REGEX, "(unclosed"
		}, "rule.conditions[0].value"},
		{"regex of Go only", func(r *filtersv1.Rule) {
			r.Conditions[0].Operator, r.Conditions[0].Value = filtersv1.Operator_OPERATOR_REGEX, `\d+`
		}, "rule.conditions[0].value"},
		{"empty regex", func(r *filtersv1.Rule) {
			r.Conditions[0].Operator, r.Conditions[0].Value = filtersv1.Operator_OPERATOR_REGEX, ""
		}, "rule.conditions[0].value"},
		{"header name with a colon", func(r *filtersv1.Rule) {
			r.Conditions[0].Field, r.Conditions[0].Header = filtersv1.Field_FIELD_HEADER, "X-A: b"
		}, "rule.conditions[0].header"},
		{"a huge size", func(r *filtersv1.Rule) {
			r.Conditions[0] = &filtersv1.Condition{Field: filtersv1.Field_FIELD_SIZE, SizeBytes: 1 << 62}
		}, "rule.conditions[0].sizeBytes"},
		{"forward to no address", func(r *filtersv1.Rule) {
			r.Actions = []*filtersv1.Action{{Kind: filtersv1.ActionKind_ACTION_KIND_FORWARD, Address: "not an address"}}
		}, "rule.actions[0].address"},
		{"an unknown action kind", func(r *filtersv1.Rule) { r.Actions[0].Kind = 99 }, "rule.actions[0].kind"},
		{"an unknown field", func(r *filtersv1.Rule) { r.Conditions[0].Field = 99 }, "rule.conditions[0].field"},
		{"an unknown match", func(r *filtersv1.Rule) { r.Match = 99 }, "rule.match"},
		{"an unknown operator", func(r *filtersv1.Rule) { r.Conditions[0].Operator = 99 }, "rule.conditions[0].operator"},
		{"a negative size", func(r *filtersv1.Rule) {
			r.Conditions[0] = &filtersv1.Condition{Field: filtersv1.Field_FIELD_SIZE, SizeBytes: -1}
		}, "rule.conditions[0].sizeBytes"},
		{"no action", func(r *filtersv1.Rule) { r.Actions = nil }, "rule.actions"},
		{"move without a folder", func(r *filtersv1.Rule) { r.Actions[0].Folder = "" }, "rule.actions[0].folder"},
		{"no name", func(r *filtersv1.Rule) { r.DisplayName = "  " }, "rule.displayName"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rule("bad")
			tc.edit(r)
			_, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: r})
			attacktest.WantCode(t, err, codes.InvalidArgument, tc.field)
			r.Name = e.rule
			_, err = e.rules.UpdateRule(e.admin, &filtersv1.UpdateRuleRequest{Rule: r, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}})
			attacktest.WantCode(t, err, codes.InvalidArgument, tc.field)
		})
	}
	for _, f := range []string{"a*b", "a%b", "/abs", "a//b", "a/../b", "..", "~x", "a/", " a", strings.Repeat("a/", 11) + "a", strings.Repeat("é", 200)} {
		r := rule("bad folder")
		r.Actions[0].Folder = f
		_, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: r})
		if status.Code(err) != codes.InvalidArgument || !attacktest.Named(err, "rule.actions[0].folder") {
			t.Errorf("folder %q: %v, want InvalidArgument naming rule.actions[0].folder", f, err)
		}
	}
	// 200 rules per address: the first made them one.
	for i := 1; i < 200; i++ {
		if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: rule(fmt.Sprintf("r%d", i))}); err != nil {
			t.Fatalf("rule %d: %v", i+1, err)
		}
	}
	_, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: rule("one too many")})
	if c := status.Code(err); (c != codes.FailedPrecondition && c != codes.InvalidArgument && c != codes.ResourceExhausted) || !strings.Contains(err.Error(), "200") {
		t.Errorf("the 201st rule: %v, want a refusal naming the cap", err)
	}
	names := make([]string, 201)
	for i := range names {
		names[i] = e.rule
	}
	_, err = e.rules.ReorderRules(e.admin, &filtersv1.ReorderRulesRequest{Parent: e.addr, Rules: names})
	attacktest.WantCode(t, err, codes.InvalidArgument, "rules")
}

// TestAttackSettingsCaps: folders with forbidden characters, senders past
// the cap, a CSV past 1 MiB or with bad rows, a batch over more addresses
// than its cap: each refused 400 naming the field, and nothing changes.
func TestAttackSettingsCaps(t *testing.T) {
	e := startAttack(t)
	update := func(st *filtersv1.FilterSettings) error {
		st.Name = e.fs
		_, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{FilterSettings: st})
		return err
	}
	for _, f := range []string{"a*b", "a%b", "/abs", "a//b", "..", "a/../b", "~x", "a/", "a /b", strings.Repeat("é", 200)} {
		for field, st := range map[string]*filtersv1.FilterSettings{
			"filterSettings.spamFolder":         {SpamFolder: f},
			"filterSettings.newsletterFolder":   {NewsletterFolder: f},
			"filterSettings.notificationFolder": {NotificationFolder: f},
		} {
			err := update(st)
			if status.Code(err) != codes.InvalidArgument || !attacktest.Named(err, field) {
				t.Errorf("%s %q: %v, want InvalidArgument naming it", field, f, err)
			}
		}
	}
	// The daily sweep empties the spam folder: never the INBOX.
	for _, f := range []string{"INBOX", "inbox", "Inbox"} {
		attacktest.WantCode(t, update(&filtersv1.FilterSettings{SpamFolder: f}), codes.InvalidArgument, "filterSettings.spamFolder")
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("s%d.example", i)
	}
	attacktest.WantCode(t, update(&filtersv1.FilterSettings{BlockedSenders: many}), codes.InvalidArgument, "filterSettings.blockedSenders")
	attacktest.WantCode(t, update(&filtersv1.FilterSettings{AllowedSenders: many}), codes.InvalidArgument, "filterSettings.allowedSenders")
	attacktest.WantCode(t, update(&filtersv1.FilterSettings{BlockedSenders: []string{"a.example", "not a sender"}}), codes.InvalidArgument, "filterSettings.blockedSenders[1]")

	imp := func(csv string) error {
		_, err := e.settings.ImportSenders(e.admin, &filtersv1.ImportSendersRequest{Name: e.fs, Csv: csv})
		return err
	}
	big := strings.Repeat("a.example,block\n", 1<<20/16+1)
	attacktest.WantCode(t, imp(big), codes.InvalidArgument, "csv")
	// 1,001 distinct rows, under 1 MiB: the lists' cap.
	attacktest.WantCode(t, imp(strings.Join(many, "\n")), codes.InvalidArgument, "blockedSenders")
	for _, bad := range []string{
		"a.example,maybe\n", "a,b,c\n", "\"unclosed\n", "a.example,block\nbad sender,block\n", "=cmd|' /C calc'!A0\n",
		"a.example\x00,block\n", ",block\n", "sender,list\n\"a\"\"b\",allow\n",
	} {
		err := imp(bad)
		if status.Code(err) != codes.InvalidArgument || !attacktest.Named(err, "csv") {
			t.Errorf("csv %q: %v, want InvalidArgument naming it", bad, err)
		}
	}
	st, err := e.settings.GetFilterSettings(e.admin, &filtersv1.GetFilterSettingsRequest{Name: e.fs})
	if err != nil || len(st.GetFilterSettings().GetBlockedSenders()) != 0 || st.GetFilterSettings().GetSpamFolder() != "Spam" {
		t.Errorf("the settings after the refusals: %v, %v", st, err)
	}

	addrs := make([]string, 10001)
	for i := range addrs {
		addrs[i] = e.addr
	}
	_, err = e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, Addresses: addrs, AntiSpam: proto.Bool(false)})
	attacktest.WantCode(t, err, codes.InvalidArgument, "addresses")
	_, err = e.settings.BatchUpdateFilterSettings(e.admin, &filtersv1.BatchUpdateFilterSettingsRequest{Parent: e.ms, Addresses: []string{e.addr}})
	attacktest.WantCode(t, err, codes.InvalidArgument, "")
}

// TestAttackScriptSize: rules each within the caps but together past
// the size of Sieve script the mail store takes are refused naming the
// rule, on creation and on update (saved, they would never be installed,
// nor the address's platform scripts with them).
func TestAttackScriptSize(t *testing.T) {
	e := startAttack(t)
	big := func(name string) *filtersv1.Rule {
		r := rule(name)
		r.Conditions = conditions(20)
		for _, c := range r.Conditions {
			c.Value += strings.Repeat("x", 990)
		}
		return r
	}
	var refused error
	n := 1
	for ; n < 200 && refused == nil; n++ {
		_, refused = e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: e.addr, Rule: big(fmt.Sprintf("big %d", n))})
	}
	attacktest.WantCode(t, refused, codes.InvalidArgument, "rule")
	if n < 40 {
		t.Errorf("refused after %d rules of about 20 KB: the cap is 1 MiB", n-1)
	}
	got, err := e.rules.ListRules(e.admin, &filtersv1.ListRulesRequest{Parent: e.addr})
	if err != nil || len(got.GetRules()) != n-1 {
		t.Fatalf("%d rules kept, want %d (%v)", len(got.GetRules()), n-1, err)
	}
	// The first, small rule made big is refused too.
	r := big("first")
	r.Name = e.rule
	_, err = e.rules.UpdateRule(e.admin, &filtersv1.UpdateRuleRequest{Rule: r, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"conditions"}}})
	attacktest.WantCode(t, err, codes.InvalidArgument, "rule")
}
