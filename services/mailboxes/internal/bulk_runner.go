package mailboxes

// The run of a bulk job: the second reading of its file, which creates the
// addresses in batches. A run is a River job (bulkArgs), queued in the
// transaction that starts the bulk job; River retries it after an error,
// a timeout or a shutdown, and runs it again when its process died
// (River's rescuer, after bulkJobTimeout). Each retry continues from the
// job's checkpoint, done_rows, committed with the rows it counts. The whole
// flow is described in bulk_jobs.go.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// bulkBatchRows is how many rows one transaction creates; the job's
	// progress moves by as many.
	bulkBatchRows = 1000
	// maxBulkResumes is how many times a run is retried after it stopped
	// (an error, its process stopping or dying); one attempt more only
	// marks the job failed, so that a file that stops its process every
	// time does not do so forever.
	maxBulkResumes = 5
	// bulkJobTimeout bounds one run; a run cut short continues from its
	// checkpoint in the next. It is also how long River waits before it
	// takes a run whose process died as abandoned. 100,000 rows take a
	// few seconds.
	bulkJobTimeout = 2 * time.Minute
)

const (
	// claimBulkJob starts a run of a running job: its attempt stops any
	// earlier run still writing.
	claimBulkJob = `
UPDATE bulk_jobs SET attempt = attempt + 1, update_time = now()
WHERE id = $1 AND state = 'running' AND csv IS NOT NULL
RETURNING ` + bulkJobColumns + `, csv, actor, members`

	// bulkProgress records a batch: the checkpoint and the counts. It
	// writes nothing once the job was cancelled, which undoes the batch.
	bulkProgress = `
UPDATE bulk_jobs SET done_rows = $3, created_rows = created_rows + $4, existing_rows = existing_rows + $5,
       failed_rows = failed_rows + $6, update_time = now()
WHERE id = $1 AND attempt = $2 AND state = 'running'`

	bulkSucceeded = `
UPDATE bulk_jobs SET state = 'succeeded', done_rows = total_rows, created_rows = created_rows + $3,
       existing_rows = existing_rows + $4, failed_rows = failed_rows + $5, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2 AND state = 'running'`

	bulkFailed = `
UPDATE bulk_jobs SET state = 'failed', error = $3, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2 AND state = 'running'`
)

// bulkArgs is the River job running the bulk job ID.
type bulkArgs struct {
	ID uuid.UUID `json:"id"`
}

func (bulkArgs) Kind() string { return "bulk_create" }

// bulkInsertOpts queue one run per bulk job at a time.
func bulkInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{MaxAttempts: maxBulkResumes + 2, UniqueOpts: *jobs.Unique()}
}

// bulkRunQueued reports whether River holds a run of the bulk job id:
// waiting, running or to be retried.
func (s *Server) bulkRunQueued(ctx context.Context, id uuid.UUID) (bool, error) {
	res, err := s.jobs.JobList(ctx, river.NewJobListParams().Kinds(bulkArgs{}.Kind()).
		States(rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateRetryable, rivertype.JobStateScheduled).
		Where("args->>'id' = @id", river.NamedArgs{"id": id.String()}).First(1))
	if err != nil {
		return false, fmt.Errorf("find the run of bulk job %s: %w", id, err)
	}
	return len(res.Jobs) > 0, nil
}

// bulkWorker runs bulk jobs.
type bulkWorker struct {
	river.WorkerDefaults[bulkArgs]
	s *Server
}

func (w *bulkWorker) Timeout(*river.Job[bulkArgs]) time.Duration { return bulkJobTimeout }

// NextRetry retries a run at once after a shutdown or a crash, and backs
// off from errors that come again.
func (w *bulkWorker) NextRetry(job *river.Job[bulkArgs]) time.Time {
	return jobs.Backoff(job.Attempt, 100*time.Millisecond, time.Minute)
}

