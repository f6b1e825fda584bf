package accounts

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

const (
	// insertAuditEntry names the actor as people knew them at the time: the
	// user's email or the token's name, unless the entry says.
	insertAuditEntry = `
INSERT INTO audit_entries (id, organization_id, actor, actor_display_name, action, target,
                           client_address, outcome, details, create_time)
VALUES ($1, $2, $3,
        COALESCE(NULLIF($4, ''),
                 (SELECT email FROM users WHERE id = $5),
                 (SELECT display_name FROM api_tokens WHERE id = $6),
                 ''),
        $7, $8, $9, $10, $11, COALESCE($12, now()))`

	// selectAuditEntries filters the log, newest first, after a cursor.
	selectAuditEntries = `
SELECT id, organization_id, actor, actor_display_name, action, target, client_address,
       outcome, details, create_time
FROM audit_entries
WHERE organization_id = $1
  AND ($2 = '' OR actor = $2)
  AND ($3 = '' OR target = $3)
  AND ($4 = '' OR action = $4)
  AND ($5::timestamptz IS NULL OR create_time >= $5)
  AND ($6::timestamptz IS NULL OR create_time < $6)
  AND ($7::timestamptz IS NULL OR (create_time, id) < ($7, $8))
ORDER BY create_time DESC, id DESC
LIMIT $9`
)

// actorIDs returns the user or token id in an actor's resource name.
func actorIDs(actor string) (user, token *uuid.UUID) {
	if rest, ok := strings.CutPrefix(actor, "users/"); ok {
		if id, err := uuid.Parse(rest); err == nil {
			return &id, nil
		}
	}
	if parts := strings.Split(actor, "/"); len(parts) == 4 && parts[2] == "apiTokens" {
		if id, err := uuid.Parse(parts[3]); err == nil {
			return nil, &id
		}
	}
	return nil, nil
}

func insertAudit(ctx context.Context, tx pgx.Tx, e *AuditEntry) error {
	user, token := actorIDs(e.Actor)
	var at *time.Time
	if !e.CreateTime.IsZero() {
		at = &e.CreateTime
	}
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	_, err := tx.Exec(ctx, insertAuditEntry, e.ID, e.OrganizationID, e.Actor, e.ActorDisplayName, user, token,
		e.Action, e.Target, e.ClientAddress, e.Outcome, details, at)
	if err != nil {
		return fmt.Errorf("record audit entry %s: %w", e.Action, err)
	}
	return nil
}

// RecordAudit stores an entry on its own, for actions that were refused
// (their transaction rolled back).
func (s *Store) RecordAudit(ctx context.Context, e *AuditEntry) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return insertAudit(ctx, tx, e) })
}

// AuditEntries lists up to limit entries of org matching f, newest first.
func (s *Store) AuditEntries(ctx context.Context, org uuid.UUID, f AuditFilter, limit int) ([]*AuditEntry, error) {
	var start, end, afterTime *time.Time
	afterID := uuid.Nil
	if !f.Start.IsZero() {
		start = &f.Start
	}
	if !f.End.IsZero() {
		end = &f.End
	}
	if f.After != nil {
		afterTime, afterID = &f.After.CreateTime, f.After.ID
	}
	rows, _ := s.pool.Query(ctx, selectAuditEntries, org, f.Actor, f.Target, f.Action, start, end, afterTime, afterID, limit)
	entries, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("list audit entries: %w", err)
	}
	return entries, nil
}
