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
	"github.com/mailplane/mailplane/services/filters/filtersevents"
	"github.com/mailplane/mailplane/services/filters/internal/rules"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Caps of the settings.
const (
	// maxSenders caps each of the block and allow lists.
	maxSenders = 1000
	// maxBatch caps the addresses one batch update names.
	maxBatch = 10000
)

// Settings are an address's platform filters.
type Settings struct {
	AntiSpam           bool
	SpamFolder         string
	AdFilter           bool
	NewsletterFolder   string
	NotificationFolder string
	Blocked, Allowed   []string
	RejectBlocked      bool
	ExternalMention    bool
	Updated            time.Time
	// Vacation is the auto-reply's script, as mailboxes rendered it;
	// empty: none.
	Vacation string
	// OwnDomains are the organization's verified domains, whose mail the
	// mention never marks.
	OwnDomains []string
	// ServiceBlocked, ServiceAllowed and ServiceRefuse are the mail
	// service's lists, which its admins keep for every address.
	ServiceBlocked, ServiceAllowed []string
	ServiceRefuse                  bool
}

const (
	settingsColumns = `anti_spam, spam_folder, ad_filter, newsletter_folder, notification_folder,
blocked_senders, allowed_senders, reject_blocked, external_mention, update_time`
	selectSettings = `SELECT ` + settingsColumns + ` FROM settings WHERE address_id = $1`
	updateSettings = `
UPDATE settings SET anti_spam = $2, spam_folder = $3, ad_filter = $4, newsletter_folder = $5,
    notification_folder = $6, blocked_senders = $7, allowed_senders = $8, reject_blocked = $9,
    external_mention = $10, update_time = now()
WHERE address_id = $1 RETURNING update_time`
	// batchSettings changes the addresses of ms named in $2 (all of them
	// when $2 is NULL); a NULL setting is unchanged. It returns the ids
	// of the addresses that changed.
	batchSettings = `
UPDATE settings s SET anti_spam = coalesce($3, s.anti_spam), ad_filter = coalesce($4, s.ad_filter),
    external_mention = coalesce($5, s.external_mention), update_time = now()
FROM addresses a
WHERE a.id = s.address_id AND a.mail_service_id = $1 AND a.organization_id = $6
  AND ($2::uuid[] IS NULL OR a.id = ANY($2))
  AND (s.anti_spam, s.ad_filter, s.external_mention) IS DISTINCT FROM
      (coalesce($3, s.anti_spam), coalesce($4, s.ad_filter), coalesce($5, s.external_mention))
RETURNING s.address_id`
	batchPending = `
INSERT INTO pending_installs (address_id) SELECT unnest($1::uuid[])` + onConflictPending
)

func scanSettings(row pgx.Row) (*Settings, error) {
	var st Settings
	err := row.Scan(&st.AntiSpam, &st.SpamFolder, &st.AdFilter, &st.NewsletterFolder, &st.NotificationFolder,
		&st.Blocked, &st.Allowed, &st.RejectBlocked, &st.ExternalMention, &st.Updated)
	return &st, err
}

func (st *Settings) proto(a addressIDs) *filtersv1.FilterSettings {
	return &filtersv1.FilterSettings{
		Name: settingsName(a), AntiSpam: st.AntiSpam, SpamFolder: st.SpamFolder, AdFilter: st.AdFilter,
		NewsletterFolder: st.NewsletterFolder, NotificationFolder: st.NotificationFolder,
		BlockedSenders: st.Blocked, AllowedSenders: st.Allowed, RejectBlocked: st.RejectBlocked,
		ExternalMention: st.ExternalMention, UpdateTime: timestamppb.New(st.Updated),
	}
}

// loadAll reads what a's scripts are compiled from, in tx.
func loadAll(ctx context.Context, tx pgx.Tx, a uuid.UUID) ([]*Rule, *Settings, error) {
	rules, err := listRules(ctx, tx, a)
	if err != nil {
		return nil, nil, err
	}
	st, err := scanSettings(tx.QueryRow(ctx, selectSettings, a))
	if err != nil {
		return nil, nil, fmt.Errorf("read settings: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT vacation_sieve FROM addresses WHERE id = $1`, a).Scan(&st.Vacation); err != nil {
		return nil, nil, fmt.Errorf("read auto-reply: %w", err)
	}
	rows, err := tx.Query(ctx, selectOwnDomains, a)
	if err != nil {
		return nil, nil, fmt.Errorf("read own domains: %w", err)
	}
	if st.OwnDomains, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, nil, fmt.Errorf("read own domains: %w", err)
	}
	err = tx.QueryRow(ctx, selectAddressServiceLists, a).Scan(&st.ServiceBlocked, &st.ServiceAllowed, &st.ServiceRefuse)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("read the mail service's lists: %w", err)
	}
	return rules, st, nil
}

