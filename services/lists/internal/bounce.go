package lists

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/auditlog"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// Bounce limits.
const (
	// maxBounceHistory is how many bounces are kept per member, newest
	// first: enough to see a pattern, bounded whatever a broken server
	// sends.
	maxBounceHistory = 20
	// maxDiagnostic caps the remote server's words kept per bounce.
	maxDiagnostic = 500
	// sweepBatch is how many disabled members one transaction of the
	// sweep handles.
	sweepBatch = 100
)

// systemActor names the service itself in events and audit records,
// for what no caller asked: a member disabled or removed for bounces.
const systemActor = "services/lists"

const (
	// lockBounced reads a member's bounce state and the list's settings,
	// holding the member until the bounce is recorded: two bounces at once
	// count once a day still.
	lockBounced = `
SELECT m.id, m.bounce_score, m.first_bounce_time, m.last_bounce_time, m.delivery = 2,
  l.organization_id, l.mail_service_id, l.bounce_score_threshold, l.bounce_info_stale_days
FROM members m JOIN lists l ON l.id = m.list_id
WHERE m.list_id = $1 AND m.email_key = $2 FOR UPDATE OF m`
	// findBouncedKey is the member an address names when the local part's
	// case differs (bounces may change it); only when one matches.
	findBouncedKey = `SELECT min(email_key) FROM members WHERE list_id = $1 AND lower(email_key) = lower($2) HAVING count(*) = 1`
	updateBounced  = `
UPDATE members SET bounce_score = $2, first_bounce_time = $3, last_bounce_time = $4, last_bounce_diagnostic = $5,
  delivery = CASE WHEN $6 THEN 2 ELSE delivery END,
  delivery_disabled_time = CASE WHEN $6 THEN $4 ELSE delivery_disabled_time END,
  bounce_warnings_sent = CASE WHEN $6 THEN 0 ELSE bounce_warnings_sent END,
  last_warning_time = CASE WHEN $6 THEN NULL ELSE last_warning_time END
WHERE id = $1 RETURNING ` + memberFields
	insertBounce = `INSERT INTO member_bounces (id, member_id, status, diagnostic, counted, create_time) VALUES ($1, $2, $3, $4, $5, $6)`
	trimBounces  = `
DELETE FROM member_bounces WHERE member_id = $1 AND id NOT IN (
  SELECT id FROM member_bounces WHERE member_id = $1 ORDER BY create_time DESC, id DESC LIMIT $2)`
	// dueDisabled are the members bounces disabled whose next warning, or
	// removal, is due at $1. The interval is counted in seconds, as
	// bounceSettings.step counts it: a day of the session's time zone may
	// have 23 or 25 hours.
	dueDisabled = `
SELECT m.id, m.list_id, m.email, m.bounce_warnings_sent, m.last_warning_time, m.bounce_score, m.last_bounce_diagnostic
FROM members m JOIN lists l ON l.id = m.list_id
WHERE m.delivery = 2 AND (m.last_warning_time IS NULL OR m.last_warning_time <= $1::timestamptz - make_interval(secs => l.bounce_warning_interval_days * 86400))
ORDER BY m.delivery_disabled_time LIMIT $2 FOR UPDATE OF m SKIP LOCKED`
	warned    = `UPDATE members SET bounce_warnings_sent = bounce_warnings_sent + 1, last_warning_time = $2 WHERE id = $1`
	enableSet = `
UPDATE members SET delivery = 1, delivery_disabled_time = NULL, bounce_score = 0, first_bounce_time = NULL,
  bounce_warnings_sent = 0, last_warning_time = NULL
WHERE id = $1 AND list_id = $2`
	enableBounced = enableSet + ` RETURNING ` + memberFields
	// enableDisabled enables only a member bounces disabled: a warning's
	// token does nothing to one a moderator enabled meanwhile.
	enableDisabled = enableSet + ` AND delivery = 2 RETURNING ` + memberFields
)

// bounceReport is one permanent failure against a member.
type bounceReport struct {
	status, diagnostic string
}

