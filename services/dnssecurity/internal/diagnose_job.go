package dnssecurity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
)

// diagnoseArgs is the River job diagnosing a mail service: queued when
// mailboxes verifies it, and daily.
type diagnoseArgs struct {
	MailService uuid.UUID `json:"mail_service"`
}

func (diagnoseArgs) Kind() string { return "diagnose" }

func diagnoseInsertOpts() *river.InsertOpts {
	return &river.InsertOpts{MaxAttempts: 5, UniqueOpts: *jobs.Unique()}
}

type diagnoseWorker struct {
	river.WorkerDefaults[diagnoseArgs]
	s *Server
}

func (w *diagnoseWorker) Timeout(*river.Job[diagnoseArgs]) time.Duration {
	return 2 * diagnosticTimeout
}

func (w *diagnoseWorker) Work(ctx context.Context, job *river.Job[diagnoseArgs]) error {
	var org uuid.UUID
	err := w.s.pool.QueryRow(ctx, `SELECT organization_id FROM mail_services WHERE id = $1 AND active`, job.Args.MailService).Scan(&org)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted since
	}
	if err != nil {
		return fmt.Errorf("read mail service %s: %w", job.Args.MailService, err)
	}
	m, err := findMailService(ctx, w.s.pool, org, job.Args.MailService)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = w.s.diagnose(ctx, m)
	return err
}

// dailyBatch caps the diagnostics one hourly run queues: a backlog drains
// over the following hours instead of all at once.
const dailyBatch = 5000

// QueueDailyDiagnostics queues a diagnostic of each active mail service
// whose last one is a day old, oldest first, and reports how many.
func (s *Server) QueueDailyDiagnostics(ctx context.Context) (int, error) {
	var n int
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
SELECT m.id FROM mail_services m LEFT JOIN diagnostics d ON d.mail_service_id = m.id
WHERE m.active AND (d.run_time IS NULL OR d.run_time < now() - interval '1 day')
ORDER BY d.run_time NULLS FIRST LIMIT $1`, dailyBatch)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("find mail services to diagnose: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		params := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			params[i] = river.InsertManyParams{Args: diagnoseArgs{MailService: id}, InsertOpts: diagnoseInsertOpts()}
		}
		if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
			return fmt.Errorf("queue diagnostics: %w", err)
		}
		n = len(ids)
		return nil
	})
	return n, err
}
