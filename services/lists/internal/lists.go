package lists

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/passwords"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits of a list's settings.
const (
	maxLists           = 200 // per mail service
	maxModerators      = 50
	defaultMessageSize = 10 << 20
	maxMessageSize     = 50 << 20
)

// robots returns the local parts a list reserves: its own and its robot
// addresses' (commands.Robots).
func robots(localKey string) []string { return commands.Robots(localKey) }

// localPartRE is what a list's local part may be: its robot addresses
// ("-bounces+member=…") must stay valid local parts, so letters, digits and
// the separators that need no quoting, at most 50 long.
var localPartRE = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,48}[A-Za-z0-9])?$`)

const (
	listColumns = `SELECT id, organization_id, mail_service_id, local_part, domain, display_name, description, moderators,
  language, subscription_policy, posting_policy, reply_to, subject_prefix, max_message_bytes, footer_text, footer_html,
  welcome_message, goodbye_message, moderator_password <> '', member_count, create_time, update_time,
  bounce_score_threshold, bounce_info_stale_days, bounce_warnings, bounce_warning_interval_days FROM lists`
	insertList = `
INSERT INTO lists (id, organization_id, mail_service_id, local_part, local_key, domain, display_name, description, moderators,
  language, subscription_policy, posting_policy, reply_to, subject_prefix, max_message_bytes, footer_text, footer_html,
  welcome_message, goodbye_message, moderator_password,
  bounce_score_threshold, bounce_info_stale_days, bounce_warnings, bounce_warning_interval_days)
