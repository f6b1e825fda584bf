package mailboxes_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes"
	"google.golang.org/grpc/codes"
)

// bulkErrorsCSV downloads a job's error file.
func bulkErrorsCSV(ctx context.Context, bulk mailboxesv1.BulkServiceClient, name string) (string, string, error) {
	stream, err := bulk.ExportBulkJobErrors(ctx, &mailboxesv1.ExportBulkJobErrorsRequest{Name: name})
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	var ct string
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return ct, b.String(), nil
		}
		if err != nil {
			return "", "", err
		}
		if ct == "" {
			ct = chunk.GetContentType()
		}
		b.Write(chunk.GetData())
	}
}

// bulkRows lists every row of a job with outcome filter, page by page.
func bulkRows(t *testing.T, ctx context.Context, bulk mailboxesv1.BulkServiceClient, job, filter string, size int32) []*mailboxesv1.BulkJobRow {
	t.Helper()
	var all []*mailboxesv1.BulkJobRow
	req := &mailboxesv1.ListBulkJobRowsRequest{Parent: job, Filter: filter, PageSize: size}
	for {
		resp, err := bulk.ListBulkJobRows(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, resp.Rows...)
		if req.PageToken = resp.NextPageToken; req.PageToken == "" {
			return all
		}
	}
}

