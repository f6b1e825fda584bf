package pg_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

// TestUUID round-trips ids, nullable ids and arrays of them, and compares
// with what PostgreSQL itself prints, so a codec that mangled bytes would
// show.
func TestUUID(t *testing.T) {
	pool := connect(t, pgtest.NewDatabase(t), "ids")
	ctx := context.Background()
	id := uuid.MustParse("0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091")
	other := uuid.New()

	var text string
	var back uuid.UUID
	var null *uuid.UUID
	var some *uuid.UUID
	var list []uuid.UUID
	err := pool.QueryRow(ctx, `SELECT $1::uuid::text, $1::uuid, NULL::uuid, $2::uuid, $3::uuid[]`, id, &other, []uuid.UUID{id, other}).
		Scan(&text, &back, &null, &some, &list)
	if err != nil {
		t.Fatal(err)
	}
	if text != id.String() || back != id || null != nil || some == nil || *some != other {
		t.Errorf("got %s %s %v %v", text, back, null, some)
	}
	if diff := cmp.Diff([]uuid.UUID{id, other}, list); diff != "" {
		t.Errorf("array (-want +got):\n%s", diff)
	}
	if err := pool.QueryRow(ctx, `SELECT NULL::uuid`).Scan(&back); err == nil {
		t.Error("NULL scanned into uuid.UUID without an error")
	}
	if err := pool.QueryRow(ctx, `SELECT $1::text::uuid`, "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091").Scan(&back); err != nil || back != id {
		t.Errorf("parsed by PostgreSQL: %s %v", back, err)
	}
}
