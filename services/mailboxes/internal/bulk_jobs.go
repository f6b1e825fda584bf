package mailboxes

// Bulk creation of addresses from a CSV file.
//
// The file (RFC 4180, UTF-8 with or without a BOM) starts with a line naming
// its columns, in any order: local_part (required); kind, mailbox, no_reply
// or redirect (empty: mailbox); aliases and redirect_destinations, separated
// by spaces or commas; quota_mb, in MiB (empty or 0: the default). A file
// whose first line has semicolons and no comma is read with semicolons, as
// spreadsheets in decimal-comma locales save CSV. Rows of empty fields are
// skipped. users lists existing members of the organization by login email,
// separated by semicolons (commas and spaces work too), given access with
// the default rights, as CreateAddress's access.users; only a mailbox has
// users. The file's emails are looked up among the members once, as it is
// uploaded (MemberEmails: one call to accounts per thousand members), and
// the answer is kept with the job, so that a run resumed later (it has no
// caller's token) gives each row the same users. A row naming an email that
// is not a member's FAILS with the email named, and the rest is created;
// its fields are kept for the error file (ExportBulkJobErrors).
//
// CreateBulkJob reads the file twice and never holds it as rows. The first
// reading checks every row with the rules of CreateAddress and keeps only the
// local parts the file claims (its own keys and its aliases, to find
// duplicates in the file and, in one query, those already taken on the mail
// service). When every row is valid, the job and its run (a River job,
// package jobs) are queued in one transaction, and the run, on whichever
// replica takes it, reads the file a second time and creates the addresses
// in batches of bulkBatchRows rows, each batch one transaction of COPYs
// (addresses, local_parts, the outbox through outbox.WriteMany) and the
// job's progress. Memory beyond the upload itself (a unary gRPC
// message) grows with the number of distinct local parts, a few dozen bytes
// each, and one batch.
//
// Every address created gets its mailboxes.address.created event, as from
// CreateAddress, so that consumers need no second path; the events are
// copied into the outbox with the rows, which costs little. The audit log
// gets one record per run, mailboxes.address.bulkCreate, with the counts.
//
// Uploading a file again is safe: a row whose local part is already an
// address of the same kind counts as done and is left as it is, and the same
// file (same SHA-256) finds its job instead of starting another. A job that
// failed is run again by uploading the file again: what was created is
// skipped, the rest is created. A running job keeps its file in its row;
// River retries a run that stopped (an error, a timeout, its process
// stopping) and takes back one whose process died (its rescuer, after
// bulkJobTimeout), at most maxBulkResumes times, and each retry continues
// from the job's checkpoint (done_rows, committed with the rows it
// counts). The last run completes its River job in its own transaction, so
// a job is running exactly while River holds a run of it; one left running
// without (River gave up, its queue was emptied) is taken over by the next
// upload of its file. The file is dropped when the job ends.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// bulkJob is a row of bulk_jobs.
type bulkJob struct {
	ID            uuid.UUID
	MailServiceID uuid.UUID
	State         string
	TotalRows     int32
	DoneRows      int32
	Error         string
	Attempt       int32
	CreateTime    time.Time
	EndTime       *time.Time
	CreatedRows   int32
	ExistingRows  int32
	FailedRows    int32
}

