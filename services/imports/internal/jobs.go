package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	importsv1 "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
	"github.com/mailplane/mailplane/services/imports/importsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultActiveJobs caps an organization's jobs not yet ended.
const DefaultActiveJobs = 50

// DefaultChecksPerHour caps the logins to source servers an organization's
// import requests make per hour: two full bulk imports of 25 rows with two
// sources each, and their retries.
const DefaultChecksPerHour = 200

// maxFailures is how many failed messages a job keeps (its count counts
// them all).
const maxFailures = 1000

// job is an import job as stored.
type job struct {
	id, org          uuid.UUID
	parent           *uuid.UUID
	bulk             bool
	creator          string
	creatorUser      *uuid.UUID
	creatorEmail     string
	language         string
	destination      string
	destinationEmail string
	destinationLogin string
	sources          []source
	state            string
	err              string
	foldersTotal     int
	foldersDone      int
	total, copied    int64
	skipped, failed  int64
	bytes            int64
	create           time.Time
	start, end       *time.Time
	children         []uuid.UUID
}

const jobColumns = `
SELECT id, organization_id, parent_id, bulk, creator, creator_user_id, creator_email, language,
       destination, destination_email, destination_login, sources, state, error,
       folders_total, folders_done, messages_total, messages_copied, messages_skipped, messages_failed, bytes,
       create_time, start_time, end_time
FROM jobs`

func scanJob(row pgx.CollectableRow) (*job, error) {
	var j job
	var srcs []byte
	err := row.Scan(&j.id, &j.org, &j.parent, &j.bulk, &j.creator, &j.creatorUser, &j.creatorEmail, &j.language,
		&j.destination, &j.destinationEmail, &j.destinationLogin, &srcs, &j.state, &j.err,
		&j.foldersTotal, &j.foldersDone, &j.total, &j.copied, &j.skipped, &j.failed, &j.bytes,
		&j.create, &j.start, &j.end)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(srcs, &j.sources); err != nil {
		return nil, fmt.Errorf("job %s sources: %w", j.id, err)
	}
	return &j, nil
}

// ended reports whether the job's state is final.
func ended(state string) bool { return state != "pending" && state != "running" }

var states = map[string]importsv1.State{
	"pending": importsv1.State_STATE_PENDING, "running": importsv1.State_STATE_RUNNING,
	"succeeded": importsv1.State_STATE_SUCCEEDED, "failed": importsv1.State_STATE_FAILED,
	"cancelled": importsv1.State_STATE_CANCELLED,
}

func (j *job) proto() *importsv1.ImportJob {
	p := &importsv1.ImportJob{
		Name: jobName(j.org, j.id), Destination: j.destination, DestinationEmail: j.destinationEmail,
		State: states[j.state], Error: j.err, Creator: j.creator, CreateTime: timestamppb.New(j.create),
		Progress: &importsv1.Progress{
			FoldersTotal: int32(j.foldersTotal), FoldersDone: int32(j.foldersDone),
			MessagesTotal: j.total, MessagesCopied: j.copied, MessagesSkipped: j.skipped, MessagesFailed: j.failed,
			Bytes: j.bytes,
		},
	}
	for _, s := range j.sources {
		p.Sources = append(p.Sources, s.proto())
	}
	if j.parent != nil {
		p.ParentJob = jobName(j.org, *j.parent)
	}
	for _, c := range j.children {
		p.ChildJobs = append(p.ChildJobs, jobName(j.org, c))
	}
	if j.start != nil {
		p.StartTime = timestamppb.New(*j.start)
	}
	if j.end != nil {
		p.EndTime = timestamppb.New(*j.end)
	}
	p.Progress.TimeLeft = j.timeLeft(time.Now())
	return p
}

// timeLeft estimates the time a running job needs, from its rate since
// it started (pauses included: an estimate, not a promise).
func (j *job) timeLeft(now time.Time) *durationpb.Duration {
	done := j.copied + j.skipped + j.failed
	if j.state != "running" || j.start == nil || done == 0 || j.total < done {
		return nil
	}
	elapsed := now.Sub(*j.start)
	left := time.Duration(float64(elapsed) * float64(j.total-done) / float64(done))
	return durationpb.New(left.Round(time.Second))
}

