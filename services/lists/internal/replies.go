package lists

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/riverqueue/river"
)

// maxRepliesPerHour caps the answers the robots mail one address for
// one list in an hour: confirmations, results, welcomes asked by mail or
// form. Enough for a person who retries, too few for the robots to be
// used to flood someone whose address a stranger types.
const maxRepliesPerHour = 10

// lang is the language l writes in.
func (l *list) lang() letters.Lang {
	switch listsv1.Language(l.language) {
	case listsv1.Language_LANGUAGE_FR:
		return letters.FR
	case listsv1.Language_LANGUAGE_DE:
		return letters.DE
	case listsv1.Language_LANGUAGE_IT:
		return letters.IT
	case listsv1.Language_LANGUAGE_ES:
		return letters.ES
	}
	return letters.EN
}

// address is l's post address; robot one of its robots' ("-request",
// "-confirm+TOKEN", ...).
func (l *list) address() string            { return l.localPart + "@" + l.domain }
func (l *list) robot(suffix string) string { return l.localPart + suffix + "@" + l.domain }

// moderatorEmails are the addresses of l's moderators: those given by
// email, and the login emails of those named as users (as accounts last
// answered; a user whose login was released has none until a manager
// saves the moderators again), each address once.
func (l *list) moderatorEmails() []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range l.moderators {
		for _, a := range []string{m.Email, m.UserEmail} {
			if a != "" && !seen[addressKey(a)] {
				seen[addressKey(a)] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// letter is one letter to queue: k in the list's language, from the
// robot From (a suffix: "-owner", "-request", "-confirm+TOKEN").
type letter struct {
	to        string
	from      string
	inReplyTo string
	kind      letters.Kind
	data      letters.Data
}

// queueLetter renders lt for l and queues its sending, in tx: it goes
// when tx commits, never otherwise. Robot addresses are never written to.
// The letter is rendered now, from what tx sees, so that it says what
// was done even if the list changes before the job runs.
func (s *Server) queueLetter(ctx context.Context, tx pgx.Tx, l *list, lt letter) error {
	args, ok, err := renderLetter(l, lt)
	if err != nil || !ok {
		return err
	}
	if s.jobs == nil {
		return fmt.Errorf("queue %s: no jobs client", lt.kind.Name)
	}
	if _, err := s.jobs.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("queue %s: %w", lt.kind.Name, err)
	}
	return nil
}

// renderLetter is lt for l as the job that sends it; false when lt is to
// a robot address, which is never written to.
func renderLetter(l *list, lt letter) (letterArgs, bool, error) {
	if commands.RobotSender(lt.to) {
		return letterArgs{}, false, nil
	}
	msg, err := letters.Write(letters.Header{
		From: gomail.Address{Name: l.displayName, Address: l.robot(lt.from)}, To: lt.to,
		InReplyTo: lt.inReplyTo, Domain: l.domain, Date: time.Now(),
	}, lt.kind, l.lang(), lt.data)
	if err != nil {
		return letterArgs{}, false, err
	}
	return letterArgs{List: l.id, To: lt.to, Letter: lt.kind.Name, Msg: msg}, true, nil
}

// allowReply counts one answer to addr for l and reports whether it is
// within maxRepliesPerHour. The count is in PostgreSQL so that every
// replica agrees; it is kept by the SHA-256 of the address, not the
// address.
func allowReply(ctx context.Context, tx pgx.Tx, l *list, addr string) (bool, error) {
	sum := sha256.Sum256([]byte(emailKey(addr)))
	var n int
	err := tx.QueryRow(ctx, `INSERT INTO reply_counts (list_id, sender, hour, count) VALUES ($1, $2, date_trunc('hour', now()), 1)
ON CONFLICT (list_id, sender, hour) DO UPDATE SET count = reply_counts.count + 1 RETURNING count`, l.id, sum[:]).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count replies: %w", err)
	}
	return n <= maxRepliesPerHour, nil
}

// letterArgs is the job sending one rendered letter to To.
type letterArgs struct {
	List   uuid.UUID `json:"list"`
	To     string    `json:"to"`
	Letter string    `json:"letter"`
	Msg    []byte    `json:"msg"`
}

func (letterArgs) Kind() string { return "list_letter" }

type letterWorker struct {
	river.WorkerDefaults[letterArgs]
	s *Server
}

// NextRetry: as a post's copies, retried soon after a relay failure.
func (w *letterWorker) NextRetry(job *river.Job[letterArgs]) time.Time {
	return jobs.Backoff(job.Attempt, time.Second, 10*time.Minute)
}

func (w *letterWorker) Work(ctx context.Context, job *river.Job[letterArgs]) error {
	s, a := w.s, job.Args
	rows, err := s.pool.Query(ctx, listColumns+" WHERE id = $1", a.List)
	if err != nil {
		return fmt.Errorf("letter: list: %w", err)
	}
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the list was deleted: it says nothing any more
	}
	if err != nil {
		return fmt.Errorf("letter: list: %w", err)
	}
	return s.sendLetter(ctx, l, a.To, a.Letter, a.Msg)
}

// sendLetter sends msg to to through the relay, from l's -bounces
// address as the copies are: a bounce of it reaches the bounce robot,
// which answers nobody. A permanent refusal ends it (logged); a
// temporary one is an error the job retries.
func (s *Server) sendLetter(ctx context.Context, l *list, to, kind string, msg []byte) error {
	log := s.log.With("list", l.address(), "to", to, "letter", kind)
	r := &relayConn{relay: s.relay, log: log}
	defer r.close()
	err := r.send(ctx, l.robot("-bounces"), to, msg)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		log.Warn("letter refused", "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("letter %s to %s: %w", kind, to, err)
	}
	r.quit()
	return nil
}
