package mailboxes

// The run of a bulk job: the second reading of its file, which creates the
// addresses in batches, and the resumption of jobs whose process stopped.
// The whole flow is described in bulk_jobs.go.

import (
	"context"
	"encoding/json"
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
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	// bulkBatchRows is how many rows one transaction creates; the job's
	// progress moves by as many.
	bulkBatchRows = 1000
	// maxBulkResumes is how many times a job is resumed after its process
	// stopped, without an upload.
	maxBulkResumes = 5
	// bulkJobTimeout bounds a job's run.
	bulkJobTimeout = 10 * time.Minute
)

const (
	// resumeBulkJob takes over the longest abandoned job that kept its
	// file, with what its run needs.
	resumeBulkJob = `
UPDATE bulk_jobs SET done_rows = 0, attempt = attempt + 1, resumes = resumes + 1, update_time = now()
WHERE id = (SELECT id FROM bulk_jobs WHERE ` + staleJob + ` AND csv IS NOT NULL
            ORDER BY update_time LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING ` + bulkJobColumns + `, csv, actor, resumes`

	bulkProgress = `UPDATE bulk_jobs SET done_rows = $3, update_time = now() WHERE id = $1 AND attempt = $2`

	bulkSucceeded = `
UPDATE bulk_jobs SET state = 'succeeded', done_rows = total_rows, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2`

	bulkFailed = `
UPDATE bulk_jobs SET state = 'failed', error = $3, update_time = now(), end_time = now(), csv = NULL
WHERE id = $1 AND attempt = $2 AND state = 'running'`
)

// ResumeBulkJobs finishes the jobs whose process stopped half way (running,
// no heartbeat for a minute), one after the other, from the file each kept,
// and reports how many it took over. What the first run created is found
// and skipped, as when the file is uploaded again.
func (s *Server) ResumeBulkJobs(ctx context.Context) (int, error) {
	for n := 0; ; n++ {
		j := &bulkJob{}
		var data []byte
		var actor string
		var resumes int
		err := s.pool.QueryRow(ctx, resumeBulkJob).Scan(&j.ID, &j.MailServiceID, &j.State, &j.TotalRows, &j.DoneRows,
			&j.Error, &j.Attempt, &j.CreateTime, &j.EndTime, &j.Stale, &data, &actor, &resumes)
		if errors.Is(err, pgx.ErrNoRows) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("resume bulk job: %w", err)
		}
		s.resumeBulkJob(ctx, j, data, actor, resumes)
	}
}

// resumeBulkJob runs job again from its file; a job that can no longer be
// done (its mail service deleted, a name taken meanwhile) fails with the
// reason.
func (s *Server) resumeBulkJob(ctx context.Context, job *bulkJob, data []byte, actor string, resumes int) {
	var org uuid.UUID
	var domain string
	var deleted bool
	err := s.pool.QueryRow(ctx, "SELECT organization_id, domain, delete_time IS NOT NULL FROM mail_services WHERE id = $1", job.MailServiceID).
		Scan(&org, &domain, &deleted)
	if err != nil {
		s.log.ErrorContext(ctx, "resume bulk job: mail service", "bulkJob", job.ID, "error", err)
		return
	}
	run := bulkRun{s: s, job: job, org: org, domain: domain, actor: actor, data: data}
	f, err := checkBulkFile(ctx, s.pool, job.MailServiceID, data)
	if err != nil && errs.KindOf(err) != errs.InvalidArgument {
		s.log.ErrorContext(ctx, "resume bulk job", "bulkJob", job.ID, "error", err)
		return
	}
	switch {
	case resumes > maxBulkResumes:
		// A file that stops its process every time must not do so forever.
		run.fail(ctx, fmt.Sprintf("stopped %d times without finishing; upload the file again to retry", maxBulkResumes))
	case deleted:
		run.fail(ctx, "its mail service was deleted")
	case err != nil:
		run.fail(ctx, "could not be resumed: "+err.Error())
	default:
		run.file = f
		// Each run is audited, as the upload that started the first was;
		// the actor is whoever uploaded the file.
		name := bulkJobName(org, job)
		err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			return outbox.Write(ctx, tx, mailboxesevents.AuditRecorded, auditRecord(ctx, organizationName(org), actor, "mailboxes.address.bulkCreate", name, map[string]string{
				"rows": strconv.Itoa(f.rows), "toCreate": strconv.Itoa(f.rows - f.skipped), "existing": strconv.Itoa(f.skipped),
				"attempt": strconv.Itoa(int(job.Attempt)), "resumed": "true",
			}))
		})
		if err != nil {
			s.log.ErrorContext(ctx, "resume bulk job: audit", "bulkJob", name, "error", err)
			return
		}
		s.log.InfoContext(ctx, "bulk job resumed", "bulkJob", name, "attempt", job.Attempt)
		run.run(ctx)
	}
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
}

// errSuperseded stops a run whose job another run took over.
var errSuperseded = errors.New("bulk job taken over by another run")