const (
	bulkJobColumns = `id, mail_service_id, state, total_rows, done_rows, error, attempt, create_time, end_time, created_rows, existing_rows, failed_rows`

	selectBulkJobByContent = `SELECT ` + bulkJobColumns + ` FROM bulk_jobs WHERE mail_service_id = $1 AND content_sha256 = $2`

	selectBulkJob = `SELECT ` + bulkJobColumns + ` FROM bulk_jobs j
WHERE j.id = $1 AND j.mail_service_id = $2
  AND EXISTS (SELECT 1 FROM mail_services m WHERE m.id = j.mail_service_id AND m.organization_id = $3 AND m.delete_time IS NULL)`

	insertBulkJob = `
INSERT INTO bulk_jobs (id, mail_service_id, content_sha256, state, total_rows, csv, actor, header, members)
VALUES ($1, $2, $3, 'running', $4, $5, $6, $7, $8)
ON CONFLICT (mail_service_id, content_sha256) DO NOTHING
RETURNING ` + bulkJobColumns

	// restartBulkJob takes over a failed, cancelled or abandoned job, from
	// the start of its file; the attempt stops any run of it still going.
	// Its rows' outcomes are written again (deleteBulkJobRows).
	restartBulkJob = `
UPDATE bulk_jobs SET state = 'running', total_rows = $2, done_rows = 0, error = '', end_time = NULL,
       attempt = attempt + 1, update_time = now(), csv = $3, actor = $4, header = $5, members = $6,
       created_rows = 0, existing_rows = 0, failed_rows = 0
WHERE id = $1 AND state <> 'succeeded'
RETURNING ` + bulkJobColumns

	deleteBulkJobRows = `DELETE FROM bulk_job_rows WHERE job_id = $1`

	// selectBulkJobs is a page of mail service $1's jobs, newest first,
	// after ($3 create_time, $4 id); $2 rows.
	selectBulkJobs = `SELECT ` + bulkJobColumns + ` FROM bulk_jobs
WHERE mail_service_id = $1 AND ($3::timestamptz IS NULL OR (create_time, id) < ($3, $4))
ORDER BY create_time DESC, id DESC LIMIT $2`

	// cancelBulkJob ends a running job; a run writing a batch holds the
	// row until it commits, so once this returns no batch commits.
	cancelBulkJob = `
UPDATE bulk_jobs j SET state = 'cancelled', update_time = now(), end_time = now(), csv = NULL
WHERE j.id = $1 AND j.mail_service_id = $2 AND j.state = 'running'
  AND EXISTS (SELECT 1 FROM mail_services m WHERE m.id = j.mail_service_id AND m.organization_id = $3 AND m.delete_time IS NULL)
RETURNING ` + bulkJobColumns
)

func collectBulkJob(rows pgx.Rows) (*bulkJob, error) {
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[bulkJob])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return j, err
}

func bulkJobName(org uuid.UUID, j *bulkJob) string {
	return mailServiceName(org, j.MailServiceID) + "/bulkJobs/" + j.ID.String()
}

var bulkStates = map[string]mailboxesv1.BulkJobState{
	"running":   mailboxesv1.BulkJobState_BULK_JOB_STATE_RUNNING,
	"succeeded": mailboxesv1.BulkJobState_BULK_JOB_STATE_SUCCEEDED,
	"failed":    mailboxesv1.BulkJobState_BULK_JOB_STATE_FAILED,
	"cancelled": mailboxesv1.BulkJobState_BULK_JOB_STATE_CANCELLED,
}

func bulkJobProto(org uuid.UUID, j *bulkJob) *mailboxesv1.BulkJob {
	p := &mailboxesv1.BulkJob{
		Name: bulkJobName(org, j), State: bulkStates[j.State], TotalRows: j.TotalRows, DoneRows: j.DoneRows,
		Error: j.Error, CreateTime: timestamppb.New(j.CreateTime),
		CreatedRows: j.CreatedRows, AlreadyThereRows: j.ExistingRows, FailedRows: j.FailedRows,
	}
	if j.EndTime != nil {
		p.EndTime = timestamppb.New(*j.EndTime)
	}
	return p
}

// GetBulkTemplate returns the CSV template.
func (s *Server) GetBulkTemplate(ctx context.Context, req *mailboxesv1.GetBulkTemplateRequest) (*mailboxesv1.GetBulkTemplateResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.access(ctx, ids[0]); err != nil {
		return nil, err
	}
	if _, err := activeMailService(ctx, s.pool, ids[0], ids[1]); err != nil {
		return nil, err
	}
	return &mailboxesv1.GetBulkTemplateResponse{Csv: bulkTemplate}, nil
}

// Default caps on an organization's bulk jobs.
const (
	DefaultBulkJobsRunning    = 2
	DefaultBulkUploadsPerHour = 20
)

// SetBulkLimits caps an organization's running bulk jobs and its uploads
// starting one per hour; 0 keeps the default.
func (s *Server) SetBulkLimits(running, perHour int) {
	if running > 0 {
		s.bulkRunning = running
	}
	if perHour > 0 {
		s.bulkPerHour = perHour
	}
}

const (
	// countRunningBulkJobs counts org $1's running jobs but $2.
	countRunningBulkJobs = `
SELECT count(*) FROM bulk_jobs j JOIN mail_services m ON m.id = j.mail_service_id
WHERE m.organization_id = $1 AND j.state = 'running' AND j.id <> $2`

	// countBulkUploads counts org $1's uploads of the last hour and says
	// when the oldest of them stops counting.
	countBulkUploads = `
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM min(create_time) + interval '1 hour' - now()), 0)::float8 FROM bulk_uploads
WHERE organization_id = $1 AND create_time > now() - interval '1 hour'`

	recordBulkUpload = `
WITH old AS (DELETE FROM bulk_uploads WHERE organization_id = $1 AND create_time <= now() - interval '1 hour')
INSERT INTO bulk_uploads (organization_id) VALUES ($1)`
)

