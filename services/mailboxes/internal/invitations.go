package mailboxes

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
)

// InvitationConsumer is the durable consumer that turns accepted
// invitations into address users.
const InvitationConsumer = "mailboxes-invitations"

// activateInvitee makes the invitee of an accepted invitation an active user
// of every address that was waiting for them; the rights stay as set.
const activateInvitee = `
UPDATE address_users SET user_id = $2, email = ''
WHERE invitation = $1 AND user_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM address_users x WHERE x.address_id = address_users.address_id AND x.user_id = $2)`

// dropDuplicateInvitee removes the pending row of an invitee who already
// uses the address (e.g. added by hand meanwhile).
const dropDuplicateInvitee = `DELETE FROM address_users WHERE invitation = $1 AND user_id IS NULL`

// ApplyInvitationAccepted activates the address users an invitation made.
func ApplyInvitationAccepted(ctx context.Context, tx pgx.Tx, ev *accountsv1.InvitationAccepted) error {
	user, err := uuid.Parse(strings.TrimPrefix(ev.GetMember().GetUser(), "users/"))
	if err != nil {
		return fmt.Errorf("invitation accepted: member %q: %w", ev.GetMember().GetUser(), err)
	}
	name := ev.GetInvitation().GetName()
	if _, err := tx.Exec(ctx, activateInvitee, name, user); err != nil {
		return fmt.Errorf("activate invitee: %w", err)
	}
	if _, err := tx.Exec(ctx, dropDuplicateInvitee, name); err != nil {
		return fmt.Errorf("activate invitee: %w", err)
	}
	return nil
}
