package lists

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/internal/post"
	"github.com/mailplane/mailplane/services/platform/pg"
)

const (
	insertPost = `INSERT INTO posts (id, list_id, sender, subject, message_id, raw) VALUES ($1, $2, $3, $4, $5, $6)`
	insertHeld = `INSERT INTO held_posts (id, list_id, sender, subject, raw, reason) VALUES ($1, $2, $3, $4, $5, $6) RETURNING create_time`
	isMember   = `SELECT EXISTS (SELECT 1 FROM members WHERE list_id = $1 AND email_key = $2)`
)

// The reasons a post is held, as the API shows them (letters has them
// in every language).
const (
	reasonAnnounce  = "the list is for announcements: only moderators post"
	reasonNotMember = "the sender is not a member of the list"
)

// postList is what post.Prepare needs of l.
func postList(l *list) post.List {
	mode := post.ReplyToSender
	switch listsv1.ReplyTo(l.replyTo) {
	case listsv1.ReplyTo_REPLY_TO_LIST:
		mode = post.ReplyToList
	case listsv1.ReplyTo_REPLY_TO_VIA_LIST:
		mode = post.ReplyViaList
	}
	return post.List{
		Address: l.localPart + "@" + l.domain, Name: l.displayName, Prefix: l.prefix, ReplyTo: mode,
		Announce:   listsv1.PostingPolicy(l.posting) == listsv1.PostingPolicy_POSTING_POLICY_MODERATORS,
		FooterText: l.footerText, FooterHTML: l.footerHTML,
	}
}

func mailHeader(h textproto.Header) gomail.Header {
	return gomail.Header{Header: gomessage.Header{Header: h}}
}

// addressKey is how the posting policy compares addresses, as
// post.Recipients and the members table do: the local part as written,
// the domain without case (RFC 5321 §2.4).
func addressKey(a string) string {
	at := strings.LastIndexByte(a, '@')
	if at < 0 {
		return a
	}
	return a[:at] + strings.ToLower(a[at:])
}

// holdReason says why l's posting policy holds a post by author, or ""
// when it lets it through. The author is the From address, which members
// see and which Mailman checks too; the envelope sender is the
// author's provider's business (a forwarder rewrites it).
// Moderators named as organization users are matched by their login
// email (moderatorEmails).
func (s *Server) holdReason(ctx context.Context, q pgx.Tx, l *list, author string) (string, error) {
	key := addressKey(author)
	for _, m := range l.moderatorEmails() {
		if addressKey(m) == key {
			return "", nil
		}
	}
	policy := listsv1.PostingPolicy(l.posting)
	if policy == listsv1.PostingPolicy_POSTING_POLICY_MODERATORS {
		return reasonAnnounce, nil
	}
	var member bool
	if err := q.QueryRow(ctx, isMember, l.id, key).Scan(&member); err != nil {
		return "", fmt.Errorf("is member: %w", err)
	}
	if member {
		return "", nil
	}
	return reasonNotMember, nil
}

// maxHeldPosts caps the posts waiting for a moderator on one list: each
// holds up to the list's largest message and mails the moderators, and
// anyone may post. Past it a post held is refused for now (452), so that
// its sender's MTA keeps it and retries.
const maxHeldPosts = 1000

// errHeldFull: the list holds maxHeldPosts already.
var errHeldFull = errors.New("the moderation queue is full")

// storePost queues p (raw as received) for distribution to l's members,
// or holds it for a moderator when the posting policy says so; the job is
// inserted in the post's transaction, so neither exists without the
// other.
func (s *Server) storePost(ctx context.Context, l *list, p *post.Post, raw []byte) (id uuid.UUID, held bool, err error) {
	id = uuid.Must(uuid.NewV7())
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		reason, err := s.holdReason(ctx, tx, l, p.Author)
		if err != nil {
			return err
		}
		if reason != "" {
			held = true
			var n int
			if err := tx.QueryRow(ctx, countHeld, l.id).Scan(&n); err != nil {
				return fmt.Errorf("count held posts: %w", err)
			}
			if n >= maxHeldPosts {
				return errHeldFull
			}
			var created time.Time
			if err := tx.QueryRow(ctx, insertHeld, id, l.id, p.Author, p.Subject, raw, reason).Scan(&created); err != nil {
				return fmt.Errorf("hold post: %w", err)
			}
			// At most one notice per held post: it is queued with the
			// post, and the job sends once. A stranger's post names its
			// author in a From anyone can write: the notices to one
			// address count with the robots' answers, so that posts
			// forged in someone's name do not flood them.
			expire := created.Add(s.heldTTL)
			ok, err := allowReply(ctx, tx, l, p.Author)
			if err != nil {
				return err
			}
			if ok {
				if err := s.queueLetter(ctx, tx, l, heldNotice(l, notice{To: p.Author, Subject: p.Subject, Reason: reason, Expire: expire})); err != nil {
					return err
				}
			}
			// The moderators decide by mail as over the API.
			return s.askModerators(ctx, tx, l, tokenModeratePost, id, letters.ModeratePost, letters.Data{
				"Sender": p.Author, "Subject": p.Subject, "Reason": holdReasonText(l.lang(), reason), "Expire": letters.Date(expire)})
		}
		if _, err := tx.Exec(ctx, insertPost, id, l.id, p.Author, p.Subject, p.MessageID, raw); err != nil {
			return fmt.Errorf("insert post: %w", err)
		}
		if s.jobs == nil {
			return fmt.Errorf("queue post: no jobs client")
		}
		if _, err := s.jobs.InsertTx(ctx, tx, distributeArgs{Post: id}, nil); err != nil {
			return fmt.Errorf("queue post: %w", err)
		}
		return nil
	})
	return id, held, err
}