// checkBulkQuota refuses a job of org over its caps; except is the job
// being restarted, which does not count as running.
func (s *Server) checkBulkQuota(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, org, except uuid.UUID) error {
	var running int
	if err := q.QueryRow(ctx, countRunningBulkJobs, org, except).Scan(&running); err != nil {
		return fmt.Errorf("count running bulk jobs: %w", err)
	}
	if running >= s.bulkRunning {
		e := errs.E(errs.ResourceExhausted, "the organization already has %d bulk jobs running; wait for one to end", running).WithReason("BULK_JOBS_RUNNING")
		e.RetryAfter = 30 * time.Second
		return e
	}
	var uploads int
	var wait float64 // seconds
	if err := q.QueryRow(ctx, countBulkUploads, org).Scan(&uploads, &wait); err != nil {
		return fmt.Errorf("count bulk uploads: %w", err)
	}
	if uploads >= s.bulkPerHour {
		e := errs.E(errs.ResourceExhausted, "the organization made %d bulk uploads in the last hour, the most it may", uploads).WithReason("BULK_UPLOADS_PER_HOUR")
		e.RetryAfter = max(time.Duration(wait)*time.Second, time.Second)
		return e
	}
	return nil
}

// CreateBulkJob checks a CSV file and starts creating its addresses.
func (s *Server) CreateBulkJob(ctx context.Context, req *mailboxesv1.CreateBulkJobRequest) (*mailboxesv1.CreateBulkJobResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	org, msID := ids[0], ids[1]
	c, err := s.manage(ctx, org)
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateBulkJob")
	if err != nil || done != "" {
		return s.createdBulkJob(ctx, done, err)
	}
	if _, err := activeMailService(ctx, s.pool, org, msID); err != nil {
		return nil, err
	}
	data := req.GetCsv()
	sum := sha256.Sum256(data)
	rows, _ := s.pool.Query(ctx, selectBulkJobByContent, msID, sum[:])
	prev, err := collectBulkJob(rows)
	if err != nil {
		return nil, fmt.Errorf("find bulk job: %w", err)
	}
	if prev != nil && prev.State != "failed" {
		// A running job whose run River lost (every attempt used, its
		// queue emptied by hand) is abandoned: this upload takes it over.
		// A cancelled job is started again once its run has stopped.
		alive := prev.State == "succeeded"
		if !alive {
			if alive, err = s.bulkRunQueued(ctx, prev.ID); err != nil {
				return nil, err
			}
		}
		if alive && prev.State == "cancelled" {
			e := errs.E(errs.FailedPrecondition, "the job of this file was cancelled and is still stopping; upload it again in a moment").WithReason("BULK_JOB_STOPPING")
			e.RetryAfter = time.Second
			return nil, e
		}
		if alive {
			return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, prev)}, nil
		}
	}

	// The caps are checked before the file, which costs more, and again
	// under the organization's lock as the job starts.
	except := uuid.Nil
	if prev != nil {
		except = prev.ID
	}
	if err := s.checkBulkQuota(ctx, s.pool, org, except); err != nil {
		return nil, err
	}
	f, err := checkBulkFile(ctx, s.pool, msID, data)
	if err != nil {
		return nil, err
	}
	// The users column's emails are looked up now, with the uploader's
	// token: a run has none. One that is not a member fails its row.
	members := map[string]uuid.UUID{}
	if len(f.emails) > 0 {
		if members, err = s.accounts.MemberEmails(ctx, org, f.emails); err != nil {
			return nil, err
		}
	}
	membersJSON, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("bulk job members: %w", err)
	}

	id := uuid.Must(uuid.NewV7())
	if prev != nil {
		id = prev.ID
	}
	var job *bulkJob
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, mailServiceName(org, msID)+"/bulkJobs/"+id.String()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('mailboxes.bulk_uploads/' || $1::text, 0))", org); err != nil {
			return fmt.Errorf("lock the organization's bulk jobs: %w", err)
		}
		if err := s.checkBulkQuota(ctx, tx, org, except); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, recordBulkUpload, org); err != nil {
			return fmt.Errorf("record bulk upload: %w", err)
		}
		var rows pgx.Rows
		if prev == nil {
			rows, _ = tx.Query(ctx, insertBulkJob, id, msID, sum[:], f.rows, data, c.Name(), f.header, membersJSON)
		} else {
			if _, err := tx.Exec(ctx, deleteBulkJobRows, prev.ID); err != nil {
				return fmt.Errorf("restart bulk job: %w", err)
			}
			rows, _ = tx.Query(ctx, restartBulkJob, prev.ID, f.rows, data, c.Name(), f.header, membersJSON)
		}
		var err error
		if job, err = collectBulkJob(rows); err != nil {
			return err
		}
		if job == nil {
			return errBulkJobTaken
		}
		// The run is queued with the job: both or neither. A run still
		// queued for a restarted job is found and kept.
		if _, err := s.jobs.InsertTx(ctx, tx, bulkArgs{ID: job.ID}, bulkInsertOpts()); err != nil {
			return fmt.Errorf("queue bulk job: %w", err)
		}
		return audit(ctx, tx, organizationName(org), c, "mailboxes.address.bulkCreate", bulkJobName(org, job), map[string]string{
			"rows": strconv.Itoa(f.rows), "toCreate": strconv.Itoa(f.rows - f.skipped), "existing": strconv.Itoa(f.skipped),
			"sha256": hex.EncodeToString(sum[:]), "attempt": strconv.Itoa(int(job.Attempt)),
			"users": strconv.Itoa(len(f.emails)), "unknownUsers": strconv.Itoa(len(f.emails) - len(members)),
		})
	})
	if errors.Is(err, errBulkJobTaken) {
		job, err = nil, nil
	}
	if err != nil {
		if errs.Is(err, errs.ResourceExhausted) {
			return nil, err
		}
		if idempotency.IsRace(err) {
			done, err := s.raced(ctx, idem, err)
			return s.createdBulkJob(ctx, done, err)
		}
		return nil, fmt.Errorf("start bulk job: %w", err)
	}
	if job == nil {
		// Another upload of the same file started or restarted it first.
		rows, _ := s.pool.Query(ctx, selectBulkJobByContent, msID, sum[:])
		if job, err = collectBulkJob(rows); err != nil {
			return nil, fmt.Errorf("find bulk job: %w", err)
		}
		if job == nil {
			return nil, errs.E(errs.Conflict, "the mail service's jobs changed meanwhile; upload the file again")
		}
		return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, job)}, nil
	}
	return &mailboxesv1.CreateBulkJobResponse{Job: bulkJobProto(org, job)}, nil
}

