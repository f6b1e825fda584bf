package accounts

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/notify"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// languages are those notices are written in; the first is the fallback.
var languages = []string{"en", "fr", "de", "it", "es"}

// templates holds one file per notice and language, "<notice>.<lang>.txt":
// a "Subject: " line (email only), a blank line, then the body.
//
//go:embed templates/*.txt
var templateFiles embed.FS

var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(templateFiles, "templates/*.txt"))

// roleNames are the roles as each language says them.
var roleNames = map[string]map[access.Role]string{
	"en": {access.Owner: "owner", access.Admin: "administrator", access.Member: "member"},
	"fr": {access.Owner: "propriétaire", access.Admin: "administrateur", access.Member: "membre"},
	"de": {access.Owner: "Inhaber", access.Admin: "Administrator", access.Member: "Mitglied"},
	"it": {access.Owner: "proprietario", access.Admin: "amministratore", access.Member: "membro"},
	"es": {access.Owner: "propietario", access.Admin: "administrador", access.Member: "miembro"},
}

// Notice is a message to a person, waiting for delivery or delivered.
type Notice struct {
	ID             uuid.UUID
	OrganizationID *uuid.UUID
	Channel        string // "email" or "sms"
	Recipient      string
	Language       string
	Template       string
	Params         map[string]string
	Attempts       int
	LastError      string
	CreateTime     time.Time
}

// render returns the notice's subject and body in its language, or in
// English when there is no translation.
func render(name, lang string, params map[string]string) (subject, body string, err error) {
	t := templates.Lookup(name + "." + lang + ".txt")
	if t == nil {
		t = templates.Lookup(name + "." + languages[0] + ".txt")
	}
	if t == nil {
		return "", "", fmt.Errorf("no template %q", name)
	}
	plain := make(map[string]string, len(params))
	for k, v := range params {
		plain[k] = plainText(v)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, plain); err != nil {
		return "", "", fmt.Errorf("render %s.%s: %w", name, lang, err)
	}
	text := b.String()
	if rest, ok := strings.CutPrefix(text, "Subject: "); ok {
		subject, text, _ = strings.Cut(rest, "\n")
		text = strings.TrimPrefix(text, "\n")
	}
	return strings.TrimSpace(subject), text, nil
}

// plainText returns s fit to go into a notice as one line of text: line
// breaks and other control characters become spaces, and the invisible
// marks that reorder text (bidi controls) are dropped. Names come from
// users: "Acme\nBcc: ..." or "Acme\u202Emoc.evil" must not shape the message.
func plainText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\u061c', r == '\u200e', r == '\u200f', '\u202a' <= r && r <= '\u202e', '\u2066' <= r && r <= '\u2069':
			return -1
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return ' '
		}
		return r
	}, s)
}

// supportedLanguage returns lang if notices are written in it, else "en".
func supportedLanguage(lang string) string {
	for _, l := range languages {
		if l == lang {
			return l
		}
	}
	return languages[0]
}

