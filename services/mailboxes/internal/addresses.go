package mailboxes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Address is an email address on a mail service.
type Address struct {
	ID            uuid.UUID
	MailServiceID uuid.UUID
	LocalPart     string
	LocalKey      string
	Kind          string
	Redirects     []string
	QuotaBytes    int64
	UsageBytes    int64
	CreateTime    time.Time
	UpdateTime    time.Time

	// Loaded with the address.
	Domain         string
	OrganizationID uuid.UUID
	Aliases        []string
	Users          []AddressUser
	// SignatureID is the signature template it uses; nil: none.
	SignatureID *uuid.UUID
}

// AddressUser is a person who may use an address: a user, or an invited
// email while the invitation is pending.
type AddressUser struct {
	UserID     *uuid.UUID
	Email      string
	Invitation string
	Rights     *Rights
}

// Rights are what a user may do with an address; nil means the default
// rights: all of them.
type Rights struct {
	AutoReply  bool `json:"autoReply"`
	Devices    bool `json:"devices"`
	Filters    bool `json:"filters"`
	Signatures bool `json:"signatures"`
}

// Email is the whole address.
func (a *Address) Email() string { return a.LocalPart + "@" + a.Domain }

// Login is the address's user name in Dovecot (dovecot_users.login), or ""
// when a is not known that well.
func (a *Address) Login() string {
	if a.LocalKey == "" || a.Domain == "" {
		return ""
	}
	return a.LocalKey + "@" + a.Domain
}

// addressChanged is the event of a change to a.
func addressChanged(a *Address, actor string) *mailboxesv1.AddressChanged {
	return &mailboxesv1.AddressChanged{Address: addressProto(a), Actor: actor, Login: a.Login()}
}

// hasUser reports whether user may use a.
func (a *Address) hasUser(user uuid.UUID) bool {
	for _, u := range a.Users {
		if u.UserID != nil && *u.UserID == user {
			return true
		}
	}
	return false
}

var kinds = map[mailboxesv1.AddressKind]string{
	mailboxesv1.AddressKind_ADDRESS_KIND_UNSPECIFIED: "mailbox",
	mailboxesv1.AddressKind_ADDRESS_KIND_MAILBOX:     "mailbox",
	mailboxesv1.AddressKind_ADDRESS_KIND_NO_REPLY:    "no_reply",
	mailboxesv1.AddressKind_ADDRESS_KIND_CATCH_ALL:   "catch_all",
	mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT:    "redirect",
}

const (
	addressColumns = `
SELECT a.id, a.mail_service_id, a.local_part, a.local_key, a.kind, a.redirects, a.quota_bytes,
       COALESCE((SELECT q.bytes FROM dovecot_quota q WHERE q.login = a.local_key || '@' || m.domain), 0),
       a.create_time, a.update_time, m.domain, m.organization_id,
       COALESCE((SELECT array_agg(l.local_key ORDER BY l.local_key) FROM local_parts l WHERE l.address_id = a.id AND l.is_alias), '{}'),
       COALESCE((SELECT jsonb_agg(jsonb_build_object('userId', u.user_id, 'email', u.email, 'invitation', u.invitation, 'rights', u.rights)
                                  ORDER BY u.email, u.user_id)
                 FROM address_users u WHERE u.address_id = a.id), '[]'),
       a.signature_id
FROM addresses a JOIN mail_services m ON m.id = a.mail_service_id`

	selectAddress = addressColumns + `
WHERE a.id = $1 AND a.mail_service_id = $2 AND m.organization_id = $3 AND m.delete_time IS NULL`

	whoHolds = `SELECT address_id IS NOT NULL, is_alias, COALESCE(holder, '') FROM local_parts WHERE mail_service_id = $1 AND local_key = $2`

	// insertAddressOnce inserts an address into an active mail service of
	// the organization ($8), unless its local key is taken.
	insertAddressOnce = `
INSERT INTO addresses (id, mail_service_id, local_part, local_key, kind, redirects, quota_bytes)
SELECT $1, $2, $3, $4, $5, $6, $7
WHERE EXISTS (SELECT 1 FROM mail_services WHERE id = $2 AND organization_id = $8 AND delete_time IS NULL)
ON CONFLICT (mail_service_id, local_key) DO NOTHING
RETURNING create_time`

	// insertLocalParts claims an address's keys; one that is taken fails it.
	insertLocalParts = `
INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias)
SELECT $1, k, $3, a FROM unnest($2::text[], $4::boolean[]) AS t(k, a)`

	insertAddressUsers = `
INSERT INTO address_users (address_id, user_id) SELECT $1, unnest($2::uuid[])`

	insertAddressInvitees = `
INSERT INTO address_users (address_id, email) SELECT $1, unnest($2::text[])`

	insertAddressUser = `
INSERT INTO address_users (address_id, user_id, email, invitation, rights) VALUES ($1, $2, $3, $4, $5)`

	updateAddress = `
UPDATE addresses SET redirects = $2, quota_bytes = $3, update_time = now() WHERE id = $1`

	deleteAliases      = `DELETE FROM local_parts WHERE address_id = $1 AND is_alias`
	deleteAddressUsers = `DELETE FROM address_users WHERE address_id = $1`
	deleteAddress      = `DELETE FROM addresses WHERE id = $1`
)

