package imports

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/imports/internal/imapcopy"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
)

// copyArgs is the River job copying one import job.
type copyArgs struct {
	Job uuid.UUID `json:"job"`
}

func (copyArgs) Kind() string { return "import_copy" }

// copyWorker runs an import in slices: each run copies for at most
// Limits.Slice, then snoozes so that the next run resumes from the
// checkpoint. A run stays short so that River's rescue of a dead
// process's job (after the worker's Timeout) comes soon.
type copyWorker struct {
	river.WorkerDefaults[copyArgs]
	s *Server
}

// Timeout leaves a slice time to finish its batch.
func (w *copyWorker) Timeout(*river.Job[copyArgs]) time.Duration {
	return w.s.limits.Slice + 3*time.Minute
}

// NextRetry waits longer after each failed run, from Limits.Retry to 30 min.
func (w *copyWorker) NextRetry(job *river.Job[copyArgs]) time.Time {
	return jobs.Backoff(job.Attempt, w.s.limits.Retry, 30*time.Minute)
}

// errStopped: the job was cancelled (or ended) while it ran.
var errStopped = errors.New("import job no longer running")

// waitTurn is how long a job whose source server is busy waits.
const waitTurn = 5 * time.Second

const (
	// lockHost makes the jobs of one source server take turns at its limit.
	lockHost  = `SELECT pg_advisory_xact_lock(hashtextextended('imports.hosts/' || $1, 0))`
	busyHosts = `
SELECT h FROM jobs, unnest(hosts) h
WHERE state = 'running' AND id <> $1 AND h = ANY($2)
GROUP BY h HAVING count(*) >= $3 LIMIT 1`
	startJob = `
UPDATE jobs SET state = 'running', start_time = coalesce(start_time, now()), update_time = now()
WHERE id = $1 AND state IN ('pending', 'running')`
	failJob = `
UPDATE jobs SET state = 'failed', error = $2, end_time = now(), update_time = now(), passwords = NULL
WHERE id = $1 AND state IN ('pending', 'running')`
	succeedJob = `
UPDATE jobs SET state = 'succeeded', end_time = now(), update_time = now(), passwords = NULL
WHERE id = $1 AND state IN ('pending', 'running')`
)

// Work copies for one slice.
func (w *copyWorker) Work(ctx context.Context, rj *river.Job[copyArgs]) error {
	s := w.s
	rows, _ := s.pool.Query(ctx, jobColumns+` WHERE id = $1`, rj.Args.Job)
	j, err := pgx.CollectExactlyOneRow(rows, scanJob)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted with its organization
	}
	if err != nil {
		return fmt.Errorf("read import job: %w", err)
	}
	if ended(j.state) {
		return nil
	}
	var sealed [][]byte
	if err := s.pool.QueryRow(ctx, `SELECT passwords FROM jobs WHERE id = $1`, j.id).Scan(&sealed); err != nil {
		return fmt.Errorf("read passwords: %w", err)
	}
	turn, err := s.takeTurn(ctx, j)
	if err != nil {
		return err
	}
	if !turn {
		return river.JobSnooze(waitTurn)
	}
	cj := imapcopy.Job{Destination: s.hosted.destination(j.destinationLogin), Checkpoints: &checkpoints{s: s, job: j.id}}
	for i, src := range j.sources {
		if i >= len(sealed) {
			return s.fail(ctx, j.id, "the source passwords are missing")
		}
		pw, err := s.box.Open(sealed[i], passwordAD(j.id, i))
		if err != nil {
			// A key removed from secret-keys: nothing a retry mends.
			s.log.ErrorContext(ctx, "import source password cannot be opened", "job", j.id, "error", err)
			return s.fail(ctx, j.id, "the source password could not be read: start the import again")
		}
		login := ""
		if src.HostedEmail != "" {
			if err := s.pool.QueryRow(ctx, `SELECT login FROM addresses WHERE lower(email) = $1`, src.HostedEmail).Scan(&login); err != nil {
				login = src.HostedEmail
			}
		}
		cj.Sources = append(cj.Sources, s.account(src, login, string(pw)))
	}
	sctx, cancel := context.WithTimeout(ctx, s.limits.Slice)
	defer cancel()
	_, err = s.copier.Run(sctx, cj)
	switch {
	case err == nil:
		return s.end(ctx, j.id, succeedJob)
	case errors.Is(err, errStopped):
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // the process stops: River runs it again
	case sctx.Err() != nil:
		return river.JobSnooze(0) // the slice is over: resume at once
	case errors.Is(err, imapcopy.ErrLogin), errors.Is(err, imapcopy.ErrTLS), errors.Is(err, imapcopy.ErrPrivate):
		return s.fail(ctx, j.id, sourceError(err))
	case rj.Attempt >= rj.MaxAttempts:
		s.log.WarnContext(ctx, "import job failed", "job", j.id, "attempts", rj.Attempt, "error", err)
		return s.fail(ctx, j.id, sourceError(err))
	}
	s.log.WarnContext(ctx, "import run failed, retried", "job", j.id, "attempt", rj.Attempt, "error", err)
	return err
}

// sourceError is what a job's error says of err.
func sourceError(err error) string {
	switch {
	case errors.Is(err, imapcopy.ErrLogin):
		return "a server refused the login: its password may have changed since the import started"
	case errors.Is(err, imapcopy.ErrTLS):
		return "a server's certificate was refused: " + err.Error()
	case errors.Is(err, imapcopy.ErrUnreachable):
		return "a server stopped answering: " + err.Error()
	case errors.Is(err, imapcopy.ErrPrivate):
		return "a server's name now points to a private or local network: only public servers can be imported from"
	}
	return "the copy stopped: " + err.Error()
}