func (s *Server) GetFilterSettings(ctx context.Context, req *filtersv1.GetFilterSettingsRequest) (*filtersv1.GetFilterSettingsResponse, error) {
	a, err := parseSettings("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.access(ctx, a); err != nil {
		return nil, err
	}
	st, err := scanSettings(s.pool.QueryRow(ctx, selectSettings, a.addr))
	if err == pgx.ErrNoRows {
		return nil, errs.E(errs.NotFound, "filter settings %s not found", req.GetName())
	}
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	p, err := s.withInstall(ctx, a, st.proto(a))
	if err != nil {
		return nil, err
	}
	return &filtersv1.GetFilterSettingsResponse{FilterSettings: p}, nil
}

// selectInstall is where an address's filters stand: without a pending
// row, every change is installed.
const selectInstall = `SELECT since, failed_time IS NOT NULL FROM pending_installs WHERE address_id = $1`

// withInstall sets p's install state, that of a's filters now: after a
// change, PENDING until the job installs it (or INSTALLED already).
func (s *Server) withInstall(ctx context.Context, a addressIDs, p *filtersv1.FilterSettings) (*filtersv1.FilterSettings, error) {
	var since time.Time
	var failed bool
	switch err := s.pool.QueryRow(ctx, selectInstall, a.addr).Scan(&since, &failed); {
	case errors.Is(err, pgx.ErrNoRows):
		p.InstallState = filtersv1.InstallState_INSTALL_STATE_INSTALLED
	case err != nil:
		return nil, fmt.Errorf("read install state: %w", err)
	case failed:
		p.InstallState, p.PendingSince = filtersv1.InstallState_INSTALL_STATE_FAILED, timestamppb.New(since)
	default:
		p.InstallState, p.PendingSince = filtersv1.InstallState_INSTALL_STATE_PENDING, timestamppb.New(since)
	}
	return p, nil
}

func (s *Server) UpdateFilterSettings(ctx context.Context, req *filtersv1.UpdateFilterSettingsRequest) (*filtersv1.UpdateFilterSettingsResponse, error) {
	in := req.GetFilterSettings()
	a, err := parseSettings("filterSettings.name", in.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.access(ctx, a)
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "anti_spam", "spam_folder", "ad_filter", "newsletter_folder",
		"notification_folder", "blocked_senders", "allowed_senders", "reject_blocked", "external_mention")
	if err != nil {
		return nil, err
	}
	st, err := s.saveSettings(ctx, a, c, in, paths, false)
	if err != nil {
		return nil, err
	}
	p, err := s.withInstall(ctx, a, st.proto(a))
	if err != nil {
		return nil, err
	}
	return &filtersv1.UpdateFilterSettingsResponse{FilterSettings: p}, nil
}

