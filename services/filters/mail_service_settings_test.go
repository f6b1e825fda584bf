package filters_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// installedBefore is the before script last installed for login.
func (e *env) installedBefore(login string) string {
	e.inst.mu.Lock()
	defer e.inst.mu.Unlock()
	return e.inst.got[login]["before"]
}

// TestMailServiceSenders: the admins' block and allow lists of a mail
// service: read and changed by owners and admins only (a member is
// refused, another organization's ids are NOT_FOUND), checked naming the
// field, imported and exported as CSV, and compiled into the platform
// script of every address of the mail service, each reinstalled.
func TestMailServiceSenders(t *testing.T) {
	e := startWith(t, true, nil)
	a1 := e.announce(mailboxesevents.AddressCreated, "", "sales")
	a2 := e.announce(mailboxesevents.AddressCreated, "", "info")
	e.known(a1)
	e.known(a2)
	name := e.ms + "/filterSettings"

	got, err := e.settings.GetMailServiceFilterSettings(e.admin, &filtersv1.GetMailServiceFilterSettingsRequest{Name: name})
	if err != nil || len(got.GetMailServiceFilterSettings().GetBlockedSenders()) != 0 || got.GetMailServiceFilterSettings().GetUpdateTime() != nil {
		t.Fatalf("defaults: %v %v", got, err)
	}
	up, err := e.settings.UpdateMailServiceFilterSettings(e.admin, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name,
			BlockedSenders: []string{"Pest@Spam.Example", "bad.example", "bad.example"}, AllowedSenders: []string{"ok.bad.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	if st := up.GetMailServiceFilterSettings(); strings.Join(st.GetBlockedSenders(), ",") != "pest@spam.example,bad.example" || st.GetUpdateTime() == nil {
		t.Fatalf("updated: %v", st)
	}
	// Every address of the mail service gets the admins' block list.
	for _, login := range []string{"sales@example.test", "info@example.test"} {
		e.eventually(login+" reinstalled with the mail service's list", func() bool {
			return strings.Contains(e.installedBefore(login), `"bad.example"`)
		})
	}

	// reject_blocked alone, by mask; the lists stay.
	up, err = e.settings.UpdateMailServiceFilterSettings(e.admin, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name, RejectBlocked: true},
		UpdateMask:                &fieldmaskpb.FieldMask{Paths: []string{"reject_blocked"}}})
	if err != nil || !up.GetMailServiceFilterSettings().GetRejectBlocked() || len(up.GetMailServiceFilterSettings().GetBlockedSenders()) != 2 {
		t.Fatalf("reject_blocked: %v %v", up, err)
	}
	e.eventually("reinstalled refusing", func() bool {
		return strings.Contains(e.installedBefore("sales@example.test"), "reject")
	})

	// CSV, with the address's format and checks.
	imp, err := e.settings.ImportMailServiceSenders(e.admin, &filtersv1.ImportMailServiceSendersRequest{Name: name, Csv: "sender,list\nnew.example,block\nfriend@new.example,allow\n"})
	if err != nil || len(imp.GetMailServiceFilterSettings().GetBlockedSenders()) != 3 || len(imp.GetMailServiceFilterSettings().GetAllowedSenders()) != 2 {
		t.Fatalf("import: %v %v", imp, err)
	}
	exp, err := e.settings.ExportMailServiceSenders(e.admin, &filtersv1.ExportMailServiceSendersRequest{Name: name})
	if want := "sender,list\npest@spam.example,block\nbad.example,block\nnew.example,block\nok.bad.example,allow\nfriend@new.example,allow\n"; err != nil || exp.GetCsv() != want {
		t.Fatalf("export %q %v, want %q", exp.GetCsv(), err, want)
	}
	_, err = e.settings.ImportMailServiceSenders(e.admin, &filtersv1.ImportMailServiceSendersRequest{Name: name, Csv: "a.example,block\nnot a sender,block\n"})
	wantCode(t, err, codes.InvalidArgument, "csv")
	_, err = e.settings.ImportMailServiceSenders(e.admin, &filtersv1.ImportMailServiceSendersRequest{Name: name, Csv: "a.example,maybe\n"})
	wantCode(t, err, codes.InvalidArgument, "csv")

	// Bad input names the field; caps.
	_, err = e.settings.UpdateMailServiceFilterSettings(e.admin, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name, AllowedSenders: []string{"ok.example", "a@b@c"}}})
	wantCode(t, err, codes.InvalidArgument, "mailServiceFilterSettings.allowedSenders[1]")
	many := make([]string, 1001)
	for i := range many {
		many[i] = uuid.NewString()[:8] + ".example"
	}
	_, err = e.settings.UpdateMailServiceFilterSettings(e.admin, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name, BlockedSenders: many}})
	wantCode(t, err, codes.InvalidArgument, "mailServiceFilterSettings.blockedSenders")
	_, err = e.settings.UpdateMailServiceFilterSettings(e.admin, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name, RejectBlocked: true},
		UpdateMask:                &fieldmaskpb.FieldMask{Paths: []string{"update_time"}}})
	wantCode(t, err, codes.InvalidArgument, "")

	// Who: a member is refused; another organization's caller, another
	// organization's ids and an unknown mail service are NOT_FOUND.
	member := e.as(e.org, "member")
	_, err = e.settings.GetMailServiceFilterSettings(member, &filtersv1.GetMailServiceFilterSettingsRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.settings.UpdateMailServiceFilterSettings(member, &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: name, RejectBlocked: false}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"reject_blocked"}}})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.settings.ImportMailServiceSenders(member, &filtersv1.ImportMailServiceSendersRequest{Name: name, Csv: "x.example\n"})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = e.settings.ExportMailServiceSenders(member, &filtersv1.ExportMailServiceSendersRequest{Name: name})
	wantCode(t, err, codes.PermissionDenied, "")
	other := uuid.Must(uuid.NewV7())
	_, err = e.settings.GetMailServiceFilterSettings(e.as(other, "admin"), &filtersv1.GetMailServiceFilterSettingsRequest{Name: name})
	wantCode(t, err, codes.NotFound, "")
	otherName := "organizations/" + other.String() + "/mailServices/" + strings.Split(e.ms, "/")[3] + "/filterSettings"
	_, err = e.settings.GetMailServiceFilterSettings(e.as(other, "admin"), &filtersv1.GetMailServiceFilterSettingsRequest{Name: otherName})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.settings.UpdateMailServiceFilterSettings(e.as(other, "admin"), &filtersv1.UpdateMailServiceFilterSettingsRequest{
		MailServiceFilterSettings: &filtersv1.MailServiceFilterSettings{Name: otherName, BlockedSenders: []string{"x.example"}}})
	wantCode(t, err, codes.NotFound, "")
	unknown := "organizations/" + e.org.String() + "/mailServices/" + uuid.NewString() + "/filterSettings"
	_, err = e.settings.GetMailServiceFilterSettings(e.admin, &filtersv1.GetMailServiceFilterSettingsRequest{Name: unknown})
	wantCode(t, err, codes.NotFound, "")
	_, err = e.settings.GetMailServiceFilterSettings(e.admin, &filtersv1.GetMailServiceFilterSettingsRequest{Name: e.ms})
	wantCode(t, err, codes.InvalidArgument, "name")
}