// Work runs the bulk job from its checkpoint. A job that can no longer be
// done (its mail service deleted, a name taken meanwhile) fails with the
// reason; an error River retries is returned.
func (w *bulkWorker) Work(ctx context.Context, job *river.Job[bulkArgs]) error {
	s := w.s
	var bj bulkJob
	var data []byte
	var actor string
	var members map[string]uuid.UUID
	err := s.pool.QueryRow(ctx, claimBulkJob, job.Args.ID).Scan(&bj.ID, &bj.MailServiceID, &bj.State, &bj.TotalRows, &bj.DoneRows,
		&bj.Error, &bj.Attempt, &bj.CreateTime, &bj.EndTime, &bj.CreatedRows, &bj.ExistingRows, &bj.FailedRows, &data, &actor, &members)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // it ended meanwhile
	}
	if err != nil {
		return fmt.Errorf("claim bulk job: %w", err)
	}
	var org uuid.UUID
	var domain string
	var deleted bool
	err = s.pool.QueryRow(ctx, "SELECT organization_id, domain, delete_time IS NOT NULL FROM mail_services WHERE id = $1", bj.MailServiceID).
		Scan(&org, &domain, &deleted)
	if err != nil {
		return fmt.Errorf("bulk job %s: mail service: %w", bj.ID, err)
	}
	run := bulkRun{s: s, job: &bj, org: org, domain: domain, actor: actor, data: data, members: members, from: int(bj.DoneRows), river: job}
	if job.Attempt >= job.MaxAttempts {
		run.fail(ctx, fmt.Sprintf("stopped %d times without finishing; upload the file again to retry", job.Attempt-1))
		return nil
	}
	if deleted {
		run.fail(ctx, "its mail service was deleted")
		return nil
	}
	f, err := checkBulkFile(ctx, s.pool, bj.MailServiceID, data)
	if errs.KindOf(err) == errs.InvalidArgument {
		run.fail(ctx, "could not be resumed: "+err.Error())
		return nil
	}
	if err != nil {
		return fmt.Errorf("bulk job %s: %w", bj.ID, err)
	}
	run.file = f
	name := bulkJobName(org, &bj)
	if job.Attempt > 1 {
		// Each run is audited, as the upload that started the first was;
		// the actor is whoever uploaded the file.
		err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			return outbox.Write(ctx, tx, mailboxesevents.AuditRecorded, auditlog.Record(ctx, organizationName(org), actor, "mailboxes.address.bulkCreate", name, map[string]string{
				"rows": strconv.Itoa(f.rows), "toCreate": strconv.Itoa(f.rows - f.skipped), "existing": strconv.Itoa(f.skipped),
				"attempt": strconv.Itoa(int(bj.Attempt)), "resumed": "true", "fromRow": strconv.Itoa(run.from),
			}))
		})
		if err != nil {
			return fmt.Errorf("bulk job %s: audit: %w", name, err)
		}
		s.log.InfoContext(ctx, "bulk job resumed", "bulkJob", name, "attempt", bj.Attempt, "fromRow", run.from)
	}
	return run.run(ctx)
}

// bulkRun is one run of a job: the second reading of its file.
type bulkRun struct {
	s      *Server
	job    *bulkJob
	org    uuid.UUID
	domain string
	actor  string
	data   []byte
	file   *bulkFile
	// members are the users column's emails that name members, as looked
	// up when the file was uploaded.
	members map[string]uuid.UUID
	// from is the checkpoint: the data rows an earlier run created.
	from int
	// river is the River job of the run.
	river *river.Job[bulkArgs]
}

// errSuperseded stops a run whose job another run took over, or that was
// cancelled.
var errSuperseded = errors.New("bulk job taken over by another run or cancelled")

// run creates the job's addresses; an error it returns is River's to
// retry.
func (r *bulkRun) run(ctx context.Context) error {
	log := r.s.log.With("bulkJob", bulkJobName(r.org, r.job), "attempt", r.job.Attempt)
	start := time.Now()
	created, err := r.create(ctx)
	if err == nil {
		log.InfoContext(ctx, "bulk job succeeded", "rows", r.file.rows, "created", created, "duration", time.Since(start))
		return nil
	}
	if errors.Is(err, errSuperseded) {
		log.WarnContext(ctx, "bulk job run superseded", "created", created)
		return nil
	}
	if ctx.Err() != nil {
		// The process is stopping, or the run took too long: the job
		// stays running, its file kept, and River runs it again.
		log.InfoContext(ctx, "bulk job interrupted; it will be resumed", "created", created)
		return err
	}
	var e *errs.Error
	if errors.As(err, &e) {
		r.fail(ctx, e.Message)
		return nil
	}
	log.ErrorContext(ctx, "bulk job stopped; it will be retried", "created", created, "error", err)
	return err
}

