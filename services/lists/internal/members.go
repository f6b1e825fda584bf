package lists

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxMembers caps a list's members.
const maxMembers = 100000

const (
	// memberFields are what scanMember reads, in its order.
	memberFields = `id, email, email_key, display_name, create_time, delivery, delivery_disabled_time,
  bounce_score, first_bounce_time, last_bounce_time, last_bounce_diagnostic, bounce_warnings_sent, receive_own_posts`
	memberColumns = `SELECT ` + memberFields + ` FROM members`
	insertMember  = `INSERT INTO members (id, list_id, email, email_key, display_name, receive_own_posts) VALUES ($1, $2, $3, $4, $5, $6)`
	// addMember counts the member in, refusing a full list.
	addMember    = `UPDATE lists SET member_count = member_count + 1 WHERE id = $1 AND member_count < $2`
	removeMember = `UPDATE lists SET member_count = member_count - 1 WHERE id = $1`
)

type member struct {
	id                  uuid.UUID
	email, key, display string
	createTime          time.Time
	// What bounces did (bounce.go); a new member's are zero.
	delivery                  int16
	disabledTime, first, last *time.Time
	score, warningsSent       int32
	diagnostic                string
	ownPosts                  bool
}

func scanMember(row pgx.CollectableRow) (*member, error) {
	m := &member{}
	return m, row.Scan(&m.id, &m.email, &m.key, &m.display, &m.createTime, &m.delivery, &m.disabledTime,
		&m.score, &m.first, &m.last, &m.diagnostic, &m.warningsSent, &m.ownPosts)
}

func (m *member) proto(ids listIDs) *listsv1.Member {
	p := &listsv1.Member{Name: memberName(ids.org, ids.ms, ids.list, m.id), Email: m.email, DisplayName: m.display, CreateTime: timestamppb.New(m.createTime),
		Delivery: listsv1.Delivery(m.delivery), DeliveryDisabledTime: optTime(m.disabledTime), BounceScore: m.score,
		FirstBounceTime: optTime(m.first), LastBounceTime: optTime(m.last), LastBounceDiagnostic: m.diagnostic, BounceWarningsSent: m.warningsSent,
		ReceiveOwnPosts: m.ownPosts}
	if p.Delivery == listsv1.Delivery_DELIVERY_UNSPECIFIED {
		p.Delivery = listsv1.Delivery_DELIVERY_ENABLED // a member made here, not read back
	}
	return p
}

