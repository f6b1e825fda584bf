package lists

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/outbox"

	"github.com/mailplane/mailplane/services/lists/internal/bounces"
	"github.com/mailplane/mailplane/services/lists/internal/post"
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

// tokenEnableDelivery is the action of the token a bounce warning
// carries: the member (target, email) confirms their mailbox works, and
// their delivery is enabled again. Only someone who reads that mailbox
// has it.
const tokenEnableDelivery = "enable_delivery"

// enableByToken enables delivery to the member t names, as
// EnableMemberDelivery does, and tells them. A member removed or enabled
// meanwhile makes it a no-op: the token did its work, or has none left.
func (s *Server) enableByToken(ctx context.Context, tx pgx.Tx, l *list, t *token) error {
	if t.target == nil {
		return nil
	}
	rows, _ := tx.Query(ctx, enableDisabled, *t.target, l.id)
	m, err := pgx.CollectOneRow(rows, scanMember)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("enable delivery: %w", err)
	}
	ids := listIDs{l.org, l.ms, l.id}
	if err := outbox.Write(ctx, tx, listsevents.MemberUpdated, &listsv1.MemberChanged{List: listName(l.org, l.ms, l.id), Member: m.proto(ids), Actor: robotActor}); err != nil {
		return err
	}
	return s.queueLetter(ctx, tx, l, letter{to: m.email, from: "-owner", kind: letters.BounceEnabled, data: letters.Data{"List": l.address()}})
}
