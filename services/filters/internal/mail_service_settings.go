package filters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	filtersv1 "github.com/mailplane/mailplane/proto/mailplane/filters/v1"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// serviceSettings are a mail service's block and allow lists, which its
// organization's admins keep for every address of it.
type serviceSettings struct {
	Blocked, Allowed []string
	Refuse           bool
	// Updated is zero when the lists were never set.
	Updated time.Time
}

// installBatch is how many install jobs one insert queues when a mail
// service's lists change every address's scripts.
const installBatch = 1000

const (
	// mailServiceKnown: the mail service belongs to the organization, as
	// far as this service has heard (an address of it, or its events).
	mailServiceKnown = `
SELECT EXISTS (SELECT 1 FROM addresses WHERE mail_service_id = $1 AND organization_id = $2)
    OR EXISTS (SELECT 1 FROM mail_services WHERE id = $1 AND organization_id = $2)
    OR EXISTS (SELECT 1 FROM mail_service_settings WHERE mail_service_id = $1 AND organization_id = $2)`
	selectServiceSettings = `
SELECT blocked_senders, allowed_senders, reject_blocked, update_time FROM mail_service_settings
WHERE mail_service_id = $1 AND organization_id = $2`
	upsertServiceSettings = `
INSERT INTO mail_service_settings (mail_service_id, organization_id, blocked_senders, allowed_senders, reject_blocked)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (mail_service_id) DO UPDATE SET blocked_senders = excluded.blocked_senders,
    allowed_senders = excluded.allowed_senders, reject_blocked = excluded.reject_blocked, update_time = now()
WHERE mail_service_settings.organization_id = excluded.organization_id
RETURNING update_time`
	// markMailService marks every address of the mail service.
	markMailService = `
INSERT INTO pending_installs (address_id)
SELECT id FROM addresses WHERE mail_service_id = $1 AND organization_id = $2` + onConflictPending + `
RETURNING address_id`
	// selectAddressServiceLists reads the lists of an address's mail
	// service, for its scripts.
	selectAddressServiceLists = `
SELECT m.blocked_senders, m.allowed_senders, m.reject_blocked
FROM mail_service_settings m JOIN addresses a ON a.mail_service_id = m.mail_service_id AND a.organization_id = m.organization_id
WHERE a.id = $1`
)

func serviceSettingsName(org, ms uuid.UUID) string {
	return "organizations/" + org.String() + "/mailServices/" + ms.String() + "/filterSettings"
}

func parseServiceSettings(field, name string) (org, ms uuid.UUID, err error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/mailServices/{mail_service}/filterSettings")
	if err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	return ids[0], ids[1], nil
}

func (st *serviceSettings) proto(org, ms uuid.UUID) *filtersv1.MailServiceFilterSettings {
	p := &filtersv1.MailServiceFilterSettings{Name: serviceSettingsName(org, ms), BlockedSenders: st.Blocked,
		AllowedSenders: st.Allowed, RejectBlocked: st.Refuse}
	if !st.Updated.IsZero() {
		p.UpdateTime = timestamppb.New(st.Updated)
	}
	return p
}

// readServiceSettings reads a mail service's lists in q; NotFound for a
// mail service the organization does not have; forUpdate locks the row.
func readServiceSettings(ctx context.Context, q pgx.Tx, org, ms uuid.UUID, forUpdate bool) (*serviceSettings, error) {
	var known bool
	if err := q.QueryRow(ctx, mailServiceKnown, ms, org).Scan(&known); err != nil {
		return nil, fmt.Errorf("find mail service: %w", err)
	}
	if !known {
		return nil, errs.E(errs.NotFound, "mail service %s not found", "organizations/"+org.String()+"/mailServices/"+ms.String())
	}
	sql := selectServiceSettings
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	st := &serviceSettings{Blocked: []string{}, Allowed: []string{}}
	err := q.QueryRow(ctx, sql, ms, org).Scan(&st.Blocked, &st.Allowed, &st.Refuse, &st.Updated)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read mail service settings: %w", err)
	}
	return st, nil
}

// manageService checks that the caller is an owner or admin of the
// organization (members: PermissionDenied; another organization:
// NotFound).
func (s *Server) manageService(ctx context.Context, org uuid.UUID) (access.Caller, error) {
	return s.roles.Manage(ctx, org)
}

func (s *Server) GetMailServiceFilterSettings(ctx context.Context, req *filtersv1.GetMailServiceFilterSettingsRequest) (*filtersv1.GetMailServiceFilterSettingsResponse, error) {
	org, ms, err := parseServiceSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.manageService(ctx, org); err != nil {
		return nil, err
	}
	var st *serviceSettings
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		st, err = readServiceSettings(ctx, tx, org, ms, false)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.GetMailServiceFilterSettingsResponse{MailServiceFilterSettings: st.proto(org, ms)}, nil
}

func (s *Server) UpdateMailServiceFilterSettings(ctx context.Context, req *filtersv1.UpdateMailServiceFilterSettingsRequest) (*filtersv1.UpdateMailServiceFilterSettingsResponse, error) {
	in := req.GetMailServiceFilterSettings()
	org, ms, err := parseServiceSettings("mailServiceFilterSettings.name", in.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.manageService(ctx, org)
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "blocked_senders", "allowed_senders", "reject_blocked")
	if err != nil {
		return nil, err
	}
	st, err := s.saveServiceSettings(ctx, org, ms, c, in, paths, false)
	if err != nil {
		return nil, err
	}
	return &filtersv1.UpdateMailServiceFilterSettingsResponse{MailServiceFilterSettings: st.proto(org, ms)}, nil
}

