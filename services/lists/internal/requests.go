package lists

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/internal/commands"
	"github.com/mailplane/mailplane/services/lists/internal/letters"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
)

// How long tokens last: a subscriber confirms within days or has
// forgotten; a moderator's decision may wait out a long absence.
const (
	subscriberTokenTTL = 3 * 24 * time.Hour
	moderatorTokenTTL  = 180 * 24 * time.Hour
)

// maxRequests caps the subscriptions waiting on one list: past it, a
// request is refused until moderators or expiry clear the queue.
const maxRequests = 10000

// The states of a subscription request.
const (
	awaitsSubscriber int16 = 1 // the subscriber has not confirmed yet
	awaitsModerator  int16 = 2 // a moderator must decide
)

// The actions a token stands for.
const (
	tokenJoin         = "join"          // a subscriber confirms request target
	tokenLeave        = "leave"         // a member confirms leaving (email)
	tokenModerateJoin = "moderate_join" // a moderator decides on request target
	tokenModeratePost = "moderate_post" // a moderator decides on held post target
)

// Caps of a request's fields.
const (
	maxDisplayNameRune = 100 // as Member.display_name
	maxVia             = 40  // the consent record's "how"
)

// The actor events name for what the robots do: no user of the
// organization did it.
const robotActor = "lists/robot"