// addressRow scans addressColumns.
func collectAddresses(rows pgx.Rows) ([]*Address, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Address, error) {
		var a Address
		var users []byte
		err := row.Scan(&a.ID, &a.MailServiceID, &a.LocalPart, &a.LocalKey, &a.Kind, &a.Redirects, &a.QuotaBytes, &a.UsageBytes,
			&a.CreateTime, &a.UpdateTime, &a.Domain, &a.OrganizationID, &a.Aliases, &users, &a.SignatureID)
		if err != nil {
			return nil, err
		}
		var us []struct {
			UserID     *uuid.UUID `json:"userId"`
			Email      string     `json:"email"`
			Invitation string     `json:"invitation"`
			Rights     *Rights    `json:"rights"`
		}
		if err := json.Unmarshal(users, &us); err != nil {
			return nil, err
		}
		for _, u := range us {
			a.Users = append(a.Users, AddressUser{UserID: u.UserID, Email: u.Email, Invitation: u.Invitation, Rights: u.Rights})
		}
		return &a, nil
	})
}

var errAddressNotFound = errs.E(errs.NotFound, "address not found")

func loadAddress(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, org, ms, id uuid.UUID) (*Address, error) {
	rows, _ := q.Query(ctx, selectAddress, id, ms, org)
	as, err := collectAddresses(rows)
	if err != nil {
		return nil, fmt.Errorf("get address: %w", err)
	}
	if len(as) == 0 {
		return nil, errAddressNotFound
	}
	return as[0], nil
}

// addressAccess loads the address named name for the caller: owners and
// admins see every address, members only those they were given (others are
// NotFound).
func (s *Server) addressAccess(ctx context.Context, field, name string) (*Address, access.Caller, access.Role, error) {
	ids, err := parseName(field, name, "organizations", "mailServices", "addresses")
	if err != nil {
		return nil, access.Caller{}, "", err
	}
	c, role, err := s.access(ctx, ids[0])
	if err != nil {
		return nil, c, "", err
	}
	a, err := loadAddress(ctx, s.pool, ids[0], ids[1], ids[2])
	if err != nil {
		return nil, c, "", err
	}
	if !role.CanManage() && (c.IsToken() || !a.hasUser(c.UserID)) {
		return nil, c, "", errAddressNotFound
	}
	return a, c, role, nil
}

// claimAliases claims the keys $2 on mail service $1 as aliases of address
// $3 and returns those it got.
const claimAliases = `
INSERT INTO local_parts (mail_service_id, local_key, address_id, is_alias)
SELECT $1, k, $3, true FROM unnest($2::text[]) AS k
ON CONFLICT DO NOTHING
RETURNING local_key`

// takeAliases claims aliases on ms for address id in one round trip, or
// says who holds the first one taken.
func takeAliases(ctx context.Context, tx pgx.Tx, ms, id uuid.UUID, aliases []string) error {
	if len(aliases) == 0 {
		return nil
	}
	rows, _ := tx.Query(ctx, claimAliases, ms, aliases, id)
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("claim aliases: %w", err)
	}
	if len(got) == len(aliases) {
		return nil
	}
	claimed := make(map[string]bool, len(got))
	for _, k := range got {
		claimed[k] = true
	}
	for i, al := range aliases {
		if !claimed[al] {
			return takenError(ctx, tx, ms, al, fmt.Sprintf("address.aliases[%d]", i))
		}
	}
	return nil
}