// TestBulkOutcomes: the users column gives members access; a row naming
// someone who is not a member fails with the email, the rest is created;
// the rows and the error file say which; the corrected error file uploads
// as it is; jobs are listed newest first; only managers of the
// organization see any of it.
func TestBulkOutcomes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ann := e.person(t, "ann@example.com")
	e.join(t, owner, ann, "ann@example.com", accountsv1.Role_ROLE_MEMBER)
	bob := e.person(t, "bob@example.com")
	e.join(t, owner, bob, "bob@example.com", accountsv1.Role_ROLE_MEMBER)
	stranger := e.person(t, "stranger@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	parent := ms.MailService.Name
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	users := func(localKey string) string {
		t.Helper()
		var s string
		if err := e.pool.QueryRow(ctx, `SELECT COALESCE(string_agg('users/' || u.user_id::text || COALESCE(':' || u.rights::text, ''), ' ' ORDER BY u.user_id), '')
			FROM addresses a LEFT JOIN address_users u ON u.address_id = a.id WHERE a.local_key = $1`, localKey).Scan(&s); err != nil {
			t.Fatalf("users of %s: %v", localKey, err)
		}
		return s
	}
	sorted := func(names ...string) string {
		if names[0] > names[1] {
			names[0], names[1] = names[1], names[0]
		}
		return strings.Join(names, " ")
	}

	file := "local_part,kind,users\r\n" +
		"sales,,ann@example.com; BOB@example.com\r\n" +
		"info,,ann@example.com;ghost@example.com\r\n" +
		"\"hr\",mailbox,\"bob@example.com\"\r\n" +
		"noreply,no_reply,\r\n"
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: []byte(file)})
	if err != nil {
		t.Fatal(err)
	}
	job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.DoneRows != 4 || job.CreatedRows != 3 || job.FailedRows != 1 || job.AlreadyThereRows != 0 {
		t.Fatalf("job %v", job)
	}
	if got, want := users("sales"), sorted(ann.user, bob.user); got != want {
		t.Errorf("sales users %q, want %q (default rights)", got, want)
	}
	if got := users("hr"); got != bob.user {
		t.Errorf("hr users %q, want %q", got, bob.user)
	}
	var n int
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM addresses WHERE local_key = 'info'").Scan(&n); err != nil || n != 0 {
		t.Errorf("info: %d addresses (%v); a row with a stranger is not created", n, err)
	}
	// The address's event names its users, as CreateAddress's does.
	if err := e.pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE subject = 'mailboxes.address.created'").Scan(&n); err != nil || n != 3 {
		t.Errorf("%d address events (%v), want 3", n, err)
	}

	rows := bulkRows(t, owner.ctx, bulk, job.Name, "", 0)
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%d %d %s %s %s", r.Row, r.Line, r.LocalPart, r.Outcome, r.Error))
	}
	want := []string{
		"1 2 sales BULK_JOB_ROW_OUTCOME_CREATED ",
		"2 3 info BULK_JOB_ROW_OUTCOME_FAILED user ghost@example.com is not a member of the organization; invite them, then upload the row again",
		"3 4 hr BULK_JOB_ROW_OUTCOME_CREATED ",
		"4 5 noreply BULK_JOB_ROW_OUTCOME_CREATED ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if failed := bulkRows(t, owner.ctx, bulk, job.Name, `outcome = "FAILED"`, 0); len(failed) != 1 || failed[0].LocalPart != "info" {
		t.Errorf("failed rows %v", failed)
	}
	if created := bulkRows(t, owner.ctx, bulk, job.Name, "outcome = BULK_JOB_ROW_OUTCOME_CREATED", 1); len(created) != 3 {
		t.Errorf("created rows, a page of one at a time: %v", created)
	}
	_, err = bulk.ListBulkJobRows(owner.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: job.Name, Filter: "outcome = LOST"})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "filter" {
		t.Errorf("field %q", field(err))
	}

	// The error file: the row as written, where it was and why.
	ct, errorsFile, err := bulkErrorsCSV(owner.ctx, bulk, job.Name)
	if err != nil {
		t.Fatal(err)
	}
	wantFile := "local_part,kind,users,line,error\r\n" +
		"info,,ann@example.com;ghost@example.com,3,\"user ghost@example.com is not a member of the organization; invite them, then upload the row again\"\r\n"
	if ct != "text/csv; charset=utf-8" || errorsFile != wantFile {
		t.Errorf("error file (%s)\n%q\nwant\n%q", ct, errorsFile, wantFile)
	}

	// Corrected and uploaded as it is: line and error are read past.
	fixed := strings.Replace(errorsFile, "ghost@", "bob@", 1)
	resp, err = bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: []byte(fixed)})
	if err != nil {
		t.Fatal(err)
	}
	fixedJob := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if fixedJob.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || fixedJob.CreatedRows != 1 || fixedJob.FailedRows != 0 {
		t.Fatalf("corrected job %v", fixedJob)
	}
	if got, want := users("info"), sorted(ann.user, bob.user); got != want {
		t.Errorf("info users %q, want %q", got, want)
	}
	_, errorsFile, err = bulkErrorsCSV(owner.ctx, bulk, fixedJob.Name)
	if err != nil || errorsFile != "local_part,kind,users,line,error\r\n" {
		t.Errorf("error file of a job without errors %q (%v)", errorsFile, err)
	}

	// A file with what exists already: those rows are already there.
	resp, err = bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: []byte("local_part\nsales\nhr\nnew\n")})
	if err != nil {
		t.Fatal(err)
	}
	again := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if again.CreatedRows != 1 || again.AlreadyThereRows != 2 || again.FailedRows != 0 {
		t.Errorf("upload of existing rows %v", again)
	}
	if there := bulkRows(t, owner.ctx, bulk, again.Name, "outcome = ALREADY_EXISTS", 0); len(there) != 2 || there[0].LocalPart != "sales" || there[1].LocalPart != "hr" {
		t.Errorf("already there %v", there)
	}

	// Listed newest first, a page at a time.
	var listed []string
	lreq := &mailboxesv1.ListBulkJobsRequest{Parent: parent, PageSize: 2}
	for {
		l, err := bulk.ListBulkJobs(owner.ctx, lreq)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range l.Jobs {
			listed = append(listed, j.Name)
		}
		if lreq.PageToken = l.NextPageToken; lreq.PageToken == "" {
			break
		}
	}
	if want := []string{again.Name, fixedJob.Name, job.Name}; strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("listed %v, want %v", listed, want)
	}

	// A member manages no bulk job; another organization finds none, by
	// its own mail service's name either.
	_, err = bulk.ListBulkJobs(ann.ctx, &mailboxesv1.ListBulkJobsRequest{Parent: parent})
	wantCode(t, err, codes.PermissionDenied)
	_, err = bulk.ListBulkJobRows(ann.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: job.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, err = bulk.CancelBulkJob(ann.ctx, &mailboxesv1.CancelBulkJobRequest{Name: job.Name})
	wantCode(t, err, codes.PermissionDenied)
	_, _, err = bulkErrorsCSV(ann.ctx, bulk, job.Name)
	wantCode(t, err, codes.PermissionDenied)
	_, err = bulk.ListBulkJobs(stranger.ctx, &mailboxesv1.ListBulkJobsRequest{Parent: parent})
	wantCode(t, err, codes.NotFound)
	_, err = bulk.ListBulkJobRows(stranger.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: job.Name})
	wantCode(t, err, codes.NotFound)
	_, err = bulk.CancelBulkJob(stranger.ctx, &mailboxesv1.CancelBulkJobRequest{Name: job.Name})
	wantCode(t, err, codes.NotFound)
	_, _, err = bulkErrorsCSV(stranger.ctx, bulk, job.Name)
	wantCode(t, err, codes.NotFound)
	theirs, err := e.createVerified(t, stranger.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: stranger.org, MailService: &mailboxesv1.MailService{Domain: "other.example"}})
	if err != nil {
		t.Fatal(err)
	}
	jobID := job.Name[strings.LastIndex(job.Name, "/")+1:]
	disguised := theirs.MailService.Name + "/bulkJobs/" + jobID
	_, err = bulk.ListBulkJobRows(stranger.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: disguised})
	wantCode(t, err, codes.NotFound)
	_, err = bulk.CancelBulkJob(stranger.ctx, &mailboxesv1.CancelBulkJobRequest{Name: disguised})
	wantCode(t, err, codes.NotFound)
	_, _, err = bulkErrorsCSV(stranger.ctx, bulk, disguised)
	wantCode(t, err, codes.NotFound)
	if l, err := bulk.ListBulkJobs(stranger.ctx, &mailboxesv1.ListBulkJobsRequest{Parent: theirs.MailService.Name}); err != nil || len(l.Jobs) != 0 {
		t.Errorf("their jobs %v (%v)", l, err)
	}

	// A job that ended is not cancelled.
	_, err = bulk.CancelBulkJob(owner.ctx, &mailboxesv1.CancelBulkJobRequest{Name: job.Name})
	wantCode(t, err, codes.FailedPrecondition)
	// A file naming a user in bad shape is refused whole, naming the cell.
	_, err = bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: parent, Csv: []byte("local_part,users\nzed,not-an-email\n")})
	wantCode(t, err, codes.InvalidArgument)
	if got := bulkFields(err); len(got) != 1 || !strings.HasPrefix(got[0], `line 2, column users: "not-an-email" `) {
		t.Errorf("violations %v", got)
	}
}