// errBulkJobTaken undoes the start of a job that another upload of the
// same file started or restarted first.
var errBulkJobTaken = errors.New("bulk job started by another upload")

// createdBulkJob answers an upload again with the job name it started,
// read afresh, or err.
func (s *Server) createdBulkJob(ctx context.Context, name string, err error) (*mailboxesv1.CreateBulkJobResponse, error) {
	if err != nil {
		return nil, err
	}
	got, err := s.GetBulkJob(ctx, &mailboxesv1.GetBulkJobRequest{Name: name})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.CreateBulkJobResponse{Job: got.GetJob()}, nil
}

// GetBulkJob returns a job and its progress.
func (s *Server) GetBulkJob(ctx context.Context, req *mailboxesv1.GetBulkJobRequest) (*mailboxesv1.GetBulkJobResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "bulkJobs")
	if err != nil {
		return nil, err
	}
	if _, err := s.manage(ctx, ids[0]); err != nil {
		return nil, err
	}
	job, err := s.bulkJob(ctx, ids)
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.GetBulkJobResponse{Job: bulkJobProto(ids[0], job)}, nil
}

// checkBulkFile reads data once and checks it against mail service ms:
// every problem comes back as one InvalidArgument error.
func checkBulkFile(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ms uuid.UUID, data []byte) (*bulkFile, error) {
	f, be := checkBulk(data)
	if err := checkTaken(ctx, q, ms, f, be); err != nil {
		return nil, err
	}
	return f, be.err()
}

const selectTaken = `
SELECT l.local_key, l.is_alias, COALESCE(l.holder, ''), COALESCE(a.kind, '')
FROM local_parts l LEFT JOIN addresses a ON a.id = l.address_id
WHERE l.mail_service_id = $1 AND l.local_key = ANY($2)`

