package lists

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The reasons a subscription waits, as the API shows them.
var requestReasons = map[int16]string{
	awaitsSubscriber: "awaits the subscriber's confirmation",
	awaitsModerator:  "awaits a moderator's approval",
}

func (r *subRequest) proto(ids listIDs) *listsv1.SubscriptionRequest {
	ttl := subscriberTokenTTL
	if r.state == awaitsModerator {
		ttl = moderatorTokenTTL
	}
	return &listsv1.SubscriptionRequest{
		Name:  listName(ids.org, ids.ms, ids.list) + "/subscriptionRequests/" + r.id.String(),
		Email: r.email, DisplayName: r.display, State: listsv1.SubscriptionRequest_State(r.state),
		Reason: requestReasons[r.state], Via: r.via,
		CreateTime: timestamppb.New(r.createTime), ExpireTime: timestamppb.New(r.modified.Add(ttl)),
	}
}

// ListSubscriptionRequests lists a list's waiting subscriptions, newest
// first.
func (s *Server) ListSubscriptionRequests(ctx context.Context, req *listsv1.ListSubscriptionRequestsRequest) (*listsv1.ListSubscriptionRequestsResponse, error) {
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListSubscriptionRequests", req.GetParent())
	if err != nil {
		return nil, err
	}
	afterKey, afterID, err := page.Cursor(true)
	if err != nil {
		return nil, err
	}
	if _, err := s.roles.Manage(ctx, ids.org); err != nil {
		return nil, err
	}
	if _, err := findList(ctx, s.pool, ids); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, `SELECT `+subRequestColumns+` FROM subscription_requests WHERE list_id = $1`+aip.Seek("create_time", "timestamptz", "id", true, 3, 2),
		ids.list, page.Size+1, afterKey, afterID)
	rs, err := pgx.CollectRows(rows, scanSubRequest)
	if err != nil {
		return nil, fmt.Errorf("list subscription requests: %w", err)
	}
	var total int32
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM subscription_requests WHERE list_id = $1`, ids.list).Scan(&total); err != nil {
		return nil, fmt.Errorf("count subscription requests: %w", err)
	}
	rs, next := aip.Trim(page, rs, func(r *subRequest) []string { return []string{aip.TimeKey(r.createTime), r.id.String()} })
	resp := &listsv1.ListSubscriptionRequestsResponse{NextPageToken: next, TotalSize: total}
	for _, r := range rs {
		resp.SubscriptionRequests = append(resp.SubscriptionRequests, r.proto(ids))
	}
	return resp, nil
}

// decideOverAPI is what the three decisions over the API share: the
// caller must manage the organization; in one transaction the request
// is decided and the audit record written. A request still waiting for
// its subscriber may only be discarded.
func (s *Server) decideOverAPI(ctx context.Context, name string, verb commands.Verb, reason string) (*member, error) {
	v, err := aip.ParseIDs("name", name, "organizations/{organization}/mailServices/{mail_service}/lists/{list}/subscriptionRequests/{subscription_request}")
	if err != nil {
		return nil, err
	}
	ids := listIDs{v[0], v[1], v[2]}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return nil, err
	}
	var m *member
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := findList(ctx, tx, ids)
		if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT `+subRequestColumns+` FROM subscription_requests WHERE id = $1 AND list_id = $2 FOR UPDATE`, v[3], l.id)
		r, err := pgx.CollectOneRow(rows, scanSubRequest)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "subscription request not found")
		}
		if err != nil {
			return fmt.Errorf("read subscription request: %w", err)
		}
		if r.state == awaitsSubscriber {
			if verb != commands.Discard {
				return errs.E(errs.FailedPrecondition, "the request %s: only a discard can end it before the subscriber confirms", requestReasons[r.state])
			}
			if err := requestEvent(ctx, tx, l, r, verb, "", c.Name()); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM subscription_requests WHERE id = $1`, v[3]); err != nil {
				return fmt.Errorf("delete subscription request: %w", err)
			}
			if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE target = $1`, v[3]); err != nil {
				return fmt.Errorf("delete tokens: %w", err)
			}
		} else {
			r, err := s.decideRequest(ctx, tx, l, v[3], verb, reason, c.Name())
			if err != nil {
				return err
			}
			if r == nil {
				return errs.E(errs.NotFound, "subscription request not found")
			}
			if verb == commands.Accept {
				rows, _ := tx.Query(ctx, memberColumns+` WHERE list_id = $1 AND email_key = $2`, l.id, emailKey(r.email))
				if m, err = pgx.CollectOneRow(rows, scanMember); err != nil {
					return fmt.Errorf("read member: %w", err)
				}
			}
		}
		var details map[string]string
		if reason != "" {
			details = map[string]string{"reason": reason}
		}
		return audit(ctx, tx, ids.org, c, "lists.subscription_request."+string(verb), name, details)
	})
	return m, err
}