// TestBulkCancel: a job cancelled half way creates nothing once the call
// has answered: the batch being written is undone, the rows before stay and
// are counted; cancelling again answers the same; the file uploaded again
// creates the rest.
func TestBulkCancel(t *testing.T) {
	e := startEnv(t, mailboxes.Config{}, false)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The run's second batch waits, before it touches the job, for an
	// advisory lock this test holds.
	hold, err := e.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_lock(4242)"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `
CREATE FUNCTION hold_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(4242);
  RETURN NEW;
END $$;
CREATE TRIGGER hold_batch BEFORE INSERT ON bulk_job_rows FOR EACH ROW WHEN (NEW.ordinal = 1001)
EXECUTE FUNCTION hold_batch();`); err != nil {
		t.Fatal(err)
	}

	data := bulkCSV(0, 3000)
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
	if err != nil {
		t.Fatal(err)
	}
	stop := workJobs(t, e.svc)
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for count("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run never reached its second batch")
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := bulk.CancelBulkJob(owner.ctx, &mailboxesv1.CancelBulkJobRequest{Name: resp.Job.Name})
	if err != nil {
		t.Fatal(err)
	}
	job := c.Job
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_CANCELLED || job.DoneRows != 1000 || job.CreatedRows != 1000 || job.EndTime == nil {
		t.Errorf("cancelled %v", job)
	}
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_unlock(4242)"); err != nil {
		t.Fatal(err)
	}
	for count("SELECT count(*) FROM river_job WHERE kind = 'bulk_create' AND state <> 'completed'") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := count("SELECT count(*) FROM addresses"); n != 1000 {
		t.Errorf("%d addresses after the cancel, want the 1,000 of the first batch", n)
	}
	if n := count("SELECT count(*) FROM bulk_job_rows"); n != 1000 {
		t.Errorf("%d row outcomes, want 1,000", n)
	}
	again, err := bulk.CancelBulkJob(owner.ctx, &mailboxesv1.CancelBulkJobRequest{Name: resp.Job.Name})
	if err != nil || again.Job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_CANCELLED || again.Job.CreatedRows != 1000 {
		t.Errorf("cancelled twice: %v (%v)", again, err)
	}
	if n := count("SELECT count(*) FROM bulk_jobs WHERE csv IS NOT NULL"); n != 0 {
		t.Errorf("a cancelled job holds its file")
	}

	// Uploaded again, the job runs again: the first 1,000 are there.
	if _, err := e.pool.Exec(ctx, "DROP TRIGGER hold_batch ON bulk_job_rows"); err != nil {
		t.Fatal(err)
	}
	resp, err = bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
	if err != nil {
		t.Fatal(err)
	}
	job = waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.CreatedRows != 2000 || job.AlreadyThereRows != 1000 || job.FailedRows != 0 {
		t.Errorf("uploaded again %v", job)
	}
	if n := count("SELECT count(*) FROM addresses"); n != 3000 {
		t.Errorf("%d addresses, want 3000", n)
	}
}

// TestBulkUsersResumed: a run resumed after its process died (River's
// rescuer, no caller's token) still gives every row its users, from what
// was looked up at the upload.
func TestBulkUsersResumed(t *testing.T) {
	e := startEnv(t, mailboxes.Config{}, false)
	ctx := context.Background()
	owner := e.person(t, "owner@example.com")
	ann := e.person(t, "ann@example.com")
	e.join(t, owner, ann, "ann@example.com", accountsv1.Role_ROLE_MEMBER)
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
	var b strings.Builder
	b.WriteString("local_part,users\r\n")
	for i := range 3000 {
		fmt.Fprintf(&b, "user%d,ann@example.com;owner@example.com\r\n", i)
	}
	data := []byte(b.String())
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: data})
	if err != nil {
		t.Fatal(err)
	}
	stop := workJobs(t, e.svc)
	job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	stop()
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.CreatedRows != 3000 {
		t.Fatalf("job %v", job)
	}

	// The database as a process that died after 2,000 rows leaves it.
	jobID := resp.Job.Name[strings.LastIndex(resp.Job.Name, "/")+1:]
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM addresses WHERE substr(local_key, 5)::int >= 2000`, nil},
		{`DELETE FROM bulk_job_rows WHERE job_id = $1 AND ordinal > 2000`, []any{jobID}},
		{`UPDATE bulk_jobs SET state = 'running', done_rows = 2000, created_rows = 2000, end_time = NULL, csv = $2 WHERE id = $1`, []any{jobID, data}},
		{`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '1 hour',
			attempted_by = '{dead-process}', finalized_at = NULL WHERE kind = 'bulk_create'`, nil},
	} {
		if _, err := e.pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	if n := count("SELECT count(*) FROM addresses"); n != 2000 {
		t.Fatalf("%d addresses before the resume", n)
	}
	stop = workJobs(t, e.svc)
	job = waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	stop()
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.CreatedRows != 3000 || job.DoneRows != 3000 {
		t.Fatalf("job after the crash %v", job)
	}
	if n := count("SELECT count(*) FROM addresses"); n != 3000 {
		t.Errorf("%d addresses, want 3000", n)
	}
	annID, ownerID := strings.TrimPrefix(ann.user, "users/"), strings.TrimPrefix(owner.user, "users/")
	if n := count(fmt.Sprintf(`SELECT count(*) FROM addresses a WHERE
		EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = '%s' AND u.rights IS NULL)
		AND EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = '%s' AND u.rights IS NULL)`, annID, ownerID)); n != 3000 {
		t.Errorf("%d addresses with both users, want every one of 3000", n)
	}
	if n := count("SELECT count(*) FROM bulk_job_rows WHERE outcome = 'created'"); n != 3000 {
		t.Errorf("%d rows created, want 3000", n)
	}
}