// domainOf returns the domain of org's mail service ms. A mail service's
// domain never changes, so it is remembered; whether the mail service is
// still active is checked by each write.
func (s *Server) domainOf(ctx context.Context, org, ms uuid.UUID) (string, error) {
	if d, ok := s.domains.Load(ms); ok {
		if d := d.(cachedDomain); d.org == org {
			return d.domain, nil
		}
	}
	m, err := activeMailService(ctx, s.pool, org, ms)
	if err != nil {
		return "", err
	}
	s.domains.Store(ms, cachedDomain{org: org, domain: m.Domain})
	return m.Domain, nil
}

type cachedDomain struct {
	org    uuid.UUID
	domain string
}

// insertAddress stores a new address, its local parts and users, its audit
// record and its event as one write of s.writes: one round trip, committed
// with the other creates waiting at that moment. Why it failed is asked
// afterwards, outside.
func (s *Server) insertAddress(ctx context.Context, c access.Caller, a *Address, users []uuid.UUID, invites []string, idem idempotency.Request) error {
	keys := append([]string{a.LocalKey}, a.Aliases...)
	isAlias := make([]bool, len(keys))
	for i := 1; i < len(keys); i++ {
		isAlias[i] = true
	}
	name := addressName(a.OrganizationID, a.MailServiceID, a.ID)
	a.CreateTime = time.Now()
	a.UpdateTime = a.CreateTime
	events := []outbox.Event{
		auditEvent(ctx, organizationName(a.OrganizationID), c, "mailboxes.address.create", name, map[string]string{"email": a.Email(), "kind": a.Kind}),
		{Subject: mailboxesevents.AddressCreated, Msg: addressChanged(a, c.Name())},
	}
	// The address, its names, users and events are one write: when the
	// mail service is gone or a name is taken, the insert returns no row and
	// the names' insert fails on its foreign key or primary key, undoing all.
	var created time.Time
	err := s.writes.Send(ctx, func(b *pgx.Batch) error {
		// The key first: a concurrent create with the same key waits for
		// it and fails on it, rather than on the address's names.
		idem.Queue(b, name)
		b.Queue(insertAddressOnce, a.ID, a.MailServiceID, a.LocalPart, a.LocalKey, a.Kind, a.Redirects, a.QuotaBytes, a.OrganizationID).
			QueryRow(func(r pgx.Row) error { return r.Scan(&created) })
		b.Queue(insertLocalParts, a.MailServiceID, keys, a.ID, isAlias)
		if len(users) > 0 {
			b.Queue(insertAddressUsers, a.ID, users)
		}
		if len(invites) > 0 {
			b.Queue(insertAddressInvitees, a.ID, invites)
		}
		return outbox.Queue(ctx, b, events...)
	})
	if err == nil {
		a.CreateTime, a.UpdateTime = created, created
		return nil
	}
	if idempotency.IsRace(err) {
		return err
	}
	if !errors.Is(err, pgx.ErrNoRows) && !pg.IsUniqueViolation(err, "") && !pg.IsForeignKeyViolation(err, "") {
		return fmt.Errorf("insert address: %w", err)
	}
	// The mail service is gone, or a name is taken.
	if _, err := activeMailService(ctx, s.pool, a.OrganizationID, a.MailServiceID); err != nil {
		return err
	}
	for i, k := range keys {
		field := "address.localPart"
		if i > 0 {
			field = fmt.Sprintf("address.aliases[%d]", i-1)
		}
		if err := takenError(ctx, s.pool, a.MailServiceID, k, field); !errors.Is(err, errLocalPartFree) {
			return err
		}
	}
	return errs.E(errs.Conflict, "the address's names changed hands meanwhile; try again")
}

// errLocalPartFree is takenError's answer for a key nobody holds (any more).
var errLocalPartFree = errors.New("local part is free")