// tokenHash is how a token is stored: whoever reads the table cannot use
// what it finds.
func tokenHash(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// newToken stores a fresh token for action on l, in tx, and returns it.
func newToken(ctx context.Context, tx pgx.Tx, l *list, action, email string, target *uuid.UUID, ttl time.Duration) (string, time.Time, error) {
	tok := commands.NewToken()
	expire := time.Now().Add(ttl)
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (hash, list_id, action, email, target, expire_time) VALUES ($1, $2, $3, $4, $5, $6)`,
		tokenHash(tok), l.id, action, email, target, expire); err != nil {
		return "", time.Time{}, fmt.Errorf("store token: %w", err)
	}
	return tok, expire, nil
}

// token is a used token.
type token struct {
	action, email string
	target        *uuid.UUID
}

// useToken deletes l's token tok, if it is for one of actions, and
// returns what it was for; nil when there is none, or it expired: a
// token works once. A token for another action stays: a subscriber's
// confirm must not spend a moderator's decision.
func useToken(ctx context.Context, tx pgx.Tx, l *list, tok string, actions ...string) (*token, error) {
	if !commands.ValidToken(tok) {
		return nil, nil
	}
	var t token
	var expire time.Time
	err := tx.QueryRow(ctx, `DELETE FROM tokens WHERE hash = $1 AND list_id = $2 AND action = ANY($3) RETURNING action, email, target, expire_time`,
		tokenHash(tok), l.id, actions).Scan(&t.action, &t.email, &t.target, &expire)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && time.Now().After(expire) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("use token: %w", err)
	}
	return &t, nil
}

// subRequest is a waiting subscription.
type subRequest struct {
	id                   uuid.UUID
	email, display, via  string
	state                int16
	createTime, modified time.Time
}

const subRequestColumns = `id, email, display_name, via, state, create_time, update_time`

func scanSubRequest(row pgx.CollectableRow) (*subRequest, error) {
	r := &subRequest{}
	return r, row.Scan(&r.id, &r.email, &r.display, &r.via, &r.state, &r.createTime, &r.modified)
}

// checkRequester checks what a join or leave names: a valid address, a
// name and a "via" within their caps.
func checkRequester(email, name, via string) error {
	var v []errs.FieldViolation
	if err := validate.Email(email); err != nil || email == "" || len(email) > 254 {
		v = append(v, errs.FieldViolation{Field: "email", Description: "want an address like ann@example.com"})
	}
	if len([]rune(name)) > maxDisplayNameRune {
		v = append(v, errs.FieldViolation{Field: "display_name", Description: fmt.Sprintf("at most %d characters", maxDisplayNameRune)})
	}
	if via == "" || len(via) > maxVia {
		v = append(v, errs.FieldViolation{Field: "via", Description: fmt.Sprintf("want how it was asked, 1 to %d bytes", maxVia)})
	}
	if len(v) > 0 {
		return errs.Fields(v...)
	}
	return nil
}

// requestJoin asks, on behalf of email (named name), to subscribe it to
// l, as a mail to -join or a web form does; via says which ("mail",
// "form"), for the consent record. It applies l's subscription policy:
// open subscribes at once and welcomes; confirm mails email a
// confirmation; moderate tells email it waits and asks the moderators;
// confirm-then-moderate confirms first.
//
// It reveals nothing: whatever the address's state (a member already, a
// request waiting, over its rate of answers), the caller gets nil, and
// only email's own mailbox learns more (an address already subscribed
// is told so). An error is a bad argument (InvalidArgument naming the
// field), a full queue, or a failure of the database.
func (s *Server) requestJoin(ctx context.Context, l *list, email, name, via string) error {
	email, name = strings.TrimSpace(email), strings.TrimSpace(name)
	if err := checkRequester(email, name, via); err != nil {
		return err
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return s.join(ctx, tx, l, email, name, via, "")
	})
}

// join is requestJoin in tx; inReplyTo threads the answer under the
// mail that asked, if one did.
func (s *Server) join(ctx context.Context, tx pgx.Tx, l *list, email, name, via, inReplyTo string) error {
	ok, err := allowReply(ctx, tx, l, email)
	if err != nil || !ok {
		if !ok {
			s.log.InfoContext(ctx, "join: answers to this address are over their rate; nothing done", "list", l.address())
		}
		return err
	}
	var member bool
	if err := tx.QueryRow(ctx, isMember, l.id, emailKey(email)).Scan(&member); err != nil {
		return fmt.Errorf("is member: %w", err)
	}
	if member {
		return s.queueLetter(ctx, tx, l, letter{to: email, from: "-owner", inReplyTo: inReplyTo, kind: letters.AlreadyMember,
			data: letters.Data{"List": l.address(), "Email": email, "Leave": l.robot("-leave")}})
	}
	switch listsv1.SubscriptionPolicy(l.subscription) {
	case listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_OPEN:
		_, err := s.addMember(ctx, tx, l, email, name, via, robotActor)
		if errors.Is(err, errMemberExists) {
			return nil
		}
		if err != nil {
			return err
		}
		return s.welcome(ctx, tx, l, email, l.welcome)
	case listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_MODERATE:
		r, err := upsertRequest(ctx, tx, l, email, name, via, awaitsModerator)
		if err != nil {
			return err
		}
		return s.awaitModerator(ctx, tx, l, r, inReplyTo)
	default: // confirm, and confirm then moderate
		r, err := upsertRequest(ctx, tx, l, email, name, via, awaitsSubscriber)
		if err != nil {
			return err
		}
		if r.state == awaitsModerator {
			// Confirmed already: a new confirmation would only delay it.
			return s.queueLetter(ctx, tx, l, letter{to: email, from: "-owner", inReplyTo: inReplyTo, kind: letters.JoinPending,
				data: letters.Data{"List": l.address(), "Email": email}})
		}
		tok, expire, err := newToken(ctx, tx, l, tokenJoin, "", &r.id, subscriberTokenTTL)
		if err != nil {
			return err
		}
		return s.queueLetter(ctx, tx, l, letter{to: email, from: "-confirm+" + tok, inReplyTo: inReplyTo, kind: letters.ConfirmJoin,
			data: letters.Data{"List": l.address(), "Email": email, "Token": tok, "Confirm": l.robot("-confirm+" + tok), "Expire": letters.Date(expire)}})
	}
}

// upsertRequest records email's request to join l in state, or
// refreshes the one waiting (a request a moderator must decide on stays
// so), and returns it. A new request writes
// lists.subscription_request.created; a refreshed one nothing.
func upsertRequest(ctx context.Context, tx pgx.Tx, l *list, email, name, via string, state int16) (*subRequest, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM subscription_requests WHERE list_id = $1`, l.id).Scan(&n); err != nil {
		return nil, fmt.Errorf("count requests: %w", err)
	}
	if n >= maxRequests {
		return nil, errs.E(errs.ResourceExhausted, "%d subscriptions wait on this list already: the moderators must clear the queue", maxRequests)
	}
	rows, _ := tx.Query(ctx, `INSERT INTO subscription_requests (id, list_id, email, email_key, display_name, via, state)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (list_id, email_key) DO UPDATE SET display_name = EXCLUDED.display_name, via = EXCLUDED.via,
  state = GREATEST(subscription_requests.state, EXCLUDED.state), update_time = now()
RETURNING xmax = 0, `+subRequestColumns, uuid.Must(uuid.NewV7()), l.id, email, emailKey(email), name, via, state)
	// xmax is 0 on a row this statement inserted, not on one it updated.
	var inserted bool
	r, err := pgx.CollectOneRow(rows, func(row pgx.CollectableRow) (*subRequest, error) {
		r := &subRequest{}
		return r, row.Scan(&inserted, &r.id, &r.email, &r.display, &r.via, &r.state, &r.createTime, &r.modified)
	})
	if err != nil {
		return nil, fmt.Errorf("store request: %w", err)
	}
	if inserted {
		if err := writeRequestEvent(ctx, tx, l, r, listsevents.SubscriptionRequestCreated, "", robotActor); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// awaitModerator tells r's subscriber it waits for a moderator, and
// asks the moderators, in tx.
func (s *Server) awaitModerator(ctx context.Context, tx pgx.Tx, l *list, r *subRequest, inReplyTo string) error {
	if _, err := tx.Exec(ctx, `UPDATE subscription_requests SET state = $2, update_time = now() WHERE id = $1`, r.id, awaitsModerator); err != nil {
		return fmt.Errorf("update request: %w", err)
	}
	if err := s.queueLetter(ctx, tx, l, letter{to: r.email, from: "-owner", inReplyTo: inReplyTo, kind: letters.JoinPending,
		data: letters.Data{"List": l.address(), "Email": r.email}}); err != nil {
		return err
	}
	// A request asked again while it waits does not ask the moderators
	// again: one decision mail per request.
	var asked bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens WHERE target = $1 AND action = $2)`, r.id, tokenModerateJoin).Scan(&asked); err != nil {
		return fmt.Errorf("find decision: %w", err)
	}
	if asked {
		return nil
	}
	return s.askModerators(ctx, tx, l, tokenModerateJoin, r.id, letters.ModerateJoin, letters.Data{"Email": r.email})
}

// askModerators mails l's moderators a decision on target with the
// mailto: links of their answers; one token serves them all (the first
// to answer decides). data gets the keys every decision letter has.
func (s *Server) askModerators(ctx context.Context, tx pgx.Tx, l *list, action string, target uuid.UUID, k letters.Kind, data letters.Data) error {
	mods := l.moderatorEmails()
	if len(mods) == 0 {
		return nil // decided over the API
	}
	tok, expire, err := newToken(ctx, tx, l, action, "", &target, moderatorTokenTTL)
	if err != nil {
		return err
	}
	data["List"], data["Token"] = l.address(), tok
	data["Accept"], data["Reject"], data["Discard"] = commands.DecisionLinks(l.robot("-request"), tok)
	if _, ok := data["Expire"]; !ok {
		data["Expire"] = letters.Date(expire)
	}
	for _, m := range mods {
		if err := s.queueLetter(ctx, tx, l, letter{to: m, from: "-request", kind: k, data: data}); err != nil {
			return err
		}
	}
	return nil
}

// errMemberExists: addMember found the address subscribed.
var errMemberExists = errors.New("a member already")

// addMember subscribes email to l in tx, counting it in and writing the
// event; how is the consent record's "given by".
func (s *Server) addMember(ctx context.Context, tx pgx.Tx, l *list, email, name, how, actor string) (*member, error) {
	m := &member{id: uuid.Must(uuid.NewV7()), email: email, key: emailKey(email), display: name, createTime: time.Now()}
	tag, err := tx.Exec(ctx, addMember, l.id, maxMembers)
	if err != nil {
		return nil, fmt.Errorf("count member: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, errs.E(errs.ResourceExhausted, "a list has at most %d members", maxMembers)
	}
	var stored uuid.UUID
	err = tx.QueryRow(ctx, `INSERT INTO members (id, list_id, email, email_key, display_name, joined_by) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING RETURNING id`, m.id, l.id, m.email, m.key, m.display, how).Scan(&stored)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, removeMember, l.id); err != nil {
			return nil, fmt.Errorf("count member out: %w", err)
		}
		return nil, errMemberExists
	}
	if err != nil {
		return nil, fmt.Errorf("insert member: %w", err)
	}
	// Nothing of the address's waits any more.
	if _, err := tx.Exec(ctx, `DELETE FROM subscription_requests WHERE list_id = $1 AND email_key = $2`, l.id, m.key); err != nil {
		return nil, fmt.Errorf("delete request: %w", err)
	}
	ids := listIDs{l.org, l.ms, l.id}
	if err := outbox.Write(ctx, tx, listsevents.MemberCreated, &listsv1.MemberChanged{List: listName(l.org, l.ms, l.id), Member: m.proto(ids), Actor: actor}); err != nil {
		return nil, err
	}
	return m, nil
}

// welcome queues the welcome of email to l with message (the list's
// welcome message, or a moderator's notice).
func (s *Server) welcome(ctx context.Context, tx pgx.Tx, l *list, email, message string) error {
	return s.queueLetter(ctx, tx, l, welcomeLetter(l, email, message))
}

// welcomeLetter is the welcome of email to l, saying message.
func welcomeLetter(l *list, email, message string) letter {
	return letter{to: email, from: "-owner", kind: letters.Welcome,
		data: letters.Data{"List": l.address(), "Email": email, "Message": message, "Post": l.address(), "Leave": l.robot("-leave")}}
}

// requestLeave asks, on behalf of email, to unsubscribe it from l, as a
// mail to -leave or a web form does: email is mailed a confirmation if
// it is a member, a word that it is not otherwise. As requestJoin, it
// reveals nothing to the caller.
func (s *Server) requestLeave(ctx context.Context, l *list, email, via string) error {
	email = strings.TrimSpace(email)
	if err := checkRequester(email, "", via); err != nil {
		return err
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return s.leaveRequest(ctx, tx, l, email, "")
	})
}

// leaveRequest is requestLeave in tx.
func (s *Server) leaveRequest(ctx context.Context, tx pgx.Tx, l *list, email, inReplyTo string) error {
	ok, err := allowReply(ctx, tx, l, email)
	if err != nil || !ok {
		return err
	}
	var member bool
	if err := tx.QueryRow(ctx, isMember, l.id, emailKey(email)).Scan(&member); err != nil {
		return fmt.Errorf("is member: %w", err)
	}
	if !member {
		return s.queueLetter(ctx, tx, l, letter{to: email, from: "-owner", inReplyTo: inReplyTo, kind: letters.NotMember,
			data: letters.Data{"List": l.address(), "Email": email}})
	}
	tok, expire, err := newToken(ctx, tx, l, tokenLeave, email, nil, subscriberTokenTTL)
	if err != nil {
		return err
	}
	return s.queueLetter(ctx, tx, l, letter{to: email, from: "-confirm+" + tok, inReplyTo: inReplyTo, kind: letters.ConfirmLeave,
		data: letters.Data{"List": l.address(), "Email": email, "Token": tok, "Confirm": l.robot("-confirm+" + tok), "Expire": letters.Date(expire)}})
}

// leave unsubscribes email from l in tx, erasing the address and keeping
// the consent record (given how, withdrawn how); the member is sent the
// list's goodbye unless silent. It reports whether email was a member.
func (s *Server) leave(ctx context.Context, tx pgx.Tx, l *list, email, how, actor string, silent bool) (bool, error) {
	m, err := eraseMember(ctx, tx, listIDs{l.org, l.ms, l.id}, uuid.Nil, emailKey(email), how, actor)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil || silent {
		return err == nil, err
	}
	return true, s.goodbye(ctx, tx, l, m.email, l.goodbye)
}

// goodbye queues the goodbye of email from l with message (the list's
// goodbye message, or a moderator's notice).
func (s *Server) goodbye(ctx context.Context, tx pgx.Tx, l *list, email, message string) error {
	return s.queueLetter(ctx, tx, l, letter{to: email, from: "-owner", kind: letters.Goodbye,
		data: letters.Data{"List": l.address(), "Email": email, "Message": message}})
}

// confirm carries out the subscriber's token tok on l, in tx: a join
// goes on to a moderator or subscribes, a leave unsubscribes. It reports
// false when the token is unknown, used or expired, or is a moderator's
// (which confirm does not take): nothing changes then.
func (s *Server) confirm(ctx context.Context, tx pgx.Tx, l *list, tok string) (bool, error) {
	t, err := useToken(ctx, tx, l, tok, tokenJoin, tokenLeave, tokenEnableDelivery)
	if err != nil || t == nil {
		return false, err
	}
	switch t.action {
	case tokenEnableDelivery: // bounce_mail.go
		return true, s.enableByToken(ctx, tx, l, t)
	case tokenLeave:
		_, err := s.leave(ctx, tx, l, t.email, "confirmed by mail", robotActor, false)
		return true, err
	case tokenJoin:
		rows, _ := tx.Query(ctx, `SELECT `+subRequestColumns+` FROM subscription_requests WHERE id = $1 AND list_id = $2 FOR UPDATE`, t.target, l.id)
		r, err := pgx.CollectOneRow(rows, scanSubRequest)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil // decided or discarded meanwhile
		}
		if err != nil {
			return false, fmt.Errorf("read request: %w", err)
		}
		if r.state == awaitsModerator {
			return true, nil // confirmed twice
		}
		if err := writeRequestEvent(ctx, tx, l, r, listsevents.SubscriptionRequestConfirmed, "", robotActor); err != nil {
			return false, err
		}
		if listsv1.SubscriptionPolicy(l.subscription) == listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_CONFIRM_THEN_MODERATE ||
			listsv1.SubscriptionPolicy(l.subscription) == listsv1.SubscriptionPolicy_SUBSCRIPTION_POLICY_MODERATE {
			return true, s.awaitModerator(ctx, tx, l, r, "")
		}
		_, err = s.addMember(ctx, tx, l, r.email, r.display, r.via+", confirmed by mail", robotActor)
		if errors.Is(err, errMemberExists) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		return true, s.welcome(ctx, tx, l, r.email, l.welcome)
	}
	return false, fmt.Errorf("token for %s", t.action)
}

// decideRequest carries out a moderator's decision on the subscription
// request id of l, in tx: accept subscribes and welcomes, reject tells
// the subscriber (with reason), discard says nothing. It returns the
// request, nil when none waits for a moderator.
func (s *Server) decideRequest(ctx context.Context, tx pgx.Tx, l *list, id uuid.UUID, verb commands.Verb, reason, actor string) (*subRequest, error) {
	rows, _ := tx.Query(ctx, `DELETE FROM subscription_requests WHERE id = $1 AND list_id = $2 AND state = $3 RETURNING `+subRequestColumns,
		id, l.id, awaitsModerator)
	r, err := pgx.CollectOneRow(rows, scanSubRequest)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("take request: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE target = $1`, r.id); err != nil {
		return nil, fmt.Errorf("delete tokens: %w", err)
	}
	if err := requestEvent(ctx, tx, l, r, verb, reason, actor); err != nil {
		return nil, err
	}
	switch verb {
	case commands.Accept:
		_, err := s.addMember(ctx, tx, l, r.email, r.display, r.via+", approved by a moderator", actor)
		if errors.Is(err, errMemberExists) {
			return r, nil
		}
		if err != nil {
			return nil, err
		}
		return r, s.welcome(ctx, tx, l, r.email, l.welcome)
	case commands.Reject:
		return r, s.queueLetter(ctx, tx, l, letter{to: r.email, from: "-owner", kind: letters.JoinRejected,
			data: letters.Data{"List": l.address(), "Email": r.email, "Reason": reason}})
	}
	return r, nil
}

// requestEvent writes the event of a moderator's decision on r.
func requestEvent(ctx context.Context, tx pgx.Tx, l *list, r *subRequest, verb commands.Verb, reason, actor string) error {
	subject := map[commands.Verb]string{
		commands.Accept: listsevents.SubscriptionRequestAccepted, commands.Reject: listsevents.SubscriptionRequestRejected,
	}[verb]
	if subject == "" {
		subject = listsevents.SubscriptionRequestDiscarded
	}
	return writeRequestEvent(ctx, tx, l, r, subject, reason, actor)
}

// writeRequestEvent writes a SubscriptionRequestChanged about r on
// subject, in tx.
func writeRequestEvent(ctx context.Context, tx pgx.Tx, l *list, r *subRequest, subject, reason, actor string) error {
	ev := &listsv1.SubscriptionRequestChanged{List: listName(l.org, l.ms, l.id), SubscriptionRequest: r.proto(listIDs{l.org, l.ms, l.id}), Actor: actor, Reason: reason}
	return outbox.Write(ctx, tx, subject, ev)
}
