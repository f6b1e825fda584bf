package accounts

import (
	"context"

	"github.com/google/uuid"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"google.golang.org/protobuf/proto"
)

// idempotencyKey reads the idempotency key of c's create (method) with req:
// its request_id or the edge's Idempotency-Key (platform/idempotency).
func idempotencyKey(ctx context.Context, req proto.Message, c access.Caller, method string) (idempotency.Request, error) {
	return idempotency.FromRequest(ctx, req, c.Name(), method)
}

// keyed runs create, which records k in its own transaction (k.Insert, first,
// so that a concurrent retry waits for it), unless k already made
// something, or a concurrent request with k committed first: then replay
// answers with what k made, by its resource name.
func (s *Server) keyed(ctx context.Context, k idempotency.Request, create func() error, replay func(name string) error) error {
	name, found, err := k.Find(ctx, s.store.pool)
	if err != nil {
		return err
	}
	if found {
		return replay(name)
	}
	err = create()
	if idempotency.IsRace(err) {
		name, found, err := k.Find(ctx, s.store.pool)
		if err != nil {
			return err
		}
		if !found {
			return errs.E(errs.Conflict, "a request with this idempotency key ran at the same time; try again")
		}
		return replay(name)
	}
	if err == nil && !k.None() {
		// Keys past their day are deleted as new ones come: accounts has
		// no background loop to do it.
		if _, err := idempotency.Purge(ctx, s.store.pool); err != nil {
			s.log.WarnContext(ctx, "purge idempotency keys", "error", err)
		}
	}
	return err
}

// lastID is the id that ends a resource name ("organizations/x/members/id").
func lastID(name string) uuid.UUID {
	id, _ := uuid.Parse(name[max(0, len(name)-36):])
	return id
}