VALUES ($1, $2, $3, $4, lower($4), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`
	updateList = `
UPDATE lists SET display_name = $2, description = $3, moderators = $4, language = $5, subscription_policy = $6,
  posting_policy = $7, reply_to = $8, subject_prefix = $9, max_message_bytes = $10, footer_text = $11, footer_html = $12,
  welcome_message = $13, goodbye_message = $14, moderator_password = COALESCE($15, moderator_password),
  bounce_score_threshold = $16, bounce_info_stale_days = $17, bounce_warnings = $18, bounce_warning_interval_days = $19,
  update_time = now()
WHERE id = $1`
)

// list is a list as stored.
type list struct {
	id, org, ms              uuid.UUID
	localPart, domain        string
	displayName, description string
	moderators               []moderator
	language, subscription   int16
	posting, replyTo         int16
	prefix                   string
	maxBytes                 int64
	footerText, footerHTML   string
	welcome, goodbye         string
	hasPassword              bool
	memberCount              int32
	createTime, updateTime   time.Time
	password                 *string // a new hash to store, on updates
	bounce                   bounceSettings
}

// moderator is a moderator as stored in lists.moderators: an email, or a
// user of the organization with their login email as accounts last
// answered (UserEmail, never shown in the API: the mail path's copy;
// empty once the login was released).
type moderator struct {
	User      string `json:"user,omitempty"`
	Email     string `json:"email,omitempty"`
	UserEmail string `json:"user_email,omitempty"`
}

func scanList(row pgx.CollectableRow) (*list, error) {
	l := &list{}
	var mods []byte
	err := row.Scan(&l.id, &l.org, &l.ms, &l.localPart, &l.domain, &l.displayName, &l.description, &mods,
		&l.language, &l.subscription, &l.posting, &l.replyTo, &l.prefix, &l.maxBytes, &l.footerText, &l.footerHTML,
		&l.welcome, &l.goodbye, &l.hasPassword, &l.memberCount, &l.createTime, &l.updateTime,
		&l.bounce.threshold, &l.bounce.staleDays, &l.bounce.warnings, &l.bounce.intervalDays)
	if err == nil {
		err = json.Unmarshal(mods, &l.moderators)
	}
	return l, err
}

func (l *list) proto() *listsv1.List {
	p := &listsv1.List{
		Name: listName(l.org, l.ms, l.id), LocalPart: l.localPart, Address: l.localPart + "@" + l.domain,
		DisplayName: l.displayName, Description: l.description,
		Language: listsv1.Language(l.language), SubscriptionPolicy: listsv1.SubscriptionPolicy(l.subscription),
		PostingPolicy: listsv1.PostingPolicy(l.posting), ReplyTo: listsv1.ReplyTo(l.replyTo),
		SubjectPrefix: l.prefix, MaxMessageBytes: l.maxBytes, FooterText: l.footerText, FooterHtml: l.footerHTML,
		WelcomeMessage: l.welcome, GoodbyeMessage: l.goodbye, HasModeratorPassword: l.hasPassword,
		MemberCount: l.memberCount, CreateTime: timestamppb.New(l.createTime), UpdateTime: timestamppb.New(l.updateTime),
		BounceSettings: l.bounce.proto(),
	}
	for _, m := range l.moderators {
		p.Moderators = append(p.Moderators, &listsv1.Moderator{User: m.User, Email: m.Email})
	}
	return p
}

// updatable are the fields UpdateList changes.
var updatable = []string{"display_name", "description", "moderators", "language", "subscription_policy", "posting_policy",
	"reply_to", "subject_prefix", "max_message_bytes", "footer_text", "footer_html", "welcome_message", "goodbye_message",
	"moderator_password", "bounce_settings"}

// apply sets the fields paths of in on l, checking each; errors name the
// field under prefix ("list.").
func (l *list) apply(in *listsv1.List, paths []string) error {
	var v []errs.FieldViolation
	bad := func(field, msg string) { v = append(v, errs.FieldViolation{Field: "list." + field, Description: msg}) }
	for _, p := range paths {
		switch p {
		case "display_name":
			l.displayName = strings.TrimSpace(in.GetDisplayName())
		case "description":
			l.description = in.GetDescription()
		case "moderators":
			if len(in.GetModerators()) > maxModerators {
				bad("moderators", fmt.Sprintf("at most %d moderators", maxModerators))
				continue
			}
			l.moderators = nil
			for i, m := range in.GetModerators() {
				user := ""
				switch {
				case m.GetUser() != "" && m.GetEmail() != "":
					bad(fmt.Sprintf("moderators[%d]", i), "set user or email, not both")
				case m.GetUser() != "":
					if _, err := aip.ParseIDs(fmt.Sprintf("list.moderators[%d].user", i), m.GetUser(), "users/{user}"); err != nil {
						bad(fmt.Sprintf("moderators[%d].user", i), `want "users/{user}"`)
					}
					// Stored as accounts' events name users, so that they
					// find it.
					user = strings.ToLower(m.GetUser())
				case m.GetEmail() != "":
					if err := validate.Email(m.GetEmail()); err != nil {
						bad(fmt.Sprintf("moderators[%d].email", i), err.Error())
					}
				default:
					bad(fmt.Sprintf("moderators[%d]", i), "set user or email")
				}
				mod := moderator{User: user, Email: strings.TrimSpace(m.GetEmail())}
				if !slices.Contains(l.moderators, mod) {
					l.moderators = append(l.moderators, mod)
				}
			}
		case "language":
			l.language = enumOr(int32(in.GetLanguage()), int32(listsv1.Language_LANGUAGE_EN), len(listsv1.Language_name), func() { bad("language", "unknown language") })
		case "subscription_policy":
			l.subscription = enumOr(int32(in.GetSubscriptionPolicy()), int32(listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM), len(listsv1.SubscriptionPolicy_name), func() { bad("subscriptionPolicy", "unknown policy") })
		case "posting_policy":
			l.posting = enumOr(int32(in.GetPostingPolicy()), int32(listsv1.PostingPolicy_POSTING_POLICY_MEMBERS), len(listsv1.PostingPolicy_name), func() { bad("postingPolicy", "unknown policy") })
		case "reply_to":
			l.replyTo = enumOr(int32(in.GetReplyTo()), int32(listsv1.ReplyTo_REPLY_TO_SENDER), len(listsv1.ReplyTo_name), func() { bad("replyTo", "unknown mode") })
		case "subject_prefix":
			l.prefix = strings.TrimSpace(in.GetSubjectPrefix())
		case "max_message_bytes":
			switch n := in.GetMaxMessageBytes(); {
			case n == 0:
				l.maxBytes = defaultMessageSize
			case n < 0 || n > maxMessageSize:
				bad("maxMessageBytes", fmt.Sprintf("want 1 to %d bytes (0: 10 MB)", maxMessageSize))
			default:
				l.maxBytes = n
			}
		case "footer_text":
			l.footerText = in.GetFooterText()
		case "footer_html":
			l.footerHTML = in.GetFooterHtml()
		case "welcome_message":
			l.welcome = in.GetWelcomeMessage()
		case "goodbye_message":
			l.goodbye = in.GetGoodbyeMessage()
		case "moderator_password":
			pw := in.GetModeratorPassword()
			if pw == "" {
				l.password = &pw // removes it
				continue
			}
			if n := utf8.RuneCountInString(pw); n < 12 {
				bad("moderatorPassword", "at least 12 characters")
				continue
			}
			h, err := passwords.Hash(pw)
			if err != nil {
				return err
			}
			l.password = &h
		case "bounce_settings":
			b, fv := parseBounceSettings(in.GetBounceSettings(), "list.bounceSettings.")
			v = append(v, fv...)
			l.bounce = b
		}
	}
	if len(v) > 0 {
		return errs.Fields(v...)
	}
	return nil
}

// enumOr returns v, or def when v is 0; an unknown v calls bad.
func enumOr(v, def int32, n int, bad func()) int16 {
	switch {
	case v == 0:
		return int16(def)
	case v < 0 || int(v) >= n:
		bad()
		return int16(def)
	}
	return int16(v)
}

// CreateList makes a list and reserves its addresses.
func (s *Server) CreateList(ctx context.Context, req *listsv1.CreateListRequest) (*listsv1.CreateListResponse, error) {
	org, ms, err := parseMailService("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetList()
	if !localPartRE.MatchString(in.GetLocalPart()) {
		return nil, errs.Field("list.localPart", "want 1 to 50 letters, digits, dots, hyphens or underscores, starting and ending with a letter or digit")
	}
	l := &list{id: uuid.Must(uuid.NewV7()), org: org, ms: ms, localPart: in.GetLocalPart()}
	// Every field gets its value or its default.
	if err := l.apply(in, updatable); err != nil {
		return nil, err
	}
	if l.displayName == "" {
		l.displayName = l.localPart
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	if err := s.resolveModerators(ctx, org, l.moderators); err != nil {
		return nil, err
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM lists WHERE mail_service_id = $1`, ms).Scan(&n); err != nil {
		return nil, fmt.Errorf("count lists: %w", err)
	}
	if n >= maxLists {
		return nil, errs.E(errs.ResourceExhausted, "a mail service has at most %d lists", maxLists)
	}
	if l.domain, err = s.mailboxes.Domain(ctx, org, ms); err != nil {
		return nil, err
	}
	// The addresses first: once they are ours no address can take them.
	// A retry of this call reserves again under new request ids; what a
	// failed call reserved is released before it answers.
	key := strings.ToLower(l.localPart)
	var reserved []string
	release := func() {
		for _, lp := range reserved {
			if err := s.mailboxes.Release(context.WithoutCancel(ctx), org, ms, lp); err != nil {
				s.log.ErrorContext(ctx, "release a list address", "localPart", lp, "error", err)
			}
		}
	}
	for _, lp := range robots(key) {
		if err := s.mailboxes.Reserve(ctx, org, ms, lp, uuid.NewSHA1(l.id, []byte(lp))); err != nil {
			release()
			if errs.Is(err, errs.AlreadyExists) {
				return nil, errs.E(errs.AlreadyExists, "list.localPart: %s@%s is taken; a list needs its address and %s free", lp, l.domain, strings.Join(robots(key)[1:], ", "))
			}
			return nil, err
		}
		reserved = append(reserved, lp)
	}
	mods, _ := json.Marshal(l.moderators)
	hash := ""
	if l.password != nil {
		hash = *l.password
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertList, l.id, org, ms, l.localPart, l.domain, l.displayName, l.description, mods,
			l.language, l.subscription, l.posting, l.replyTo, l.prefix, l.maxBytes, l.footerText, l.footerHTML, l.welcome, l.goodbye, hash,
			l.bounce.threshold, l.bounce.staleDays, l.bounce.warnings, l.bounce.intervalDays); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.ConstraintName == "lists_local_key" {
				return errs.E(errs.AlreadyExists, "list.localPart: %s@%s is a list already", l.localPart, l.domain)
			}
			return fmt.Errorf("insert list: %w", err)
		}
		rows, _ := tx.Query(ctx, listColumns+` WHERE id = $1`, l.id)
		stored, err := pgx.CollectOneRow(rows, scanList)
		if err != nil {
			return fmt.Errorf("read list: %w", err)
		}
		l = stored
		if err := outbox.Write(ctx, tx, listsevents.ListCreated, &listsv1.ListChanged{List: l.proto(), Actor: c.Name()}); err != nil {
			return err
		}
		return audit(ctx, tx, org, c, "lists.list.create", listName(org, ms, l.id), map[string]string{"address": l.localPart + "@" + l.domain})
	})
	if err != nil {
		release()
		return nil, err
	}
	return &listsv1.CreateListResponse{List: l.proto()}, nil
}

