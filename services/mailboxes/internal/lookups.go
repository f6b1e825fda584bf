package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mailplane/mailplane/services/platform/validate"
)

// The questions Postfix asks about mail, one query each. Only active mail
// services (delete_time NULL) whose domain is verified route mail: a
// pending claim may be anyone's. Keys arrive as "local@domain";
// local parts are compared by their key (lower case), domains in ASCII.
//
// To Postfix a socketmap is a pattern table: it asks for the full address
// only, as the client wrote it (no lower-casing, no second try without the
// "+extension", no "@domain" catch-all lookup). So the queries do that work:
// where a local part is not in use, the one without its extension ($3, the
// empty string when there is none) answers, and only then the catch-all.
const (
	// selectDomain: virtual_mailbox_domains.
	selectDomain = `SELECT EXISTS (SELECT 1 FROM mail_services WHERE domain = $1 AND delete_time IS NULL AND state = 'verified')`

	// selectMailbox: virtual_mailbox_maps. Of the local part (or else the
	// one without its extension), an address's own: mailboxes store mail;
	// a no-reply address receives nothing, a redirect or the catch-all
	// stores nothing, an alias is resolved by the alias map first.
	// A reservation answers with its holder, which Mailbox finds only when
	// the holder's mail has a transport (see Transport).
	selectMailbox = `
SELECT CASE WHEN a.kind = 'mailbox' AND NOT lp.is_alias THEN ms.domain || '/' || a.local_key || '/' END, lp.holder
FROM mail_services ms
JOIN local_parts lp ON lp.mail_service_id = ms.id
LEFT JOIN addresses a ON a.id = lp.address_id
WHERE ms.domain = $1 AND ms.delete_time IS NULL AND ms.state = 'verified' AND lp.local_key IN ($2, $3)
ORDER BY lp.local_key = $2 DESC LIMIT 1`

	// selectAlias: virtual_alias_maps, best row first:
	//   rank 0: the local part itself: an address's own, an alias of one, or
	//           a reservation for another service;
	//   rank 1: the local part without its extension;
	//   rank 2: the domain's catch-all.
	selectAlias = `
WITH ms AS (SELECT id FROM mail_services WHERE domain = $1 AND delete_time IS NULL AND state = 'verified')
SELECT CASE WHEN lp.local_key = $2 THEN 0 ELSE 1 END AS rank, lp.holder IS NOT NULL, lp.is_alias,
       COALESCE(a.kind, ''), COALESCE(a.local_key, ''), COALESCE(a.redirects, '{}')
FROM ms JOIN local_parts lp ON lp.mail_service_id = ms.id LEFT JOIN addresses a ON a.id = lp.address_id
WHERE lp.local_key IN ($2, $3)
UNION ALL
SELECT 2, false, false, a.kind, a.local_key, a.redirects
FROM ms JOIN addresses a ON a.mail_service_id = ms.id
WHERE a.local_key = '*'
ORDER BY rank LIMIT 1`

	// selectSenderOwner: smtpd_sender_login_maps. The address that owns the
	// local part (or else the one without its extension), as its own or as
	// an alias, if it sends: mailboxes and no-reply addresses do.
	selectSenderOwner = `
SELECT CASE WHEN a.kind IN ('mailbox', 'no_reply') THEN a.local_key END
FROM mail_services ms
JOIN local_parts lp ON lp.mail_service_id = ms.id
LEFT JOIN addresses a ON a.id = lp.address_id
WHERE ms.domain = $1 AND ms.delete_time IS NULL AND ms.state = 'verified' AND lp.local_key IN ($2, $3)
ORDER BY lp.local_key = $2 DESC LIMIT 1`

	// selectHolder: transport_maps. The service holding the local part (or
	// else the one without its extension: "team-bounces+VERP" rides on
	// "team-bounces"), NULL when an address of ours has it, and whether the
	// local part itself matched.
	selectHolder = `
SELECT lp.holder, lp.local_key = $2
FROM mail_services ms
JOIN local_parts lp ON lp.mail_service_id = ms.id
WHERE ms.domain = $1 AND ms.delete_time IS NULL AND ms.state = 'verified' AND lp.local_key IN ($2, $3)
ORDER BY lp.local_key = $2 DESC LIMIT 1`

	// selectNoReply: whether the local part (or else the one without its
	// extension) belongs to a no-reply address, as its own or as an alias.
	selectNoReply = `
SELECT COALESCE(a.kind = 'no_reply', false)
FROM mail_services ms
JOIN local_parts lp ON lp.mail_service_id = ms.id
LEFT JOIN addresses a ON a.id = lp.address_id
WHERE ms.domain = $1 AND ms.delete_time IS NULL AND ms.state = 'verified' AND lp.local_key IN ($2, $3)
ORDER BY lp.local_key = $2 DESC LIMIT 1`
)

