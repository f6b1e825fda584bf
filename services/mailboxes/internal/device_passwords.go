package mailboxes

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// DevicePassword is a password one device of one user uses for one address.
// Only the SHA-256 of the password is stored.
type DevicePassword struct {
	ID          uuid.UUID
	AddressID   uuid.UUID
	UserID      uuid.UUID
	DeviceName  string
	CreateTime  time.Time
	LastUseTime *time.Time
	// IMAP and SMTP are the protocols it opens.
	IMAP, SMTP bool
}

// maxDevicePasswords is how many unrevoked device passwords one user may
// have on one address.
const maxDevicePasswords = 50

const (
	devicePasswordColumns = `SELECT id, address_id, user_id, device_name, create_time, last_use_time, imap, smtp FROM device_passwords`

	insertDevicePassword = `
INSERT INTO device_passwords (id, address_id, user_id, device_name, secret_sha256, imap, smtp) VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, address_id, user_id, device_name, create_time, last_use_time, imap, smtp`

	countDevicePasswords = `
SELECT count(*) FROM device_passwords WHERE address_id = $1 AND user_id = $2 AND revoke_time IS NULL`

	// selectDevicePasswords lists an address's working passwords, newest
	// first; $2 is the one user to list, NULL for everyone's.
	selectDevicePasswords = devicePasswordColumns + `
WHERE address_id = $1 AND revoke_time IS NULL AND ($2::uuid IS NULL OR user_id = $2)
ORDER BY create_time DESC, id DESC`

	selectDevicePassword = devicePasswordColumns + `
WHERE id = $1 AND address_id = $2 AND revoke_time IS NULL`

	selectDevicePasswordForUpdate = devicePasswordColumns + `
WHERE id = $1 AND address_id = $2 AND revoke_time IS NULL FOR UPDATE`

	revokeDevicePassword = `UPDATE device_passwords SET revoke_time = now() WHERE id = $1`
)

var errDevicePasswordNotFound = errs.E(errs.NotFound, "device password not found")

// secretAlphabet has 32 characters, 5 bits each: lower-case letters and
// digits without the look-alikes l, 1, o and 0.
const secretAlphabet = "abcdefghijkmnpqrstuvwxyz23456789"

// newSecret generates a device password: 16 characters from secretAlphabet
// (80 bits) in four groups, like "h7kq-2mxa-pz9d-wcte".
func newSecret() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	var s strings.Builder
	for i, c := range b {
		if i > 0 && i%4 == 0 {
			s.WriteByte('-')
		}
		s.WriteByte(secretAlphabet[c&31])
	}
	return s.String()
}

// secretHash is what device_passwords.secret_sha256 holds: the SHA-256, in
// hex, of the password lower-cased without dashes and spaces, so that
// "H7KQ 2MXA PZ9D WCTE" typed by a phone's keyboard works too. Dovecot's
// passdb query computes the same from the typed password
// (deploy/mail/dovecot/mailplane-sql.conf.ext); keep the two in step.
func secretHash(password string) string {
	canonical := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		return r
	}, strings.ToLower(password))
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:])
}

// canCreateDevicePassword reports why c may not make a device password for
// themselves on a: only a person who is a user of the address with the
// "devices" right may. Owners and admins are no exception: they add
// themselves to the address's users first.
func canCreateDevicePassword(a *Address, c access.Caller) error {
	if c.IsToken() {
		return errs.E(errs.PermissionDenied, "a device password belongs to a person; an API token cannot create one").WithReason("PERSON_REQUIRED")
	}
	for _, u := range a.Users {
		if u.UserID == nil || *u.UserID != c.UserID {
			continue
		}
		if u.Rights != nil && !u.Rights.Devices {
			return errs.E(errs.PermissionDenied, "your rights on %s do not include devices; ask an owner or admin", a.Email()).WithReason("DEVICES_RIGHT_REQUIRED")
		}
		return nil
	}
	return errs.E(errs.FailedPrecondition, "you are not a user of %s; add yourself to its users first", a.Email()).WithReason("NOT_ADDRESS_USER")
}