func (r *bulkRun) run(parent context.Context) {
	log := r.s.log.With("bulkJob", bulkJobName(r.org, r.job), "attempt", r.job.Attempt)
	ctx, cancel := context.WithTimeout(parent, bulkJobTimeout)
	defer cancel()
	start := time.Now()
	created, err := r.create(ctx)
	if err == nil {
		log.InfoContext(ctx, "bulk job succeeded", "rows", r.file.rows, "created", created, "duration", time.Since(start))
		return
	}
	if errors.Is(err, errSuperseded) {
		log.WarnContext(ctx, "bulk job run superseded", "created", created)
		return
	}
	if parent.Err() != nil {
		// The process is stopping: the job stays running, its file kept,
		// and is resumed once its heartbeat is a minute old.
		log.InfoContext(ctx, "bulk job interrupted; it will be resumed", "created", created)
		return
	}
	msg := "stopped by an internal error; upload the file again to create the rest"
	var e *errs.Error
	if errors.As(err, &e) {
		msg = e.Message
	} else {
		log.ErrorContext(ctx, "bulk job failed", "created", created, "error", err)
	}
	r.fail(ctx, msg)
}

// fail ends the run's job as failed, for the reason msg, even when ctx ran
// out.
func (r *bulkRun) fail(ctx context.Context, msg string) {
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if _, err := r.s.pool.Exec(fctx, bulkFailed, r.job.ID, r.job.Attempt, msg); err != nil {
		r.s.log.ErrorContext(ctx, "mark bulk job failed", "bulkJob", r.job.ID, "error", err)
	}
}

// create makes the file's addresses, a batch per transaction, and reports
// how many.
func (r *bulkRun) create(ctx context.Context) (int, error) {
	be := &bulkErrors{}
	br := newBulkReader(r.data, be)
	if br == nil {
		return 0, fmt.Errorf("read the file again: %w", be.err())
	}
	headers, err := eventHeaders(ctx, &mailboxesv1.AddressChanged{})
	if err != nil {
		return 0, err
	}
	b := bulkBatch{run: r, headers: headers}
	created := 0
	for {
		row, valid, ok := br.next(be)
		if !ok {
			break
		}
		if !valid {
			return created, fmt.Errorf("line %d read differently the second time: %w", row.line, be.err())
		}
		if !r.file.keys[row.key].skip {
			if err := b.add(row); err != nil {
				return created, err
			}
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

// bulkBatch is the rows of one transaction, ready for COPY.
type bulkBatch struct {
	run        *bulkRun
	headers    []byte
	addresses  [][]any
	localParts [][]any
	events     [][]any
	// first and last line of the batch, to name where a conflict is.
	first, last int
}

func (b *bulkBatch) add(row bulkRow) error {
	r := b.run
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
	aliases := slices.Clone(row.aliases)
	slices.Sort(aliases)
	ts := timestamppb.New(now)
	payload, err := proto.Marshal(&mailboxesv1.AddressChanged{Actor: r.actor, Login: localKey(row.localPart) + "@" + r.domain, Address: &mailboxesv1.Address{
		Name: addressName(r.org, r.job.MailServiceID, id), LocalPart: row.localPart, Email: row.localPart + "@" + r.domain,
		Kind: kindProtos[kind], RedirectDestinations: row.redirects, Aliases: aliases, QuotaBytes: row.quota,
		CreateTime: ts, UpdateTime: ts,
	}})
	if err != nil {
		return fmt.Errorf("address event: %w", err)
	}
	b.events = append(b.events, []any{uuid.Must(uuid.NewV7()), mailboxesevents.AddressCreated, payload, b.headers})
	if b.first == 0 {
		b.first = row.line
	}
	b.last = row.line
	return nil
}

var (
	addressCopyColumns   = []string{"id", "mail_service_id", "local_part", "local_key", "kind", "redirects", "quota_bytes", "create_time", "update_time"}
	localPartCopyColumns = []string{"mail_service_id", "local_key", "address_id", "is_alias"}
	outboxCopyColumns    = []string{"id", "subject", "payload", "headers"}
	conflictKey          = regexp.MustCompile(`=\([^,]*, (.*)\) already exists`)
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
				// outbox.Write, for many events at once.
				{"outbox", outboxCopyColumns, b.events},
			} {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
					return b.conflict(err)
				}
			}
		}
		q, args := bulkProgress, []any{r.job.ID, r.job.Attempt, done}
		if last {
			q, args = bulkSucceeded, args[:2]
		}
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("record bulk job progress: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errSuperseded
		}
		return nil
	})
	b.addresses, b.localParts, b.events = b.addresses[:0], b.localParts[:0], b.events[:0]
	b.first, b.last = 0, 0
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

// eventHeaders are the outbox headers outbox.Write gives an event like msg
// written in ctx.
func eventHeaders(ctx context.Context, msg proto.Message) ([]byte, error) {
	h := propagation.MapCarrier{outbox.TypeHeader: string(msg.ProtoReflect().Descriptor().FullName())}
	otel.GetTextMapPropagator().Inject(ctx, h)
	return json.Marshal(h)
}
