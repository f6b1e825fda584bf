package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/proto"
)

// PeopleConsumer is the durable consumer that detaches people from the
// addresses they may no longer use: a member removed from an organization,
// a deleted user, a login released by an administrator.
const PeopleConsumer = "mailboxes-people"

// A person leaves addresses by one of these; each returns the addresses
// left as (id, mail service, organization).
const (
	detachMember = `
DELETE FROM address_users u USING addresses a, mail_services m
WHERE u.address_id = a.id AND m.id = a.mail_service_id AND m.organization_id = $1 AND u.user_id = $2
RETURNING a.id, a.mail_service_id, m.organization_id`

	detachUser = `
DELETE FROM address_users u USING addresses a, mail_services m
WHERE u.address_id = a.id AND m.id = a.mail_service_id AND u.user_id = $1
RETURNING a.id, a.mail_service_id, m.organization_id`

	// detachLogin takes the user off the one address that was their login.
	detachLogin = `
DELETE FROM address_users u USING addresses a, mail_services m
WHERE u.address_id = a.id AND m.id = a.mail_service_id AND u.user_id = $1 AND a.local_key || '@' || m.domain = $2
RETURNING a.id, a.mail_service_id, m.organization_id`

	// revokeStranded revokes the working device passwords of an address
	// whose user no longer uses it.
	revokeStranded = `
UPDATE device_passwords d SET revoke_time = now()
WHERE d.address_id = $1 AND d.revoke_time IS NULL
  AND NOT EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = d.address_id AND u.user_id = d.user_id)
RETURNING d.id, d.address_id, d.user_id, d.device_name, d.create_time, d.last_use_time, d.imap, d.smtp`
)

// ApplyPersonLeft detaches the person an accounts event is about from the
// addresses they may no longer use, revoking their device passwords there.
func ApplyPersonLeft(ctx context.Context, tx pgx.Tx, ev proto.Message) error {
	subject := ev.ProtoReflect().Descriptor().Name()
	var sql, actor string
	var args []any
	switch ev := ev.(type) {
	case *accountsv1.MemberDeleted:
		ids, err := parseName("member.name", ev.GetMember().GetName(), "organizations", "members")
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		sql, args, actor = detachMember, []any{ids[0], ids[1]}, ev.GetActor()
	case *accountsv1.UserDeleted:
		user, err := userID("user", ev.GetUser())
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		sql, args, actor = detachUser, []any{user}, ev.GetUser()
	case *accountsv1.LoginReleased:
		user, err := userID("user", ev.GetUser())
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		email := strings.ToLower(ev.GetReleasedEmail())
		if at := strings.LastIndexByte(email, '@'); at > 0 {
			if d, _, err := validate.Domain(email[at+1:]); err == nil {
				email = email[:at+1] + d
			}
		}
		sql, args, actor = detachLogin, []any{user, email}, ev.GetActor()
	default:
		return fmt.Errorf("%s: unexpected event %T", subject, ev)
	}
	rows, _ := tx.Query(ctx, sql, args...)
	left, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, MailService, Organization uuid.UUID }])
	if err != nil {
		return fmt.Errorf("%s: detach: %w", subject, err)
	}
	for _, l := range left {
		a, err := loadAddress(ctx, tx, l.Organization, l.MailService, l.ID)
		if errors.Is(err, errAddressNotFound) {
			// On a deleted mail service (restorable, not yet purged): no
			// address to announce, but its passwords go all the same.
			a = &Address{ID: l.ID, MailServiceID: l.MailService, OrganizationID: l.Organization}
		} else if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		if err := revokeStrandedDevicePasswords(ctx, tx, a, actor); err != nil {
			return err
		}
		if a.LocalPart == "" {
			continue
		}
		if err := outbox.Write(ctx, tx, mailboxesevents.AddressUpdated, addressChanged(a, actor)); err != nil {
			return err
		}
	}
	return nil
}

// revokeStrandedDevicePasswords revokes the device passwords on a of the
// people who no longer use it, with an event for each.
func revokeStrandedDevicePasswords(ctx context.Context, tx pgx.Tx, a *Address, actor string) error {
	rows, _ := tx.Query(ctx, revokeStranded, a.ID)
	revoked, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[DevicePassword])
	if err != nil {
		return fmt.Errorf("revoke device passwords: %w", err)
	}
	for _, d := range revoked {
		err := outbox.Write(ctx, tx, mailboxesevents.DevicePasswordRevoked,
			devicePasswordRevoked(a, d, actor))
		if err != nil {
			return err
		}
	}
	return nil
}