const (
	insertNotice = `
INSERT INTO notices (id, organization_id, channel, recipient, language, template, params)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

	// selectPendingNotice finds a notice its job is to deliver; one sent,
	// dead or retried by another job is not.
	selectPendingNotice = `
SELECT id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time
FROM notices WHERE id = $1 AND state = 'pending'`

	// markSent also erases the params, which may hold a secret link.
	markSent = `UPDATE notices SET state = 'sent', sent_time = now(), attempts = attempts + 1, params = '{}' WHERE id = $1`

	markFailed = `
UPDATE notices SET attempts = attempts + 1, last_error = $2, state = CASE WHEN $3 THEN 'dead' ELSE 'pending' END
WHERE id = $1`

	selectDeadNotices = `
SELECT id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time
FROM notices WHERE organization_id = $1 AND state = 'dead'
ORDER BY create_time DESC`

	retryNotice = `
UPDATE notices SET state = 'pending', attempts = 0
WHERE id = $1 AND organization_id = $2 AND state = 'dead'
RETURNING id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time`
)

// noticeArgs is the job delivering a notice. The notice itself stays in
// the notices table, where ListDeadNotices finds an organization's dead
// ones and a sent one has its params erased.
type noticeArgs struct {
	ID uuid.UUID `json:"id"`
}

func (noticeArgs) Kind() string { return "notice" }

// Notices queues notices for delivery.
type Notices struct {
	// Jobs inserts the delivery jobs; it need not work them.
	Jobs *jobs.Client
	// Attempts is how many times a notice is tried before it is dead.
	Attempts int
}

// SetNotices says how the server queues notices.
func (s *Server) SetNotices(n Notices) { s.notices = n }

// enqueueNotice writes n in tx, with the job that sends it once tx commits.
func (s *Server) enqueueNotice(ctx context.Context, tx pgx.Tx, n *Notice) error {
	if _, err := tx.Exec(ctx, insertNotice, n.ID, n.OrganizationID, n.Channel, n.Recipient, n.Language, n.Template, n.Params); err != nil {
		return fmt.Errorf("enqueue %s notice: %w", n.Template, err)
	}
	return s.queueNotice(ctx, tx, n)
}

// queueNotice inserts the job delivering n in tx.
func (s *Server) queueNotice(ctx context.Context, tx pgx.Tx, n *Notice) error {
	if _, err := s.notices.Jobs.InsertTx(ctx, tx, noticeArgs{ID: n.ID}, &river.InsertOpts{MaxAttempts: s.notices.Attempts}); err != nil {
		return fmt.Errorf("queue %s notice: %w", n.Template, err)
	}
	return nil
}

// EmailSender delivers email; notify.SMTP in production.
type EmailSender interface {
	Send(ctx context.Context, e notify.Email) error
}

// SMSSender delivers SMS; notify.HTTPSMS in production.
type SMSSender interface {
	Send(ctx context.Context, s notify.SMS) error
}

// NoticeSender is the worker of notice jobs: it delivers a notice, and
// River retries a failed delivery with exponential backoff; after the
// job's last attempt the notice is dead (and its job discarded) until an
// admin retries it.
type NoticeSender struct {
	river.WorkerDefaults[noticeArgs]
	Pool  *pgxpool.Pool
	Email EmailSender
	SMS   SMSSender
	Log   *slog.Logger
	// FirstRetry is the delay after the first failure; each next one doubles,
	// up to an hour.
	FirstRetry time.Duration
}

// AddNoticeSender registers s as the worker of notice jobs.
func AddNoticeSender(workers *river.Workers, s *NoticeSender) { river.AddWorker(workers, s) }

// Work delivers the job's notice, if it is still pending.
func (s *NoticeSender) Work(ctx context.Context, job *river.Job[noticeArgs]) error {
	rows, _ := s.Pool.Query(ctx, selectPendingNotice, job.Args.ID)
	n, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Notice])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find notice: %w", err)
	}
	if sendErr := s.deliver(ctx, n); sendErr != nil {
		dead := job.Attempt >= job.MaxAttempts
		level := slog.LevelWarn
		if dead {
			level = slog.LevelError
		}
		s.Log.Log(ctx, level, "notice not delivered", "notice", n.ID, "template", n.Template, "attempts", job.Attempt, "dead", dead, "error", sendErr)
		if _, err := s.Pool.Exec(ctx, markFailed, n.ID, sendErr.Error(), dead); err != nil {
			return fmt.Errorf("record failed notice: %w", err)
		}
		return sendErr
	}
	if _, err := s.Pool.Exec(ctx, markSent, n.ID); err != nil {
		return fmt.Errorf("record sent notice: %w", err)
	}
	return nil
}

// NextRetry waits FirstRetry after the first failure, twice as long after
// each next one, at most an hour.
func (s *NoticeSender) NextRetry(job *river.Job[noticeArgs]) time.Time {
	return jobs.Backoff(job.Attempt, s.FirstRetry, time.Hour)
}

func (s *NoticeSender) deliver(ctx context.Context, n *Notice) error {
	subject, body, err := render(n.Template, n.Language, n.Params)
	if err != nil {
		return err
	}
	switch n.Channel {
	case "email":
		return s.Email.Send(ctx, notify.Email{To: n.Recipient, Subject: subject, Body: body})
	case "sms":
		return s.SMS.Send(ctx, notify.SMS{To: n.Recipient, Text: strings.TrimSpace(body)})
	}
	return fmt.Errorf("unknown channel %q", n.Channel)
}

// ListDeadNotices lists an organization's undeliverable notices.
func (s *Server) ListDeadNotices(ctx context.Context, req *accountsv1.ListDeadNoticesRequest) (*accountsv1.ListDeadNoticesResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can see undelivered notices")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.notice.list", req.GetParent()+"/deadNotices", nil), err)
		return nil, err
	}
	rows, _ := s.store.pool.Query(ctx, selectDeadNotices, org)
	ns, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Notice])
	if err != nil {
		return nil, fmt.Errorf("list dead notices: %w", err)
	}
	resp := &accountsv1.ListDeadNoticesResponse{}
	for _, n := range ns {
		resp.Notices = append(resp.Notices, noticeProto(n))
	}
	return resp, nil
}

// RetryNotice queues a dead notice again.
func (s *Server) RetryNotice(ctx context.Context, req *accountsv1.RetryNoticeRequest) (*accountsv1.RetryNoticeResponse, error) {
	ids, err := aip.ParseIDs("name", req.GetName(), "organizations/{organization}/notices/{notice}")
	if err != nil {
		return nil, err
	}
	id := ids[1]
	org, role, c, err := s.access(ctx, "name", organizationName(ids[0]))
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can retry notices")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.notice.retry", req.GetName(), nil), err)
		return nil, err
	}
	var n *Notice
	err = pgx.BeginFunc(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, retryNotice, id, org)
		var err error
		n, err = pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Notice])
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "no undelivered notice by that name")
		}
		if err != nil {
			return fmt.Errorf("retry notice: %w", err)
		}
		if err := s.queueNotice(ctx, tx, n); err != nil {
			return err
		}
		return insertAudit(ctx, tx, auditEntry(c, org, "accounts.notice.retry", req.GetName(), map[string]string{"template": n.Template}))
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.RetryNoticeResponse{Notice: noticeProto(n)}, nil
}

func noticeProto(n *Notice) *accountsv1.Notice {
	p := &accountsv1.Notice{
		Channel:    n.Channel,
		Recipient:  n.Recipient,
		Template:   n.Template,
		Attempts:   int32(n.Attempts),
		LastError:  n.LastError,
		CreateTime: timestamppb.New(n.CreateTime),
	}
	if n.OrganizationID != nil {
		p.Name = organizationName(*n.OrganizationID) + "/notices/" + n.ID.String()
	}
	return p
}
