package mailboxes

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5"
	internal "github.com/mailplane/mailplane/services/mailboxes/internal"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
)

// MailstoreConsumer is the default durable name of `mailplane mailstore`.
// Mail stores that do not share their disk each need a consumer of their own.
const MailstoreConsumer = "mailboxes-mailstore"

// MailstoreSubscription removes from root, the directory holding Dovecot's
// homes, the mail of deleted addresses and of purged mail services. It runs
// next to Dovecot (`mailplane mailstore`), with no database: removing a
// directory twice does no harm, so events need no record.
func MailstoreSubscription(root string, log *slog.Logger) events.Subscription {
	return events.Subscription{
		Durable:  MailstoreConsumer,
		Subjects: []string{"mailboxes.address.deleted", "mailboxes.mail_service.purged"},
		Handle: func(ctx context.Context, _ pgx.Tx, m jetstream.Msg) error {
			dir, err := internal.MailDir(root, m.Subject(), m.Data())
			if err != nil {
				// It will never parse: log it and move on.
				log.ErrorContext(ctx, "mail store event dropped", "subject", m.Subject(), "error", err)
				return nil
			}
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove mail: %w", err)
			}
			log.InfoContext(ctx, "mail removed", "subject", m.Subject(), "dir", dir)
			return nil
		},
	}
}