// optTime is t as a proto timestamp, nil when unset.
func optTime(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// emailKey is how an address is compared: its local part as written, its
// domain in lower case (RFC 5321 leaves the local part's case to its
// server).
func emailKey(email string) string {
	at := strings.LastIndexByte(email, '@')
	return email[:at] + strings.ToLower(email[at:])
}

// maxNotice caps the welcome or goodbye text a moderator writes for one
// member.
const maxNotice = 5000

// CreateMember adds a member, by a moderator. The member is sent a
// welcome (the list's welcome_message, or the request's notice, in the
// list's words) unless the request is silent; a subscription of the
// address that waited is settled by it.
func (s *Server) CreateMember(ctx context.Context, req *listsv1.CreateMemberRequest) (*listsv1.CreateMemberResponse, error) {
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetMember()
	email := strings.TrimSpace(in.GetEmail())
	if err := validate.Email(email); err != nil || email == "" {
		return nil, errs.Field("member.email", "want an address like ann@example.com")
	}
	notice := strings.TrimSpace(req.GetNotice())
	if len([]rune(notice)) > maxNotice {
		return nil, errs.Field("notice", fmt.Sprintf("at most %d characters", maxNotice))
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	m := &member{id: uuid.Must(uuid.NewV7()), email: email, key: emailKey(email), display: strings.TrimSpace(in.GetDisplayName()), createTime: time.Now(),
		ownPosts: in.GetReceiveOwnPosts()}
	name := memberName(ids.org, ids.ms, ids.list, m.id)
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// The statements go in one round trip, as they need nothing from
		// each other: one at a time they were eight round trips a member
		// (docs/benchmarks.md). A refusal is read in their order, and
		// rolls back what came after it.
		b := &pgx.Batch{}
		b.Queue(listColumns+` WHERE id = $1 AND organization_id = $2 AND mail_service_id = $3`, ids.list, ids.org, ids.ms)
		b.Queue(addMember, ids.list, maxMembers)
		b.Queue(insertMember, m.id, ids.list, m.email, m.key, m.display, m.ownPosts)
		b.Queue(`DELETE FROM subscription_requests WHERE list_id = $1 AND email_key = $2`, ids.list, m.key)
		if err := outbox.Queue(ctx, b,
			outbox.Event{Subject: listsevents.MemberCreated, Msg: &listsv1.MemberChanged{List: listName(ids.org, ids.ms, ids.list), Member: m.proto(ids), Actor: c.Name()}},
			auditEvent(ctx, ids.org, c, "lists.member.create", name, map[string]string{"email": email})); err != nil {
			return err
		}
		br := tx.SendBatch(ctx, b)
		l, err := createMemberResults(br, email)
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("create member: %w", cerr)
		}
		if err != nil || req.GetSilent() {
			return err
		}
		text := l.welcome
		if notice != "" {
			text = notice
		}
		return s.welcome(ctx, tx, l, email, text)
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.CreateMemberResponse{Member: m.proto(ids)}, nil
}

// createMemberResults reads what CreateMember's batch did: the list, or
// the first refusal.
func createMemberResults(br pgx.BatchResults, email string) (*list, error) {
	rows, _ := br.Query()
	l, err := pgx.CollectOneRow(rows, scanList)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "list not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read list: %w", err)
	}
	tag, err := br.Exec()
	if err != nil {
		return nil, fmt.Errorf("count member: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, errs.E(errs.ResourceExhausted, "a list has at most %d members", maxMembers)
	}
	if _, err := br.Exec(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.ConstraintName == "members_email" {
			return nil, errs.E(errs.AlreadyExists, "%s is a member already", email)
		}
		return nil, fmt.Errorf("insert member: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("delete subscription request: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("write events: %w", err)
	}
	return l, nil
}

// UpdateMember changes a member's display name or whether they get their
// own posts; the address stays (a new address is a new consent).
func (s *Server) UpdateMember(ctx context.Context, req *listsv1.UpdateMemberRequest) (*listsv1.UpdateMemberResponse, error) {
	in := req.GetMember()
	v, err := aip.ParseIDs("member.name", in.GetName(), "organizations/{organization}/mailServices/{mail_service}/lists/{list}/members/{member}")
	if err != nil {
		return nil, err
	}
	ids := listIDs{v[0], v[1], v[2]}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "display_name", "receive_own_posts")
	if err != nil {
		return nil, err
	}
	display := strings.TrimSpace(in.GetDisplayName())
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	var m *member
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := findList(ctx, tx, ids); err != nil {
			return err // another organization's list, by its id
		}
		rows, _ := tx.Query(ctx, `UPDATE members SET
  display_name = CASE WHEN $3 THEN $4 ELSE display_name END,
  receive_own_posts = CASE WHEN $5 THEN $6 ELSE receive_own_posts END
WHERE id = $1 AND list_id = $2 RETURNING `+memberFields,
			v[3], ids.list, slices.Contains(paths, "display_name"), display, slices.Contains(paths, "receive_own_posts"), in.GetReceiveOwnPosts())
		m, err = pgx.CollectOneRow(rows, scanMember)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "member not found")
		}
		if err != nil {
			return fmt.Errorf("update member: %w", err)
		}
		if err := outbox.Write(ctx, tx, listsevents.MemberUpdated, &listsv1.MemberChanged{List: listName(ids.org, ids.ms, ids.list), Member: m.proto(ids), Actor: c.Name()}); err != nil {
			return err
		}
		return audit(ctx, tx, ids.org, c, "lists.member.update", in.GetName(), map[string]string{"fields": strings.Join(paths, " ")})
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.UpdateMemberResponse{Member: m.proto(ids)}, nil
}

