package mailboxes_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// bulkCSV is a file of the addresses user{from}..user{to-1}: every tenth
// with two aliases, every seventh a redirect, every thirteenth no-reply, a
// quota on some; with a BOM and CRLF line ends as spreadsheets save them.
func bulkCSV(from, to int) []byte {
	var b strings.Builder
	b.WriteString("\xef\xbb\xbflocal_part,kind,aliases,redirect_destinations,quota_mb\r\n")
	for i := from; i < to; i++ {
		switch {
		case i%7 == 0:
			fmt.Fprintf(&b, "User%d,redirect,,\"boss%d@elsewhere.example, team@elsewhere.example\",\r\n", i, i)
		case i%13 == 0:
			fmt.Fprintf(&b, "user%d,no_reply,,,\r\n", i)
		case i%10 == 1:
			fmt.Fprintf(&b, "user%d,mailbox,u%da u%db,,%d\r\n", i, i, i, 1024)
		default:
			fmt.Fprintf(&b, "user%d,,,,\r\n", i)
		}
	}
	return []byte(b.String())
}

// bulkFields returns every field violation of err as "field: description".
func bulkFields(err error) []string {
	var out []string
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField()+": "+v.GetDescription())
			}
		}
	}
	return out
}

// waitBulkJob polls a job until it is no longer running.
func waitBulkJob(t *testing.T, bulk mailboxesv1.BulkServiceClient, ctx context.Context, name string) *mailboxesv1.BulkJob {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := int32(-1)
	for {
		resp, err := bulk.GetBulkJob(ctx, &mailboxesv1.GetBulkJobRequest{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		j := resp.Job
		if j.DoneRows < last || j.DoneRows > j.TotalRows {
			t.Fatalf("progress went from %d to %d of %d", last, j.DoneRows, j.TotalRows)
		}
		last = j.DoneRows
		if j.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_RUNNING {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job still running after 60 s: %v", j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBulkCreate(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	member := e.person(t, "member@example.com")
	e.join(t, owner, member, "member@example.com", accountsv1.Role_ROLE_MEMBER)
	stranger := e.person(t, "stranger@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	upload := func(p person, data []byte) (*mailboxesv1.BulkJob, error) {
		resp, err := bulk.CreateBulkJob(p.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: data})
		return resp.GetJob(), err
	}
	count := func(query string) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const (
		countAddresses = "SELECT count(*) FROM addresses"
		countLocal     = "SELECT count(*) FROM local_parts"
		countCreated   = "SELECT count(*) FROM outbox WHERE subject = 'mailboxes.address.created'"
		countAudits    = "SELECT count(*) FROM outbox WHERE subject = 'mailboxes.audit.recorded'"
		countJobs      = "SELECT count(*) FROM bulk_jobs"
	)

	// The template, uploaded as it is, creates its example.
	tpl, err := bulk.GetBulkTemplate(member.ctx, &mailboxesv1.GetBulkTemplateRequest{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tpl.Csv, "local_part,kind,aliases,redirect_destinations,quota_mb,users\r\n") {
		t.Errorf("template %q", tpl.Csv)
	}
	_, err = bulk.GetBulkTemplate(stranger.ctx, &mailboxesv1.GetBulkTemplateRequest{Parent: parent})
	wantCode(t, err, codes.NotFound)
	job, err := upload(owner, []byte(tpl.Csv))
	if err != nil {
		t.Fatal(err)
	}
	if job = waitBulkJob(t, bulk, owner.ctx, job.Name); job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.TotalRows != 1 || job.DoneRows != 1 {
		t.Fatalf("template job %v", job)
	}
	list, err := e.addrs.ListAddresses(owner.ctx, &mailboxesv1.ListAddressesRequest{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Addresses) != 1 {
		t.Fatalf("addresses %v", list.Addresses)
	}
	if a := list.Addresses[0]; a.Email != "anna.smith@acme.example" || strings.Join(a.Aliases, ",") != "anna,asmith" || a.QuotaBytes != 2048<<20 || a.Kind != mailboxesv1.AddressKind_ADDRESS_KIND_MAILBOX {
		t.Errorf("address %v", a)
	}

	// Who may upload.
	_, err = upload(member, bulkCSV(0, 10))
	wantCode(t, err, codes.PermissionDenied)
	_, err = upload(stranger, bulkCSV(0, 10))
	wantCode(t, err, codes.NotFound)

	// Every problem is named by line and column, and nothing is created.
	if _, err := e.reserve.CreateReservation(owner.ctx, &mailboxesv1.CreateReservationRequest{Parent: parent, LocalPart: "team", Holder: "lists"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: parent, Address: &mailboxesv1.Address{LocalPart: "sales", Aliases: []string{"vente"}}}); err != nil {
		t.Fatal(err)
	}
	before := count(countAddresses)
	_, err = upload(owner, []byte("local_part,kind,aliases\n"+
		"fine,,\n"+
		"Team,,\n"+
		"vente,,\n"+
		"sales,no_reply,\n"+
		"new,,Anna.Smith\n"+
		"a..b,,\n"+
		"Fine,,\n"))
	wantCode(t, err, codes.InvalidArgument)
	want := []string{
		`line 3, column local_part: "team" is reserved by the lists service`,
		`line 4, column local_part: "vente" is already an alias of another address`,
		`line 5, column kind: "sales" is already an address of kind mailbox`,
		`line 6, column aliases: "anna.smith" is already an address of this mail service`,
		`line 7, column local_part: must not start or end with a dot, nor have two in a row`,
		`line 8, column local_part: "fine" is already on line 2`,
	}
	if got := bulkFields(err); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(status.Convert(err).Message(), "line 3, column local_part: ") {
		t.Errorf("message %q", status.Convert(err).Message())
	}
	if n := count(countAddresses); n != before {
		t.Errorf("%d addresses after a refused file, want %d", n, before)
	}

	// 10,000 rows: one job, whose progress can be read.
	before, local, events, audits, jobs := count(countAddresses), count(countLocal), count(countCreated), count(countAudits), count(countJobs)
	data := bulkCSV(0, 10000)
	started := time.Now()
	job, err = upload(owner, data)
	if err != nil {
		t.Fatal(err)
	}
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_RUNNING || job.TotalRows != 10000 || !strings.HasPrefix(job.Name, parent+"/bulkJobs/") {
		t.Errorf("new job %v", job)
	}
	job = waitBulkJob(t, bulk, owner.ctx, job.Name)
	t.Logf("10,000 rows: %v from upload to SUCCEEDED", time.Since(started))
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.DoneRows != 10000 || job.EndTime == nil || job.Error != "" {
		t.Fatalf("job %v", job)
	}
	aliases := 0
	for i := range 10000 {
		if i%7 != 0 && i%13 != 0 && i%10 == 1 {
			aliases += 2
		}
	}
	if n := count(countAddresses); n != before+10000 {
		t.Errorf("%d addresses, want %d", n, before+10000)
	}
	if n := count(countLocal); n != local+10000+aliases {
		t.Errorf("%d local parts, want %d", n, local+10000+aliases)
	}
	if n := count(countCreated); n != events+10000 {
		t.Errorf("%d address events, want %d", n, events+10000)
	}
	if n := count(countAudits); n != audits+1 {
		t.Errorf("%d audit records, want %d", n, audits+1)
	}
	var kind, email string
	var redirects []string
	if err := e.pool.QueryRow(ctx, "SELECT a.kind, d.login FROM addresses a LEFT JOIN dovecot_users d ON d.address_id = a.id WHERE a.local_key = 'user11'").Scan(&kind, &email); err != nil {
		t.Fatal(err)
	}
	if kind != "mailbox" || email != "user11@acme.example" {
		t.Errorf("user11: %s %s", kind, email)
	}
	if err := e.pool.QueryRow(ctx, "SELECT kind, redirects FROM addresses WHERE local_part = 'User14'").Scan(&kind, &redirects); err != nil {
		t.Fatal(err)
	}
	if kind != "redirect" || strings.Join(redirects, " ") != "boss14@elsewhere.example team@elsewhere.example" {
		t.Errorf("User14: %s %v", kind, redirects)
	}

	// The same file again: the same job, nothing created twice.
	again, err := upload(owner, data)
	if err != nil {
		t.Fatal(err)
	}
	if again.Name != job.Name || again.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED {
		t.Errorf("second upload %v, want job %s", again, job.Name)
	}
	if n := count(countAddresses); n != before+10000 {
		t.Errorf("%d addresses after the second upload, want %d", n, before+10000)
	}
	if n := count(countJobs); n != jobs+1 {
		t.Errorf("%d jobs, want %d", n, jobs+1)
	}

	// Another file with 2 new rows among 100 existing ones: 2 created.
	mixed := bulkCSV(9900, 10002)
	job2, err := upload(owner, mixed)
	if err != nil {
		t.Fatal(err)
	}
	if job2.Name == job.Name {
		t.Fatal("another file got the first job")
	}
	if job2 = waitBulkJob(t, bulk, owner.ctx, job2.Name); job2.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job2.TotalRows != 102 || job2.DoneRows != 102 {
		t.Fatalf("mixed job %v", job2)
	}
	if n := count(countAddresses); n != before+10002 {
		t.Errorf("%d addresses, want %d", n, before+10002)
	}
	if n := count(countCreated); n != events+10002 {
		t.Errorf("%d address events, want %d", n, events+10002)
	}

	// A job left running with no run queued (River gave up on it, or its
	// queue was emptied by hand) is finished by uploading its file again.
	if _, err := e.pool.Exec(ctx, "DELETE FROM addresses WHERE local_key IN ('user9000', 'user9001', 'user9991')"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE bulk_jobs SET state = 'running', done_rows = 5000, end_time = NULL WHERE id = $1",
		job.Name[strings.LastIndex(job.Name, "/")+1:]); err != nil {
		t.Fatal(err)
	}
	resumed, err := upload(owner, data)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Name != job.Name || resumed.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_RUNNING || resumed.DoneRows != 0 {
		t.Errorf("resumed %v", resumed)
	}
	if resumed = waitBulkJob(t, bulk, owner.ctx, job.Name); resumed.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || resumed.DoneRows != 10000 {
		t.Fatalf("resumed job %v", resumed)
	}
	if n := count(countAddresses); n != before+10002 {
		t.Errorf("%d addresses after the resumed job, want %d", n, before+10002)
	}
	if n := count(countCreated); n != events+10005 {
		t.Errorf("%d address events after the resumed job, want %d", n, events+10005)
	}
	if n := count("SELECT count(*) FROM bulk_jobs WHERE csv IS NOT NULL"); n != 0 {
		t.Errorf("%d finished jobs still hold their file", n)
	}

	// Jobs are read by managers of their organization only.
	_, err = bulk.GetBulkJob(member.ctx, &mailboxesv1.GetBulkJobRequest{Name: job.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = bulk.GetBulkJob(stranger.ctx, &mailboxesv1.GetBulkJobRequest{Name: job.Name})
	wantCode(t, err, codes.NotFound)
	_, err = bulk.GetBulkJob(owner.ctx, &mailboxesv1.GetBulkJobRequest{Name: parent + "/bulkJobs/0190f3a4-0000-7000-8000-000000000000"})
	wantCode(t, err, codes.NotFound)
	_, err = bulk.GetBulkJob(owner.ctx, &mailboxesv1.GetBulkJobRequest{Name: parent + "/jobs/x"})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "name" {
		t.Errorf("field %q", field(err))
	}
}

// TestBulkConflict: a local part taken between the check and the job fails
// the job with the line at fault; uploading again names it as a problem.
func TestBulkConflict(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	// A trigger reserves user2500 as the job records its first 1,000 rows,
	// after the file was checked: as if someone took it by hand while the
	// job ran.
	if _, err := e.pool.Exec(context.Background(), `
CREATE FUNCTION take_user2500() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO local_parts (mail_service_id, local_key, holder) VALUES (NEW.mail_service_id, 'user2500', 'lists');
  RETURN NEW;
END $$;
CREATE TRIGGER take_user2500 AFTER UPDATE OF done_rows ON bulk_jobs FOR EACH ROW WHEN (NEW.done_rows = 1000)
EXECUTE FUNCTION take_user2500();`); err != nil {
		t.Fatal(err)
	}
	data := bulkCSV(0, 5000)
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: data})
	if err != nil {
		t.Fatal(err)
	}
	job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_FAILED || job.DoneRows != 2000 || job.EndTime == nil ||
		job.Error != `line 2502: "user2500" was taken while the job ran; upload the file again to create the rest` {
		t.Errorf("job %v", job)
	}
	_, err = bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: data})
	wantCode(t, err, codes.InvalidArgument)
	if got := bulkFields(err); len(got) != 1 || got[0] != `line 2502, column local_part: "user2500" is reserved by the lists service` {
		t.Errorf("violations %v", got)
	}
}

// TestBulkResumedAfterCrash: the process running a bulk job dies half way
// (its River job left running, the bulk job running at its checkpoint);
// once another process starts, River's rescuer takes the job back and the
// run continues from the checkpoint, creating each address once. A file
// whose runs keep stopping fails after maxBulkResumes of them.
func TestBulkResumedAfterCrash(t *testing.T) {
	e := startEnv(t, mailboxes.Config{}, false)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	count := func(query string) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	data := bulkCSV(0, 3000)
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
	if err != nil {
		t.Fatal(err)
	}
	// Queued with the job: no process works it yet.
	if n := count("SELECT count(*) FROM river_job WHERE kind = 'bulk_create' AND state = 'available'"); n != 1 {
		t.Fatalf("%d runs queued, want 1", n)
	}
	stop := workJobs(t, e.svc)
	if job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name); job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED {
		t.Fatalf("job %v", job)
	}
	stop()

	// The database as a process that died after 2,000 rows leaves it: the
	// rows past the checkpoint not made, the bulk job running with its
	// file, River's job running since an hour, by nobody.
	jobID := resp.Job.Name[strings.LastIndex(resp.Job.Name, "/")+1:]
	crash := func(attempt int) {
		t.Helper()
		if _, err := e.pool.Exec(ctx, `DELETE FROM addresses WHERE local_key ~ '^user[0-9]+$' AND substr(local_key, 5)::int >= 2000`); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, "DELETE FROM bulk_job_rows WHERE job_id = $1 AND ordinal > 2000", jobID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `UPDATE bulk_jobs SET state = 'running', done_rows = 2000, end_time = NULL, csv = $2,
			created_rows = (SELECT count(*) FROM bulk_job_rows WHERE job_id = $1 AND outcome = 'created'),
			existing_rows = (SELECT count(*) FROM bulk_job_rows WHERE job_id = $1 AND outcome = 'already_exists'),
			failed_rows = (SELECT count(*) FROM bulk_job_rows WHERE job_id = $1 AND outcome = 'failed') WHERE id = $1`, jobID, data); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = $1, attempted_at = now() - interval '1 hour',
			attempted_by = '{dead-process}', finalized_at = NULL WHERE kind = 'bulk_create'`, attempt); err != nil {
			t.Fatal(err)
		}
	}
	crash(1)
	addresses, events, audits := count("SELECT count(*) FROM addresses"), count("SELECT count(*) FROM outbox WHERE subject = 'mailboxes.address.created'"),
		count("SELECT count(*) FROM outbox WHERE subject = 'mailboxes.audit.recorded'")

	stop = workJobs(t, e.svc)
	job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	stop()
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.DoneRows != 3000 {
		t.Fatalf("job after the crash %v", job)
	}
	if n := count("SELECT count(*) FROM addresses"); n != addresses+1000 {
		t.Errorf("%d addresses, want %d: the 1,000 rows past the checkpoint", n, addresses+1000)
	}
	if n := count("SELECT count(*) FROM outbox WHERE subject = 'mailboxes.address.created'"); n != events+1000 {
		t.Errorf("%d address events, want %d: one per address made", n, events+1000)
	}
	if n := count("SELECT count(*) FROM outbox WHERE subject = 'mailboxes.audit.recorded'"); n != audits+1 {
		t.Errorf("%d audit records, want %d: the resumed run's", n, audits+1)
	}
	if n := count("SELECT count(*) FROM (SELECT local_key FROM addresses GROUP BY local_key HAVING count(*) > 1) d"); n != 0 {
		t.Errorf("%d local parts made twice", n)
	}
	var attempt int
	var firstError string
	if err := e.pool.QueryRow(ctx, "SELECT attempt, errors[1]->>'error' FROM river_job WHERE kind = 'bulk_create'").Scan(&attempt, &firstError); err != nil || attempt != 2 || firstError != "Stuck job rescued by JobRescuer" {
		t.Errorf("river job: attempt %d, first error %q (%v); want 2, rescued", attempt, firstError, err)
	}

	// A file whose process dies every time is not run forever: its last
	// attempt marks it failed.
	crash(6)
	stop = workJobs(t, e.svc)
	job = waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	stop()
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_FAILED || !strings.Contains(job.Error, "stopped 6 times") {
		t.Errorf("job after its sixth stop: %v", job)
	}
	if n := count("SELECT count(*) FROM bulk_jobs WHERE csv IS NOT NULL"); n != 0 {
		t.Errorf("%d ended jobs still hold their file", n)
	}
}

// TestBulkMemory measures bulk creation in this process: the time from the
// upload to SUCCEEDED, and the heap (sampled every millisecond) above what it
// was before the upload, for growing files. The test process is client and
// server: the client's copy of the request is in the figures; there is no
// outbox relay. It only runs with MAILPLANE_BULK_BENCH=1 (see
// docs/benchmarks.md).
func TestBulkMemory(t *testing.T) {
	if os.Getenv("MAILPLANE_BULK_BENCH") == "" {
		t.Skip("set MAILPLANE_BULK_BENCH=1 to measure")
	}
	e := start(t)
	owner := e.person(t, "owner@example.com")
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	read := func() (objects, live, allocs uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64()
	}
	t.Logf("%-6s %-8s %-10s %-8s %-12s %-12s %s", "rows", "file", "time", "rows/s", "peak heap", "peak live", "allocated")
	for i, n := range []int{10000, 20000, 40000, 80000} {
		ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: fmt.Sprintf("bench%d.example", i)}})
		if err != nil {
			t.Fatal(err)
		}
		data := bulkCSV(0, n)
		runtime.GC()
		objects0, live0, allocs0 := read()
		var peakObjects, peakLive uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for {
				o, l, _ := read()
				peakObjects, peakLive = max(peakObjects, o), max(peakLive, l)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
		started := time.Now()
		resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
		if err != nil {
			t.Fatal(err)
		}
		job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
		took := time.Since(started)
		close(stop)
		wg.Wait()
		_, _, allocs := read()
		if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED {
			t.Fatalf("job %v", job)
		}
		mb := func(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
		t.Logf("%-6d %-8s %-10s %-8.0f %-12s %-12s %s", n, mb(uint64(len(data))), took.Round(time.Millisecond), float64(n)/took.Seconds(),
			"+"+mb(peakObjects-min(peakObjects, objects0)), "+"+mb(peakLive-min(peakLive, live0)), mb(allocs-allocs0))
	}
}
