package filters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/filters/internal/runnow"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// IMAP is where run-now and the Spam sweep reach the mail store: Dovecot's
// IMAP address and the master user that logs in as each address.
type IMAP struct {
	Addr   string
	Master runnow.Login
}

// SetIMAP sets the mail store's IMAP; an empty Addr: runs are refused.
func (s *Server) SetIMAP(i IMAP) { s.imap = i }

// MaxRunEntries caps the entries a dry run stores; past it the run goes
// on counting and says the listing is truncated.
const MaxRunEntries = 10000

// Caps on an entry's texts, which come from the mail.
const (
	maxEntryText   = 1000
	imapTimeout    = 30 * time.Second
	runAttempts    = 10
	runSlice       = time.Minute
	runSliceBudget = 90 * time.Second
)

const (
	runColumns = `id, rule_id, folder, subfolders, dry_run, state, progress, entry_count, entries_truncated, error, create_time, end_time`
	insertRun  = `
INSERT INTO filter_runs (id, address_id, rule_id, rules, folder, subfolders, dry_run, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, 1) RETURNING create_time`
	selectRunning = `SELECT id FROM filter_runs WHERE address_id = $1 AND state = 1`
	selectRun     = `SELECT ` + runColumns + ` FROM filter_runs WHERE address_id = $1 AND id = $2`
	listRuns      = `
SELECT ` + runColumns + ` FROM filter_runs WHERE address_id = $1
  AND ($2::timestamptz IS NULL OR (create_time, id) < ($2, $3))
ORDER BY create_time DESC, id DESC LIMIT $4`
	cancelRun = `
UPDATE filter_runs SET state = 4, end_time = now() WHERE address_id = $1 AND id = $2 AND state = 1
RETURNING ` + runColumns
	listEntries = `
SELECT seq, folder, uid, message_id, sender, subject, actions FROM filter_run_entries
WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`

	// The job's statements.
	selectRunJob = `
SELECT r.state, r.rules, r.folder, r.subfolders, r.dry_run, r.progress, r.entry_count, a.login
FROM filter_runs r JOIN addresses a ON a.id = r.address_id WHERE r.id = $1`
	lockRunState = `SELECT state, entry_count FROM filter_runs WHERE id = $1 FOR UPDATE`
	saveProgress = `UPDATE filter_runs SET progress = $2, entry_count = $3, entries_truncated = entries_truncated OR $4 WHERE id = $1`
	insertEntry  = `
INSERT INTO filter_run_entries (run_id, seq, folder, uid, message_id, sender, subject, actions)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	endRun = `UPDATE filter_runs SET state = $2, error = $3, end_time = now() WHERE id = $1 AND state = 1`
)

// run is a stored run.
type run struct {
	ID        uuid.UUID
	Rule      *uuid.UUID
	Folder    string
	Sub, Dry  bool
	State     filtersv1.FilterRunState
	Progress  *runnow.Progress
	Entries   int
	Truncated bool
	Error     string
	Created   time.Time
	Ended     *time.Time
}

func scanRun(row pgx.Row) (*run, error) {
	var r run
	var state int16
	var progress []byte
	if err := row.Scan(&r.ID, &r.Rule, &r.Folder, &r.Sub, &r.Dry, &state, &progress, &r.Entries, &r.Truncated, &r.Error, &r.Created, &r.Ended); err != nil {
		return nil, err
	}
	r.State = filtersv1.FilterRunState(state)
	if progress != nil {
		r.Progress = new(runnow.Progress)
		if err := json.Unmarshal(progress, r.Progress); err != nil {
			return nil, fmt.Errorf("run %s progress: %w", r.ID, err)
		}
	}
	return &r, nil
}

func runName(a addressIDs, id uuid.UUID) string { return a.name() + "/filterRuns/" + id.String() }

func parseRun(field, name string) (addressIDs, uuid.UUID, error) {
	ids, err := aip.ParseIDs(field, name, addressPattern+"/filterRuns/{filter_run}")
	if err != nil {
		return addressIDs{}, uuid.Nil, err
	}
	return addressIDs{ids[0], ids[1], ids[2]}, ids[3], nil
}

func (r *run) proto(a addressIDs) *filtersv1.FilterRun {
	p := &filtersv1.FilterRun{
		Name: runName(a, r.ID), Folder: r.Folder, IncludeSubfolders: r.Sub, DryRun: r.Dry, State: r.State,
		EntryCount: int32(r.Entries), EntriesTruncated: r.Truncated, Error: r.Error, CreateTime: timestamppb.New(r.Created),
	}
	if r.Rule != nil {
		p.Rule = ruleName(a, *r.Rule)
	}
	if r.Ended != nil {
		p.EndTime = timestamppb.New(*r.Ended)
	}
	if g := r.Progress; g != nil {
		p.FoldersTotal, p.FoldersDone = int32(len(g.Folders)), int32(g.FoldersDone())
		p.MessagesTotal, p.MessagesDone, p.MessagesMatched, p.MessagesChanged, p.MessagesFailed = g.Total, g.Done, g.Matched, g.Changed, g.Failed
	}
	return p
}

// runArgs is the job that works a run.
type runArgs struct {
	Run uuid.UUID `json:"run"`
}

func (runArgs) Kind() string { return "filter_run" }

func (runArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: runAttempts} }

func (s *Server) CreateFilterRun(ctx context.Context, req *filtersv1.CreateFilterRunRequest) (*filtersv1.CreateFilterRunResponse, error) {
	a, err := parseAddress("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	in := req.GetFilterRun()
	folder := strings.TrimSpace(in.GetFolder())
	if folder == "" || strings.EqualFold(folder, rules.Inbox) {
		folder = rules.Inbox
	} else if err := rules.CheckFolder(folder); err != nil {
		return nil, errs.Field("filterRun.folder", err.Error())
	}
	var ruleID *uuid.UUID
	if in.GetRule() != "" {
		ra, id, err := parseRule("filterRun.rule", in.GetRule())
		if err != nil {
			return nil, err
		}
		if ra != a {
			return nil, errs.Field("filterRun.rule", "is not a rule of "+a.name())
		}
		ruleID = &id
	}
	if s.imap.Addr == "" {
		return nil, errs.E(errs.FailedPrecondition, "run-now is not available: the service has no IMAP address (imap-addr)")
	}
	r := &run{ID: uuid.Must(uuid.NewV7()), Rule: ruleID, Folder: folder, Sub: in.GetIncludeSubfolders(), Dry: in.GetDryRun(), State: filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The address's row lock orders this against rule changes and
		// another start.
		if _, err := tx.Exec(ctx, lockAddress, a.addr); err != nil {
			return fmt.Errorf("lock address: %w", err)
		}
		var other uuid.UUID
		switch err := tx.QueryRow(ctx, selectRunning, a.addr).Scan(&other); {
		case err == nil:
			return errs.E(errs.FailedPrecondition, "%s is still running: cancel it or wait for it to end", runName(a, other))
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("read running run: %w", err)
		}
		var models []rules.Rule
		if ruleID != nil {
			rl, err := scanRule(tx.QueryRow(ctx, selectRule, a.addr, *ruleID))
			if errors.Is(err, pgx.ErrNoRows) {
				return errs.E(errs.NotFound, "rule %s not found", in.GetRule())
			}
			if err != nil {
				return fmt.Errorf("read rule: %w", err)
			}
			m := rl.Model()
			m.Enabled = true // asked for by name: run even if disabled
			models = []rules.Rule{m}
		} else {
			rls, err := listRules(ctx, tx, a.addr)
			if err != nil {
				return err
			}
			for _, rl := range rls {
				models = append(models, rl.Model())
			}
		}
		snapshot, err := json.Marshal(models)
		if err != nil {
			return fmt.Errorf("rules snapshot: %w", err)
		}
		if err := tx.QueryRow(ctx, insertRun, r.ID, a.addr, ruleID, snapshot, r.Folder, r.Sub, r.Dry).Scan(&r.Created); err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		if _, err := s.jobs.InsertTx(ctx, tx, runArgs{Run: r.ID}, nil); err != nil {
			return fmt.Errorf("queue run: %w", err)
		}
		return audit(ctx, tx, a.org, c, "filters.run.start", runName(a, r.ID), map[string]string{
			"folder": r.Folder, "dryRun": fmt.Sprint(r.Dry), "includeSubfolders": fmt.Sprint(r.Sub), "rule": in.GetRule()})
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.CreateFilterRunResponse{FilterRun: r.proto(a)}, nil
}

func (s *Server) GetFilterRun(ctx context.Context, req *filtersv1.GetFilterRunRequest) (*filtersv1.GetFilterRunResponse, error) {
	a, id, err := parseRun("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	r, err := scanRun(s.pool.QueryRow(ctx, selectRun, a.addr, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "filter run %s not found", req.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("read run: %w", err)
	}
	return &filtersv1.GetFilterRunResponse{FilterRun: r.proto(a)}, nil
}

func (s *Server) ListFilterRuns(ctx context.Context, req *filtersv1.ListFilterRunsRequest) (*filtersv1.ListFilterRunsResponse, error) {
	a, err := parseAddress("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListFilterRuns", req.GetParent())
	if err != nil {
		return nil, err
	}
	after, afterID, err := page.Cursor(true)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, listRuns, a.addr, after, afterID, page.Size+1)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*run, error) { return scanRun(row) })
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, next := aip.Trim(page, runs, func(r *run) []string { return []string{aip.TimeKey(r.Created), r.ID.String()} })
	resp := &filtersv1.ListFilterRunsResponse{NextPageToken: next}
	for _, r := range runs {
		resp.FilterRuns = append(resp.FilterRuns, r.proto(a))
	}
	return resp, nil
}

func (s *Server) CancelFilterRun(ctx context.Context, req *filtersv1.CancelFilterRunRequest) (*filtersv1.CancelFilterRunResponse, error) {
	a, id, err := parseRun("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	var r *run
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		r, err = scanRun(tx.QueryRow(ctx, cancelRun, a.addr, id))
		if errors.Is(err, pgx.ErrNoRows) {
			old, err := scanRun(tx.QueryRow(ctx, selectRun, a.addr, id))
			if errors.Is(err, pgx.ErrNoRows) {
				return errs.E(errs.NotFound, "filter run %s not found", req.GetName())
			}
			if err != nil {
				return fmt.Errorf("read run: %w", err)
			}
			return errs.E(errs.FailedPrecondition, "filter run %s has ended (%s)", req.GetName(), old.State)
		}
		if err != nil {
			return fmt.Errorf("cancel run: %w", err)
		}
		return audit(ctx, tx, a.org, c, "filters.run.cancel", runName(a, id), nil)
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.CancelFilterRunResponse{FilterRun: r.proto(a)}, nil
}

func (s *Server) ListFilterRunEntries(ctx context.Context, req *filtersv1.ListFilterRunEntriesRequest) (*filtersv1.ListFilterRunEntriesResponse, error) {
	a, id, err := parseRun("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	if _, err := scanRun(s.pool.QueryRow(ctx, selectRun, a.addr, id)); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, errs.E(errs.NotFound, "filter run %s not found", req.GetParent())
		}
		return nil, fmt.Errorf("read run: %w", err)
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListFilterRunEntries", req.GetParent())
	if err != nil {
		return nil, err
	}
	after := int64(-1)
	if len(page.After) == 1 {
		if _, err := fmt.Sscan(page.After[0], &after); err != nil {
			return nil, aip.BadPageToken()
		}
	} else if page.After != nil {
		return nil, aip.BadPageToken()
	}
	rows, err := s.pool.Query(ctx, listEntries, id, after, page.Size+1)
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	type entry struct {
		seq int
		e   *filtersv1.FilterRunEntry
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (entry, error) {
		var e entry
		var uid int64
		e.e = &filtersv1.FilterRunEntry{}
		err := row.Scan(&e.seq, &e.e.Folder, &uid, &e.e.MessageId, &e.e.From, &e.e.Subject, &e.e.Actions)
		e.e.Uid = uint32(uid)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("list entries: %w", err)
	}
	entries, next := aip.Trim(page, entries, func(e entry) []string { return []string{fmt.Sprint(e.seq)} })
	resp := &filtersv1.ListFilterRunEntriesResponse{NextPageToken: next}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, e.e)
	}
	return resp, nil
}

type runWorker struct {
	river.WorkerDefaults[runArgs]
	s *Server
}

// Timeout: a slice of work (runSlice) and its last batch.
func (w *runWorker) Timeout(*river.Job[runArgs]) time.Duration { return runSliceBudget }

// NextRetry backs off from 10 s to 10 minutes: a mail store that is down
// is tried again without hammering it.
func (w *runWorker) NextRetry(job *river.Job[runArgs]) time.Time {
	return jobs.Backoff(job.Attempt, 10*time.Second, 10*time.Minute)
}

// errStopped ends a run whose row is no longer running (cancelled).
var errStopped = errors.New("run is no longer running")

// Work goes on with a run from its checkpoint for a slice of time, then
// snoozes to go on in a new job attempt: each attempt stays well within
// the time after which River takes a job as abandoned, and a process
// that stops (a deploy, a crash) leaves a checkpoint the next attempt,
// on any replica, resumes from.
func (w *runWorker) Work(ctx context.Context, job *river.Job[runArgs]) error {
	err := w.s.workRun(ctx, job.Args.Run)
	switch {
	case err == nil, errors.Is(err, errStopped):
		return nil
	case errors.Is(err, runnow.ErrCanceled), ctx.Err() != nil:
		// The slice is over, or the process stops: go on from the
		// checkpoint, without counting an attempt.
		return river.JobSnooze(0)
	case errors.Is(err, runnow.ErrNoFolder):
		// Retrying cannot make the folder.
		if err := w.s.endRun(ctx, job.Args.Run, filtersv1.FilterRunState_FILTER_RUN_STATE_FAILED, err.Error()); err != nil {
			return err
		}
		return nil
	}
	if job.Attempt >= job.MaxAttempts {
		w.s.endRun(context.WithoutCancel(ctx), job.Args.Run, filtersv1.FilterRunState_FILTER_RUN_STATE_FAILED, err.Error())
	}
	return err
}

func (s *Server) endRun(ctx context.Context, id uuid.UUID, state filtersv1.FilterRunState, msg string) error {
	if _, err := s.pool.Exec(ctx, endRun, id, int16(state), msg); err != nil {
		return fmt.Errorf("end run: %w", err)
	}
	return nil
}

func (s *Server) workRun(ctx context.Context, id uuid.UUID) error {
	var state int16
	var snapshot, progress []byte
	var job runnow.Job
	var entries int
	var login string
	err := s.pool.QueryRow(ctx, selectRunJob, id).Scan(&state, &snapshot, &job.Folder, &job.Subfolders, &job.DryRun, &progress, &entries, &login)
	if errors.Is(err, pgx.ErrNoRows) {
		return errStopped // the address was deleted
	}
	if err != nil {
		return fmt.Errorf("read run: %w", err)
	}
	if state != int16(filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING) {
		return errStopped
	}
	if err := json.Unmarshal(snapshot, &job.Rules); err != nil {
		return fmt.Errorf("run %s rules: %w", id, err)
	}
	var from *runnow.Progress
	if progress != nil {
		from = new(runnow.Progress)
		if err := json.Unmarshal(progress, from); err != nil {
			return fmt.Errorf("run %s progress: %w", id, err)
		}
	}
	if s.imap.Addr == "" {
		return fmt.Errorf("no IMAP address (imap-addr) to run %s", id)
	}
	c, err := runnow.Dial(ctx, s.imap.Addr, login, s.imap.Master, imapTimeout)
	if err != nil {
		return err
	}
	defer c.Logout()
	slice, cancel := context.WithTimeout(ctx, runSlice)
	defer cancel()
	_, err = runnow.Run(slice, c, job, from, func(p runnow.Progress, es []runnow.Entry) error {
		return s.saveRun(ctx, id, p, es)
	})
	if err != nil {
		return err
	}
	return s.endRun(ctx, id, filtersv1.FilterRunState_FILTER_RUN_STATE_SUCCEEDED, "")
}

// saveRun stores a run's checkpoint and the batch's entries in one
// transaction, unless the run was cancelled meanwhile (errStopped).
func (s *Server) saveRun(ctx context.Context, id uuid.UUID, p runnow.Progress, es []runnow.Entry) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var state int16
		var n int
		if err := tx.QueryRow(ctx, lockRunState, id).Scan(&state, &n); err != nil {
			return fmt.Errorf("lock run: %w", err)
		}
		if state != int16(filtersv1.FilterRunState_FILTER_RUN_STATE_RUNNING) {
			return errStopped
		}
		truncated := false
		for _, e := range es {
			if n >= MaxRunEntries {
				truncated = true
				break
			}
			if _, err := tx.Exec(ctx, insertEntry, id, n, clip(e.Folder), int64(e.UID), clip(e.MessageID), clip(e.From), clip(e.Subject), e.Actions); err != nil {
				return fmt.Errorf("store entry: %w", err)
			}
			n++
		}
		b, err := json.Marshal(p)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, saveProgress, id, b, n, truncated); err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
		return nil
	})
}

// clip cuts text from the mail to maxEntryText bytes of valid UTF-8.
func clip(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= maxEntryText {
		return s
	}
	s = s[:maxEntryText]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
