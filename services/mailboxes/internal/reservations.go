package mailboxes

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// A reservation holds a local part of a mail service for another service
// (its holder), so that no address takes it: a row of local_parts with a
// holder and no address.

const (
	insertLocalPart = `
INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias, holder) VALUES ($1, $2, $3, $4, $5)`

	deleteReservation = `DELETE FROM local_parts WHERE mail_service_id = $1 AND local_key = $2 AND holder IS NOT NULL`
)

// CreateReservation reserves a local part for another service.
func (s *Server) CreateReservation(ctx context.Context, req *mailboxesv1.CreateReservationRequest) (*mailboxesv1.CreateReservationResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	if err := checkLocalPart(req.GetLocalPart()); err != nil {
		return nil, errs.Field("localPart", err.Error())
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateReservation")
	if err != nil {
		return nil, err
	}
	if done != "" {
		return &mailboxesv1.CreateReservationResponse{Name: done}, nil
	}
	key := localKey(req.GetLocalPart())
	name := mailServiceName(ids[0], ids[1]) + "/reservations/" + key
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, name); err != nil {
			return err
		}
		if _, err := activeMailService(ctx, tx, ids[0], ids[1]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, insertLocalPart, ids[1], key, nil, false, req.GetHolder()); err != nil {
			if pg.IsUniqueViolation(err, "") {
				return errs.E(errs.AlreadyExists, "%q is already taken on this mail service", key).WithReason("LOCAL_PART_TAKEN")
			}
			return fmt.Errorf("reserve: %w", err)
		}
		return audit(ctx, tx, organizationName(ids[0]), c, "mailboxes.reservation.create", name, map[string]string{"holder": req.GetHolder()})
	})
	if err != nil {
		if name, err = s.raced(ctx, idem, err); err != nil {
			return nil, err
		}
	}
	return &mailboxesv1.CreateReservationResponse{Name: name}, nil
}

// DeleteReservation releases a reserved local part.
func (s *Server) DeleteReservation(ctx context.Context, req *mailboxesv1.DeleteReservationRequest) (*mailboxesv1.DeleteReservationResponse, error) {
	i := strings.LastIndex(req.GetName(), "/reservations/")
	if i < 0 {
		return nil, errs.Field("name", "must be a name like organizations/{id}/mailServices/{id}/reservations/{localPart}")
	}
	ids, err := parseName("name", req.GetName()[:i], "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	key := localKey(req.GetName()[i+len("/reservations/"):])
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, deleteReservation, ids[1], key)
		if err != nil {
			return fmt.Errorf("release reservation: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.NotFound, "no reservation of %q", key)
		}
		return audit(ctx, tx, organizationName(ids[0]), c, "mailboxes.reservation.delete", req.GetName(), nil)
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.DeleteReservationResponse{}, nil
}
