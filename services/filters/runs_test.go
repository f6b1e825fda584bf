package filters_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/filters/internal/runnow"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

const mailPassword = dovecottest.UserPassword

// startRuns runs the service against a real Dovecot (deploy/mail/dovecot)
// whose master user it logs in to IMAP with, its jobs not worked yet.
func startRuns(t *testing.T) (*env, *dovecottest.Dovecot, filtersv1.FilterRunServiceClient) {
	t.Helper()
	d := dovecottest.StartMail(t, nil).Dovecot
	inst := &fakeInstaller{got: map[string]filters.Scripts{}}
	cfg := filters.Config{IMAPAddr: d.Addr, Installer: inst}
	cfg.ManageSieve.Personal.User, cfg.ManageSieve.Personal.Password = "mailplane-personal", "personal-secret"
	e := startConfig(t, false, cfg)
	e.inst = inst
	return e, d, filtersv1.NewFilterRunServiceClient(e.srv.Conn)
}

func stored(id, subject string) dovecottest.Message {
	return dovecottest.Message{Folder: "INBOX", Raw: []byte("From: shop@example.net\r\nTo: sales@example.test\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + id + "@example.net>\r\n\r\nHello.\r\n")}
}

// TestFilterRuns: a run is refused while another of the address runs
// (naming it), cancelled runs end, a dry run lists what would happen page
// by page and changes nothing, and a run started while no worker was up
// is done once one starts, moving the messages.
func TestFilterRuns(t *testing.T) {
	e, d, runs := startRuns(t)
	addr := e.announce(mailboxesevents.AddressCreated, "", "sales")
	e.known(addr)
	login := "sales@example.test"
	d.Seed(t, login, mailPassword, nil, []dovecottest.Message{stored("a", "invoice 1"), stored("b", "hello"), stored("c", "invoice 2"), stored("d", "invoice 3")})
	r, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: &filtersv1.Rule{DisplayName: "invoices",
		Conditions: []*filtersv1.Condition{{Field: filtersv1.Field_FIELD_SUBJECT, Operator: filtersv1.Operator_OPERATOR_CONTAINS, Value: "invoice"}},
		Actions:    []*filtersv1.Action{moveTo("Finance"), {Kind: filtersv1.ActionKind_ACTION_KIND_FORWARD, Address: "x@example.net"}}}})
	if err != nil {
		t.Fatal(err)
	}

	// Bad input names the field.
	_, err = runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{Folder: "a/*"}})
	wantCode(t, err, codes.InvalidArgument, "filterRun.folder")
	_, err = runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{Rule: addr + "/rules/x"}})
	wantCode(t, err, codes.InvalidArgument, "filterRun.rule")

	// One at a time: no worker yet, so the first stays running.
	first, err := runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{DryRun: true}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{}})
	wantCode(t, err, codes.FailedPrecondition, "")
	if !strings.Contains(err.Error(), first.GetFilterRun().GetName()) {
		t.Errorf("the refusal does not name the running run: %v", err)
	}
	c, err := runs.CancelFilterRun(e.admin, &filtersv1.CancelFilterRunRequest{Name: first.GetFilterRun().GetName()})
	if err != nil || c.GetFilterRun().GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_CANCELLED || c.GetFilterRun().GetEndTime() == nil {
		t.Fatalf("cancel: %v %v", c, err)
	}
	_, err = runs.CancelFilterRun(e.admin, &filtersv1.CancelFilterRunRequest{Name: first.GetFilterRun().GetName()})
	wantCode(t, err, codes.FailedPrecondition, "")

	dry, err := runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{DryRun: true, Rule: r.GetRule().GetName()}})
	if err != nil {
		t.Fatal(err)
	}
	// The worker starts (a deploy, a restart): the queued run is done.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.RunForTest(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wait := func(name string) *filtersv1.FilterRun {
		t.Helper()
		var got *filtersv1.FilterRun
		e.eventually(name+" ended", func() bool {
			resp, err := runs.GetFilterRun(e.admin, &filtersv1.GetFilterRunRequest{Name: name})
			if err != nil {
				t.Fatal(err)
			}
			got = resp.GetFilterRun()
			return got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING
		})
		return got
	}
	got := wait(dry.GetFilterRun().GetName())
	if got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_SUCCEEDED || got.GetMessagesTotal() != 4 || got.GetMessagesDone() != 4 ||
		got.GetMessagesMatched() != 3 || got.GetMessagesChanged() != 0 || got.GetEntryCount() != 3 || got.GetFoldersTotal() != 1 || got.GetFoldersDone() != 1 {
		t.Fatalf("dry run: %v", got)
	}
	var lines []string
	token := ""
	for range 5 {
		page, err := runs.ListFilterRunEntries(e.admin, &filtersv1.ListFilterRunEntriesRequest{Parent: got.GetName(), PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range page.GetEntries() {
			lines = append(lines, en.GetMessageId()+" "+en.GetSubject()+": "+strings.Join(en.GetActions(), "; "))
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	want := `<a@example.net> invoice 1: move to "Finance"; forward to x@example.net: not applied to stored mail`
	if len(lines) != 3 || lines[0] != want {
		t.Errorf("entries: %q", lines)
	}
	if n := len(d.Messages(t, login, mailPassword)); n != 4 {
		t.Errorf("%d messages after a dry run", n)
	}

	real, err := runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := wait(real.GetFilterRun().GetName()); got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_SUCCEEDED || got.GetMessagesChanged() != 3 {
		t.Fatalf("run: %v", got)
	}
	folders := map[string]int{}
	for _, m := range d.Messages(t, login, mailPassword) {
		folders[m.Folder]++
	}
	if folders["Finance"] != 3 || folders["INBOX"] != 1 {
		t.Errorf("after the run: %v", folders)
	}

	list, err := runs.ListFilterRuns(e.admin, &filtersv1.ListFilterRunsRequest{Parent: addr, PageSize: 2})
	if err != nil || len(list.GetFilterRuns()) != 2 || list.GetNextPageToken() == "" || list.GetFilterRuns()[0].GetName() != real.GetFilterRun().GetName() {
		t.Fatalf("list: %v %v", list, err)
	}
	// Another organization learns nothing.
	_, err = runs.GetFilterRun(e.as(uuid.Must(uuid.NewV7()), "admin"), &filtersv1.GetFilterRunRequest{Name: real.GetFilterRun().GetName()})
	wantCode(t, err, codes.NotFound, "")
}

// TestSpamSweep: the daily sweep queues a purge for each address whose
// anti-spam filter is on; the purge keeps what was saved in Spam within
// 30 days and removes what is older (here: saved before tomorrow), from
// Spam only.
func TestSpamSweep(t *testing.T) {
	e, d, _ := startRuns(t)
	on := e.announce(mailboxesevents.AddressCreated, "", "sales")
	off := e.announce(mailboxesevents.AddressCreated, "", "quiet")
	e.known(on)
	e.known(off)
	if _, err := e.settings.UpdateFilterSettings(e.admin, &filtersv1.UpdateFilterSettingsRequest{
		FilterSettings: &filtersv1.FilterSettings{Name: off + "/filterSettings"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"anti_spam"}}}); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"sales@example.test", "quiet@example.test"} {
		spam := stored("s", "spam")
		spam.Folder = "Spam"
		d.Seed(t, login, mailPassword, nil, []dovecottest.Message{spam, stored("i", "ham")})
	}
	n, err := e.svc.QueueSpamPurges(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("queued %d: %v", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.RunForTest(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	e.eventually("the purge job done", func() bool {
		var left int
		e.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'spam_purge' AND state <> 'completed'`).Scan(&left)
		return left == 0
	})
	count := func(login string) map[string]int {
		folders := map[string]int{}
		for _, m := range d.Messages(t, login, mailPassword) {
			folders[m.Folder]++
		}
		return folders
	}
	if got := count("sales@example.test"); got["Spam"] != 1 || got["INBOX"] != 1 {
		t.Fatalf("spam saved today was purged: %v", got)
	}
	if n, err := e.svc.PurgeSpam(context.Background(), on, time.Now().AddDate(0, 0, 1)); err != nil || n != 1 {
		t.Fatalf("purge before tomorrow: %d %v", n, err)
	}
	if got := count("sales@example.test"); got["Spam"] != 0 || got["INBOX"] != 1 {
		t.Fatalf("after the purge: %v", got)
	}
	if n, err := e.svc.PurgeSpam(context.Background(), off, time.Now().AddDate(0, 0, 1)); err != nil || n != 0 {
		t.Fatalf("an address with spam off: %d %v", n, err)
	}
	if got := count("quiet@example.test"); got["Spam"] != 1 {
		t.Fatalf("spam off, yet purged: %v", got)
	}
}

// TestFilterRunResumes: a run interrupted after a batch (its checkpoint
// stored, as the job stores it) is taken up by the next worker from that
// checkpoint: every message is copied once. A run on a folder that does
// not exist fails at once, saying so.
func TestFilterRunResumes(t *testing.T) {
	e, d, runs := startRuns(t)
	addr := e.announce(mailboxesevents.AddressCreated, "", "sales")
	e.known(addr)
	login := "sales@example.test"
	var msgs []dovecottest.Message
	for i := range 6 {
		msgs = append(msgs, stored(fmt.Sprint("m", i), "copy me"))
	}
	d.Seed(t, login, mailPassword, nil, msgs)
	copyRule := &filtersv1.Rule{DisplayName: "copy", Actions: []*filtersv1.Action{{Kind: filtersv1.ActionKind_ACTION_KIND_COPY, Folder: "Copies"}}}
	if _, err := e.rules.CreateRule(e.admin, &filtersv1.CreateRuleRequest{Parent: addr, Rule: copyRule}); err != nil {
		t.Fatal(err)
	}
	run, err := runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{}})
	if err != nil {
		t.Fatal(err)
	}
	// The first worker got through one batch of 2, then its process died.
	c, err := runnow.Dial(context.Background(), d.Addr, login, runnow.Login{User: "mailplane-personal", Password: "personal-secret"}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var checkpoint runnow.Progress
	crash := errors.New("crash")
	job := runnow.Job{Rules: []rules.Rule{{Name: "copy", Enabled: true, Match: rules.All, Actions: []rules.Action{{Kind: rules.Copy, Folder: "Copies"}}}}, Folder: "INBOX", Batch: 2}
	_, err = runnow.Run(context.Background(), c, job, nil, func(p runnow.Progress, _ []runnow.Entry) error {
		checkpoint = p
		if p.Done > 0 {
			return crash
		}
		return nil
	})
	c.Logout()
	if !errors.Is(err, crash) || checkpoint.Done != 2 {
		t.Fatalf("first worker: %v %+v", err, checkpoint)
	}
	b, _ := json.Marshal(checkpoint)
	id := run.GetFilterRun().GetName()[strings.LastIndexByte(run.GetFilterRun().GetName(), '/')+1:]
	if _, err := e.pool.Exec(context.Background(), `UPDATE filter_runs SET progress = $2 WHERE id = $1`, id, b); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.RunForTest(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var got *filtersv1.FilterRun
	e.eventually("the run resumed and ended", func() bool {
		resp, err := runs.GetFilterRun(e.admin, &filtersv1.GetFilterRunRequest{Name: run.GetFilterRun().GetName()})
		got = resp.GetFilterRun()
		return err == nil && got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING
	})
	if got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_SUCCEEDED || got.GetMessagesDone() != 6 || got.GetMessagesChanged() != 6 {
		t.Fatalf("resumed run: %v", got)
	}
	copies := map[string]int{}
	for _, m := range d.Messages(t, login, mailPassword) {
		if m.Folder == "Copies" {
			copies[string(m.Raw)]++
		}
	}
	if len(copies) != 6 {
		t.Fatalf("%d messages copied, want 6", len(copies))
	}
	for raw, n := range copies {
		if n != 1 {
			t.Errorf("copied %d times: %.60q", n, raw)
		}
	}

	missing, err := runs.CreateFilterRun(e.admin, &filtersv1.CreateFilterRunRequest{Parent: addr, FilterRun: &filtersv1.FilterRun{Folder: "Nowhere"}})
	if err != nil {
		t.Fatal(err)
	}
	e.eventually("the run on a missing folder ended", func() bool {
		resp, err := runs.GetFilterRun(e.admin, &filtersv1.GetFilterRunRequest{Name: missing.GetFilterRun().GetName()})
		got = resp.GetFilterRun()
		return err == nil && got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING
	})
	if got.GetState() != filtersv1.FilterRunState_FILTER_RUN_STATE_FAILED || !strings.Contains(got.GetError(), "Nowhere") {
		t.Fatalf("run on a missing folder: %v", got)
	}
}