// checkTaken finds the local parts of f already taken on mail service ms,
// in one query: a row whose address exists with the same kind is skipped;
// any other collision is a problem.
func checkTaken(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ms uuid.UUID, f *bulkFile, be *bulkErrors) error {
	if len(f.keys) == 0 {
		return nil
	}
	keys := make([]string, 0, len(f.keys))
	for k := range f.keys {
		keys = append(keys, k)
	}
	type taken struct {
		key, holder, kind string
		alias             bool
	}
	rows, _ := q.Query(ctx, selectTaken, ms, keys)
	held, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (taken, error) {
		var t taken
		err := r.Scan(&t.key, &t.alias, &t.holder, &t.kind)
		return t, err
	})
	if err != nil {
		return fmt.Errorf("find taken local parts: %w", err)
	}
	skipped := map[int32]bool{}
	for _, t := range held {
		u := f.keys[t.key]
		if !u.alias && !t.alias && t.holder == "" && t.kind == bulkKinds[u.kind] {
			u.skip = true
			f.keys[t.key] = u
			skipped[u.row] = true
		}
	}
	f.skipped = len(skipped)
	for _, t := range held {
		u := f.keys[t.key]
		if u.skip || skipped[u.row] {
			continue
		}
		col := bulkColumns[colLocalPart]
		if u.alias {
			col = bulkColumns[colAliases]
		}
		switch {
		case t.holder != "":
			be.add(int(u.line), col, "%q is reserved by the %s service", t.key, t.holder)
		case t.alias:
			be.add(int(u.line), col, "%q is already an alias of another address", t.key)
		case u.alias:
			be.add(int(u.line), col, "%q is already an address of this mail service", t.key)
		default:
			be.add(int(u.line), bulkColumns[colKind], "%q is already an address of kind %s", t.key, t.kind)
		}
	}
	return nil
}

// ListBulkJobs lists a mail service's jobs, newest first.
func (s *Server) ListBulkJobs(ctx context.Context, req *mailboxesv1.ListBulkJobsRequest) (*mailboxesv1.ListBulkJobsResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListBulkJobs", req.GetParent())
	if err != nil {
		return nil, err
	}
	after, afterID, err := page.Cursor(true)
	if err != nil {
		return nil, err
	}
	if _, err := s.manage(ctx, ids[0]); err != nil {
		return nil, err
	}
	if _, err := activeMailService(ctx, s.pool, ids[0], ids[1]); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectBulkJobs, ids[1], page.Size+1, after, afterID)
	jobs, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[bulkJob])
	if err != nil {
		return nil, fmt.Errorf("list bulk jobs: %w", err)
	}
	resp := &mailboxesv1.ListBulkJobsResponse{}
	jobs, resp.NextPageToken = aip.Trim(page, jobs, func(j *bulkJob) []string {
		return []string{aip.TimeKey(j.CreateTime), j.ID.String()}
	})
	for _, j := range jobs {
		resp.Jobs = append(resp.Jobs, bulkJobProto(ids[0], j))
	}
	return resp, nil
}

// CancelBulkJob stops a running job; a cancelled one is returned as it is.
func (s *Server) CancelBulkJob(ctx context.Context, req *mailboxesv1.CancelBulkJobRequest) (*mailboxesv1.CancelBulkJobResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "bulkJobs")
	if err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	var job *bulkJob
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, cancelBulkJob, ids[2], ids[1], ids[0])
		var err error
		if job, err = collectBulkJob(rows); err != nil || job == nil {
			return err
		}
		return audit(ctx, tx, organizationName(ids[0]), c, "mailboxes.address.bulkCancel", bulkJobName(ids[0], job), map[string]string{
			"doneRows": strconv.Itoa(int(job.DoneRows)), "totalRows": strconv.Itoa(int(job.TotalRows)),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("cancel bulk job: %w", err)
	}
	if job == nil {
		job, err = s.bulkJob(ctx, ids)
		if err != nil {
			return nil, err
		}
		if job.State != "cancelled" {
			return nil, errs.E(errs.FailedPrecondition, "the bulk job already %s; only a running job can be cancelled", job.State).WithReason("BULK_JOB_ENDED")
		}
	}
	return &mailboxesv1.CancelBulkJobResponse{Job: bulkJobProto(ids[0], job)}, nil
}

// bulkJob loads the job ids names (organization, mail service, job);
// NotFound when it is not there.
func (s *Server) bulkJob(ctx context.Context, ids []uuid.UUID) (*bulkJob, error) {
	rows, _ := s.pool.Query(ctx, selectBulkJob, ids[2], ids[1], ids[0])
	job, err := collectBulkJob(rows)
	if err != nil {
		return nil, fmt.Errorf("get bulk job: %w", err)
	}
	if job == nil {
		return nil, errs.E(errs.NotFound, "bulk job not found")
	}
	return job, nil
}