// takenError says who holds key on ms.
func takenError(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ms uuid.UUID, key, field string) error {
	var isAddress, isAlias bool
	var holder string
	err := q.QueryRow(ctx, whoHolds, ms, key).Scan(&isAddress, &isAlias, &holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return errLocalPartFree
	} else if err != nil {
		return fmt.Errorf("claim local part: %w", err)
	}
	switch {
	case holder != "":
		return errs.Field(field, fmt.Sprintf("%q is reserved by the %s service", key, holder))
	case isAlias:
		return errs.Field(field, fmt.Sprintf("%q is already an alias of another address", key))
	case key == "*":
		return errs.E(errs.AlreadyExists, "this mail service already has a catch-all address").WithReason("CATCH_ALL_EXISTS")
	}
	return errs.E(errs.AlreadyExists, "%q is already an address of this mail service", key).WithReason("ADDRESS_TAKEN")
}

// CreateAddress creates an address and gives it its users.
func (s *Server) CreateAddress(ctx context.Context, req *mailboxesv1.CreateAddressRequest) (*mailboxesv1.CreateAddressResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	org, msID := ids[0], ids[1]
	in := req.GetAddress()
	kind, ok := kinds[in.GetKind()]
	if !ok {
		return nil, errs.Field("address.kind", "unknown kind")
	}
	localPart, aliases, redirects, err := checkAddress(in, kind)
	if err != nil {
		return nil, err
	}
	if in.GetQuotaBytes() < 0 {
		return nil, errs.Field("address.quotaBytes", "must not be negative")
	}
	c, err := s.manage(ctx, org)
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateAddress")
	if err != nil || done != "" {
		return s.createdAddress(ctx, done, err)
	}
	users, invites, err := s.checkAccess(ctx, org, c, req.GetAccess())
	if err != nil {
		return nil, err
	}
	newUser := req.GetAccess().GetNewUser()
	if newUser != nil && strings.TrimSpace(newUser.GetDisplayName()) == "" {
		return nil, errs.Field("access.newUser.displayName", "is required")
	}
	if (kind == "redirect" || kind == "catch_all") && (len(users) > 0 || len(invites) > 0 || newUser != nil) {
		return nil, errs.Field("access", "a "+strings.ReplaceAll(kind, "_", "-")+" address has no users")
	}
	if newUser != nil {
		if err := s.requireVerified(ctx, org, msID, "access.newUser"); err != nil {
			return nil, err
		}
	}
	id := uuid.Must(uuid.NewV7())
	key := localKey(localPart)
	a := &Address{ID: id, MailServiceID: msID, OrganizationID: org, LocalPart: localPart, LocalKey: key, Kind: kind,
		Redirects: redirects, QuotaBytes: in.GetQuotaBytes(), Aliases: aliases}
	if a.Redirects == nil {
		a.Redirects = []string{}
	}
	slices.Sort(a.Aliases)
	for _, u := range users {
		a.Users = append(a.Users, AddressUser{UserID: &u})
	}
	for _, e := range invites {
		a.Users = append(a.Users, AddressUser{Email: e})
	}
	if a.Domain, err = s.domainOf(ctx, org, msID); err != nil {
		return nil, err
	}
	if err := s.insertAddress(ctx, c, a, users, invites, idem); err != nil {
		done, err := s.raced(ctx, idem, err)
		return s.createdAddress(ctx, done, err)
	}
	resp := &mailboxesv1.CreateAddressResponse{Address: addressProto(a)}
	if newUser != nil {
		// The user lives in accounts; made once the address exists, so a
		// refusal there (the login email is someone's already) leaves the
		// address, which the error says.
		user, link, err := s.accounts.CreateMember(ctx, org, strings.ToLower(a.Email()), strings.TrimSpace(newUser.GetDisplayName()))
		if err != nil {
			return nil, fmt.Errorf("address %s created, but not its new user: %w", a.Email(), err)
		}
		if _, err := s.pool.Exec(ctx, insertAddressUser, id, user, "", "", nil); err != nil {
			return nil, fmt.Errorf("add new user: %w", err)
		}
		a.Users = append(a.Users, AddressUser{UserID: &user})
		resp.Address, resp.NewUserSetupLink = addressProto(a), link
	}
	if len(invites) > 0 {
		resp.InvitationLinks = map[string]string{}
	}
	// Invitations live in accounts: made once the address exists. A failure
	// leaves the invitee pending, visible, to be invited again.
	for _, e := range invites {
		name, link, err := s.accounts.Invite(ctx, org, e, "use the address "+a.Email())
		if err != nil {
			s.log.WarnContext(ctx, "invite address user", "address", a.Email(), "email", e, "error", err)
			continue
		}
		if _, err := s.pool.Exec(ctx, "UPDATE address_users SET invitation = $3 WHERE address_id = $1 AND email = $2", id, e, name); err != nil {
			return nil, fmt.Errorf("record invitation: %w", err)
		}
		resp.InvitationLinks[e] = link
	}
	return resp, nil
}