// AcceptSubscriptionRequest subscribes a waiting address.
func (s *Server) AcceptSubscriptionRequest(ctx context.Context, req *listsv1.AcceptSubscriptionRequestRequest) (*listsv1.AcceptSubscriptionRequestResponse, error) {
	m, err := s.decideOverAPI(ctx, req.GetName(), commands.Accept, "")
	if err != nil {
		return nil, err
	}
	v, _ := aip.ParseIDs("name", req.GetName(), "organizations/{organization}/mailServices/{mail_service}/lists/{list}/subscriptionRequests/{subscription_request}")
	return &listsv1.AcceptSubscriptionRequestResponse{Member: m.proto(listIDs{v[0], v[1], v[2]})}, nil
}

// RejectSubscriptionRequest declines a waiting address, telling it why.
func (s *Server) RejectSubscriptionRequest(ctx context.Context, req *listsv1.RejectSubscriptionRequestRequest) (*listsv1.RejectSubscriptionRequestResponse, error) {
	reason := strings.TrimSpace(req.GetReason())
	if len([]rune(reason)) > maxRejectReason {
		return nil, errs.Field("reason", fmt.Sprintf("at most %d characters", maxRejectReason))
	}
	if _, err := s.decideOverAPI(ctx, req.GetName(), commands.Reject, reason); err != nil {
		return nil, err
	}
	return &listsv1.RejectSubscriptionRequestResponse{}, nil
}

// DiscardSubscriptionRequest deletes a waiting subscription; nobody is
// told.
func (s *Server) DiscardSubscriptionRequest(ctx context.Context, req *listsv1.DiscardSubscriptionRequestRequest) (*listsv1.DiscardSubscriptionRequestResponse, error) {
	if _, err := s.decideOverAPI(ctx, req.GetName(), commands.Discard, ""); err != nil {
		return nil, err
	}
	return &listsv1.DiscardSubscriptionRequestResponse{}, nil
}

// ExpireRequests deletes what waited too long: tokens past their
// expire_time, subscriptions unconfirmed for subscriberTokenTTL or
// undecided for moderatorTokenTTL since last asked, and the answer
// counts of past hours; it says how many rows went. The periodic work
// "expire subscription requests".
func (s *Server) ExpireRequests(ctx context.Context) (int, error) {
	now := time.Now()
	n := 0
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM tokens WHERE expire_time < $1`, []any{now}},
		{`DELETE FROM subscription_requests WHERE state = $1 AND update_time < $2`, []any{awaitsSubscriber, now.Add(-subscriberTokenTTL)}},
		{`DELETE FROM subscription_requests WHERE state = $1 AND update_time < $2`, []any{awaitsModerator, now.Add(-moderatorTokenTTL)}},
		{`DELETE FROM reply_counts WHERE hour < $1`, []any{now.Add(-2 * time.Hour)}},
	} {
		tag, err := s.pool.Exec(ctx, q.sql, q.args...)
		if err != nil {
			return n, fmt.Errorf("expire requests: %w", err)
		}
		n += int(tag.RowsAffected())
	}
	return n, nil
}
