package accounts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// idempotencyTTL is how long a create's key answers its first outcome.
const idempotencyTTL = 24 * time.Hour

const (
	lockIdempotencyKey = `SELECT pg_advisory_xact_lock(hashtextextended($1 || ' ' || $2 || ' ' || $3, 0))`

	selectIdempotencyKey = `
SELECT request_hash, response FROM idempotency_keys
WHERE caller = $1 AND method = $2 AND key = $3 AND create_time > now() - $4::interval`

	// insertIdempotencyKey replaces an expired row of the same key.
	insertIdempotencyKey = `
INSERT INTO idempotency_keys (caller, method, key, request_hash, resource, response) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (caller, method, key) DO UPDATE SET
    request_hash = excluded.request_hash, resource = excluded.resource, response = excluded.response, create_time = now()`

	pruneIdempotencyKeys = `
DELETE FROM idempotency_keys WHERE (caller, method, key) IN (
    SELECT caller, method, key FROM idempotency_keys WHERE create_time <= now() - $1::interval LIMIT 100)`
)

// idempotencyKey returns a create's idempotency key: its request_id, or
// else the idempotency-key metadata the edge sets from the Idempotency-Key
// header; "" for none.
func idempotencyKey(ctx context.Context, requestID string) (string, error) {
	field, key := "requestId", requestID
	if key == "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("idempotency-key"); len(v) > 0 {
			field, key = "Idempotency-Key", v[len(v)-1]
		}
	}
	if len(key) > 100 {
		return "", errs.Field(field, "must be at most 100 characters")
	}
	for _, r := range key {
		if r <= ' ' || r > '~' {
			return "", errs.Field(field, "must be printable ASCII without spaces (a UUID is best)")
		}
	}
	return key, nil
}

// idempotent is a create's idempotency key, held in its transaction.
type idempotent struct {
	caller, method, key string
	requestHash         []byte
}

// newIdempotent returns the key of caller's call of method with req, or
// nil when the call has none.
func newIdempotent(ctx context.Context, caller Caller, method, requestID string, req proto.Message) (*idempotent, error) {
	key, err := idempotencyKey(ctx, requestID)
	if err != nil || key == "" {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("idempotency key: %w", err)
	}
	h := sha256.Sum256(b)
	return &idempotent{caller: caller.Name(), method: method, key: key, requestHash: h[:]}, nil
}

// replay takes the key's lock for tx and reports whether the key answered
// before, filling resp with that answer. The same key with another request
// is refused.
func (k *idempotent) replay(ctx context.Context, tx pgx.Tx, resp proto.Message) (bool, error) {
	if k == nil {
		return false, nil
	}
	if _, err := tx.Exec(ctx, lockIdempotencyKey, k.caller, k.method, k.key); err != nil {
		return false, fmt.Errorf("idempotency key: %w", err)
	}
	var hash, stored []byte
	err := tx.QueryRow(ctx, selectIdempotencyKey, k.caller, k.method, k.key, idempotencyTTL).Scan(&hash, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("idempotency key: %w", err)
	}
	if string(hash) != string(k.requestHash) {
		return false, errs.Field("requestId", "this idempotency key was used for another request in the last 24 hours")
	}
	if err := proto.Unmarshal(stored, resp); err != nil {
		return false, fmt.Errorf("idempotency key: stored response: %w", err)
	}
	return true, nil
}

// save records resp, the answer about resource, as the key's outcome.
func (k *idempotent) save(ctx context.Context, tx pgx.Tx, resource string, resp proto.Message) error {
	if k == nil {
		return nil
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	if _, err := tx.Exec(ctx, pruneIdempotencyKeys, idempotencyTTL); err != nil {
		return fmt.Errorf("idempotency key: prune: %w", err)
	}
	if _, err := tx.Exec(ctx, insertIdempotencyKey, k.caller, k.method, k.key, k.requestHash, resource, b); err != nil {
		return fmt.Errorf("idempotency key: %w", err)
	}
	return nil
}
