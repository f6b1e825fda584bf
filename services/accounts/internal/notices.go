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
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/notify"
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
var roleNames = map[string]map[Role]string{
	"en": {Owner: "owner", Admin: "administrator", Member: "member"},
	"fr": {Owner: "propriétaire", Admin: "administrateur", Member: "membre"},
	"de": {Owner: "Inhaber", Admin: "Administrator", Member: "Mitglied"},
	"it": {Owner: "proprietario", Admin: "amministratore", Member: "membro"},
	"es": {Owner: "propietario", Admin: "administrador", Member: "miembro"},
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

	// claimNotice takes the oldest due notice; SKIP LOCKED lets several
	// replicas send side by side without sending anything twice.
	claimNotice = `
SELECT id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time
FROM notices
WHERE state = 'pending' AND next_attempt_time <= now()
ORDER BY next_attempt_time
LIMIT 1
FOR UPDATE SKIP LOCKED`

	// markSent also erases the params, which may hold a secret link.
	markSent = `UPDATE notices SET state = 'sent', sent_time = now(), attempts = attempts + 1, params = '{}' WHERE id = $1`

	markFailed = `
UPDATE notices SET attempts = attempts + 1, last_error = $2, next_attempt_time = $3,
                   state = CASE WHEN $4 THEN 'dead' ELSE 'pending' END
WHERE id = $1`

	selectDeadNotices = `
SELECT id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time
FROM notices WHERE organization_id = $1 AND state = 'dead'
ORDER BY create_time DESC`

	retryNotice = `
UPDATE notices SET state = 'pending', attempts = 0, next_attempt_time = now()
WHERE id = $1 AND organization_id = $2 AND state = 'dead'
RETURNING id, organization_id, channel, recipient, language, template, params, attempts, last_error, create_time`
)

// enqueueNotice writes n in tx, to be sent once tx commits.
func enqueueNotice(ctx context.Context, tx pgx.Tx, n *Notice) error {
	if _, err := tx.Exec(ctx, insertNotice, n.ID, n.OrganizationID, n.Channel, n.Recipient, n.Language, n.Template, n.Params); err != nil {
		return fmt.Errorf("enqueue %s notice: %w", n.Template, err)
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

// NoticeSender delivers queued notices, retrying failures with exponential
// backoff; after MaxAttempts a notice is dead until an admin retries it.
type NoticeSender struct {
	Pool        *pgxpool.Pool
	Email       EmailSender
	SMS         SMSSender
	Log         *slog.Logger
	MaxAttempts int
	// FirstRetry is the delay after the first failure; each next one doubles,
	// up to an hour.
	FirstRetry time.Duration
	// Poll is how often an idle sender looks for due notices.
	Poll time.Duration
}

// Run sends until ctx is done.
func (s *NoticeSender) Run(ctx context.Context) error {
	for {
		sent, err := s.sendOne(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "notice sender", "error", err)
		}
		if sent && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.Poll):
		}
	}
}

// sendOne delivers the oldest due notice, if any, and reports whether there
// was one.
func (s *NoticeSender) sendOne(ctx context.Context) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, claimNotice)
		n, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Notice])
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim notice: %w", err)
		}
		found = true
		if sendErr := s.deliver(ctx, n); sendErr != nil {
			attempts := n.Attempts + 1
			dead := attempts >= s.MaxAttempts
			delay := min(s.FirstRetry<<min(attempts-1, 20), time.Hour)
			level := slog.LevelWarn
			if dead {
				level = slog.LevelError
			}
			s.Log.Log(ctx, level, "notice not delivered", "notice", n.ID, "template", n.Template, "attempts", attempts, "dead", dead, "error", sendErr)
			_, err := tx.Exec(ctx, markFailed, n.ID, sendErr.Error(), time.Now().Add(delay), dead)
			return err
		}
		_, err = tx.Exec(ctx, markSent, n.ID)
		return err
	})
	return found, err
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
	if !role.canManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can see undelivered notices")
		s.auditRefusal(ctx, c.audit(org, "accounts.notice.list", req.GetParent()+"/deadNotices", nil), err)
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
	parts := strings.Split(req.GetName(), "/")
	id, err := uuid.Parse(parts[len(parts)-1])
	if len(parts) != 4 || parts[2] != "notices" || err != nil {
		return nil, errs.Field("name", "must be a notice name like organizations/{id}/notices/{notice}")
	}
	org, role, c, err := s.access(ctx, "name", parts[0]+"/"+parts[1])
	if err != nil {
		return nil, err
	}
	if !role.canManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can retry notices")
		s.auditRefusal(ctx, c.audit(org, "accounts.notice.retry", req.GetName(), nil), err)
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
		return insertAudit(ctx, tx, c.audit(org, "accounts.notice.retry", req.GetName(), map[string]string{"template": n.Template}))
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
