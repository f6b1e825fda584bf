package lists

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/lists/internal/post"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/riverqueue/river"
)

// Distribution limits.
const (
	// memberPage is how many members one query reads.
	memberPage = 500
	// sendTimeout bounds one copy's MAIL, RCPT and DATA.
	sendTimeout = 2 * time.Minute
	// distributeTimeout bounds one run of a post's job; a run cut short
	// resumes from its checkpoint.
	distributeTimeout = time.Hour
)

const (
	loadPost = `SELECT list_id, raw, sent_key, done_time IS NOT NULL FROM posts WHERE id = $1`
	// memberPageSQL reads members after the checkpoint, in the order the
	// checkpoint counts them.
	// Members whose bounces disabled delivery are skipped.
	memberPageSQL = `SELECT email, email_key, receive_own_posts FROM members WHERE list_id = $1 AND email_key > $2 AND delivery = 1 ORDER BY email_key LIMIT $3`
	checkpoint    = `UPDATE posts SET sent_key = $2, sent_count = sent_count + $3, failed_count = failed_count + $4 WHERE id = $1`
	postDone      = `UPDATE posts SET done_time = now() WHERE id = $1`
)

// Relay is the SMTP relay copies are sent through.
type Relay struct {
	// Addr is host:port; empty: copies are logged, not sent (development).
	Addr string
	// Username and Password authenticate (AUTH PLAIN) when Username is set.
	Username, Password string
	// Insecure skips STARTTLS: only for a relay on loopback.
	Insecure bool
	// TLS replaces the default TLS settings (a private CA in tests).
	TLS *tls.Config
}

// distributeArgs is the job sending one post to the list's members.
type distributeArgs struct {
	Post uuid.UUID `json:"post"`
}

func (distributeArgs) Kind() string { return "distribute_post" }

type distributeWorker struct {
	river.WorkerDefaults[distributeArgs]
	s *Server
}

func (w *distributeWorker) Timeout(*river.Job[distributeArgs]) time.Duration {
	return distributeTimeout
}

// NextRetry retries soon after a relay failure, backing off up to ten
// minutes: the relay is ours, and members wait for the post.
func (w *distributeWorker) NextRetry(job *river.Job[distributeArgs]) time.Time {
	return jobs.Backoff(job.Attempt, time.Second, 10*time.Minute)
}

// Work sends the post to each member after the checkpoint, in email_key
// order, recording the checkpoint after each copy the relay answered: a
// run cut short resumes after the last member handled, so no member gets
// two copies (but one, when the process dies between the relay's answer
// and the checkpoint's commit) and none is forgotten.
func (w *distributeWorker) Work(ctx context.Context, job *river.Job[distributeArgs]) error {
	s := w.s
	var listID uuid.UUID
	var raw []byte
	var key string // the checkpoint: the last email_key handled
	var done bool
	err := s.pool.QueryRow(ctx, loadPost, job.Args.Post).Scan(&listID, &raw, &key, &done)
	if errors.Is(err, pgx.ErrNoRows) || done {
		return nil // its list was deleted, or it was sent
	}
	if err != nil {
		return fmt.Errorf("post %s: %w", job.Args.Post, err)
	}
	rows, err := s.pool.Query(ctx, listColumns+" WHERE id = $1", listID)
	if err != nil {
		return fmt.Errorf("post %s: list: %w", job.Args.Post, err)
	}
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("post %s: list: %w", job.Args.Post, err)
	}
	// Prepared again with the list's settings of now: the raw post was
	// checked when it came in, so this fails only if the list changed
	// into one post cannot prepare for, which no retry mends.
	p, err := post.Prepare(raw, postList(l))
	if err != nil {
		return river.JobCancel(fmt.Errorf("post %s: %w", job.Args.Post, err))
	}
	log := s.log.With("post", job.Args.Post, "list", l.localPart+"@"+l.domain, "attempt", job.Attempt)
	r := &relayConn{relay: s.relay, log: log}
	defer r.close()
	bounces := l.localPart + "-bounces@" + l.domain
	cp, err := asyncConn(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("post %s: %w", job.Args.Post, err)
	}
	defer releaseAsync(cp)
	var sent, failed int
	for {
		rows, err := s.pool.Query(ctx, memberPageSQL, l.id, key, memberPage)
		if err != nil {
			return fmt.Errorf("post %s: members: %w", job.Args.Post, err)
		}
		type recipient struct {
			email, key string
			ownPosts   bool
		}
		var page []recipient
		var rc recipient
		_, err = pgx.ForEachRow(rows, []any{&rc.email, &rc.key, &rc.ownPosts}, func() error {
			page = append(page, rc)
			return nil
		})
		if err != nil {
			return fmt.Errorf("post %s: members: %w", job.Args.Post, err)
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			key = m.key
			if len(post.Recipients([]string{m.email}, p.Author, m.ownPosts, p.To, p.Cc)) == 0 {
				continue // the author (unless they want their own), or named in To or Cc
			}
			msg, err := p.For(m.email, s.oneClickURL(ctx, l, m.key))
			if err == nil {
				err = r.send(ctx, post.VERP(bounces, m.email), m.email, msg)
			}
			var se *smtp.SMTPError
			ok := 0
			switch {
			case err == nil:
				ok = 1
				sent++
			case errors.As(err, &se) && se.Code >= 500:
				// Refused for good: a bounce without the round trip,
				// counted against the member as one.
				log.Warn("copy refused", "member", m.email, "error", err)
				failed++
				if _, err := s.recordBounce(ctx, l.id, m.email, relayRefusal(se), time.Now()); err != nil {
					return fmt.Errorf("post %s: bounce of %s: %w", job.Args.Post, m.email, err)
				}
			default:
				return fmt.Errorf("post %s: send to %s: %w", job.Args.Post, m.email, err)
			}
			if _, err := cp.Exec(ctx, checkpoint, job.Args.Post, key, ok, 1-ok); err != nil {
				return fmt.Errorf("post %s: checkpoint: %w", job.Args.Post, err)
			}
		}
	}
	if _, err := s.pool.Exec(ctx, postDone, job.Args.Post); err != nil {
		return fmt.Errorf("post %s: done: %w", job.Args.Post, err)
	}
	log.Info("post distributed", "sent", sent, "refused", failed)
	r.quit()
	return nil
}