// recipientDelimiter separates a local part from its extension
// ("anna+news"). deploy/mail/postfix sets Postfix's recipient_delimiter to
// the same, as is Dovecot's default, so the mail store files mail for
// "anna+news" into anna's mailbox.
const recipientDelimiter = "+"

// Lookups answers the questions the mail servers ask about domains and
// addresses. A key that is not one plain address is simply not found: a
// malformed key must never turn into an error (and a 4xx or 5xx) in Postfix.
type Lookups struct {
	pool *pgxpool.Pool
	// transports maps a reservation's holder to the Postfix transport its
	// mail goes to ("lmtp:inet:host:port"); a holder without one receives
	// no mail through Postfix.
	transports map[string]string
}

// NewLookups returns lookups over pool.
func NewLookups(pool *pgxpool.Pool) *Lookups { return &Lookups{pool: pool} }

// Route sends the mail of holder's reservations to transport, a Postfix
// transport such as LMTPTransport's. Call it before the lookups are used.
func (l *Lookups) Route(holder, transport string) {
	if l.transports == nil {
		l.transports = map[string]string{}
	}
	l.transports[holder] = transport
}

// HolderLists is the holder of the lists service's reservations: a list's
// address and its robots' (team@, team-request@, team-bounces@...).
const HolderLists = "lists"

// LMTPTransport is the Postfix transport delivering over LMTP to addr
// (host:port): "lmtp:inet:host:port", an IPv6 host in brackets.
func LMTPTransport(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", errors.New("a host is needed: Postfix connects to it")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return "lmtp:inet:" + net.JoinHostPort(host, port), nil
}

// splitAddress splits a key "local@domain" into the local part's key (lower
// case) and the domain's ASCII form (lower case). ok is false for anything
// but one plain address: no "@" or several, an empty side, a quoted or
// otherwise unusual local part.
func splitAddress(s string) (key, domain string, ok bool) {
	local, domain, found := strings.Cut(s, "@")
	if !found || strings.Contains(domain, "@") || strings.ContainsAny(s, " \t\r\n\"\\") {
		return "", "", false
	}
	if local != "*" && checkLocalPart(local) != nil {
		return "", "", false
	}
	domain, _, err := validate.Domain(domain)
	if err != nil {
		return "", "", false
	}
	return localKey(local), domain, true
}

// baseKey is key without its "+extension", or "" when it has none.
func baseKey(key string) string {
	if i := strings.Index(key, recipientDelimiter); i > 0 {
		return key[:i]
	}
	return ""
}

// Domain reports whether domain is an active mail service's
// (virtual_mailbox_domains).
func (l *Lookups) Domain(ctx context.Context, domain string) (bool, error) {
	if strings.ContainsAny(domain, "@ \t\r\n") {
		return false, nil
	}
	ascii, _, err := validate.Domain(domain)
	if err != nil {
		return false, nil
	}
	var ok bool
	if err := l.pool.QueryRow(ctx, selectDomain, ascii).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up domain %q: %w", domain, err)
	}
	return ok, nil
}

// Mailbox returns where mail for email is stored, "domain/localkey/", when
// email is a mailbox (virtual_mailbox_maps). A local part reserved by a
// holder with a transport (a list's address) is found too, with the
// holder's name as value: Postfix must accept it at RCPT, and Transport
// sends it to the holder before the value could be used as a path.
func (l *Lookups) Mailbox(ctx context.Context, email string) (string, bool, error) {
	key, domain, ok := splitAddress(email)
	if !ok {
		return "", false, nil
	}
	var path, holder *string
	err := l.pool.QueryRow(ctx, selectMailbox, domain, key, baseKey(key)).Scan(&path, &holder)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up mailbox %q: %w", email, err)
	case path != nil:
		return *path, true, nil
	case holder != nil && l.transports[*holder] != "":
		return *holder, true, nil
	}
	return "", false, nil
}

// Transport returns the Postfix transport of mail for email
// (transport_maps): the holder's, for a local part reserved by a holder
// with one (or whose base, without the "+extension", is). Anything else is
// not found and goes by virtual_transport, to the mail store.
func (l *Lookups) Transport(ctx context.Context, email string) (string, bool, error) {
	t, _, err := l.transport(ctx, email)
	return t, t != "", err
}

