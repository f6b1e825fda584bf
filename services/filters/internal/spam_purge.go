package filters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/filters/internal/runnow"
	"github.com/riverqueue/river"
)

// SpamDays is how long mail stays in an address's spam folder.
const SpamDays = 30

// SpamSweepInterval is how often every address's spam folder is purged:
// Dovecot's autoexpunge only runs when a session of the address ends, so
// an address nobody logs in to would keep its spam for ever.
const SpamSweepInterval = 24 * time.Hour

const selectSpamAddresses = `
SELECT a.id FROM addresses a JOIN settings s ON s.address_id = a.id
WHERE s.anti_spam AND a.id > $1 ORDER BY a.id LIMIT $2`

// spamPurgeArgs is the job that purges one address's spam folder.
type spamPurgeArgs struct {
	Address uuid.UUID `json:"address"`
}

func (spamPurgeArgs) Kind() string { return "spam_purge" }

// QueueSpamPurges queues a purge of the spam folder of every address whose
// anti-spam filter is on (periodic work), one job per address so that one
// mailbox's trouble is retried alone, and says how many. Unique per
// address and day: a sweep run twice in a day queues each once.
func (s *Server) QueueSpamPurges(ctx context.Context) (int, error) {
	if s.imap.Addr == "" {
		return 0, nil // no mail store to reach; autoexpunge still works
	}
	opts := &river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: SpamSweepInterval}}
	n := 0
	for after := uuid.Nil; ; {
		rows, err := s.pool.Query(ctx, selectSpamAddresses, after, 1000)
		if err != nil {
			return n, fmt.Errorf("read addresses with spam on: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return n, fmt.Errorf("read addresses with spam on: %w", err)
		}
		if len(ids) == 0 {
			return n, nil
		}
		params := make([]river.InsertManyParams, len(ids))
		for i, id := range ids {
			params[i] = river.InsertManyParams{Args: spamPurgeArgs{Address: id}, InsertOpts: opts}
		}
		if _, err := s.jobs.InsertMany(ctx, params); err != nil {
			return n, fmt.Errorf("queue spam purges: %w", err)
		}
		n += len(ids)
		after = ids[len(ids)-1]
	}
}

type spamPurgeWorker struct {
	river.WorkerDefaults[spamPurgeArgs]
	s *Server
}

func (w *spamPurgeWorker) Work(ctx context.Context, job *river.Job[spamPurgeArgs]) error {
	_, err := w.s.PurgeSpam(ctx, job.Args.Address, time.Now().AddDate(0, 0, -SpamDays))
	return err
}

// PurgeSpamOf is PurgeSpam of the address named name.
func (s *Server) PurgeSpamOf(ctx context.Context, name string, before time.Time) (int, error) {
	a, err := parseAddress("address", name)
	if err != nil {
		return 0, err
	}
	return s.PurgeSpam(ctx, a.addr, before)
}

// PurgeSpam removes from address a's spam folder the mail saved there
// before the day of before, over IMAP as the address, and says how many.
func (s *Server) PurgeSpam(ctx context.Context, a uuid.UUID, before time.Time) (int, error) {
	var login, folder string
	var on bool
	err := s.pool.QueryRow(ctx, `SELECT a.login, s.spam_folder, s.anti_spam FROM addresses a JOIN settings s ON s.address_id = a.id WHERE a.id = $1`, a).Scan(&login, &folder, &on)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !on) {
		return 0, nil // deleted, or its filter turned off since
	}
	if err != nil {
		return 0, fmt.Errorf("read address: %w", err)
	}
	if s.imap.Addr == "" {
		return 0, fmt.Errorf("no IMAP address (imap-addr) to purge the spam of %s", login)
	}
	c, err := runnow.Dial(ctx, s.imap.Addr, login, s.imap.Master, imapTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Logout()
	n, err := runnow.Purge(c, folder, before)
	if err != nil {
		return 0, fmt.Errorf("purge the spam of %s: %w", login, err)
	}
	return n, nil
}