// createdAddress answers a create again with the address name it made
// (read afresh: links shown once are not shown again), or err.
func (s *Server) createdAddress(ctx context.Context, name string, err error) (*mailboxesv1.CreateAddressResponse, error) {
	if err != nil {
		return nil, err
	}
	ids, err := parseName("name", name, "organizations", "mailServices", "addresses")
	if err != nil {
		return nil, fmt.Errorf("idempotency key names %q: %w", name, err)
	}
	a, err := loadAddress(ctx, s.pool, ids[0], ids[1], ids[2])
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.CreateAddressResponse{Address: addressProto(a)}, nil
}

// checkAccess resolves who may use a new address: user ids (the caller,
// existing members) and emails to invite.
func (s *Server) checkAccess(ctx context.Context, org uuid.UUID, c access.Caller, in *mailboxesv1.AddressAccess) ([]uuid.UUID, []string, error) {
	if n := len(in.GetUsers()) + len(in.GetInviteEmails()); n > maxAddressUsers {
		return nil, nil, errs.Field("access", fmt.Sprintf("at most %d users and invitations together", maxAddressUsers))
	}
	var users []uuid.UUID
	seen := map[uuid.UUID]bool{}
	// Accounts is asked once, when the first user is met, about them all.
	var members map[uuid.UUID]access.Role
	if in.GetCaller() {
		if c.IsToken() {
			return nil, nil, errs.Field("access.caller", "an API token is not a person who can use an address")
		}
		users, seen[c.UserID] = append(users, c.UserID), true
	}
	for i, name := range in.GetUsers() {
		field := fmt.Sprintf("access.users[%d]", i)
		id, err := userID(field, name)
		if err != nil {
			return nil, nil, err
		}
		if seen[id] {
			continue
		}
		if members == nil {
			if members, err = s.accounts.Members(ctx, org, userIDs(in.GetUsers())); err != nil {
				return nil, nil, err
			}
		}
		if members[id] == "" {
			return nil, nil, errs.Field(field, "is not a member of the organization; invite them by email instead")
		}
		users, seen[id] = append(users, id), true
	}
	var invites []string
	invited := map[string]bool{}
	for i, e := range in.GetInviteEmails() {
		e = strings.ToLower(strings.TrimSpace(e))
		if err := validate.Email(e); err != nil {
			return nil, nil, errs.Field(fmt.Sprintf("access.inviteEmails[%d]", i), err.Error())
		}
		if !invited[e] {
			invites, invited[e] = append(invites, e), true
		}
	}
	return users, invites, nil
}