// Verify reports whether Postfix should ask the holder whether it takes
// email before accepting it (check_recipient_access answering
// reject_unverified_recipient): when email is a reservation's local part
// with a "+extension" that is not reserved itself. The mailbox map accepts
// any extension of a list's address, but the lists service takes only
// some (team-bounces+VERP@, team-confirm+TOKEN@, not team+x@); refused at
// RCPT, the others bounce nowhere. The holder alone knows which.
func (l *Lookups) Verify(ctx context.Context, email string) (bool, error) {
	t, exact, err := l.transport(ctx, email)
	return t != "" && !exact, err
}

// transport returns the transport of the holder of email's local part, ""
// when there is none, and whether the local part itself is reserved
// (rather than the one without its extension).
func (l *Lookups) transport(ctx context.Context, email string) (string, bool, error) {
	if len(l.transports) == 0 {
		return "", false, nil
	}
	key, domain, ok := splitAddress(email)
	if !ok {
		return "", false, nil
	}
	var (
		holder *string
		exact  bool
	)
	err := l.pool.QueryRow(ctx, selectHolder, domain, key, baseKey(key)).Scan(&holder, &exact)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && holder == nil:
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up transport %q: %w", email, err)
	}
	return l.transports[*holder], exact, nil
}

// Alias returns where mail for email goes (virtual_alias_maps):
//   - a mailbox: itself, so that an exact match wins over the catch-all;
//   - an alias: the address it belongs to (Postfix then looks that up);
//   - a redirect: its destinations;
//   - a local part not in use but for its "+extension": as the local part
//     without it, the extension kept on mailboxes and aliases
//     ("sales+news" -> "sales+news", "contact+news" -> "sales+news");
//   - a local part not in use, on a domain with a catch-all: the
//     catch-all's destinations;
//
// and nothing for a no-reply address (the policy service refuses mail to it
// with a clear message), nor for a local part reserved by another service,
// which the catch-all must not swallow either.
func (l *Lookups) Alias(ctx context.Context, email string) ([]string, bool, error) {
	key, domain, ok := splitAddress(email)
	if !ok {
		return nil, false, nil
	}
	var (
		rank              int
		reserved, isAlias bool
		kind, owner       string
		redirects         []string
	)
	err := l.pool.QueryRow(ctx, selectAlias, domain, key, baseKey(key)).Scan(&rank, &reserved, &isAlias, &kind, &owner, &redirects)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("look up alias %q: %w", email, err)
	}
	// The extension stays on mail for a mailbox or an alias of one
	// ("sales+news"), as Postfix's propagate_unmatched_extensions would
	// keep it, so that the mail store can file by it; not on redirects.
	ext := ""
	if rank == 1 {
		ext = key[len(baseKey(key)):]
	}
	switch {
	case reserved || kind == "no_reply":
		return nil, false, nil
	case isAlias || kind == "mailbox":
		return []string{owner + ext + "@" + domain}, true, nil
	case (kind == "redirect" || kind == "catch_all") && len(redirects) > 0:
		return redirects, true, nil
	}
	return nil, false, nil
}

// SenderLogins returns the SASL logins that may send as email
// (smtpd_sender_login_maps): the address itself, for its own email and for
// each of its aliases, with or without a "+extension". Only mailboxes and
// no-reply addresses send; shared addresses have several users, who all
// sign in as the address.
func (l *Lookups) SenderLogins(ctx context.Context, email string) ([]string, bool, error) {
	key, domain, ok := splitAddress(email)
	if !ok {
		return nil, false, nil
	}
	owner, found, err := l.senderOwner(ctx, key, domain)
	if err != nil || !found {
		return nil, false, err
	}
	return []string{owner + "@" + domain}, true, nil
}

// senderOwner returns the key of the address that may send as key@domain.
func (l *Lookups) senderOwner(ctx context.Context, key, domain string) (string, bool, error) {
	var owner *string
	err := l.pool.QueryRow(ctx, selectSenderOwner, domain, key, baseKey(key)).Scan(&owner)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && owner == nil:
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up sender %s@%s: %w", key, domain, err)
	}
	return *owner, true, nil
}

// NoReply reports whether email is a no-reply address of ours or an alias
// of one, with or without a "+extension".
func (l *Lookups) NoReply(ctx context.Context, email string) (bool, error) {
	key, domain, ok := splitAddress(email)
	if !ok {
		return false, nil
	}
	var yes bool
	err := l.pool.QueryRow(ctx, selectNoReply, domain, key, baseKey(key)).Scan(&yes)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up no-reply %q: %w", email, err)
	}
	return yes, nil
}