func devicePasswordName(a *Address, id uuid.UUID) string {
	return addressName(a.OrganizationID, a.MailServiceID, a.ID) + "/devicePasswords/" + id.String()
}

// devicePasswordRevoked is the event of d's revocation.
func devicePasswordRevoked(a *Address, d *DevicePassword, actor string) *mailboxesv1.DevicePasswordRevoked {
	return &mailboxesv1.DevicePasswordRevoked{DevicePassword: devicePasswordProto(a, d), Actor: actor, Login: a.Login()}
}

func devicePasswordProto(a *Address, d *DevicePassword) *mailboxesv1.DevicePassword {
	p := &mailboxesv1.DevicePassword{
		Name: devicePasswordName(a, d.ID), DeviceName: d.DeviceName, User: userName(d.UserID),
		CreateTime: timestamppb.New(d.CreateTime),
	}
	if d.LastUseTime != nil {
		p.LastUseTime = timestamppb.New(*d.LastUseTime)
	}
	if d.IMAP {
		p.Protocols = append(p.Protocols, mailboxesv1.MailProtocol_MAIL_PROTOCOL_IMAP)
	}
	if d.SMTP {
		p.Protocols = append(p.Protocols, mailboxesv1.MailProtocol_MAIL_PROTOCOL_SMTP)
	}
	return p
}

// protocolNames lists what d opens, for the audit log ("imap,smtp").
func protocolNames(d *DevicePassword) string {
	var names []string
	if d.IMAP {
		names = append(names, "imap")
	}
	if d.SMTP {
		names = append(names, "smtp")
	}
	return strings.Join(names, ",")
}

// checkProtocols says which protocols a new device password opens: those
// listed, or both when none is.
func checkProtocols(in []mailboxesv1.MailProtocol) (imap, smtp bool, err error) {
	if len(in) == 0 {
		return true, true, nil
	}
	for i, p := range in {
		switch p {
		case mailboxesv1.MailProtocol_MAIL_PROTOCOL_IMAP:
			imap = true
		case mailboxesv1.MailProtocol_MAIL_PROTOCOL_SMTP:
			smtp = true
		default:
			return false, false, errs.Field(fmt.Sprintf("devicePassword.protocols[%d]", i), "must be MAIL_PROTOCOL_IMAP or MAIL_PROTOCOL_SMTP")
		}
	}
	return imap, smtp, nil
}

func collectDevicePasswords(rows pgx.Rows) ([]*DevicePassword, error) {
	return pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[DevicePassword])
}

// CreateDevicePassword generates a device password for the caller on an
// address they use with the "devices" right, and returns it this once.
func (s *Server) CreateDevicePassword(ctx context.Context, req *mailboxesv1.CreateDevicePasswordRequest) (*mailboxesv1.CreateDevicePasswordResponse, error) {
	device, err := checkLabel("devicePassword.deviceName", req.GetDevicePassword().GetDeviceName())
	if err != nil {
		return nil, err
	}
	imap, smtp, err := checkProtocols(req.GetDevicePassword().GetProtocols())
	if err != nil {
		return nil, err
	}
	a, c, _, err := s.addressAccess(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if err := canCreateDevicePassword(a, c); err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateDevicePassword")
	if err != nil || done != "" {
		return s.createdDevicePassword(ctx, a, done, err)
	}
	password := newSecret()
	id := uuid.Must(uuid.NewV7())
	var d *DevicePassword
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, devicePasswordName(a, id)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, countDevicePasswords, a.ID, c.UserID).Scan(&n); err != nil {
			return fmt.Errorf("count device passwords: %w", err)
		}
		if n >= maxDevicePasswords {
			return errs.E(errs.ResourceExhausted, "you already have %d device passwords on %s; delete one you no longer use", n, a.Email()).WithReason("TOO_MANY_DEVICE_PASSWORDS")
		}
		rows, _ := tx.Query(ctx, insertDevicePassword, id, a.ID, c.UserID, device, secretHash(password), imap, smtp)
		ds, err := collectDevicePasswords(rows)
		if err != nil {
			return fmt.Errorf("insert device password: %w", err)
		}
		d = ds[0]
		return audit(ctx, tx, organizationName(a.OrganizationID), c, "mailboxes.devicePassword.create", devicePasswordName(a, d.ID),
			map[string]string{"email": a.Email(), "deviceName": device, "protocols": protocolNames(d)})
	})
	if err != nil {
		done, err := s.raced(ctx, idem, err)
		return s.createdDevicePassword(ctx, a, done, err)
	}
	return &mailboxesv1.CreateDevicePasswordResponse{DevicePassword: devicePasswordProto(a, d), Password: password}, nil
}