// findList returns list ids; NotFound when it is not the organization's.
func findList(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, ids listIDs) (*list, error) {
	rows, _ := q.Query(ctx, listColumns+` WHERE id = $1 AND organization_id = $2 AND mail_service_id = $3`, ids.list, ids.org, ids.ms)
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "list not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	return l, nil
}

// GetList returns a list.
func (s *Server) GetList(ctx context.Context, req *listsv1.GetListRequest) (*listsv1.GetListResponse, error) {
	ids, err := parseList("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, ids.org); err != nil {
		return nil, err
	}
	l, err := findList(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	return &listsv1.GetListResponse{List: l.proto()}, nil
}

// ListLists lists a mail service's lists, by local part.
func (s *Server) ListLists(ctx context.Context, req *listsv1.ListListsRequest) (*listsv1.ListListsResponse, error) {
	org, ms, err := parseMailService("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListLists", req.GetParent())
	if err != nil {
		return nil, err
	}
	var after *string
	if len(page.After) == 1 {
		after = &page.After[0]
	}
	rows, _ := s.pool.Query(ctx, listColumns+` WHERE organization_id = $1 AND mail_service_id = $2 AND ($3::text IS NULL OR local_key > $3)
ORDER BY local_key LIMIT $4`, org, ms, after, page.Size+1)
	ls, err := pgx.CollectRows(rows, scanList)
	if err != nil {
		return nil, fmt.Errorf("list lists: %w", err)
	}
	ls, next := aip.Trim(page, ls, func(l *list) []string { return []string{strings.ToLower(l.localPart)} })
	resp := &listsv1.ListListsResponse{NextPageToken: next}
	for _, l := range ls {
		resp.Lists = append(resp.Lists, l.proto())
	}
	return resp, nil
}

// UpdateList changes a list's settings.
func (s *Server) UpdateList(ctx context.Context, req *listsv1.UpdateListRequest) (*listsv1.UpdateListResponse, error) {
	in := req.GetList()
	ids, err := parseList("list.name", in.GetName())
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, updatable...)
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	// The users among the new moderators are asked of accounts before the
	// transaction, which holds no row while another service answers.
	var mods list
	if slices.Contains(paths, "moderators") {
		if err := mods.apply(in, []string{"moderators"}); err != nil {
			return nil, err
		}
		if err := s.resolveModerators(ctx, ids.org, mods.moderators); err != nil {
			return nil, err
		}
	}
	var l *list
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if l, err = findList(ctx, tx, ids); err != nil {
			return err
		}
		if err := l.apply(in, paths); err != nil {
			return err
		}
		if slices.Contains(paths, "moderators") {
			l.moderators = mods.moderators
		}
		if slices.Contains(paths, "display_name") && l.displayName == "" {
			l.displayName = l.localPart
		}
		mods, _ := json.Marshal(l.moderators)
		if _, err := tx.Exec(ctx, updateList, l.id, l.displayName, l.description, mods, l.language, l.subscription, l.posting,
			l.replyTo, l.prefix, l.maxBytes, l.footerText, l.footerHTML, l.welcome, l.goodbye, l.password,
			l.bounce.threshold, l.bounce.staleDays, l.bounce.warnings, l.bounce.intervalDays); err != nil {
			return fmt.Errorf("update list: %w", err)
		}
		if l, err = findList(ctx, tx, ids); err != nil {
			return err
		}
		if err := outbox.Write(ctx, tx, listsevents.ListUpdated, &listsv1.ListChanged{List: l.proto(), Actor: c.Name()}); err != nil {
			return err
		}
		return audit(ctx, tx, ids.org, c, "lists.list.update", in.GetName(), map[string]string{"fields": strings.Join(paths, " ")})
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.UpdateListResponse{List: l.proto()}, nil
}

// DeleteList deletes a list and its members, and releases its addresses:
// they are released first, with the caller's rights, so that a list that
// is gone never holds an address; a failed release leaves the list, and
// deleting it again finishes.
func (s *Server) DeleteList(ctx context.Context, req *listsv1.DeleteListRequest) (*listsv1.DeleteListResponse, error) {
	ids, err := parseList("name", req.GetName())
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	l, err := findList(ctx, s.pool, ids)
	if err != nil {
		return nil, err
	}
	for _, lp := range robots(strings.ToLower(l.localPart)) {
		if err := s.mailboxes.Release(ctx, ids.org, ids.ms, lp); err != nil {
			return nil, err
		}
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM lists WHERE id = $1`, l.id)
		if err != nil {
			return fmt.Errorf("delete list: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // deleted meanwhile
		}
		if err := outbox.Write(ctx, tx, listsevents.ListDeleted, &listsv1.ListChanged{List: l.proto(), Actor: c.Name()}); err != nil {
			return err
		}
		return audit(ctx, tx, ids.org, c, "lists.list.delete", req.GetName(), map[string]string{"address": l.localPart + "@" + l.domain})
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.DeleteListResponse{}, nil
}