// asyncConn returns a connection of the pool whose commits do not wait
// for their WAL flush (synchronous_commit off), for the checkpoints: a
// copy then costs its SMTP transaction and a round trip, not a disk flush
// as well (one flush per copy made the fan-out 3 to 8 times slower, see
// docs/benchmarks.md). What it risks is narrow: a crash of PostgreSQL
// itself (not of this process, nor a deploy) loses the checkpoints of
// the last few hundred milliseconds, the WAL writer's delay, and those
// members get a second copy. The post's done mark and everything else
// still commit durably, on other connections.
func asyncConn(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("checkpoint connection: %w", err)
	}
	if _, err := c.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		c.Release()
		return nil, fmt.Errorf("checkpoint connection: %w", err)
	}
	return c, nil
}

// releaseAsync gives c back to the pool as it found it; a connection
// that cannot be reset is closed, so that no other work commits
// asynchronously by mistake.
func releaseAsync(c *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Exec(ctx, "RESET synchronous_commit"); err != nil {
		c.Conn().Close(ctx)
	}
	c.Release()
}

// relayConn is one connection to the relay, opened at the first copy and
// reused for the next: one MAIL, RCPT and DATA per copy, since each is
// personalized (its VERP return path, its footer).
type relayConn struct {
	relay Relay
	log   *slog.Logger
	conn  net.Conn
	c     *smtp.Client
}

func (r *relayConn) send(ctx context.Context, from, to string, msg []byte) error {
	if r.relay.Addr == "" {
		r.log.Info("copy not sent: no smtp-relay", "from", from, "to", to, "bytes", len(msg))
		return nil
	}
	if r.c == nil {
		if err := r.dial(ctx); err != nil {
			return err
		}
	}
	r.conn.SetDeadline(time.Now().Add(sendTimeout))
	err := r.transaction(from, to, msg)
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		// The relay answered: the connection is still good for the
		// next copy once the transaction is reset.
		if rerr := r.c.Reset(); rerr != nil {
			r.close()
		}
		return err
	}
	if err != nil {
		r.close()
	}
	return err
}

func (r *relayConn) transaction(from, to string, msg []byte) error {
	if err := r.c.Mail(from, nil); err != nil {
		return err
	}
	if err := r.c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := r.c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (r *relayConn) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.relay.Addr)
	if err != nil {
		return fmt.Errorf("smtp relay %s: %w", r.relay.Addr, err)
	}
	conn.SetDeadline(time.Now().Add(sendTimeout))
	var c *smtp.Client
	if r.relay.Insecure {
		c = smtp.NewClient(conn)
	} else {
		cfg := r.relay.TLS
		if cfg == nil {
			host, _, _ := net.SplitHostPort(r.relay.Addr)
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if c, err = smtp.NewClientStartTLS(conn, cfg); err != nil {
			conn.Close()
			return fmt.Errorf("smtp relay %s: starttls: %w", r.relay.Addr, err)
		}
	}
	if r.relay.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", r.relay.Username, r.relay.Password)); err != nil {
			c.Close()
			return fmt.Errorf("smtp relay %s: auth as %s: %w", r.relay.Addr, r.relay.Username, err)
		}
	}
	r.conn, r.c = conn, c
	return nil
}

func (r *relayConn) quit() {
	if r.c != nil {
		r.c.Quit()
	}
	r.close()
}

func (r *relayConn) close() {
	if r.c != nil {
		r.c.Close()
	}
	r.c, r.conn = nil, nil
}
