package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/sieve"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// AutoReply is an address's out-of-office answer.
type AutoReply struct {
	Enabled bool
	// Subject of the answer; empty: "Auto: " and the original subject.
	Subject string
	// Message is the answer, lines ending in "\n".
	Message string
	// StartTime and EndTime bound when it answers; nil: from now, until
	// turned off.
	StartTime *time.Time
	EndTime   *time.Time
	// IntervalDays is how long before the same sender is answered again.
	IntervalDays int
}

// defaultIntervalDays is the interval when none is given.
const defaultIntervalDays = 7

// allRights are the default rights of a user of an address.
var allRights = Rights{AutoReply: true, Devices: true, Filters: true, Signatures: true}

// userRights returns c's rights on a, and whether c is one of its users at
// all (an API token never is).
func (a *Address) userRights(c access.Caller) (Rights, bool) {
	if c.IsToken() {
		return Rights{}, false
	}
	for _, u := range a.Users {
		if u.UserID != nil && *u.UserID == c.UserID {
			if u.Rights == nil {
				return allRights, true
			}
			return *u.Rights, true
		}
	}
	return Rights{}, false
}

// canUseAutoReply reports why c may not read or set a's auto-reply: owners
// and admins may, and its users with the "auto-reply" right.
func canUseAutoReply(a *Address, c access.Caller, role access.Role) error {
	if role.CanManage() {
		return nil
	}
	if r, ok := a.userRights(c); !ok || !r.AutoReply {
		return errs.E(errs.PermissionDenied, "your rights on %s do not include the auto-reply; ask an owner or admin", a.Email()).WithReason("AUTO_REPLY_RIGHT_REQUIRED")
	}
	return nil
}

// checkAutoReply turns a requested auto-reply into ours, checking it at
// time now.
func checkAutoReply(in *mailboxesv1.AutoReply, now time.Time) (*AutoReply, error) {
	ar := &AutoReply{Enabled: in.GetEnabled(), IntervalDays: int(in.GetIntervalDays())}
	switch {
	case ar.IntervalDays == 0:
		ar.IntervalDays = defaultIntervalDays
	case ar.IntervalDays < 1 || ar.IntervalDays > 30:
		return nil, errs.Field("autoReply.intervalDays", "must be 1 to 30 days")
	}
	ar.Subject = strings.TrimSpace(in.GetSubject())
	switch {
	case utf8.RuneCountInString(ar.Subject) > 200:
		return nil, errs.Field("autoReply.subject", "must be at most 200 characters")
	case strings.IndexFunc(ar.Subject, unicode.IsControl) >= 0:
		return nil, errs.Field("autoReply.subject", "must be one line without control characters")
	}
	ar.Message = strings.ReplaceAll(in.GetMessage(), "\r\n", "\n")
	switch {
	case utf8.RuneCountInString(ar.Message) > 10000:
		return nil, errs.Field("autoReply.message", "must be at most 10000 characters")
	case strings.IndexFunc(ar.Message, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0:
		return nil, errs.Field("autoReply.message", "must not hold control characters")
	case ar.Enabled && strings.TrimSpace(ar.Message) == "":
		return nil, errs.Field("autoReply.message", "is required to turn the auto-reply on")
	}
	for _, t := range []struct {
		field string
		in    *timestamppb.Timestamp
		out   **time.Time
	}{{"autoReply.startTime", in.GetStartTime(), &ar.StartTime}, {"autoReply.endTime", in.GetEndTime(), &ar.EndTime}} {
		if t.in == nil {
			continue
		}
		if err := t.in.CheckValid(); err != nil {
			return nil, errs.Field(t.field, "must be a valid time")
		}
		v := t.in.AsTime()
		*t.out = &v
	}
	if ar.StartTime != nil && ar.EndTime != nil && !ar.EndTime.After(*ar.StartTime) {
		return nil, errs.Field("autoReply.endTime", "must be after startTime")
	}
	if ar.Enabled && ar.EndTime != nil && !ar.EndTime.After(now) {
		return nil, errs.Field("autoReply.endTime", "must be in the future to turn the auto-reply on")
	}
	return ar, nil
}

func autoReplyName(a *Address) string {
	return addressName(a.OrganizationID, a.MailServiceID, a.ID) + "/autoReply"
}

func autoReplyProto(a *Address, ar *AutoReply) *mailboxesv1.AutoReply {
	p := &mailboxesv1.AutoReply{
		Name: autoReplyName(a), Enabled: ar.Enabled, Subject: ar.Subject, Message: ar.Message, IntervalDays: int32(ar.IntervalDays),
	}
	if ar.StartTime != nil {
		p.StartTime = timestamppb.New(*ar.StartTime)
	}
	if ar.EndTime != nil {
		p.EndTime = timestamppb.New(*ar.EndTime)
	}
	return p
}

const (
	autoReplyColumns = `enabled, subject, message, start_time, end_time, interval_days`

	selectAutoReply = `SELECT ` + autoReplyColumns + ` FROM auto_replies WHERE address_id = $1`

	upsertAutoReply = `
INSERT INTO auto_replies (address_id, enabled, subject, message, start_time, end_time, interval_days)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (address_id) DO UPDATE SET
    enabled = excluded.enabled, subject = excluded.subject, message = excluded.message,
    start_time = excluded.start_time, end_time = excluded.end_time, interval_days = excluded.interval_days,
    update_time = now()
RETURNING ` + autoReplyColumns
)

func collectAutoReply(rows pgx.Rows) (*AutoReply, error) {
	return pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[AutoReply])
}