const (
	selectChildren = `SELECT id FROM jobs WHERE parent_id = $1 ORDER BY position`
	// sumChildren is a bulk parent's progress: its rows'.
	sumChildren = `
SELECT coalesce(sum(folders_total), 0), coalesce(sum(folders_done), 0), coalesce(sum(messages_total), 0),
       coalesce(sum(messages_copied), 0), coalesce(sum(messages_skipped), 0), coalesce(sum(messages_failed), 0),
       coalesce(sum(bytes), 0), min(start_time)
FROM jobs WHERE parent_id = $1`
)

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// fill adds a bulk parent's rows and their summed progress to j.
func (s *Server) fill(ctx context.Context, q querier, j *job) error {
	if !j.bulk {
		return nil
	}
	rows, _ := q.Query(ctx, selectChildren, j.id)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("rows of %s: %w", j.id, err)
	}
	j.children = ids
	var folders, foldersDone int64
	err = q.QueryRow(ctx, sumChildren, j.id).Scan(&folders, &foldersDone, &j.total, &j.copied, &j.skipped, &j.failed, &j.bytes, &j.start)
	j.foldersTotal, j.foldersDone = int(folders), int(foldersDone)
	if err != nil {
		return fmt.Errorf("progress of %s: %w", j.id, err)
	}
	return nil
}

// readJob returns the job called name that ctx's caller may see: owners
// and admins see every job of their organization, a member the jobs
// they started.
func (s *Server) readJob(ctx context.Context, field, name string) (*job, access.Caller, error) {
	org, id, err := parseJob(field, name)
	if err != nil {
		return nil, access.Caller{}, err
	}
	c, role, err := s.roles.Access(ctx, org)
	if err != nil {
		return nil, c, err
	}
	j, err := s.getJob(ctx, org, id)
	if err != nil {
		return nil, c, err
	}
	if !role.CanManage() && (c.IsToken() || j.creatorUser == nil || *j.creatorUser != c.UserID) {
		return nil, c, errs.E(errs.PermissionDenied, "only owners, admins and the person who started it can see import job %s", name)
	}
	return j, c, nil
}

func (s *Server) getJob(ctx context.Context, org, id uuid.UUID) (*job, error) {
	rows, _ := s.pool.Query(ctx, jobColumns+` WHERE id = $1 AND organization_id = $2`, id, org)
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "import job %s not found", jobName(org, id))
	}
	if err != nil {
		return nil, fmt.Errorf("read import job: %w", err)
	}
	return j, s.fill(ctx, s.pool, j)
}

