package lists

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	listsv1 "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
	"github.com/mailplane/mailplane/services/lists/listsevents"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"google.golang.org/protobuf/proto"
)

// PeopleConsumer is the durable consumer that keeps the moderators named
// as users true: a member removed from an organization or a deleted user
// is no moderator any more; a released login is no moderator's address.
const PeopleConsumer = "lists-people"

const (
	// dropModerator takes user $2 off the moderators of every list, in
	// organization $1 when it is set.
	dropModerator = `
UPDATE lists SET moderators = (
    SELECT coalesce(jsonb_agg(m ORDER BY i), '[]'::jsonb)
    FROM jsonb_array_elements(moderators) WITH ORDINALITY AS e(m, i) WHERE m->>'user' IS DISTINCT FROM $2),
  update_time = now()
WHERE moderators @> jsonb_build_array(jsonb_build_object('user', $2::text)) AND ($1::uuid IS NULL OR organization_id = $1)
RETURNING id`

	// forgetLogin forgets the login email $2 of user $1 wherever it is
	// stored: the address may be given to someone else now.
	forgetLogin = `
UPDATE lists SET moderators = (
    SELECT jsonb_agg(CASE WHEN m->>'user' = $1 AND m->>'user_email' = $2 THEN m - 'user_email' ELSE m END ORDER BY i)
    FROM jsonb_array_elements(moderators) WITH ORDINALITY AS e(m, i)),
  update_time = now()
WHERE moderators @> jsonb_build_array(jsonb_build_object('user', $1::text, 'user_email', $2::text))
RETURNING id`
)

// ApplyPersonLeft applies an accounts event about a person to the lists
// they moderate as a user: MemberDeleted takes them off the
// organization's lists, UserDeleted off every list, LoginReleased
// forgets the released address (they stay moderators, unreachable by
// mail until a manager saves the moderators again, which asks accounts
// anew). Each list changed writes lists.list.updated, by the event's
// actor. Applying an event twice changes nothing the second time.
func ApplyPersonLeft(ctx context.Context, tx pgx.Tx, ev proto.Message) error {
	subject := ev.ProtoReflect().Descriptor().Name()
	var sql, actor string
	var args []any
	switch ev := ev.(type) {
	case *accountsv1.MemberDeleted:
		v, err := aip.ParseIDs("member.name", ev.GetMember().GetName(), "organizations/{organization}/members/{user}")
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		sql, args, actor = dropModerator, []any{v[0], "users/" + v[1].String()}, ev.GetActor()
	case *accountsv1.UserDeleted:
		v, err := aip.ParseIDs("user", ev.GetUser(), "users/{user}")
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		sql, args, actor = dropModerator, []any{nil, "users/" + v[0].String()}, ev.GetUser()
	case *accountsv1.LoginReleased:
		v, err := aip.ParseIDs("user", ev.GetUser(), "users/{user}")
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		sql, args, actor = forgetLogin, []any{"users/" + v[0].String(), ev.GetReleasedEmail()}, ev.GetActor()
	default:
		return fmt.Errorf("apply person left: unexpected %T", ev)
	}
	rows, _ := tx.Query(ctx, sql, args...)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("%s: update moderators: %w", subject, err)
	}
	if len(ids) == 0 {
		return nil
	}
	rows, _ = tx.Query(ctx, listColumns+` WHERE id = ANY($1)`, ids)
	ls, err := pgx.CollectRows(rows, scanList)
	if err != nil {
		return fmt.Errorf("%s: read lists: %w", subject, err)
	}
	for _, l := range ls {
		if err := outbox.Write(ctx, tx, listsevents.ListUpdated, &listsv1.ListChanged{List: l.proto(), Actor: actor}); err != nil {
			return err
		}
	}
	return nil
}