// GetAddress returns an address.
func (s *Server) GetAddress(ctx context.Context, req *mailboxesv1.GetAddressRequest) (*mailboxesv1.GetAddressResponse, error) {
	a, _, _, err := s.addressAccess(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.GetAddressResponse{Address: addressProto(a)}, nil
}

// The addresses of a mail service ($1) a List shows: a member sees only
// those they were given ($2, their user id; NULL for managers). $3 to $5
// are the filter, NULL where it has no term: a local key, a prefix of one,
// a user the address is shared with.
const (
	addressesWhere = `
WHERE a.mail_service_id = $1
  AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = $2))
  AND ($3::text IS NULL OR a.local_key = $3)
  AND ($4::text IS NULL OR starts_with(a.local_key, $4))
  AND ($5::uuid IS NULL OR EXISTS (SELECT 1 FROM address_users u WHERE u.address_id = a.id AND u.user_id = $5))`

	countAddresses = `SELECT count(*) FROM addresses a` + addressesWhere
)

// addressPage returns the query for one page of addresses in order o: $6 is
// the limit, $7 and $8 the sort key and id of the previous page's last
// address (NULL on the first page). Pages are keyset, never OFFSET, so
// they stay fast and skip nothing while addresses come and go.
func addressPage(o aip.Order) string {
	if o.Field == "create_time" {
		return addressColumns + addressesWhere + aip.Seek("a.create_time", "timestamptz", "a.id", o.Desc, 7, 6)
	}
	return addressColumns + addressesWhere + aip.Seek("a.local_key", "text", "a.id", o.Desc, 7, 6)
}

// ListAddresses lists a mail service's addresses.
func (s *Server) ListAddresses(ctx context.Context, req *mailboxesv1.ListAddressesRequest) (*mailboxesv1.ListAddressesResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	filter, err := aip.ParseFilter(req.GetFilter(), map[string]aip.Match{"local_part": aip.Prefix, "user": aip.Equal})
	if err != nil {
		return nil, err
	}
	// args are $1 to $5 of addressesWhere.
	args := []any{ids[1], nil, nil, nil, nil}
	if t, ok := filter.Get("local_part"); ok && t.Prefix {
		args[3] = localKey(t.Value)
	} else if ok {
		args[2] = localKey(t.Value)
	}
	if t, ok := filter.Get("user"); ok {
		if args[4], err = userID("filter", t.Value); err != nil {
			return nil, err
		}
	}
	order, err := aip.ParseOrderBy(req.GetOrderBy(), aip.Order{Field: "local_part"}, "local_part", "create_time")
	if err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListAddresses", req.GetParent(), filter.String(), order.String())
	if err != nil {
		return nil, err
	}
	afterKey, afterID, err := page.Cursor(order.Field == "create_time")
	if err != nil {
		return nil, err
	}

	c, role, err := s.access(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	if _, err := activeMailService(ctx, s.pool, ids[0], ids[1]); err != nil {
		return nil, err
	}
	if !role.CanManage() {
		if c.IsToken() {
			return &mailboxesv1.ListAddressesResponse{}, nil
		}
		args[1] = c.UserID
	}
	resp := &mailboxesv1.ListAddressesResponse{}
	if err := s.pool.QueryRow(ctx, countAddresses, args...).Scan(&resp.TotalSize); err != nil {
		return nil, fmt.Errorf("count addresses: %w", err)
	}
	rows, _ := s.pool.Query(ctx, addressPage(order), append(args, page.Size+1, afterKey, afterID)...)
	as, err := collectAddresses(rows)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	as, resp.NextPageToken = aip.Trim(page, as, func(a *Address) []string {
		if order.Field == "create_time" {
			return []string{aip.TimeKey(a.CreateTime), a.ID.String()}
		}
		return []string{a.LocalKey, a.ID.String()}
	})
	for _, a := range as {
		resp.Addresses = append(resp.Addresses, addressProto(a))
	}
	return resp, nil
}

// UpdateAddress changes an address's users, destinations, aliases or quota.
func (s *Server) UpdateAddress(ctx context.Context, req *mailboxesv1.UpdateAddressRequest) (*mailboxesv1.UpdateAddressResponse, error) {
	a, c, role, err := s.addressAccess(ctx, "address.name", req.GetAddress().GetName())
	if err != nil {
		return nil, err
	}
	in := req.GetAddress()
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "users", "redirect_destinations", "aliases", "quota_bytes", "signature")
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		// Users with the signatures right may choose the signature alone.
		if err := canChooseSignature(a, c, paths); err != nil {
			return nil, err
		}
	}
	redirects, quota := a.Redirects, a.QuotaBytes
	var aliases []string
	var users []AddressUser
	setAliases, setUsers := false, false
	var signature *uuid.UUID
	setSignature := false
	for _, p := range paths {
		switch p {
		case "redirect_destinations":
			if redirects, err = checkRedirects(a.Kind, in.GetRedirectDestinations()); err != nil {
				return nil, err
			}
		case "aliases":
			if aliases, err = checkAliases(in.GetAliases()); err != nil {
				return nil, err
			}
			if slices.Contains(aliases, a.LocalKey) {
				return nil, errs.Field("address.aliases", fmt.Sprintf("%q is the address's own local part", a.LocalKey))
			}
			setAliases = true
		case "quota_bytes":
			if quota = in.GetQuotaBytes(); quota < 0 {
				return nil, errs.Field("address.quotaBytes", "must not be negative")
			}
		case "users":
			if users, err = s.checkUsers(ctx, a, in.GetUsers()); err != nil {
				return nil, err
			}
			if err := s.spareOwners(ctx, a.OrganizationID, role, "only an owner can take an owner off an address or change their rights on it",
				changedUsers(a.Users, users)...); err != nil {
				return nil, err
			}
			setUsers = true
		case "signature":
			if signature, err = parseAddressSignature(a, in.GetSignature()); err != nil {
				return nil, err
			}
			setSignature = true
		}
	}
	if redirects == nil {
		// The column is NOT NULL: no destinations is an empty array,
		// whether the address had none or the update cleared them.
		redirects = []string{}
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, updateAddress, a.ID, redirects, quota); err != nil {
			return fmt.Errorf("update address: %w", err)
		}
		if setAliases {
			if _, err := tx.Exec(ctx, deleteAliases, a.ID); err != nil {
				return err
			}
			if err := takeAliases(ctx, tx, a.MailServiceID, a.ID, aliases); err != nil {
				return err
			}
		}
		if setUsers {
			if _, err := tx.Exec(ctx, deleteAddressUsers, a.ID); err != nil {
				return err
			}
			for _, u := range users {
				var rights []byte
				if u.Rights != nil {
					rights, _ = json.Marshal(u.Rights)
				}
				if _, err := tx.Exec(ctx, insertAddressUser, a.ID, u.UserID, u.Email, u.Invitation, rights); err != nil {
					return fmt.Errorf("set users: %w", err)
				}
			}
		}
		if setSignature {
			if err := chooseSignature(ctx, tx, a, signature); err != nil {
				return err
			}
		}
		var err error
		if a, err = loadAddress(ctx, tx, a.OrganizationID, a.MailServiceID, a.ID); err != nil {
			return err
		}
		// Someone taken off the address keeps no working device password.
		if setUsers {
			if err := revokeStrandedDevicePasswords(ctx, tx, a, c.Name()); err != nil {
				return err
			}
		}
		if err := audit(ctx, tx, organizationName(a.OrganizationID), c, "mailboxes.address.update", addressName(a.OrganizationID, a.MailServiceID, a.ID),
			map[string]string{"fields": strings.Join(paths, ",")}); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, mailboxesevents.AddressUpdated, addressChanged(a, c.Name()))
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.UpdateAddressResponse{Address: addressProto(a)}, nil
}

