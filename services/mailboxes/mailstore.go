package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	internal "github.com/mailplane/mailplane/services/mailboxes/internal"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/nats-io/nats.go/jetstream"
)

// MailstoreConsumer is the default durable name of `mailplane mailstore`.
// Mail stores that do not share their disk each need a consumer of their own.
const MailstoreConsumer = "mailboxes-mailstore"

// Mailstore is what `mailplane mailstore` does next to Dovecot, with no
// database (ending sessions or removing a directory twice does no harm, so
// events need no record): it ends the open sessions of revoked device
// passwords, deleted addresses and deleted mail services, and removes the
// mail of deleted addresses and purged mail services.
type Mailstore struct {
	// Root is the directory holding Dovecot's homes.
	Root string
	// Doveadm is the command that runs doveadm ("doveadm", or "doveadm -c
	// /etc/dovecot/dovecot.conf"); empty: sessions are not ended.
	Doveadm []string
	Log     *slog.Logger
}

// Subscription is the mail store's durable consumer.
func (s *Mailstore) Subscription() events.Subscription {
	return events.Subscription{
		Durable: MailstoreConsumer,
		Subjects: []string{mailboxesevents.AddressDeleted, mailboxesevents.DevicePasswordRevoked,
			mailboxesevents.MailServiceDeleted, mailboxesevents.MailServicePurged},
		Handle: s.handle,
	}
}

// kickTries is how many deliveries of an event may fail to end its
// sessions (one every 5 s) before the mail store gives up on them: a
// Dovecot that is down has no sessions to end, and an event held for ever
// would hold up the ones after it.
const kickTries = 12

func (s *Mailstore) handle(ctx context.Context, _ pgx.Tx, m jetstream.Msg) error {
	w, err := internal.MailstoreWorkFor(s.Root, m.Subject(), m.Data())
	if err != nil {
		// It will never parse: log it and move on.
		s.Log.ErrorContext(ctx, "mail store event dropped", "subject", m.Subject(), "error", err)
		return nil
	}
	// Sessions end first, so that none writes into a home being removed;
	// the home goes even when they could not be ended.
	var kickErr error
	if w.Kick != "" && len(s.Doveadm) > 0 {
		kickErr = s.kick(ctx, w.Kick)
	}
	if w.Remove != "" {
		if err := os.RemoveAll(w.Remove); err != nil {
			return errors.Join(kickErr, fmt.Errorf("remove mail: %w", err))
		}
		s.Log.InfoContext(ctx, "mail removed", "subject", m.Subject(), "dir", w.Remove)
	}
	if kickErr != nil {
		if md, err := m.Metadata(); err == nil && md.NumDelivered >= kickTries {
			s.Log.ErrorContext(ctx, "sessions not ended; giving up", "subject", m.Subject(), "login", w.Kick, "tries", md.NumDelivered, "error", kickErr)
			return nil
		}
		return kickErr
	}
	return nil
}

// Check makes sure doveadm can end sessions, so that a mail store that
// cannot finds out at start rather than at the first revoked password.
func (s *Mailstore) Check(ctx context.Context) error {
	if len(s.Doveadm) == 0 {
		return nil
	}
	// Nobody has this login: doveadm answers "no users kicked" when it
	// could ask Dovecot.
	return s.kick(ctx, "mailplane-check@invalid")
}

// exitNoUser is doveadm kick's exit status when nobody matched ("no users
// kicked"; EX_NOHOST, doveadm's "not found"). A Dovecot it cannot reach
// gives 75 (EX_TEMPFAIL).
const exitNoUser = 68

// kickTimeout bounds one doveadm kick: the consumer waits for it.
const kickTimeout = 30 * time.Second

// kick ends the Dovecot sessions of login (or of the logins a mask such as
// "*@example.com" matches).
func (s *Mailstore) kick(ctx context.Context, login string) error {
	ctx, cancel := context.WithTimeout(ctx, kickTimeout)
	defer cancel()
	args := append(s.Doveadm[1:len(s.Doveadm):len(s.Doveadm)], "kick", "--", login)
	out, err := exec.CommandContext(ctx, s.Doveadm[0], args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == exitNoUser:
		return nil // nobody was connected
	case err != nil:
		return fmt.Errorf("doveadm kick %s: %w: %s", login, err, strings.TrimSpace(string(out)))
	}
	s.Log.InfoContext(ctx, "sessions ended", "login", login, "doveadm", strings.TrimSpace(string(out)))
	return nil
}