func (s *Server) ExportMailServiceSenders(ctx context.Context, req *filtersv1.ExportMailServiceSendersRequest) (*filtersv1.ExportMailServiceSendersResponse, error) {
	got, err := s.GetMailServiceFilterSettings(ctx, &filtersv1.GetMailServiceFilterSettingsRequest{Name: req.GetName()})
	if err != nil {
		return nil, err
	}
	st := got.GetMailServiceFilterSettings()
	return &filtersv1.ExportMailServiceSendersResponse{Csv: sendersCSV(&Settings{Blocked: st.GetBlockedSenders(), Allowed: st.GetAllowedSenders()})}, nil
}

func (s *Server) ImportMailServiceSenders(ctx context.Context, req *filtersv1.ImportMailServiceSendersRequest) (*filtersv1.ImportMailServiceSendersResponse, error) {
	org, ms, err := parseServiceSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	block, allow, err := parseSendersCSV(req.GetCsv())
	if err != nil {
		return nil, err
	}
	c, err := s.manageService(ctx, org)
	if err != nil {
		return nil, err
	}
	st, err := s.saveServiceSettings(ctx, org, ms, c,
		&filtersv1.MailServiceFilterSettings{Name: req.GetName(), BlockedSenders: block, AllowedSenders: allow},
		[]string{"blocked_senders", "allowed_senders"}, !req.GetReplace())
	if err != nil {
		return nil, err
	}
	return &filtersv1.ImportMailServiceSendersResponse{MailServiceFilterSettings: st.proto(org, ms)}, nil
}

// saveServiceSettings changes the paths of a mail service's lists to
// in's values (with add, in's senders are added to the lists), under the
// row's lock, and marks every address of the mail service for
// reinstallation, queueing their jobs in batches.
func (s *Server) saveServiceSettings(ctx context.Context, org, ms uuid.UUID, c access.Caller, in *filtersv1.MailServiceFilterSettings, paths []string, add bool) (*serviceSettings, error) {
	var st *serviceSettings
	var err error
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if st, err = readServiceSettings(ctx, tx, org, ms, true); err != nil {
			return err
		}
		var vs []errs.FieldViolation
		senders := func(field string, v []string, dst *[]string) {
			if add {
				v = append(slices.Clone(*dst), v...)
			}
			out, err := checkSenders(v)
			if err != nil {
				vs = append(vs, errs.FieldViolation{Field: "mailServiceFilterSettings." + camel(field) + err.field, Description: err.desc})
			}
			*dst = out
		}
		for _, p := range paths {
			switch p {
			case "blocked_senders":
				senders(p, in.GetBlockedSenders(), &st.Blocked)
			case "allowed_senders":
				senders(p, in.GetAllowedSenders(), &st.Allowed)
			case "reject_blocked":
				st.Refuse = in.GetRejectBlocked()
			}
		}
		if len(vs) == 0 {
			// What the platform scripts' compiler accepts, too.
			var e rules.Error
			p := rules.Platform{ServiceBlock: st.Blocked, ServiceAllow: st.Allowed, ServiceRefuse: true}
			if err := p.Validate(); errors.As(err, &e) {
				for _, v := range e {
					name, index, _ := strings.Cut(v.Field, "[")
					field := "mailServiceFilterSettings.blockedSenders"
					if name == "service_allow" {
						field = "mailServiceFilterSettings.allowedSenders"
					}
					if index != "" {
						field += "[" + index
					}
					vs = append(vs, errs.FieldViolation{Field: field, Description: v.Description})
				}
			} else if err != nil {
				return fmt.Errorf("validate settings: %w", err)
			}
		}
		if len(vs) > 0 {
			return errs.Fields(vs...)
		}
		err := tx.QueryRow(ctx, upsertServiceSettings, ms, org, st.Blocked, st.Allowed, st.Refuse).Scan(&st.Updated)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "mail service %s not found", "organizations/"+org.String()+"/mailServices/"+ms.String())
		}
		if err != nil {
			return fmt.Errorf("update mail service settings: %w", err)
		}
		if err := audit(ctx, tx, org, c, "filters.mail_service_filter_settings.update", serviceSettingsName(org, ms), nil); err != nil {
			return err
		}
		return s.changedMailService(ctx, tx, org, ms)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// changedMailService marks every address of ms to install, and queues
// their jobs in batches of installBatch, in tx.
func (s *Server) changedMailService(ctx context.Context, tx pgx.Tx, org, ms uuid.UUID) error {
	rows, err := tx.Query(ctx, markMailService, ms, org)
	if err != nil {
		return fmt.Errorf("mark the mail service's addresses: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("mark the mail service's addresses: %w", err)
	}
	if s.jobs == nil {
		return nil
	}
	for batch := range slices.Chunk(ids, installBatch) {
		params := make([]river.InsertManyParams, len(batch))
		for i, id := range batch {
			params[i] = river.InsertManyParams{Args: installArgs{Address: id}}
		}
		if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
			return fmt.Errorf("queue installs: %w", err)
		}
	}
	return nil
}