// recordBounce counts a permanent failure against the member of list
// whose address is addr, at now: the bounce is kept (with its status and
// diagnostic, the newest maxBounceHistory), the score rises by the rules
// of bounceSettings.score, and delivery is disabled at the threshold.
// found is false when addr is no member: the bounce is dropped.
func (s *Server) recordBounce(ctx context.Context, listID uuid.UUID, addr string, r bounceReport, now time.Time) (found bool, err error) {
	key := addressKey(addr)
	diag := clean(r.diagnostic, maxDiagnostic)
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var id uuid.UUID
		var st bounceState
		var org, ms uuid.UUID
		var b bounceSettings
		err := tx.QueryRow(ctx, lockBounced, listID, key).Scan(&id, &st.score, &st.first, &st.last, &st.disabled, &org, &ms, &b.threshold, &b.staleDays)
		if errors.Is(err, pgx.ErrNoRows) {
			var k *string
			if err := tx.QueryRow(ctx, findBouncedKey, listID, key).Scan(&k); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("find bounced member: %w", err)
			}
			if k == nil {
				return nil
			}
			err = tx.QueryRow(ctx, lockBounced, listID, *k).Scan(&id, &st.score, &st.first, &st.last, &st.disabled, &org, &ms, &b.threshold, &b.staleDays)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // left meanwhile
		}
		if err != nil {
			return fmt.Errorf("read bounced member: %w", err)
		}
		found = true
		next, counted, disable := b.score(st, now)
		rows, _ := tx.Query(ctx, updateBounced, id, next.score, next.first, next.last, diag, disable)
		m, err := pgx.CollectOneRow(rows, scanMember)
		if err != nil {
			return fmt.Errorf("count bounce: %w", err)
		}
		if _, err := tx.Exec(ctx, insertBounce, uuid.Must(uuid.NewV7()), id, r.status, diag, counted, now); err != nil {
			return fmt.Errorf("record bounce: %w", err)
		}
		if _, err := tx.Exec(ctx, trimBounces, id, maxBounceHistory); err != nil {
			return fmt.Errorf("trim bounces: %w", err)
		}
		if !disable {
			return nil
		}
		ids := listIDs{org, ms, listID}
		s.log.Info("bounces: delivery disabled", "list", listID, "member", m.id, "score", m.score)
		if err := outbox.Write(ctx, tx, listsevents.MemberUpdated, &listsv1.MemberChanged{List: listName(org, ms, listID), Member: m.proto(ids), Actor: systemActor}); err != nil {
			return err
		}
		return systemAudit(ctx, tx, org, "lists.member.disable_delivery", memberName(org, ms, listID, id), map[string]string{"score": fmt.Sprint(m.score)})
	})
	return found, err
}

// systemAudit records, in tx, what the service did of its own accord.
func systemAudit(ctx context.Context, tx pgx.Tx, org uuid.UUID, action, target string, details map[string]string) error {
	return outbox.Write(ctx, tx, listsevents.AuditRecorded, auditlog.Record(ctx, "organizations/"+org.String(), systemActor, action, target, details))
}

// clean is s on one line without control characters, at most n bytes
// (cut at a rune boundary).
func clean(s string, n int) string {
	s = strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xc0 == 0x80 {
		n--
	}
	return s[:n]
}

// relayRefusal is a relay's permanent refusal of a copy as a bounce.
func relayRefusal(se *smtp.SMTPError) bounceReport {
	st := fmt.Sprintf("%d.0.0", se.Code/100)
	if c := se.EnhancedCode; c != smtp.NoEnhancedCode && c != (smtp.EnhancedCode{}) {
		st = fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
	}
	return bounceReport{status: st, diagnostic: fmt.Sprintf("%d %s %s", se.Code, st, se.Message)}
}

// SweepBounces does what is due for members whose delivery bounces
// disabled, and says for how many: the next warning mailed (the first at
// once, then every warning_interval_days), or, when the warnings are
// spent and the interval passed once more, the member removed (erased as
// DeleteMember does) and the moderators told. The periodic "sweep
// bounces" work, hourly.
func (s *Server) SweepBounces(ctx context.Context) (int, error) {
	total := 0
	for {
		seen, done, err := s.sweepBatch(ctx, time.Now())
		total += done
		// A batch that did nothing would be read again: stop there.
		if err != nil || seen < sweepBatch || done == 0 {
			return total, err
		}
	}
}

