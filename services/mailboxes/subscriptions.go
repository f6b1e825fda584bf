package mailboxes

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	internal "github.com/mailplane/mailplane/services/mailboxes/internal"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Subscriptions are the events the service consumes: accepted invitations,
// which make the invited people users of the addresses they were invited
// to; and removed members, deleted users and released logins, which take
// people off addresses and revoke their device passwords there.
func Subscriptions(_ *pgxpool.Pool, log *slog.Logger) []events.Subscription {
	return []events.Subscription{{
		Durable:  internal.PeopleConsumer,
		Subjects: []string{accountsevents.MemberDeleted, accountsevents.UserDeleted, accountsevents.UserLoginReleased},
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var ev proto.Message
			switch {
			case events.SubjectIs(m.Subject(), accountsevents.MemberDeleted):
				ev = &accountsv1.MemberDeleted{}
			case events.SubjectIs(m.Subject(), accountsevents.UserDeleted):
				ev = &accountsv1.UserDeleted{}
			default:
				ev = &accountsv1.LoginReleased{}
			}
			if err := proto.Unmarshal(m.Data(), ev); err != nil {
				log.ErrorContext(ctx, "people event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			return internal.ApplyPersonLeft(ctx, tx, ev)
		},
	}, {
		Durable:  internal.InvitationConsumer,
		Subjects: []string{accountsevents.InvitationAccepted},
		Handle: func(ctx context.Context, tx pgx.Tx, m jetstream.Msg) error {
			var ev accountsv1.InvitationAccepted
			if err := proto.Unmarshal(m.Data(), &ev); err != nil {
				log.ErrorContext(ctx, "invitation event dropped: bad payload", "subject", m.Subject(), "error", err)
				return nil
			}
			return internal.ApplyInvitationAccepted(ctx, tx, &ev)
		},
	}}
}