// checkUsers resolves a new access list: users must be members; emails not
// already pending are invited.
func (s *Server) checkUsers(ctx context.Context, a *Address, in []*mailboxesv1.AddressUser) ([]AddressUser, error) {
	if (a.Kind == "redirect" || a.Kind == "catch_all") && len(in) > 0 {
		return nil, errs.Field("address.users", "this kind of address has no users")
	}
	if len(in) > maxAddressUsers {
		return nil, errs.Field("address.users", fmt.Sprintf("at most %d users", maxAddressUsers))
	}
	// Accounts is asked once, when the first user is met, about them all.
	var members map[uuid.UUID]access.Role
	pending := map[string]string{}
	for _, u := range a.Users {
		if u.UserID == nil {
			pending[u.Email] = u.Invitation
		}
	}
	var out []AddressUser
	for i, u := range in {
		var rights *Rights
		if r := u.GetRights(); r != nil {
			rights = &Rights{AutoReply: r.GetAutoReply(), Devices: r.GetDevices(), Filters: r.GetFilters(), Signatures: r.GetSignatures()}
		}
		if u.GetUser() != "" {
			field := fmt.Sprintf("address.users[%d].user", i)
			id, err := userID(field, u.GetUser())
			if err != nil {
				return nil, err
			}
			if members == nil {
				var names []string
				for _, u := range in {
					names = append(names, u.GetUser())
				}
				if members, err = s.accounts.Members(ctx, a.OrganizationID, userIDs(names)); err != nil {
					return nil, err
				}
			}
			if members[id] == "" {
				return nil, errs.Field(field, "is not a member of the organization")
			}
			out = append(out, AddressUser{UserID: &id, Rights: rights})
			continue
		}
		e := strings.ToLower(strings.TrimSpace(u.GetEmail()))
		if err := validate.Email(e); err != nil {
			return nil, errs.Field(fmt.Sprintf("address.users[%d].email", i), err.Error())
		}
		inv := pending[e]
		if inv == "" { // new, or its invitation could not be made before
			name, _, err := s.accounts.Invite(ctx, a.OrganizationID, e, "use the address "+a.Email())
			if err != nil {
				return nil, err
			}
			inv = name
		}
		out = append(out, AddressUser{Email: e, Invitation: inv, Rights: rights})
	}
	return out, nil
}