// ListMembers lists a list's members, by address.
func (s *Server) ListMembers(ctx context.Context, req *listsv1.ListMembersRequest) (*listsv1.ListMembersResponse, error) {
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	filter, err := aip.ParseFilter(req.GetFilter(), map[string]aip.Match{"email": aip.Prefix, "delivery": aip.Equal})
	if err != nil {
		return nil, err
	}
	var delivery *int16
	if t, ok := filter.Get("delivery"); ok {
		v, ok := listsv1.Delivery_value[t.Value]
		if !ok || v == 0 {
			return nil, errs.Field("filter", "delivery takes DELIVERY_ENABLED or DELIVERY_DISABLED_BY_BOUNCES")
		}
		d := int16(v)
		delivery = &d
	}
	if _, _, err := s.roles.Access(ctx, ids.org); err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListMembers", req.GetParent(), req.GetFilter())
	if err != nil {
		return nil, err
	}
	if _, err := findList(ctx, s.pool, ids); err != nil {
		return nil, err
	}
	// The prefix is matched on the lower-cased address: people search in
	// any case.
	var match *string
	exact := false
	if t, ok := filter.Get("email"); ok {
		v := strings.ToLower(t.Value)
		match, exact = &v, !t.Prefix
	}
	var after *string
	if len(page.After) == 1 {
		after = &page.After[0]
	}
	const where = ` WHERE list_id = $1 AND ($2::text IS NULL OR CASE WHEN $3 THEN lower(email) = $2 ELSE starts_with(lower(email), $2) END)
  AND ($4::smallint IS NULL OR delivery = $4)`
	rows, _ := s.pool.Query(ctx, memberColumns+where+` AND ($5::text IS NULL OR email_key > $5) ORDER BY email_key LIMIT $6`, ids.list, match, exact, delivery, after, page.Size+1)
	ms, err := pgx.CollectRows(rows, scanMember)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	var total int32
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM members`+where, ids.list, match, exact, delivery).Scan(&total); err != nil {
		return nil, fmt.Errorf("count members: %w", err)
	}
	ms, next := aip.Trim(page, ms, func(m *member) []string { return []string{m.key} })
	resp := &listsv1.ListMembersResponse{NextPageToken: next, TotalSize: total}
	for _, m := range ms {
		resp.Members = append(resp.Members, m.proto(ids))
	}
	return resp, nil
}

// DeleteMember removes a member, by a moderator: the address is erased,
// and only when and how consent was given and withdrawn is kept. The
// member is sent a goodbye (the list's goodbye_message, or the request's
// notice, in the list's words) unless the request is silent.
func (s *Server) DeleteMember(ctx context.Context, req *listsv1.DeleteMemberRequest) (*listsv1.DeleteMemberResponse, error) {
	v, err := aip.ParseIDs("name", req.GetName(), "organizations/{organization}/mailServices/{mail_service}/lists/{list}/members/{member}")
	if err != nil {
		return nil, err
	}
	notice := strings.TrimSpace(req.GetNotice())
	if len([]rune(notice)) > maxNotice {
		return nil, errs.Field("notice", fmt.Sprintf("at most %d characters", maxNotice))
	}
	ids := listIDs{v[0], v[1], v[2]}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := findList(ctx, tx, ids)
		if err != nil {
			return err
		}
		m, err := eraseMember(ctx, tx, ids, v[3], "", "removed by a moderator", c.Name())
		if err != nil {
			return err
		}
		if !req.GetSilent() {
			text := l.goodbye
			if notice != "" {
				text = notice
			}
			if err := s.goodbye(ctx, tx, l, m.email, text); err != nil {
				return err
			}
		}
		return audit(ctx, tx, ids.org, c, "lists.member.delete", req.GetName(), map[string]string{"silent": fmt.Sprint(req.GetSilent())})
	})
	if err != nil {
		return nil, err
	}
	return &listsv1.DeleteMemberResponse{}, nil
}

// eraseMember deletes a member of list ids in tx and returns it as it
// was: the one erasure of a member, whoever asks (a moderator, the
// member leaving, the bounce sweep). The member is found by id, or by
// key (its email_key) when id is uuid.Nil. The list counts it out, a
// consent record keeps when it was given and how it was withdrawn
// (withdrawnBy), and the event names the member only, by actor. NotFound
// when it is not the list's.
func eraseMember(ctx context.Context, tx pgx.Tx, ids listIDs, id uuid.UUID, key, withdrawnBy, actor string) (*member, error) {
	var rows pgx.Rows
	if id != uuid.Nil {
		rows, _ = tx.Query(ctx, `DELETE FROM members WHERE id = $1 AND list_id = $2 RETURNING joined_by, `+memberFields, id, ids.list)
	} else {
		rows, _ = tx.Query(ctx, `DELETE FROM members WHERE email_key = $1 AND list_id = $2 RETURNING joined_by, `+memberFields, key, ids.list)
	}
	var givenBy string
	m, err := pgx.CollectOneRow(rows, func(row pgx.CollectableRow) (*member, error) {
		m := &member{}
		return m, row.Scan(&givenBy, &m.id, &m.email, &m.key, &m.display, &m.createTime, &m.delivery, &m.disabledTime,
			&m.score, &m.first, &m.last, &m.diagnostic, &m.warningsSent, &m.ownPosts)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "member not found")
	}
	if err != nil {
		return nil, fmt.Errorf("delete member: %w", err)
	}
	if _, err := tx.Exec(ctx, removeMember, ids.list); err != nil {
		return nil, fmt.Errorf("count member out: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO consents (id, list_id, given_time, given_by, withdrawn_by) VALUES ($1, $2, $3, $4, $5)`,
		uuid.Must(uuid.NewV7()), ids.list, m.createTime, givenBy, withdrawnBy); err != nil {
		return nil, fmt.Errorf("record consent: %w", err)
	}
	// The event names the member, not their address: erased means
	// erased, in the event stream too.
	gone := &listsv1.Member{Name: memberName(ids.org, ids.ms, ids.list, m.id)}
	if err := outbox.Write(ctx, tx, listsevents.MemberDeleted, &listsv1.MemberChanged{List: listName(ids.org, ids.ms, ids.list), Member: gone, Actor: actor}); err != nil {
		return nil, err
	}
	return m, nil
}