// saveSettings changes the paths of a's settings to in's values; with
// add, the senders in in are added to the lists rather than replacing
// them (the CSV import), read and written under the row's lock.
func (s *Server) saveSettings(ctx context.Context, a addressIDs, c access.Caller, in *filtersv1.FilterSettings, paths []string, add bool) (*Settings, error) {
	var st *Settings
	var err error
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		st, err = scanSettings(tx.QueryRow(ctx, selectSettings+` FOR UPDATE`, a.addr))
		if err == pgx.ErrNoRows {
			return errs.E(errs.NotFound, "filter settings %s not found", in.GetName())
		}
		if err != nil {
			return fmt.Errorf("read settings: %w", err)
		}
		var vs []errs.FieldViolation
		folder := func(field, v string, dst *string) {
			if err := checkFolder(v); err != nil {
				vs = append(vs, errs.FieldViolation{Field: "filterSettings." + camel(field), Description: err.Error()})
			}
			*dst = v
		}
		senders := func(field string, v []string, dst *[]string) {
			if add {
				v = append(slices.Clone(*dst), v...)
			}
			out, err := checkSenders(v)
			if err != nil {
				vs = append(vs, errs.FieldViolation{Field: "filterSettings." + camel(field) + err.field, Description: err.desc})
			}
			*dst = out
		}
		for _, p := range paths {
			switch p {
			case "anti_spam":
				st.AntiSpam = in.GetAntiSpam()
			case "spam_folder":
				folder(p, in.GetSpamFolder(), &st.SpamFolder)
			case "ad_filter":
				st.AdFilter = in.GetAdFilter()
			case "newsletter_folder":
				folder(p, in.GetNewsletterFolder(), &st.NewsletterFolder)
			case "notification_folder":
				folder(p, in.GetNotificationFolder(), &st.NotificationFolder)
			case "blocked_senders":
				senders(p, in.GetBlockedSenders(), &st.Blocked)
			case "allowed_senders":
				senders(p, in.GetAllowedSenders(), &st.Allowed)
			case "reject_blocked":
				st.RejectBlocked = in.GetRejectBlocked()
			case "external_mention":
				st.ExternalMention = in.GetExternalMention()
			}
		}
		if len(vs) == 0 {
			// What the platform scripts' compiler accepts, too.
			var e rules.Error
			if err := st.platform().Validate(); errors.As(err, &e) {
				for _, v := range e {
					name, index, _ := strings.Cut(v.Field, "[")
					field := "filterSettings." + platformFields[name]
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
		if err := tx.QueryRow(ctx, updateSettings, a.addr, st.AntiSpam, st.SpamFolder, st.AdFilter, st.NewsletterFolder,
			st.NotificationFolder, st.Blocked, st.Allowed, st.RejectBlocked, st.ExternalMention).Scan(&st.Updated); err != nil {
			return fmt.Errorf("update settings: %w", err)
		}
		if err := outbox.Write(ctx, tx, filtersevents.FilterSettingsUpdated, &filtersv1.FilterSettingsChanged{FilterSettings: st.proto(a), Actor: c.Name()}); err != nil {
			return err
		}
		if err := audit(ctx, tx, a.org, c, "filters.filter_settings.update", settingsName(a), nil); err != nil {
			return err
		}
		return s.changed(ctx, tx, a.addr)
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

type senderError struct{ field, desc string }

// checkSenders checks a block or allow list: addresses (local@domain)
// or domains, lower-cased, without duplicates, at most maxSenders.
func checkSenders(in []string) ([]string, *senderError) {
	if len(in) > maxSenders {
		return nil, &senderError{"", fmt.Sprintf("at most %d senders", maxSenders)}
	}
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for i, v := range in {
		v = strings.ToLower(strings.TrimSpace(v))
		domain := v
		if at := strings.LastIndexByte(v, '@'); at >= 0 {
			if !plausibleAddress(v) {
				return nil, &senderError{fmt.Sprintf("[%d]", i), fmt.Sprintf("want an address or a domain, got %q", in[i])}
			}
			domain = v[at+1:]
		}
		if !plausibleDomain(domain) {
			return nil, &senderError{fmt.Sprintf("[%d]", i), fmt.Sprintf("want an address or a domain, got %q", in[i])}
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

func plausibleDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	return !strings.ContainsFunc(d, func(r rune) bool {
		return r <= ' ' || r == 0x7f || strings.ContainsRune("\"<>,;@()[]\\/:", r)
	})
}

func (s *Server) BatchUpdateFilterSettings(ctx context.Context, req *filtersv1.BatchUpdateFilterSettingsRequest) (*filtersv1.BatchUpdateFilterSettingsResponse, error) {
	org, ms, err := parseMailService("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	if req.AntiSpam == nil && req.AdFilter == nil && req.ExternalMention == nil {
		return nil, errs.Field("anti_spam", "set at least one of anti_spam, ad_filter, external_mention")
	}
	if len(req.GetAddresses()) > maxBatch {
		return nil, errs.Field("addresses", fmt.Sprintf("at most %d addresses; none for all of the mail service's", maxBatch))
	}
	var ids []uuid.UUID
	for i, n := range req.GetAddresses() {
		a, err := parseAddress(fmt.Sprintf("addresses[%d]", i), n)
		if err != nil {
			return nil, err
		}
		if a.org != org || a.ms != ms {
			return nil, errs.Field(fmt.Sprintf("addresses[%d]", i), "not an address of "+req.GetParent())
		}
		ids = append(ids, a.addr)
	}
	var changed []uuid.UUID
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, batchSettings, ms, ids, req.AntiSpam, req.AdFilter, req.ExternalMention, org)
		if err != nil {
			return fmt.Errorf("update settings: %w", err)
		}
		if changed, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return fmt.Errorf("update settings: %w", err)
		}
		if len(changed) == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, batchPending, changed); err != nil {
			return fmt.Errorf("mark scripts to install: %w", err)
		}
		if s.jobs != nil {
			params := make([]river.InsertManyParams, len(changed))
			for i, id := range changed {
				params[i] = river.InsertManyParams{Args: installArgs{Address: id}}
			}
			if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("queue installs: %w", err)
			}
		}
		return audit(ctx, tx, org, c, "filters.filter_settings.batch_update", req.GetParent(), map[string]string{"addresses": fmt.Sprint(len(changed))})
	})
	if err != nil {
		return nil, err
	}
	return &filtersv1.BatchUpdateFilterSettingsResponse{UpdatedCount: int32(len(changed))}, nil
}

// camel is a snake_case field's JSON name, as errors name fields.
func camel(f string) string {
	parts := strings.Split(f, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}
