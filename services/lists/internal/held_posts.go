package lists

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/internal/post"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DefaultHeldPostTTL is how long a post waits for a moderator before it
// is deleted, unless the held-post-ttl setting says otherwise: Mailman's
// max_days_to_hold is off by default, which lets a forgotten queue grow
// for ever; two weeks spans a moderator's holiday.
const DefaultHeldPostTTL = 14 * 24 * time.Hour

// maxRejectReason caps the reason a moderator sends an author.
const maxRejectReason = 1000

const (
	heldColumns = `id, sender, subject, reason, octet_length(raw), create_time`
	// takeHeld deletes a held post and returns it: whichever decision a
	// moderator takes, the post leaves the queue, and two moderators
	// deciding at once find it only once.
	takeHeld   = `DELETE FROM held_posts WHERE id = $1 AND list_id = $2 RETURNING ` + heldColumns + `, raw`
	countHeld  = `SELECT count(*) FROM held_posts WHERE list_id = $1`
	expireHeld = `DELETE FROM held_posts WHERE create_time < $1`
)

type heldPost struct {
	id                      uuid.UUID
	sender, subject, reason string
	size                    int64
	createTime              time.Time
}

func scanHeld(row pgx.CollectableRow) (*heldPost, error) {
	h := &heldPost{}
	return h, row.Scan(&h.id, &h.sender, &h.subject, &h.reason, &h.size, &h.createTime)
}

func (h *heldPost) proto(ids listIDs, ttl time.Duration) *listsv1.HeldPost {
	return &listsv1.HeldPost{
		Name: heldPostName(ids.org, ids.ms, ids.list, h.id), Sender: h.sender, Subject: h.subject, Reason: h.reason,
		SizeBytes: h.size, CreateTime: timestamppb.New(h.createTime), ExpireTime: timestamppb.New(h.createTime.Add(ttl)),
	}
}

// ListHeldPosts lists a list's held posts, newest first.
func (s *Server) ListHeldPosts(ctx context.Context, req *listsv1.ListHeldPostsRequest) (*listsv1.ListHeldPostsResponse, error) {
	ids, err := parseList("parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListHeldPosts", req.GetParent())
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
	rows, _ := s.pool.Query(ctx, `SELECT `+heldColumns+` FROM held_posts WHERE list_id = $1`+aip.Seek("create_time", "timestamptz", "id", true, 3, 2),
		ids.list, page.Size+1, afterKey, afterID)
	hs, err := pgx.CollectRows(rows, scanHeld)
	if err != nil {
		return nil, fmt.Errorf("list held posts: %w", err)
	}
	var total int32
	if err := s.pool.QueryRow(ctx, countHeld, ids.list).Scan(&total); err != nil {
		return nil, fmt.Errorf("count held posts: %w", err)
	}
	hs, next := aip.Trim(page, hs, func(h *heldPost) []string { return []string{aip.TimeKey(h.createTime), h.id.String()} })
	resp := &listsv1.ListHeldPostsResponse{NextPageToken: next, TotalSize: total}
	for _, h := range hs {
		resp.HeldPosts = append(resp.HeldPosts, h.proto(ids, s.heldTTL))
	}
	return resp, nil
}

// decide is what the three decisions over the API share: the caller
// must manage the organization; in one transaction decideHeld carries
// out verb and the audit record is written.
func (s *Server) decide(ctx context.Context, name string, verb commands.Verb, reason string) error {
	v, err := aip.ParseIDs("name", name, "organizations/{organization}/mailServices/{mail_service}/lists/{list}/heldPosts/{held_post}")
	if err != nil {
		return err
	}
	ids := listIDs{v[0], v[1], v[2]}
	c, err := s.roles.Manage(ctx, ids.org)
	if err != nil {
		return err
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		l, err := findList(ctx, tx, ids)
		if err != nil {
			return err
		}
		h, err := s.decideHeld(ctx, tx, l, v[3], verb, reason, c.Name())
		if err != nil {
			return err
		}
		if h == nil {
			return errs.E(errs.NotFound, "held post not found")
		}
		var details map[string]string
		if reason != "" {
			details = map[string]string{"reason": reason}
		}
		return audit(ctx, tx, ids.org, c, "lists.held_post."+string(verb), name, details)
	})
}

