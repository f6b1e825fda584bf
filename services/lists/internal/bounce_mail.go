package lists

import (
	"context"
	"time"

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
