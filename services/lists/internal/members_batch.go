package lists

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"github.com/riverqueue/river"
)

// maxBatchMembers caps the members one BatchCreateMembers adds: one
// transaction, its rows and letters held in memory until it commits.
const maxBatchMembers = 1000

// insertMembers adds a batch of members in one statement; a member
// already there is skipped, and the keys of those added come back, so the
// caller can name the others.
const insertMembers = `INSERT INTO members (id, list_id, email, email_key, display_name, receive_own_posts)
SELECT id, $1, email, key, display, own FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bool[]) AS t(id, email, key, display, own)
ON CONFLICT (list_id, email_key) DO NOTHING RETURNING email_key`

// BatchCreateMembers adds up to maxBatchMembers members as CreateMember
// does each, in one transaction: the list's count changes once, the
// events and welcome letters are written in one statement each, and one
// audit record names the batch. All or nothing: an importer is told every
// address that is bad or a member already, by its index, and sends the
// rest again.
func (s *Server) BatchCreateMembers(ctx context.Context, req *listsv1.BatchCreateMembersRequest) (*listsv1.BatchCreateMembersResponse, error) {
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	reqs := req.GetRequests()
	if len(reqs) == 0 || len(reqs) > maxBatchMembers {
		return nil, errs.Field("requests", fmt.Sprintf("1 to %d members", maxBatchMembers))
	}
	ms := make([]*member, len(reqs))
	notices := make([]string, len(reqs))
	var bad []errs.FieldViolation
	seen := make(map[string]int, len(reqs))
	now := time.Now()
	for i, r := range reqs {
		field := fmt.Sprintf("requests[%d]", i)
		if r.GetParent() != req.GetParent() {
			bad = append(bad, errs.FieldViolation{Field: field + ".parent", Description: "the batch's parent"})
		}
		email := strings.TrimSpace(r.GetMember().GetEmail())
		if err := validate.Email(email); err != nil || email == "" {
			bad = append(bad, errs.FieldViolation{Field: field + ".member.email", Description: "want an address like ann@example.com"})
			continue
		}
		notices[i] = strings.TrimSpace(r.GetNotice())
		if len([]rune(notices[i])) > maxNotice {
			bad = append(bad, errs.FieldViolation{Field: field + ".notice", Description: fmt.Sprintf("at most %d characters", maxNotice)})
		}
		m := &member{id: uuid.Must(uuid.NewV7()), email: email, key: emailKey(email), display: strings.TrimSpace(r.GetMember().GetDisplayName()),
			createTime: now, ownPosts: r.GetMember().GetReceiveOwnPosts()}
		if j, ok := seen[m.key]; ok {
			bad = append(bad, errs.FieldViolation{Field: field + ".member.email", Description: fmt.Sprintf("the same address as requests[%d]", j)})
			continue
		}
		seen[m.key] = i
		ms[i] = m
	}
	if len(bad) > 0 {
		return nil, errs.Fields(bad...)
	}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	n := len(ms)
	mids, emails, keys, displays, owns := make([]uuid.UUID, n), make([]string, n), make([]string, n), make([]string, n), make([]bool, n)
	for i, m := range ms {
		mids[i], emails[i], keys[i], displays[i], owns[i] = m.id, m.email, m.key, m.display, m.ownPosts
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := findList(ctx, tx, ids)
		if err != nil {
			return err
		}
		// The list's row is locked once for the batch, as CreateMember
		// locks it for one.
		tag, err := tx.Exec(ctx, `UPDATE lists SET member_count = member_count + $2 WHERE id = $1 AND member_count + $2 <= $3`, ids.list, n, maxMembers)
		if err != nil {
			return fmt.Errorf("count members: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errs.E(errs.ResourceExhausted, "a list has at most %d members", maxMembers)
		}
		rows, _ := tx.Query(ctx, insertMembers, ids.list, mids, emails, keys, displays, owns)
		added, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("insert members: %w", err)
		}
		if len(added) < n {
			return alreadyMembers(ms, added)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM subscription_requests WHERE list_id = $1 AND email_key = ANY($2)`, ids.list, keys); err != nil {
			return fmt.Errorf("delete subscription requests: %w", err)
		}
		events := make([]outbox.Event, n)
		for i, m := range ms {
			events[i] = outbox.Event{Subject: listsevents.MemberCreated, Msg: &listsv1.MemberChanged{List: listName(ids.org, ids.ms, ids.list), Member: m.proto(ids), Actor: c.Name()}}
		}
		if err := outbox.WriteMany(ctx, tx, events); err != nil {
			return err
		}
		if err := s.welcomeMany(ctx, tx, l, reqs, ms, notices); err != nil {
			return err
		}
		return audit(ctx, tx, ids.org, c, "lists.member.batchCreate", listName(ids.org, ids.ms, ids.list), map[string]string{"count": fmt.Sprint(n)})
	})
	if err != nil {
		return nil, err
	}
	resp := &listsv1.BatchCreateMembersResponse{Members: make([]*listsv1.Member, n)}
	for i, m := range ms {
		resp.Members[i] = m.proto(ids)
	}
	return resp, nil
}

// alreadyMembers names the requests whose member was not added: those
// that are members of the list already: ALREADY_EXISTS, as CreateMember
// answers, with a field violation for each.
func alreadyMembers(ms []*member, added []string) error {
	in := make(map[string]bool, len(added))
	for _, k := range added {
		in[k] = true
	}
	var vs []errs.FieldViolation
	for i, m := range ms {
		if !in[m.key] {
			vs = append(vs, errs.FieldViolation{Field: fmt.Sprintf("requests[%d].member.email", i), Description: m.email + " is a member already"})
		}
	}
	e := errs.Fields(vs...)
	e.Kind = errs.AlreadyExists // as CreateMember's, naming each
	return e
}

// welcomeMany queues the welcome of each new member whose request is not
// silent, in one insert.
func (s *Server) welcomeMany(ctx context.Context, tx pgx.Tx, l *list, reqs []*listsv1.CreateMemberRequest, ms []*member, notices []string) error {
	var params []river.InsertManyParams
	for i, m := range ms {
		if reqs[i].GetSilent() {
			continue
		}
		text := l.welcome
		if notices[i] != "" {
			text = notices[i]
		}
		args, ok, err := renderLetter(l, welcomeLetter(l, m.email, text))
		if err != nil {
			return err
		}
		if ok {
			params = append(params, river.InsertManyParams{Args: args})
		}
	}
	if len(params) == 0 {
		return nil
	}
	if s.jobs == nil {
		return fmt.Errorf("queue welcomes: no jobs client")
	}
	if _, err := s.jobs.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("queue welcomes: %w", err)
	}
	return nil
}