// takeTurn marks j running if none of its source servers has its limit
// of jobs running already.
func (s *Server) takeTurn(ctx context.Context, j *job) (bool, error) {
	hosts := make([]string, 0, len(j.sources))
	for _, src := range j.sources {
		hosts = append(hosts, src.server())
	}
	slices.Sort(hosts)
	hosts = slices.Compact(hosts)
	turn := false
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		for _, h := range hosts {
			if _, err := tx.Exec(ctx, lockHost, h); err != nil {
				return fmt.Errorf("lock source server: %w", err)
			}
		}
		var busy string
		err := tx.QueryRow(ctx, busyHosts, j.id, hosts, s.limits.PerServer).Scan(&busy)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("count jobs per server: %w", err)
		}
		tag, err := tx.Exec(ctx, startJob, j.id)
		turn = tag.RowsAffected() == 1
		return err
	})
	return turn, err
}

// fail ends job id as failed with reason.
func (s *Server) fail(ctx context.Context, id uuid.UUID, reason string) error {
	return s.endWith(ctx, id, failJob, reason)
}

// end ends job id with query (succeedJob).
func (s *Server) end(ctx context.Context, id uuid.UUID, query string) error {
	return s.endWith(ctx, id, query)
}

func (s *Server) endWith(ctx context.Context, id uuid.UUID, query string, args ...any) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var org uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT organization_id FROM jobs WHERE id = $1`, id).Scan(&org); err != nil {
			return fmt.Errorf("read job: %w", err)
		}
		tag, err := tx.Exec(ctx, query, append([]any{id}, args...)...)
		if err != nil {
			return fmt.Errorf("end import job: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // cancelled meanwhile
		}
		return s.ended(ctx, tx, org, id, "")
	})
}

// checkpoints is imapcopy.Checkpoints over the jobs and folders tables.
type checkpoints struct {
	s   *Server
	job uuid.UUID
}

// Load returns the folders done so far and the progress.
func (c *checkpoints) Load(ctx context.Context) (imapcopy.State, error) {
	st := imapcopy.State{Folders: map[imapcopy.FolderKey]imapcopy.FolderState{}}
	p := &st.Progress
	err := c.s.pool.QueryRow(ctx, `
SELECT folders_total, folders_done, messages_total, messages_copied, messages_skipped, messages_failed, bytes
FROM jobs WHERE id = $1`, c.job).Scan(&p.FoldersTotal, &p.FoldersDone, &p.MessagesTotal, &p.MessagesCopied, &p.MessagesSkipped, &p.MessagesFailed, &p.Bytes)
	if err != nil {
		return st, fmt.Errorf("load progress: %w", err)
	}
	rows, _ := c.s.pool.Query(ctx, `SELECT source, folder, uid_validity, last_uid, done FROM folders WHERE job_id = $1`, c.job)
	var k imapcopy.FolderKey
	var v, last int64
	var done bool
	_, err = pgx.ForEachRow(rows, []any{&k.Source, &k.Folder, &v, &last, &done}, func() error {
		st.Folders[k] = imapcopy.FolderState{UIDValidity: uint32(v), LastUID: uint32(last), Done: done}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("load folders: %w", err)
	}
	return st, nil
}

const (
	saveProgress = `
UPDATE jobs SET folders_total = $2, folders_done = $3, messages_total = $4, messages_copied = $5,
       messages_skipped = $6, messages_failed = $7, bytes = $8, update_time = now()
WHERE id = $1 AND state = 'running'`
	saveFolder = `
INSERT INTO folders (job_id, source, folder, uid_validity, last_uid) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (job_id, source, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid`
	// saveFailure keeps the first maxFailures.
	saveFailure = `
INSERT INTO failures (job_id, seq, source, folder, uid, subject, reason)
SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5, $6 FROM failures WHERE job_id = $1
HAVING count(*) < $7`
)

// Save records a folder's progress, the job's, and the new failures in
// one transaction. A job no longer running (cancelled) refuses: the copy
// stops there.
func (c *checkpoints) Save(ctx context.Context, source int, folder string, uidValidity, lastUID uint32, p imapcopy.Progress, failed []imapcopy.Failure) error {
	return pg.InTx(ctx, c.s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, saveProgress, c.job, p.FoldersTotal, p.FoldersDone, p.MessagesTotal, p.MessagesCopied, p.MessagesSkipped, p.MessagesFailed, p.Bytes)
		if err != nil {
			return fmt.Errorf("save progress: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errStopped
		}
		// A name PostgreSQL cannot hold (a source server may list
		// "&AAA-", NUL in modified UTF-7) keeps no checkpoint: each run
		// reads that folder again, and what it copied is skipped as
		// duplicates, rather than the save failing the job.
		if folder != "" && storable(folder) {
			if _, err := tx.Exec(ctx, saveFolder, c.job, source, folder, int64(uidValidity), int64(lastUID)); err != nil {
				return fmt.Errorf("save folder: %w", err)
			}
		}
		for _, f := range failed {
			if _, err := tx.Exec(ctx, saveFailure, c.job, f.Source, cut(f.Folder, 1000), int64(f.UID), cut(f.Subject, 200), cut(f.Reason, 500), maxFailures); err != nil {
				return fmt.Errorf("save failure: %w", err)
			}
		}
		return nil
	})
}

// storable reports whether PostgreSQL takes s as text: valid UTF-8
// without NUL.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// cut shortens s, text a source server chose, to at most n bytes, on a
// rune boundary, as text PostgreSQL takes (valid UTF-8, no NUL) and
// screens and the confirmation email show as it is: other control
// characters and bidi controls (which would make the text read in
// another order than it is) become U+FFFD.
func cut(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 {
			return '\uFFFD'
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
