// Package idempotency lets a client retry a create safely (AIP-155): the
// request carries a key (request_id, or the gRPC metadata idempotency-key
// the edge fills from the Idempotency-Key header), and the same key from
// the same caller for the same method answers the first create's resource
// again instead of creating another or refusing a duplicate.
//
// The key is stored in the create's own transaction, so that a create that
// committed has its key and one that did not has none, whatever the client
// was told (a 503 from a process killed after the commit, say). A service
// keeps the keys in its own schema, in a table of this shape:
//
//	CREATE TABLE idempotency_keys (
//	    caller text NOT NULL,
//	    method text NOT NULL,
//	    key uuid NOT NULL,
//	    request_hash bytea NOT NULL,
//	    resource text NOT NULL,
//	    create_time timestamptz NOT NULL DEFAULT now(),
//	    PRIMARY KEY (caller, method, key)
//	);
//	CREATE INDEX idempotency_keys_by_time ON idempotency_keys (create_time);
//
// A create looks the key up first (Find); creates, writing the key with
// Insert (or Queue) in the same transaction; and, when that fails because a
// concurrent request with the same key committed first (IsRace), looks it
// up again. Keys live TTL; Purge deletes older ones.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MetadataKey is the gRPC metadata that carries a key when the request's
// request_id is empty.
const MetadataKey = "idempotency-key"

// TTL is how long a key answers.
const TTL = 24 * time.Hour

// Request is what a create with a key says: its key, its caller and method,
// and a hash of the request, to tell a retry from another request reusing
// the key. The zero Request (no key) does nothing.
type Request struct {
	Key    uuid.UUID
	Caller string
	Method string
	Hash   []byte
}

// None reports whether the request has no key.
func (r Request) None() bool { return r.Key == uuid.Nil }

// FromRequest reads req's key: its request_id field, or else the incoming
// metadata's idempotency-key; a key that is not a UUID is refused, naming
// the field (requestId) or the header (Idempotency-Key). caller and method
// scope the key; the hash covers req without its request_id.
func FromRequest(ctx context.Context, req proto.Message, caller, method string) (Request, error) {
	m := req.ProtoReflect()
	field := m.Descriptor().Fields().ByName("request_id")
	raw, name := "", "requestId"
	if field != nil {
		raw = m.Get(field).String()
	}
	if raw == "" {
		if v := metadata.ValueFromIncomingContext(ctx, MetadataKey); len(v) > 0 {
			raw, name = v[0], "Idempotency-Key"
		}
	}
	if raw == "" {
		return Request{}, nil
	}
	key, err := uuid.Parse(strings.TrimSpace(raw))
	if err != nil || key == uuid.Nil {
		return Request{}, errs.Field(name, "must be a UUID, made by the client for this request and sent again with its retries")
	}
	return Request{Key: key, Caller: caller, Method: method, Hash: hash(m, field)}, nil
}

// hash is the SHA-256 of m's deterministic encoding without field.
func hash(m protoreflect.Message, field protoreflect.FieldDescriptor) []byte {
	c := proto.Clone(m.Interface())
	if field != nil {
		c.ProtoReflect().Clear(field)
	}
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	sum := sha256.Sum256(b)
	return sum[:]
}

// The statements, over a table of the shape in the package comment.
const (
	selectKey = `
SELECT request_hash, resource FROM idempotency_keys
WHERE caller = $1 AND method = $2 AND key = $3 AND create_time > now() - $4::interval`

	// deleteStale makes way for a key whose earlier use is over TTL old
	// and not yet purged.
	deleteStale = `
DELETE FROM idempotency_keys WHERE caller = $1 AND method = $2 AND key = $3 AND create_time <= now() - $4::interval`

	// insertKey fails, undoing its transaction, when the key is taken.
	insertKey = `
INSERT INTO idempotency_keys (caller, method, key, request_hash, resource) VALUES ($1, $2, $3, $4, $5)`

	purgeKeys = `DELETE FROM idempotency_keys WHERE create_time <= now() - $1::interval`
)

func ttl() string { return fmt.Sprintf("%d seconds", int(TTL/time.Second)) }

// Find returns the resource the key created, if it did within TTL. The
// same key with another request is a Conflict (IDEMPOTENCY_KEY_REUSED).
func (r Request) Find(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (resource string, found bool, err error) {
	if r.None() {
		return "", false, nil
	}
	var h []byte
	err = q.QueryRow(ctx, selectKey, r.Caller, r.Method, r.Key, ttl()).Scan(&h, &resource)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("find idempotency key: %w", err)
	}
	if !bytes.Equal(h, r.Hash) {
		return "", false, errs.E(errs.Conflict, "this idempotency key was used for another request; make a new key for a new request").WithReason("IDEMPOTENCY_KEY_REUSED")
	}
	return resource, true, nil
}

// Insert records in tx that the key created resource. When a concurrent
// request with the same key got there first, the statement fails (IsRace)
// and tx must be rolled back.
func (r Request) Insert(ctx context.Context, tx pgx.Tx, resource string) error {
	if r.None() {
		return nil
	}
	if _, err := tx.Exec(ctx, deleteStale, r.Caller, r.Method, r.Key, ttl()); err != nil {
		return fmt.Errorf("record idempotency key: %w", err)
	}
	if _, err := tx.Exec(ctx, insertKey, r.Caller, r.Method, r.Key, r.Hash, resource); err != nil {
		return fmt.Errorf("record idempotency key: %w", err)
	}
	return nil
}

// Queue is Insert for a batch sent as one transaction (pg.Group).
func (r Request) Queue(b *pgx.Batch, resource string) {
	if r.None() {
		return
	}
	b.Queue(deleteStale, r.Caller, r.Method, r.Key, ttl())
	b.Queue(insertKey, r.Caller, r.Method, r.Key, r.Hash, resource)
}

// IsRace reports whether err is Insert's (or Queue's) failure because a
// concurrent request with the same key committed first.
func IsRace(err error) bool { return pg.IsUniqueViolation(err, "idempotency_keys_pkey") }

// Purge deletes the keys over TTL old and reports how many.
func Purge(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}) (int, error) {
	tag, err := q.Exec(ctx, purgeKeys, ttl())
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
