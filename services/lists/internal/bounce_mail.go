package lists

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/lists/internal/bounces"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/post"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/riverqueue/river"
)

// maxBounceRecipients caps the members one bounce without VERP may count
// against: a DSN may name several recipients, never a list's worth.
const maxBounceRecipients = 10

// receiveBounce takes raw, mail to l's bounce address rcpt
// (-bounces+member=domain@ when VERP names the member, or the bare
// -bounces@): its permanent failures count against the member, its
// temporary ones are ignored. Whatever it is, it is accepted and never
// answered (an answer to a bounce is one more bounce); only a database
// failure answers 451, so that the MTA tries again and nothing is lost.
func (s *Server) receiveBounce(ctx context.Context, l *list, rcpt string, raw []byte) error {
	log := s.log.With("list", l.localPart+"@"+l.domain, "rcpt", rcpt, "bytes", len(raw))
	fs, err := bounces.Parse(raw)
	if err != nil {
		log.Info("bounces: unreadable mail dropped", "error", err)
		return nil
	}
	if len(fs) == 0 {
		log.Info("bounces: not a bounce, dropped")
		return nil
	}
	var perm []bounces.Failure
	for _, f := range fs {
		if f.Permanent {
			perm = append(perm, f)
		}
	}
	if len(perm) == 0 {
		log.Info("bounces: temporary failure ignored", "status", fs[0].Status)
		return nil
	}
	// The VERP address names the member the copy was sent to, whatever
	// the report says of forwarded addresses; the report's recipients
	// count only for the bare -bounces address.
	type target struct {
		addr string
		f    bounces.Failure
	}
	var ts []target
	if member, ok := post.UnVERP(rcpt); ok {
		f := perm[0]
		for _, p := range perm {
			if addressKey(p.Recipient) == addressKey(member) {
				f = p
			}
		}
		ts = append(ts, target{member, f})
	} else {
		for _, f := range perm[:min(len(perm), maxBounceRecipients)] {
			ts = append(ts, target{f.Recipient, f})
		}
	}
	now := time.Now()
	for _, t := range ts {
		diag := t.f.Diagnostic
		if diag == "" {
			diag = t.f.Status
		}
		found, err := s.recordBounce(ctx, l.id, t.addr, bounceReport{status: t.f.Status, diagnostic: diag}, now)
		if err != nil {
			log.Error("bounces: record", "error", err)
			return errTemporary
		}
		log.Info("bounces: permanent failure", "member", t.addr, "status", t.f.Status, "isMember", found)
	}
	return nil
}

// bounceMailArgs is the job mailing one person about bounces: a member
// their warning number Warning of Warnings (delivery is disabled; they
// are removed at Remove unless a moderator enables it again), or, when
// Removed is set, a moderator that this address was removed. What the
// mail says travels in the args: a removed member's address is nowhere
// else once erased.
type bounceMailArgs struct {
	List       uuid.UUID `json:"list"`
	To         string    `json:"to"`
	Warning    int32     `json:"warning,omitempty"`
	Warnings   int32     `json:"warnings,omitempty"`
	Remove     time.Time `json:"remove,omitempty"`
	Removed    string    `json:"removed,omitempty"`
	Score      int32     `json:"score,omitempty"`
	Diagnostic string    `json:"diagnostic,omitempty"`
}

func (bounceMailArgs) Kind() string { return "bounce_mail" }

// queueBounceMail queues a in tx; robot addresses are never written to.
func (s *Server) queueBounceMail(ctx context.Context, tx pgx.Tx, a bounceMailArgs) error {
	if commands.RobotSender(a.To) {
		return nil
	}
	if s.jobs == nil {
		return fmt.Errorf("queue bounce mail: no jobs client")
	}
	if _, err := s.jobs.InsertTx(ctx, tx, a, nil); err != nil {
		return fmt.Errorf("queue bounce mail: %w", err)
	}
	return nil
}

type bounceMailWorker struct {
	river.WorkerDefaults[bounceMailArgs]
	s *Server
}

// NextRetry: as a post's copies, retried soon after a relay failure.
func (w *bounceMailWorker) NextRetry(job *river.Job[bounceMailArgs]) time.Time {
	return jobs.Backoff(job.Attempt, time.Second, 10*time.Minute)
}

func (w *bounceMailWorker) Work(ctx context.Context, job *river.Job[bounceMailArgs]) error {
	s, a := w.s, job.Args
	rows, err := s.pool.Query(ctx, listColumns+" WHERE id = $1", a.List)
	if err != nil {
		return fmt.Errorf("bounce mail: list: %w", err)
	}
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // the list was deleted
	}
	if err != nil {
		return fmt.Errorf("bounce mail: list: %w", err)
	}
	msg, err := bounceMessage(l, a, time.Now())
	if err != nil {
		return river.JobCancel(fmt.Errorf("bounce mail to %s: %w", a.To, err))
	}
	log := s.log.With("list", l.localPart+"@"+l.domain, "to", a.To, "warning", a.Warning)
	r := &relayConn{relay: s.relay, log: log}
	defer r.close()
	// From the bare -bounces address: a warning to a broken mailbox
	// bounces, and that bounce must not start anything.
	err = r.send(ctx, l.localPart+"-bounces@"+l.domain, a.To, msg)
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		log.Warn("bounce mail refused", "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("bounce mail to %s: %w", a.To, err)
	}
	r.quit()
	return nil
}

// bounceMessage writes a as a mail from l's -owner address (a reply
// reaches the moderators), marked automatic (RFC 3834).
func bounceMessage(l *list, a bounceMailArgs, now time.Time) ([]byte, error) {
	addr := l.localPart + "@" + l.domain
	owner := l.localPart + "-owner@" + l.domain
	var h gomail.Header
	h.SetDate(now)
	h.SetAddressList("From", []*gomail.Address{{Name: l.displayName, Address: owner}})
	h.SetAddressList("To", []*gomail.Address{{Address: a.To}})
	h.SetMessageID(uuid.Must(uuid.NewV7()).String() + "@" + l.domain)
	h.Set("Auto-Submitted", "auto-generated")
	h.Set("X-Auto-Response-Suppress", "All")
	h.SetContentType("text/plain", map[string]string{"charset": "utf-8"})
	h.Set("Content-Transfer-Encoding", "quoted-printable")
	subject, body := bounceText(a, addr, owner)
	h.SetSubject(subject)
	var buf bytes.Buffer
	w, err := gomail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bounceText is the subject and body of a, about list addr.
func bounceText(a bounceMailArgs, addr, owner string) (subject, body string) {
	why := ""
	if a.Diagnostic != "" {
		why = fmt.Sprintf("\nThe last error reported: %s\n", a.Diagnostic)
	}
	if a.Removed != "" {
		return fmt.Sprintf("%s was removed from %s after bounces", a.Removed, addr),
			fmt.Sprintf("Mail to %s bounced on %d days; delivery was disabled and the warnings went unanswered, so the address was removed from %s.\n%s",
				a.Removed, a.Score, addr, why)
	}
	return fmt.Sprintf("Your delivery from %s is disabled (warning %d of %d)", addr, a.Warning, a.Warnings),
		fmt.Sprintf("Mail from %s to you bounced too often, so you no longer receive its posts.\n%s\nIf your mailbox works again, reply to this mail (it reaches the list's moderators, %s) and ask them to enable your delivery. Unless they do, you are removed from the list on %s.\n",
			addr, why, owner, a.Remove.UTC().Format("Monday 2 January 2006"))
}
