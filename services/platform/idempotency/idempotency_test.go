package idempotency_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"google.golang.org/grpc/metadata"
)

func TestFromRequest(t *testing.T) {
	key := uuid.NewString()
	req := func(id string) *mailboxesv1.CreateSignatureRequest {
		return &mailboxesv1.CreateSignatureRequest{Parent: "p", Signature: &mailboxesv1.Signature{Template: "t"}, RequestId: id}
	}
	withHeader := metadata.NewIncomingContext(context.Background(), metadata.Pairs(idempotency.MetadataKey, key))

	none, err := idempotency.FromRequest(context.Background(), req(""), "users/a", "CreateSignature")
	if err != nil || !none.None() {
		t.Errorf("no key: %v, %v", none, err)
	}
	byField, err := idempotency.FromRequest(context.Background(), req(key), "users/a", "CreateSignature")
	if err != nil || byField.Key.String() != key {
		t.Errorf("request_id: %v, %v", byField, err)
	}
	byHeader, err := idempotency.FromRequest(withHeader, req(""), "users/a", "CreateSignature")
	if err != nil || byHeader.Key.String() != key || string(byHeader.Hash) != string(byField.Hash) {
		t.Errorf("metadata: %v, %v; want the same key and hash as request_id's", byHeader, err)
	}
	other, _ := idempotency.FromRequest(context.Background(), &mailboxesv1.CreateSignatureRequest{Parent: "p", RequestId: key}, "users/a", "CreateSignature")
	if string(other.Hash) == string(byField.Hash) {
		t.Error("another request, the same hash")
	}
	for _, tt := range []struct {
		ctx   context.Context
		id    string
		field string
	}{
		{context.Background(), "not-a-uuid", "requestId"},
		{context.Background(), uuid.Nil.String(), "requestId"},
		{metadata.NewIncomingContext(context.Background(), metadata.Pairs(idempotency.MetadataKey, "x")), "", "Idempotency-Key"},
	} {
		_, err := idempotency.FromRequest(tt.ctx, req(tt.id), "users/a", "CreateSignature")
		var e *errs.Error
		if !errors.As(err, &e) || e.Kind != errs.InvalidArgument || len(e.Fields) != 1 || e.Fields[0].Field != tt.field {
			t.Errorf("key %q: %v, want InvalidArgument naming %s", tt.id, err, tt.field)
		}
	}
}

var table = fstest.MapFS{"00001_keys.sql": {Data: []byte(`-- +goose Up
CREATE TABLE idempotency_keys (
    caller text NOT NULL, method text NOT NULL, key uuid NOT NULL, request_hash bytea NOT NULL,
    resource text NOT NULL, create_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, method, key));
CREATE TABLE things (name text PRIMARY KEY);
-- +goose Down
DROP TABLE things;
DROP TABLE idempotency_keys;
`)}}

// TestConcurrentDuplicates: of 10 creates racing with one key, one creates
// and the others answer its resource.
func TestConcurrentDuplicates(t *testing.T) {
	pool := pgtest.NewPool(t, "idem", table)
	ctx := context.Background()
	key := uuid.NewString()
	create := func(i int) (string, error) {
		r, err := idempotency.FromRequest(ctx, &mailboxesv1.CreateSignatureRequest{Parent: "p", RequestId: key}, "users/a", "CreateThing")
		if err != nil {
			return "", err
		}
		if name, found, err := r.Find(ctx, pool); err != nil || found {
			return name, err
		}
		name := "things/" + uuid.NewString()
		err = pg.InTx(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO things VALUES ($1)", name); err != nil {
				return err
			}
			return r.Insert(ctx, tx, name)
		})
		if idempotency.IsRace(err) {
			name, _, err = r.Find(ctx, pool)
		}
		return name, err
	}
	var wg sync.WaitGroup
	names := make([]string, 10)
	errs := make([]error, 10)
	for i := range names {
		wg.Go(func() { names[i], errs[i] = create(i) })
	}
	wg.Wait()
	for i := range names {
		if errs[i] != nil || names[i] != names[0] || names[0] == "" {
			t.Errorf("create %d: %q, %v; want %q", i, names[i], errs[i], names[0])
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM things").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d things (%v), want 1", n, err)
	}
	// The same key with another request is refused.
	r, _ := idempotency.FromRequest(ctx, &mailboxesv1.CreateSignatureRequest{Parent: "other", RequestId: key}, "users/a", "CreateThing")
	if _, _, err := r.Find(ctx, pool); !isReused(err) {
		t.Errorf("the key reused: %v, want Conflict", err)
	}
	// Another caller's key is their own.
	r, _ = idempotency.FromRequest(ctx, &mailboxesv1.CreateSignatureRequest{Parent: "p", RequestId: key}, "users/b", "CreateThing")
	if _, found, err := r.Find(ctx, pool); found || err != nil {
		t.Errorf("another caller: found %v, %v", found, err)
	}
	if n, err := idempotency.Purge(ctx, pool); n != 0 || err != nil {
		t.Errorf("purged %d fresh keys (%v)", n, err)
	}
}

func isReused(err error) bool {
	var e *errs.Error
	return errors.As(err, &e) && e.Kind == errs.Conflict && e.Reason == "IDEMPOTENCY_KEY_REUSED"
}