// changedUsers returns the users of before who are not in after, or are
// with other rights.
func changedUsers(before, after []AddressUser) []uuid.UUID {
	kept := map[uuid.UUID]Rights{}
	for _, u := range after {
		if u.UserID != nil {
			kept[*u.UserID] = rightsOf(u)
		}
	}
	var out []uuid.UUID
	for _, u := range before {
		if u.UserID == nil {
			continue
		}
		if r, ok := kept[*u.UserID]; !ok || r != rightsOf(u) {
			out = append(out, *u.UserID)
		}
	}
	return out
}

func rightsOf(u AddressUser) Rights {
	if u.Rights == nil {
		return allRights
	}
	return *u.Rights
}

// DeleteAddress deletes an address, its aliases and device passwords.
func (s *Server) DeleteAddress(ctx context.Context, req *mailboxesv1.DeleteAddressRequest) (*mailboxesv1.DeleteAddressResponse, error) {
	a, c, role, err := s.addressAccess(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		return nil, errs.E(errs.PermissionDenied, "only owners and admins can delete an address")
	}
	if err := s.spareOwners(ctx, a.OrganizationID, role, "only an owner can delete an address an owner uses", changedUsers(a.Users, nil)...); err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, deleteAddress, a.ID); err != nil {
			return fmt.Errorf("delete address: %w", err)
		}
		// A later address of the same name starts from zero.
		if _, err := tx.Exec(ctx, "DELETE FROM dovecot_quota WHERE login = $1", a.Login()); err != nil {
			return fmt.Errorf("delete address usage: %w", err)
		}
		if err := audit(ctx, tx, organizationName(a.OrganizationID), c, "mailboxes.address.delete", req.GetName(), map[string]string{"email": a.Email()}); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, mailboxesevents.AddressDeleted, addressChanged(a, c.Name()))
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.DeleteAddressResponse{}, nil
}

var kindProtos = map[string]mailboxesv1.AddressKind{
	"mailbox":   mailboxesv1.AddressKind_ADDRESS_KIND_MAILBOX,
	"no_reply":  mailboxesv1.AddressKind_ADDRESS_KIND_NO_REPLY,
	"catch_all": mailboxesv1.AddressKind_ADDRESS_KIND_CATCH_ALL,
	"redirect":  mailboxesv1.AddressKind_ADDRESS_KIND_REDIRECT,
}

func addressProto(a *Address) *mailboxesv1.Address {
	p := &mailboxesv1.Address{
		Name: addressName(a.OrganizationID, a.MailServiceID, a.ID), LocalPart: a.LocalPart, Email: a.Email(), Kind: kindProtos[a.Kind],
		RedirectDestinations: a.Redirects, Aliases: a.Aliases, QuotaBytes: a.QuotaBytes, UsageBytes: a.UsageBytes,
		CreateTime: timestamppb.New(a.CreateTime), UpdateTime: timestamppb.New(a.UpdateTime),
	}
	if a.SignatureID != nil {
		p.Signature = signatureName(a.OrganizationID, a.MailServiceID, *a.SignatureID)
	}
	for _, u := range a.Users {
		pu := &mailboxesv1.AddressUser{State: mailboxesv1.AddressUserState_ADDRESS_USER_STATE_ACTIVE}
		if u.UserID != nil {
			pu.User = userName(*u.UserID)
		} else {
			pu.Email, pu.State, pu.Invitation = u.Email, mailboxesv1.AddressUserState_ADDRESS_USER_STATE_PENDING, u.Invitation
		}
		if u.Rights != nil {
			pu.Rights = &mailboxesv1.Rights{AutoReply: u.Rights.AutoReply, Devices: u.Rights.Devices, Filters: u.Rights.Filters, Signatures: u.Rights.Signatures}
		}
		p.Users = append(p.Users, pu)
	}
	return p
}