// decideHeld carries out a moderator's decision on l's held post id in
// tx, over the API or by mail: the post leaves the queue (two moderators
// deciding at once find it once), then accept queues its distribution,
// reject the author's notice with reason, discard nothing; the event
// names actor. It returns the post, nil when none is held under id.
func (s *Server) decideHeld(ctx context.Context, tx pgx.Tx, l *list, id uuid.UUID, verb commands.Verb, reason, actor string) (*heldPost, error) {
	var h heldPost
	var raw []byte
	err := tx.QueryRow(ctx, takeHeld, id, l.id).Scan(&h.id, &h.sender, &h.subject, &h.reason, &h.size, &h.createTime, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take held post: %w", err)
	}
	// The decision mail's links die with the post.
	if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE target = $1`, h.id); err != nil {
		return nil, fmt.Errorf("delete tokens: %w", err)
	}
	subject := listsevents.HeldPostDiscarded
	switch verb {
	case commands.Accept:
		subject = listsevents.HeldPostAccepted
		if err := s.acceptHeld(ctx, tx, l, &h, raw); err != nil {
			return nil, err
		}
	case commands.Reject:
		subject = listsevents.HeldPostRejected
		if err := s.queueLetter(ctx, tx, l, heldNotice(l, notice{To: h.sender, Subject: h.subject, Reason: reason, Rejected: true})); err != nil {
			return nil, err
		}
	}
	ids := listIDs{l.org, l.ms, l.id}
	ev := &listsv1.HeldPostChanged{List: listName(l.org, l.ms, l.id), HeldPost: h.proto(ids, s.heldTTL), Actor: actor, Reason: reason}
	if err := outbox.Write(ctx, tx, subject, ev); err != nil {
		return nil, err
	}
	return &h, nil
}

// acceptHeld makes h a post and queues its distribution, in tx. It is
// prepared with the list's settings of now, as the distribution will: a
// post they no longer allow (a smaller size limit) is refused here,
// where the moderator sees why, not in the job.
func (s *Server) acceptHeld(ctx context.Context, tx pgx.Tx, l *list, h *heldPost, raw []byte) error {
	if int64(len(raw)) > l.maxBytes {
		return errs.E(errs.FailedPrecondition, "the post's %d bytes are more than the list allows now (%d): reject or discard it", len(raw), l.maxBytes)
	}
	p, err := post.Prepare(raw, postList(l))
	if err != nil {
		return errs.E(errs.FailedPrecondition, "the list's settings no longer let this post through (%v): reject or discard it", err)
	}
	if _, err := tx.Exec(ctx, insertPost, h.id, l.id, p.Author, p.Subject, p.MessageID, raw); err != nil {
		return fmt.Errorf("insert post: %w", err)
	}
	if s.jobs == nil {
		return fmt.Errorf("queue post: no jobs client")
	}
	if _, err := s.jobs.InsertTx(ctx, tx, distributeArgs{Post: h.id}, nil); err != nil {
		return fmt.Errorf("queue post: %w", err)
	}
	return nil
}

// AcceptHeldPost distributes a held post: it becomes a post, and its
// distribution is queued in the same transaction.
func (s *Server) AcceptHeldPost(ctx context.Context, req *listsv1.AcceptHeldPostRequest) (*listsv1.AcceptHeldPostResponse, error) {
	if err := s.decide(ctx, req.GetName(), commands.Accept, ""); err != nil {
		return nil, err
	}
	return &listsv1.AcceptHeldPostResponse{}, nil
}

// RejectHeldPost deletes a held post and sends its author the reason.
func (s *Server) RejectHeldPost(ctx context.Context, req *listsv1.RejectHeldPostRequest) (*listsv1.RejectHeldPostResponse, error) {
	reason := strings.TrimSpace(req.GetReason())
	if reason == "" || len([]rune(reason)) > maxRejectReason {
		return nil, errs.Field("reason", fmt.Sprintf("want the reason the author is sent, 1 to %d characters", maxRejectReason))
	}
	if err := s.decide(ctx, req.GetName(), commands.Reject, reason); err != nil {
		return nil, err
	}
	return &listsv1.RejectHeldPostResponse{}, nil
}

// DiscardHeldPost deletes a held post without a word to its author: for
// spam, whose sender is forged or glad of the confirmation.
func (s *Server) DiscardHeldPost(ctx context.Context, req *listsv1.DiscardHeldPostRequest) (*listsv1.DiscardHeldPostResponse, error) {
	if err := s.decide(ctx, req.GetName(), commands.Discard, ""); err != nil {
		return nil, err
	}
	return &listsv1.DiscardHeldPostResponse{}, nil
}

// ExpireHeldPosts deletes the posts held longer than the held-post-ttl
// setting and says how many; the periodic "expire held posts" work. The
// age is counted from create_time with the setting of now, so a shorter
// setting applies to the queue at once, as expire_time shows it.
// Expiry is no one's decision: it writes no event and no audit record,
// and the author is not told (the notice said when the post expires).
func (s *Server) ExpireHeldPosts(ctx context.Context) (int, error) {
	tag, err := s.pool.Exec(ctx, expireHeld, time.Now().Add(-s.heldTTL))
	if err != nil {
		return 0, fmt.Errorf("expire held posts: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// notice is what a held post's author is told: that the post awaits
// approval (with Reason why, and until Expire), or, when Rejected, that a
// moderator rejected it (with Reason, the moderator's words). It is
// rendered when queued, not read from the held post, which a rejection
// deletes and a moderator may accept before the letter goes.
type notice struct {
	To       string
	Subject  string
	Reason   string
	Rejected bool
	Expire   time.Time
}

// heldNotice is n as a letter from l's -owner address (a reply reaches the
// moderators), in l's language. queueLetter skips robot authors (no-reply,
// list managers, bounces): an answer to a machine is at best lost, at
// worst answered.
func heldNotice(l *list, n notice) letter {
	lt := letter{to: n.To, from: "-owner", data: letters.Data{"List": l.address(), "Subject": n.Subject}}
	if n.Rejected {
		lt.kind, lt.data["Reason"] = letters.HeldPostRejected, n.Reason
		return lt
	}
	expire := ""
	if !n.Expire.IsZero() {
		expire = letters.Date(n.Expire)
	}
	lt.kind, lt.data["Reason"], lt.data["Expire"] = letters.HeldPostPending, holdReasonText(l.lang(), n.Reason), expire
	return lt
}

// holdReasonText is a hold's reason in lang: holdReason's words are
// English (the API shows them as stored), the letters the list's.
func holdReasonText(lang letters.Lang, reason string) string {
	k, ok := map[string]letters.Kind{reasonNotMember: letters.ReasonNotMember, reasonAnnounce: letters.ReasonAnnounce}[reason]
	if !ok {
		return reason
	}
	_, text, err := k.Render(lang, nil)
	if err != nil {
		return reason
	}
	return text
}