// fail ends the run's job as failed, for the reason msg, even when ctx ran
// out.
func (r *bulkRun) fail(ctx context.Context, msg string) {
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	err := pg.InTx(fctx, r.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(fctx, bulkFailed, r.job.ID, r.job.Attempt, msg); err != nil {
			return err
		}
		return r.end(fctx, tx)
	})
	if err != nil {
		r.s.log.ErrorContext(ctx, "mark bulk job failed", "bulkJob", r.job.ID, "error", err)
	}
}

// end completes the run's River job in tx, which ends the bulk job: so a
// bulk job is running exactly while River holds a run of it.
func (r *bulkRun) end(ctx context.Context, tx pgx.Tx) error {
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, r.river); err != nil {
		return fmt.Errorf("complete the run: %w", err)
	}
	return nil
}

// create makes the file's addresses, a batch per transaction, and reports
// how many.
func (r *bulkRun) create(ctx context.Context) (int, error) {
	be := &bulkErrors{}
	br := newBulkReader(r.data, be)
	if br == nil {
		return 0, fmt.Errorf("read the file again: %w", be.err())
	}
	b := bulkBatch{run: r}
	created := 0
	for {
		row, valid, ok := br.next(be)
		if !ok {
			break
		}
		if !valid {
			return created, fmt.Errorf("line %d read differently the second time: %w", row.line, be.err())
		}
		if br.rows <= r.from {
			continue // created by an earlier run
		}
		switch missing := r.missingUser(row); {
		case r.file.keys[row.key].skip:
			b.outcome(br.rows, row, "already_exists", "", nil)
		case missing != "":
			b.outcome(br.rows, row, "failed", fmt.Sprintf("user %s is not a member of the organization; invite them, then upload the row again", missing), br.rec)
		default:
			b.add(br.rows, row)
		}
		if br.rows%bulkBatchRows == 0 {
			n, err := b.flush(ctx, br.rows, false)
			created += n
			if err != nil {
				return created, err
			}
		}
	}
	if be.total > 0 {
		return created, fmt.Errorf("read the file again: %w", be.err())
	}
	n, err := b.flush(ctx, br.rows, true)
	return created + n, err
}

// missingUser returns the first of row's users who was not a member when
// the file was uploaded, or "".
func (r *bulkRun) missingUser(row bulkRow) string {
	for _, u := range row.users {
		if _, ok := r.members[u]; !ok {
			return u
		}
	}
	return ""
}

// bulkBatch is the rows of one transaction, ready for COPY.
type bulkBatch struct {
	run        *bulkRun
	addresses  [][]any
	localParts [][]any
	users      [][]any
	outcomes   [][]any
	events     []outbox.Event
	// counts of the batch's rows by outcome
	created, existing, failed int
	// first and last line of the batch, to name where a conflict is.
	first, last int
}

// outcome records what became of the ordinal-th row; rec, the row's fields
// as written, is kept for a failed row only.
func (b *bulkBatch) outcome(ordinal int, row bulkRow, outcome, reason string, rec []string) {
	var fields []string
	switch outcome {
	case "created":
		b.created++
	case "already_exists":
		b.existing++
	case "failed":
		b.failed++
		fields = slices.Clone(rec)
	}
	b.outcomes = append(b.outcomes, []any{b.run.job.ID, ordinal, row.line, row.localPart, outcome, reason, fields})
}