// TestBulkRowsPaginated: the outcomes of a 100,000-row job, read a page
// at a time, are every row once, in file order.
func TestBulkRowsPaginated(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 rows")
	}
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}})
	if err != nil {
		t.Fatal(err)
	}
	bulk := mailboxesv1.NewBulkServiceClient(e.cc)
	var b strings.Builder
	b.WriteString("local_part\n")
	for i := range 100_000 {
		fmt.Fprintf(&b, "u%d\n", i)
	}
	resp, err := bulk.CreateBulkJob(owner.ctx, &mailboxesv1.CreateBulkJobRequest{Parent: ms.MailService.Name, Csv: []byte(b.String())})
	if err != nil {
		t.Fatal(err)
	}
	job := waitBulkJob(t, bulk, owner.ctx, resp.Job.Name)
	if job.State != mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED || job.CreatedRows != 100_000 {
		t.Fatalf("job %v", job)
	}
	// A page asks for more than the cap and gets the cap.
	rows := bulkRows(t, owner.ctx, bulk, job.Name, "", 5000)
	if len(rows) != 100_000 {
		t.Fatalf("%d rows, want 100,000", len(rows))
	}
	for i, r := range rows {
		if r.Row != int32(i+1) || r.LocalPart != fmt.Sprintf("u%d", i) || r.Line != int32(i+2) {
			t.Fatalf("row %d is %v", i, r)
		}
	}
	first, err := bulk.ListBulkJobRows(owner.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: job.Name, PageSize: 5000})
	if err != nil || len(first.Rows) != 1000 {
		t.Errorf("a page of 5000 asked: %d rows (%v), want 1000", len(first.GetRows()), err)
	}
	_, err = bulk.ListBulkJobRows(owner.ctx, &mailboxesv1.ListBulkJobRowsRequest{Parent: job.Name, PageToken: first.NextPageToken, Filter: "outcome = FAILED"})
	if wantCode(t, err, codes.InvalidArgument); field(err) != "pageToken" {
		t.Errorf("a token with another filter: field %q", field(err))
	}
	if failed := bulkRows(t, owner.ctx, bulk, job.Name, "outcome = FAILED", 0); len(failed) != 0 {
		t.Errorf("%d failed rows", len(failed))
	}
}