// createdDevicePassword answers a create again with the device password
// name it made on a, read afresh, or err. The password was shown once and
// is not kept: the answer has none.
func (s *Server) createdDevicePassword(ctx context.Context, a *Address, name string, err error) (*mailboxesv1.CreateDevicePasswordResponse, error) {
	if err != nil {
		return nil, err
	}
	ids, err := parseName("name", name, "organizations", "mailServices", "addresses", "devicePasswords")
	if err != nil {
		return nil, fmt.Errorf("idempotency key names %q: %w", name, err)
	}
	rows, _ := s.pool.Query(ctx, selectDevicePassword, ids[3], a.ID)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[DevicePassword])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errDevicePasswordNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get device password: %w", err)
	}
	return &mailboxesv1.CreateDevicePasswordResponse{DevicePassword: devicePasswordProto(a, d)}, nil
}

// ListDevicePasswords lists an address's device passwords, newest first:
// the caller's own, or everyone's for owners and admins.
func (s *Server) ListDevicePasswords(ctx context.Context, req *mailboxesv1.ListDevicePasswordsRequest) (*mailboxesv1.ListDevicePasswordsResponse, error) {
	a, c, role, err := s.addressAccess(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	var user *uuid.UUID
	if !role.CanManage() {
		user = &c.UserID
	}
	rows, _ := s.pool.Query(ctx, selectDevicePasswords, a.ID, user)
	ds, err := collectDevicePasswords(rows)
	if err != nil {
		return nil, fmt.Errorf("list device passwords: %w", err)
	}
	resp := &mailboxesv1.ListDevicePasswordsResponse{}
	for _, d := range ds {
		resp.DevicePasswords = append(resp.DevicePasswords, devicePasswordProto(a, d))
	}
	return resp, nil
}

// DeleteDevicePassword revokes a device password: its own user, or an owner
// or admin, may. Mail servers refuse it from then on.
func (s *Server) DeleteDevicePassword(ctx context.Context, req *mailboxesv1.DeleteDevicePasswordRequest) (*mailboxesv1.DeleteDevicePasswordResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "addresses", "devicePasswords")
	if err != nil {
		return nil, err
	}
	a, c, role, err := s.addressAccess(ctx, "name", addressName(ids[0], ids[1], ids[2]))
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, selectDevicePasswordForUpdate, ids[3], a.ID)
		d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[DevicePassword])
		if errors.Is(err, pgx.ErrNoRows) {
			return errDevicePasswordNotFound
		}
		if err != nil {
			return fmt.Errorf("get device password: %w", err)
		}
		// Another user's password is as invisible to a member as in the list.
		if !role.CanManage() && d.UserID != c.UserID {
			return errDevicePasswordNotFound
		}
		if d.UserID != c.UserID {
			if err := s.spareOwners(ctx, a.OrganizationID, role, "only an owner can revoke an owner's device password", d.UserID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, revokeDevicePassword, d.ID); err != nil {
			return fmt.Errorf("revoke device password: %w", err)
		}
		name := devicePasswordName(a, d.ID)
		if err := audit(ctx, tx, organizationName(a.OrganizationID), c, "mailboxes.devicePassword.delete", name,
			map[string]string{"email": a.Email(), "deviceName": d.DeviceName, "user": userName(d.UserID)}); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, mailboxesevents.DevicePasswordRevoked,
			devicePasswordRevoked(a, d, c.Name()))
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.DeleteDevicePasswordResponse{}, nil
}