// GetImportJob returns a job and its progress.
func (s *Server) GetImportJob(ctx context.Context, req *importsv1.GetImportJobRequest) (*importsv1.GetImportJobResponse, error) {
	j, _, err := s.readJob(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	return &importsv1.GetImportJobResponse{ImportJob: j.proto()}, nil
}

// ListImportJobs lists the organization's jobs, newest first.
func (s *Server) ListImportJobs(ctx context.Context, req *importsv1.ListImportJobsRequest) (*importsv1.ListImportJobsResponse, error) {
	org, err := parseOrg("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, role, err := s.roles.Access(ctx, org)
	if err != nil {
		return nil, err
	}
	var parent *uuid.UUID
	if pj := req.GetParentJob(); pj != "" {
		porg, pid, err := parseJob("parentJob", pj)
		if err != nil {
			return nil, err
		}
		// Another organization's job is NotFound, as one of this
		// organization that does not exist.
		if porg != org {
			return nil, errs.E(errs.NotFound, "import job %s not found", pj)
		}
		if _, err := s.getJob(ctx, org, pid); err != nil {
			return nil, err
		}
		parent = &pid
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent(), req.GetParentJob())
	if err != nil {
		return nil, err
	}
	var after *uuid.UUID
	if len(page.After) == 1 {
		id, err := uuid.Parse(page.After[0])
		if err != nil {
			return nil, aip.BadPageToken()
		}
		after = &id
	}
	// A member sees the jobs they started; ids are UUIDv7, their order
	// is their creation's.
	var mine *uuid.UUID
	if !role.CanManage() {
		mine = &c.UserID
	}
	rows, _ := s.pool.Query(ctx, jobColumns+`
WHERE organization_id = $1 AND parent_id IS NOT DISTINCT FROM $2 AND ($3::uuid IS NULL OR creator_user_id = $3)
  AND ($4::uuid IS NULL OR id < $4)
ORDER BY id DESC LIMIT $5`, org, parent, mine, after, page.Size+1)
	js, err := pgx.CollectRows(rows, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list import jobs: %w", err)
	}
	js, next := aip.Trim(page, js, func(j *job) []string { return []string{j.id.String()} })
	resp := &importsv1.ListImportJobsResponse{NextPageToken: next}
	for _, j := range js {
		if err := s.fill(ctx, s.pool, j); err != nil {
			return nil, err
		}
		resp.ImportJobs = append(resp.ImportJobs, j.proto())
	}
	return resp, nil
}

// ListImportFailures lists the messages a job could not copy.
func (s *Server) ListImportFailures(ctx context.Context, req *importsv1.ListImportFailuresRequest) (*importsv1.ListImportFailuresResponse, error) {
	j, _, err := s.readJob(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	// The key is the row's position in the parent (0 for a single job)
	// and the failure's sequence.
	var afterPos, afterSeq int
	if len(page.After) == 1 {
		if _, err := fmt.Sscanf(page.After[0], "%d/%d", &afterPos, &afterSeq); err != nil {
			return nil, aip.BadPageToken()
		}
	} else {
		afterPos, afterSeq = -1, -1
	}
	rows, _ := s.pool.Query(ctx, `
SELECT j.id, j.position, f.seq, f.source, f.folder, f.uid, f.subject, f.reason
FROM failures f JOIN jobs j ON j.id = f.job_id
WHERE (j.id = $1 OR j.parent_id = $1) AND (j.position, f.seq) > ($2, $3)
ORDER BY j.position, f.seq LIMIT $4`, j.id, afterPos, afterSeq, page.Size+1)
	type failure struct {
		job      uuid.UUID
		pos, seq int
		f        *importsv1.ImportFailure
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (failure, error) {
		var f failure
		var uid int64
		f.f = new(importsv1.ImportFailure)
		err := r.Scan(&f.job, &f.pos, &f.seq, &f.f.Source, &f.f.Folder, &uid, &f.f.Subject, &f.f.Reason)
		f.f.Uid = uint32(uid)
		f.f.Job = jobName(j.org, f.job)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	fs, next := aip.Trim(page, fs, func(f failure) []string { return []string{fmt.Sprintf("%d/%d", f.pos, f.seq)} })
	resp := &importsv1.ListImportFailuresResponse{NextPageToken: next}
	for _, f := range fs {
		resp.Failures = append(resp.Failures, f.f)
	}
	return resp, nil
}

const (
	// cancelJobs ends a job, or a bulk parent and its rows, that has not
	// ended; the passwords go with it.
	cancelJobs = `
UPDATE jobs SET state = 'cancelled', end_time = now(), update_time = now(), passwords = NULL
WHERE (id = $1 OR parent_id = $1) AND state IN ('pending', 'running')
RETURNING id`
)

// CancelImportJob cancels a job that has not ended. Its worker stops
// after its current batch: its next checkpoint finds the job cancelled.
func (s *Server) CancelImportJob(ctx context.Context, req *importsv1.CancelImportJobRequest) (*importsv1.CancelImportJobResponse, error) {
	j, c, err := s.readJob(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	if j.parent != nil {
		return nil, errs.E(errs.FailedPrecondition, "import job %s is a row of the bulk import %s: cancel that one", req.GetName(), jobName(j.org, *j.parent))
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, cancelJobs, j.id)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("cancel import job: %w", err)
		}
		if len(ids) == 0 {
			return nil // it had ended: cancelling again changes nothing
		}
		for _, id := range ids {
			if err := s.ended(ctx, tx, j.org, id, c.Name()); err != nil {
				return err
			}
		}
		return audit(ctx, tx, j.org, c, "imports.import_job.cancel", req.GetName(), nil)
	})
	if err != nil {
		return nil, err
	}
	j, err = s.getJob(ctx, j.org, j.id)
	if err != nil {
		return nil, err
	}
	return &importsv1.CancelImportJobResponse{ImportJob: j.proto()}, nil
}

// ended publishes the end of job id, which tx has just ended, and queues
// its confirmations; a bulk import's last row ends its parent too.
func (s *Server) ended(ctx context.Context, tx pgx.Tx, org, id uuid.UUID, actor string) error {
	rows, _ := tx.Query(ctx, jobColumns+` WHERE id = $1`, id)
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if err != nil {
		return fmt.Errorf("read ended job: %w", err)
	}
	if err := s.fill(ctx, tx, j); err != nil {
		return err
	}
	if actor == "" {
		actor = j.creator
	}
	if err := outbox.Write(ctx, tx, importsevents.ImportJobEnded, &importsv1.ImportJobChanged{ImportJob: j.proto(), Actor: actor}); err != nil {
		return err
	}
	if err := s.queueNotices(ctx, tx, j); err != nil {
		return err
	}
	if j.parent == nil {
		return nil
	}
	// The parent ends with its last row: failed if every row failed.
	var parentID uuid.UUID
	err = tx.QueryRow(ctx, `
UPDATE jobs p SET state = CASE WHEN EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = p.id AND c.state <> 'failed')
                          THEN 'succeeded' ELSE 'failed' END,
       end_time = now(), update_time = now()
WHERE p.id = $1 AND p.state IN ('pending', 'running')
  AND NOT EXISTS (SELECT 1 FROM jobs c WHERE c.parent_id = p.id AND c.state IN ('pending', 'running'))
RETURNING p.id`, *j.parent).Scan(&parentID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end bulk import: %w", err)
	}
	return s.ended(ctx, tx, org, parentID, actor)
}

// watchPoll is how often WatchImportJob reads the job. Progress is
// saved at each checkpoint (a batch), so a faster poll shows nothing new.
const watchPoll = 500 * time.Millisecond

// watch counts a watch of org's open until done is called, or refuses it
// past the cap.
func (s *Server) watch(org uuid.UUID) (done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watching[org] >= s.limits.Watches {
		return nil, errs.E(errs.ResourceExhausted, "the organization has %d import watches open, at most %d: close one", s.watching[org], s.limits.Watches)
	}
	s.watching[org]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.watching[org]--; s.watching[org] == 0 {
			delete(s.watching, org)
		}
	}, nil
}

// WatchImportJob streams a job's progress until it ends.
func (s *Server) WatchImportJob(req *importsv1.WatchImportJobRequest, stream importsv1.ImportService_WatchImportJobServer) error {
	ctx := stream.Context()
	name := req.GetName()
	if strings.ContainsRune(name, 0) {
		return errs.Field("name", "must not hold NUL")
	}
	j, _, err := s.readJob(ctx, "name", name)
	if err != nil {
		return err
	}
	done, err := s.watch(j.org)
	if err != nil {
		return err
	}
	defer done()
	var last *importsv1.ImportJob
	t := time.NewTicker(watchPoll)
	defer t.Stop()
	for {
		p := j.proto()
		// time_left changes with the clock; only a change of the job is news.
		p.Progress.TimeLeft = nil
		if last == nil || !proto.Equal(last, p) {
			if err := stream.Send(&importsv1.WatchImportJobResponse{ImportJob: j.proto()}); err != nil {
				return err
			}
			last = p
		}
		if ended(j.state) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		// The caller's access is asked again at every read (their role
		// is cached for seconds), so that a watch does not outlive a
		// membership removed while the job runs, which may be hours.
		if j, _, err = s.readJob(ctx, "name", name); err != nil {
			return err
		}
	}
}