// sweepBatch handles up to sweepBatch due members in one transaction and
// says how many it read and how many it warned or removed.
func (s *Server) sweepBatch(ctx context.Context, now time.Time) (seen, done int, err error) {
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		type due struct {
			id, list          uuid.UUID
			email, diagnostic string
			sent, score       int32
			lastWarning       *time.Time
		}
		rows, _ := tx.Query(ctx, dueDisabled, now, sweepBatch)
		var ds []due
		var d due
		_, err := pgx.ForEachRow(rows, []any{&d.id, &d.list, &d.email, &d.sent, &d.lastWarning, &d.score, &d.diagnostic}, func() error {
			c := d
			if d.lastWarning != nil { // scanned into again by the next row
				t := *d.lastWarning
				c.lastWarning = &t
			}
			ds = append(ds, c)
			return nil
		})
		if err != nil {
			return fmt.Errorf("sweep bounces: %w", err)
		}
		seen = len(ds)
		lists := map[uuid.UUID]*list{}
		for _, d := range ds {
			l := lists[d.list]
			if l == nil {
				rows, _ := tx.Query(ctx, listColumns+` WHERE id = $1`, d.list)
				if l, err = pgx.CollectOneRow(rows, scanList); err != nil {
					return fmt.Errorf("sweep bounces: list: %w", err)
				}
				lists[d.list] = l
			}
			switch l.bounce.step(d.sent, d.lastWarning, now) {
			case sweepWait:
				continue
			case sweepWarn:
				if _, err := tx.Exec(ctx, warned, d.id, now); err != nil {
					return fmt.Errorf("sweep bounces: warned: %w", err)
				}
				left := time.Duration(l.bounce.warnings-d.sent) * time.Duration(l.bounce.intervalDays) * day
				tok, expire, err := newToken(ctx, tx, l, tokenEnableDelivery, d.email, &d.id, subscriberTokenTTL)
				if err != nil {
					return err
				}
				if err := s.queueLetter(ctx, tx, l, letter{to: d.email, from: "-confirm+" + tok, kind: letters.BounceWarning, data: letters.Data{
					"List": l.address(), "Owner": l.robot("-owner"), "Confirm": l.robot("-confirm+" + tok), "Expire": letters.Date(expire),
					"Warning": fmt.Sprint(d.sent + 1), "Warnings": fmt.Sprint(l.bounce.warnings),
					"Diagnostic": d.diagnostic, "Remove": letters.Date(now.Add(left)),
				}}); err != nil {
					return err
				}
			case sweepRemove:
				ids := listIDs{l.org, l.ms, l.id}
				if _, err := eraseMember(ctx, tx, ids, d.id, "", "removed after bounces", systemActor); err != nil {
					return err
				}
				if err := systemAudit(ctx, tx, l.org, "lists.member.delete", memberName(l.org, l.ms, l.id, d.id), map[string]string{"reason": "bounces"}); err != nil {
					return err
				}
				mods := l.moderatorEmails()
				for _, m := range mods {
					if err := s.queueLetter(ctx, tx, l, letter{to: m, from: "-owner", kind: letters.BounceRemoved, data: letters.Data{
						"List": l.address(), "Email": d.email, "Score": fmt.Sprint(d.score), "Diagnostic": d.diagnostic,
					}}); err != nil {
						return err
					}
				}
				s.log.Info("bounces: member removed", "list", l.id, "member", d.id, "moderatorsTold", len(mods))
			}
			done++
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return seen, done, nil
}

// EnableMemberDelivery enables delivery to a member again, clearing
// their bounce score and warnings; their last bounce stays on record.
func (s *Server) EnableMemberDelivery(ctx context.Context, req *listsv1.EnableMemberDeliveryRequest) (*listsv1.EnableMemberDeliveryResponse, error) {
	v, err := aip.ParseIDs("name", req.GetName(), "organizations/{organization}/mailServices/{mail_service}/lists/{list}/members/{member}")
	if err != nil {
		return nil, err
	}
	ids := listIDs{v[0], v[1], v[2]}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	var m *member
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := findList(ctx, tx, ids); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, enableBounced, v[3], ids.list)
		m, err = pgx.CollectOneRow(rows, scanMember)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "member not found")
		}
		if err != nil {
			return fmt.Errorf("enable delivery: %w", err)
		}
		if err := outbox.Write(ctx, tx, listsevents.MemberUpdated, &listsv1.MemberChanged{List: listName(ids.org, ids.ms, ids.list), Member: m.proto(ids), Actor: c.Name()}); err != nil {
			return err
		}
		return audit(ctx, tx, ids.org, c, "lists.member.enable_delivery", req.GetName(), nil)
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.EnableMemberDeliveryResponse{Member: m.proto(ids)}, nil
}