// autoReplyAddress is the address of the auto-reply named name, for the
// caller, who must be allowed to use it.
func (s *Server) autoReplyAddress(ctx context.Context, field, name string) (*Address, access.Caller, error) {
	if _, err := aip.ParseIDs(field, name, "organizations/{id}/mailServices/{id}/addresses/{id}/autoReply"); err != nil {
		return nil, access.Caller{}, err
	}
	addr := strings.TrimSuffix(name, "/autoReply")
	a, c, role, err := s.addressAccess(ctx, field, addr)
	if err != nil {
		return nil, c, err
	}
	if err := canUseAutoReply(a, c, role); err != nil {
		return nil, c, err
	}
	return a, c, nil
}

// GetAutoReply returns an address's auto-reply; one never set is off.
func (s *Server) GetAutoReply(ctx context.Context, req *mailboxesv1.GetAutoReplyRequest) (*mailboxesv1.GetAutoReplyResponse, error) {
	a, _, err := s.autoReplyAddress(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectAutoReply, a.ID)
	ar, err := collectAutoReply(rows)
	if errors.Is(err, pgx.ErrNoRows) {
		ar, err = &AutoReply{IntervalDays: defaultIntervalDays}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get auto-reply: %w", err)
	}
	return &mailboxesv1.GetAutoReplyResponse{AutoReply: autoReplyProto(a, ar)}, nil
}

// UpdateAutoReply sets an address's auto-reply, every field at once.
//
// It publishes mailboxes.auto_reply.updated with an AddressChanged naming
// the address and carrying the auto-reply and its Sieve script, for what
// installs the script for the mail server (the filters service).
func (s *Server) UpdateAutoReply(ctx context.Context, req *mailboxesv1.UpdateAutoReplyRequest) (*mailboxesv1.UpdateAutoReplyResponse, error) {
	a, c, err := s.autoReplyAddress(ctx, "autoReply.name", req.GetAutoReply().GetName())
	if err != nil {
		return nil, err
	}
	in, err := checkAutoReply(req.GetAutoReply(), time.Now())
	if err != nil {
		return nil, err
	}
	if in.Enabled && a.Kind != "mailbox" {
		return nil, errs.E(errs.FailedPrecondition, "only a mailbox address keeps mail to answer; %s does not", a.Email()).WithReason("NOT_A_MAILBOX")
	}
	var ar *AutoReply
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, upsertAutoReply, a.ID, in.Enabled, in.Subject, in.Message, in.StartTime, in.EndTime, in.IntervalDays)
		var err error
		if ar, err = collectAutoReply(rows); err != nil {
			return fmt.Errorf("set auto-reply: %w", err)
		}
		details := map[string]string{"email": a.Email(), "enabled": fmt.Sprint(ar.Enabled)}
		if err := audit(ctx, tx, organizationName(a.OrganizationID), c, "mailboxes.autoReply.update", autoReplyName(a), details); err != nil {
			return err
		}
		// checkAutoReply lets in nothing a Sieve string cannot hold: an
		// error here is a bug.
		script, err := vacationSieve(ar, time.Now())
		if err != nil {
			return fmt.Errorf("render auto-reply: %w", err)
		}
		ev := addressChanged(a, c.Name())
		ev.AutoReply, ev.VacationSieve = autoReplyProto(a, ar), script
		return outbox.Write(ctx, tx, mailboxesevents.AutoReplyUpdated, ev)
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.UpdateAutoReplyResponse{AutoReply: autoReplyProto(a, ar)}, nil
}

// vacationSieve is the Sieve script answering mail with ar at time now
// (sieve.Vacation), "" when there is nothing to answer: the auto-reply is
// off or its end has passed.
func vacationSieve(ar *AutoReply, now time.Time) (string, error) {
	if ar == nil || !ar.Enabled {
		return "", nil
	}
	v := sieve.Vacation{Subject: ar.Subject, Message: ar.Message, Days: ar.IntervalDays}
	if ar.StartTime != nil {
		v.Start = *ar.StartTime
	}
	if ar.EndTime != nil {
		v.End = *ar.EndTime
	}
	return v.Script(now)
}