// add queues the ordinal-th row's address, with its names and users.
func (b *bulkBatch) add(ordinal int, row bulkRow) {
	r := b.run
	b.outcome(ordinal, row, "created", "", nil)
	id := uuid.Must(uuid.NewV7())
	now := time.Now()
	redirects := row.redirects
	if redirects == nil {
		redirects = []string{}
	}
	kind := bulkKinds[row.kind]
	uid, ms := id, r.job.MailServiceID
	b.addresses = append(b.addresses, []any{uid, ms, row.localPart, row.key, kind, redirects, row.quota, now, now})
	b.localParts = append(b.localParts, []any{ms, row.key, uid, false})
	for _, al := range row.aliases {
		b.localParts = append(b.localParts, []any{ms, al, uid, true})
	}
	var users []*mailboxesv1.AddressUser
	for _, u := range row.users {
		uid := r.members[u]
		b.users = append(b.users, []any{id, uid})
		users = append(users, &mailboxesv1.AddressUser{User: userName(uid), State: mailboxesv1.AddressUserState_ADDRESS_USER_STATE_ACTIVE})
	}
	aliases := slices.Clone(row.aliases)
	slices.Sort(aliases)
	ts := timestamppb.New(now)
	b.events = append(b.events, outbox.Event{Subject: mailboxesevents.AddressCreated, Msg: &mailboxesv1.AddressChanged{
		Actor: r.actor, Login: localKey(row.localPart) + "@" + r.domain, Address: &mailboxesv1.Address{
			Name: addressName(r.org, r.job.MailServiceID, id), LocalPart: row.localPart, Email: row.localPart + "@" + r.domain,
			Kind: kindProtos[kind], RedirectDestinations: row.redirects, Aliases: aliases, QuotaBytes: row.quota,
			Users: users, CreateTime: ts, UpdateTime: ts,
		},
	}})
	if b.first == 0 {
		b.first = row.line
	}
	b.last = row.line
}

var (
	addressCopyColumns     = []string{"id", "mail_service_id", "local_part", "local_key", "kind", "redirects", "quota_bytes", "create_time", "update_time"}
	localPartCopyColumns   = []string{"mail_service_id", "local_key", "address_id", "is_alias"}
	addressUserCopyColumns = []string{"address_id", "user_id"}
	outcomeCopyColumns     = []string{"job_id", "ordinal", "line", "local_part", "outcome", "error", "record"}
	conflictKey            = regexp.MustCompile(`=\([^,]*, (.*)\) already exists`)
)

// flush creates the batch's addresses and records the job's progress, done
// rows, in one transaction; the last also marks the job succeeded. It
// returns how many addresses it created.
func (b *bulkBatch) flush(ctx context.Context, done int, last bool) (int, error) {
	r := b.run
	n := len(b.addresses)
	err := pg.InTx(ctx, r.s.pool, func(tx pgx.Tx) error {
		if n > 0 {
			for _, c := range []struct {
				table string
				cols  []string
				rows  [][]any
			}{
				{"addresses", addressCopyColumns, b.addresses},
				{"local_parts", localPartCopyColumns, b.localParts},
				{"address_users", addressUserCopyColumns, b.users},
			} {
				if len(c.rows) == 0 {
					continue
				}
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
					return b.conflict(err)
				}
			}
			if err := outbox.WriteMany(ctx, tx, b.events); err != nil {
				return err
			}
		}
		if len(b.outcomes) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"bulk_job_rows"}, outcomeCopyColumns, pgx.CopyFromRows(b.outcomes)); err != nil {
				return fmt.Errorf("record row outcomes: %w", err)
			}
		}
		q, args := bulkProgress, []any{r.job.ID, r.job.Attempt, done, b.created, b.existing, b.failed}
		if last {
			q, args = bulkSucceeded, []any{r.job.ID, r.job.Attempt, b.created, b.existing, b.failed}
		}
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record bulk job progress: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errSuperseded
		}
		if last {
			return r.end(ctx, tx)
		}
		return nil
	})
	b.addresses, b.localParts, b.users, b.outcomes, b.events = b.addresses[:0], b.localParts[:0], b.users[:0], b.outcomes[:0], b.events[:0]
	b.first, b.last, b.created, b.existing, b.failed = 0, 0, 0, 0, 0
	if err != nil {
		return 0, err
	}
	return n, nil
}

// conflict explains a unique violation: a local part checked free was taken
// while the job ran.
func (b *bulkBatch) conflict(err error) error {
	var pe *pgconn.PgError
	if !pg.IsUniqueViolation(err, "") || !errors.As(err, &pe) {
		return fmt.Errorf("copy: %w", err)
	}
	if m := conflictKey.FindStringSubmatch(pe.Detail); m != nil {
		if u, ok := b.run.file.keys[m[1]]; ok {
			return errs.E(errs.Conflict, "line %d: %q was taken while the job ran; upload the file again to create the rest", u.line, m[1])
		}
	}
	return errs.E(errs.Conflict, "a local part on lines %d to %d was taken while the job ran; upload the file again to create the rest", b.first, b.last)
}
