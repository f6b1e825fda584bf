package mailboxes

import (
	"context"
	"crypto/rand"
	"encoding/base32"
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
	"github.com/mailplane/mailplane/services/platform/pg"
)

// Domain verification (docs/mailboxes.md, "Domains"): a mail service is a
// claim on its domain until the organization publishes
//
//	_mailplane-verification.<domain>. TXT "mailplane-verification=<token>"
//
// with the claim's own random token. The first claim whose record is found
// gets the domain; the other organizations' claims on it, its parents and
// its subdomains end (claim_lost). A claim not verified within claimFor
// ends too (expired). Only verified mail services reach the mail servers.
const (
	verificationLabel  = "_mailplane-verification."
	verificationPrefix = "mailplane-verification="
	claimFor           = 7 * 24 * time.Hour
	// lookGap is the least time between two looks on demand at one claim:
	// asking more often answers the last look again, and costs DNS nothing.
	lookGap = 10 * time.Second
	// maxClaims caps an organization's pending claims: each costs DNS
	// questions until it ends.
	maxClaims = 20
	// verifyLock serializes verifications (pg_advisory_xact_lock), so that
	// two claims found at once cannot both win.
	verifyLock = 0x6d706c6e_76657269 // "mplnveri"
)

// Mail service states.
const (
	statePending   = "pending"
	stateVerified  = "verified"
	stateClaimLost = "claim_lost"
	stateExpired   = "expired"
)

// TXTResolver answers TXT questions; platform/dns.Resolver is one.
type TXTResolver interface {
	TXT(ctx context.Context, name string) ([]string, error)
}

// verifier is what domain verification needs: DNS and the periodic check's
// interval (which is also the first delay of its backoff).
type verifier struct {
	dns   TXTResolver
	every time.Duration
}

// SetResolver sets where verification records are looked up, and how often
// pending claims are checked.
func (s *Server) SetResolver(r TXTResolver, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Minute
	}
	s.verify = verifier{dns: r, every: every}
}

func newVerificationToken() string {
	b := make([]byte, 20)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// verificationRecord is the TXT record m's organization publishes.
func verificationRecord(m *MailService) (name, value string) {
	return verificationLabel + m.Domain, verificationPrefix + m.VerificationToken
}

// domainError is an error of kind k about the field mailService.domain.
func domainError(k errs.Kind, reason, msg string) *errs.Error {
	return &errs.Error{Kind: k, Message: "mailService.domain: " + msg, Reason: reason,
		Fields: []errs.FieldViolation{{Field: "mailService.domain", Description: msg}}}
}

// related returns the arguments of relatedVerified for domain: domain and
// its parents (with a dot), and the LIKE pattern of its subdomains'
// reversed names. Domains hold only [a-z0-9.-], nothing LIKE reads.
func related(domain string) ([]string, string) {
	var self []string
	for d := domain; strings.Contains(d, "."); d = d[strings.IndexByte(d, '.')+1:] {
		self = append(self, d)
	}
	b := []byte("." + domain)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return self, string(b) + "%"
}

// relatedVerified finds a verified mail service holding the domain $1[0],
// one of its parents ($1) or subdomains ($2), of another organization than
// $3 (or, for the domain itself, of any): the one holding the domain
// itself first.
const relatedVerified = `
SELECT organization_id, domain FROM mail_services
WHERE state = 'verified' AND (domain = ANY($1) OR reverse(domain) LIKE $2)
  AND (domain = ($1::text[])[1] OR organization_id <> $3)
ORDER BY domain = ($1::text[])[1] DESC LIMIT 1`

// checkDomainFree refuses a claim by org on domain that cannot be verified:
// the domain, a parent or a subdomain of it belongs to another
// organization (or the domain to org already).
func checkDomainFree(ctx context.Context, tx pgx.Tx, org uuid.UUID, domain string) error {
	holder, taken, err := verifiedRelative(ctx, tx, org, domain)
	if err != nil || taken == "" {
		return err
	}
	switch {
	case taken == domain && holder == org:
		return domainError(errs.AlreadyExists, "DOMAIN_TAKEN", "the domain "+domain+" is already a mail service of your organization")
	case taken == domain:
		return domainError(errs.AlreadyExists, "DOMAIN_TAKEN", "the domain "+domain+" is verified by another organization")
	case strings.HasSuffix(domain, "."+taken):
		return domainError(errs.FailedPrecondition, "PARENT_DOMAIN_TAKEN", "its parent domain "+taken+" is verified by another organization")
	default:
		return domainError(errs.FailedPrecondition, "SUBDOMAIN_TAKEN", "its subdomain "+taken+" is verified by another organization")
	}
}

// checkClaims refuses one claim too many for org.
func checkClaims(ctx context.Context, tx pgx.Tx, org uuid.UUID) error {
	var n int
	err := tx.QueryRow(ctx, "SELECT count(*) FROM mail_services WHERE organization_id = $1 AND state = 'pending' AND delete_time IS NULL", org).Scan(&n)
	if err != nil {
		return fmt.Errorf("count claims: %w", err)
	}
	if n >= maxClaims {
		return errs.E(errs.ResourceExhausted, "your organization has %d domains waiting for verification, the most it may have; verify or delete some first", n).WithReason("TOO_MANY_CLAIMS")
	}
	return nil
}

func verifiedRelative(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, org uuid.UUID, domain string) (uuid.UUID, string, error) {
	self, sub := related(domain)
	var holder uuid.UUID
	var taken string
	err := q.QueryRow(ctx, relatedVerified, self, sub, org).Scan(&holder, &taken)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, "", nil
	}
	if err != nil {
		return uuid.Nil, "", fmt.Errorf("look for verified domains around %s: %w", domain, err)
	}
	return holder, taken, nil
}

const (
	selectMailServiceForUpdate = mailServiceColumns + ` WHERE id = $1 FOR UPDATE`

	// recordCheck notes a look that did not verify, and when to look again:
	// the interval doubles with each look, up to an hour (or the interval).
	recordCheck = `
UPDATE mail_services SET last_check_time = now(), last_check_result = $2, checks = checks + 1,
    next_check_time = now() + least($3::interval * power(2, least(checks, 16)), greatest($3::interval, interval '1 hour'))
WHERE id = $1 AND state = 'pending'
RETURNING ` + msColumns

	endClaim = `
UPDATE mail_services SET state = $2, last_check_time = now(), last_check_result = $3, update_time = now()
WHERE id = $1 AND state = 'pending'
RETURNING ` + msColumns

	markVerified = `
UPDATE mail_services SET state = 'verified', verify_time = now(), last_check_time = now(), last_check_result = $2, update_time = now()
WHERE id = $1 AND state = 'pending'
RETURNING ` + msColumns

	// endRivals ends the other organizations' pending claims on the
	// domain, its parents and its subdomains.
	endRivals = `
UPDATE mail_services SET state = 'claim_lost', last_check_result = $4, update_time = now()
WHERE state = 'pending' AND organization_id <> $3 AND (domain = ANY($1) OR reverse(domain) LIKE $2)
RETURNING ` + msColumns

	// leaseClaims takes a batch of pending claims due for a look, putting
	// their next look off so that another replica does not take them too.
	leaseClaims = `
UPDATE mail_services SET next_check_time = now() + interval '10 minutes' WHERE id IN (
    SELECT id FROM mail_services
    WHERE state = 'pending' AND delete_time IS NULL AND (next_check_time IS NULL OR next_check_time <= now())
    ORDER BY next_check_time NULLS FIRST LIMIT 100 FOR UPDATE SKIP LOCKED)
RETURNING ` + msColumns
)

// VerifyMailService looks for a pending mail service's verification record
// now.
func (s *Server) VerifyMailService(ctx context.Context, req *mailboxesv1.VerifyMailServiceRequest) (*mailboxesv1.VerifyMailServiceResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	m, err := activeMailService(ctx, s.pool, ids[0], ids[1])
	if err != nil {
		return nil, err
	}
	switch m.State {
	case stateClaimLost, stateExpired:
		return nil, errs.E(errs.FailedPrecondition, "the claim on %s has ended (%s); delete this mail service and claim the domain again", m.Domain, m.LastCheckResult).WithReason("CLAIM_ENDED")
	case statePending:
		if m.LastCheckTime != nil && time.Since(*m.LastCheckTime) < lookGap {
			break
		}
		if m, err = s.checkClaim(ctx, m, c); err != nil {
			return nil, err
		}
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return audit(ctx, tx, organizationName(m.OrganizationID), c, "mailboxes.mailService.verify", mailServiceName(m.OrganizationID, m.ID),
			map[string]string{"domain": m.Domain, "state": m.State, "result": m.LastCheckResult})
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.VerifyMailServiceResponse{MailService: s.mailServiceProto(m)}, nil
}

// CheckClaims looks for the verification records of pending claims due for
// a look, and reports how many claims it verified or ended.
func (s *Server) CheckClaims(ctx context.Context) (int, error) {
	n := 0
	for {
		rows, _ := s.pool.Query(ctx, leaseClaims)
		ms, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[MailService])
		if err != nil {
			return n, fmt.Errorf("lease claims: %w", err)
		}
		for _, m := range ms {
			after, err := s.checkClaim(ctx, m, access.Caller{})
			if err != nil {
				return n, fmt.Errorf("check claim on %s: %w", m.Domain, err)
			}
			if after.State != statePending {
				n++
			}
		}
		if len(ms) < 100 {
			return n, nil
		}
	}
}

// checkClaim looks for pending m's record, and verifies m if it is there,
// ends it if it is too old, or notes the look. It returns m as it is now.
// c asked for the look (access.Caller{}: the periodic check).
func (s *Server) checkClaim(ctx context.Context, m *MailService, c access.Caller) (*MailService, error) {
	if s.verify.dns == nil {
		return nil, errors.New("domain verification has no DNS resolver")
	}
	if time.Since(m.CreateTime) > claimFor {
		return s.endClaim(ctx, m, stateExpired, "the verification record was not found within 7 days")
	}
	name, value := verificationRecord(m)
	txts, err := s.verify.dns.TXT(ctx, name)
	if err != nil {
		s.log.WarnContext(ctx, "look up verification record", "domain", m.Domain, "error", err)
		return s.noteCheck(ctx, m, "the DNS resolver did not answer; looked again later")
	}
	for _, t := range txts {
		if strings.TrimSpace(t) == value {
			return s.verifyClaim(ctx, m, c, fmt.Sprintf("verified: found TXT %q at %s", value, name))
		}
	}
	result := fmt.Sprintf("no TXT record %q at %s", value, name)
	if len(txts) > 0 {
		result += fmt.Sprintf(" (%d other TXT records there)", len(txts))
	}
	return s.noteCheck(ctx, m, result)
}

// noteCheck records a look at m that found nothing.
func (s *Server) noteCheck(ctx context.Context, m *MailService, result string) (*MailService, error) {
	rows, _ := s.pool.Query(ctx, recordCheck, m.ID, result, s.verify.every)
	after, err := collectMailService(rows)
	if errors.Is(err, errMailServiceNotFound) {
		// It changed meanwhile (verified by a concurrent look, deleted for good).
		rows, _ := s.pool.Query(ctx, selectMailService, m.ID, m.OrganizationID)
		return collectMailService(rows)
	}
	return after, err
}

// endClaim ends pending m with state and says why.
func (s *Server) endClaim(ctx context.Context, m *MailService, state, result string) (*MailService, error) {
	var after *MailService
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, endClaim, m.ID, state, result)
		var err error
		if after, err = collectMailService(rows); errors.Is(err, errMailServiceNotFound) {
			rows, _ := tx.Query(ctx, selectMailService, m.ID, m.OrganizationID)
			after, err = collectMailService(rows)
			return err
		} else if err != nil {
			return fmt.Errorf("end claim: %w", err)
		}
		return s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceClaimEnded, after, access.Caller{})
	})
	return after, err
}

// verifyClaim gives m's domain to its organization, unless another
// organization verified it (or a parent or subdomain) first, and ends the
// other organizations' claims on it.
func (s *Server) verifyClaim(ctx context.Context, m *MailService, c access.Caller, result string) (*MailService, error) {
	var after *MailService
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(verifyLock)); err != nil {
			return fmt.Errorf("lock verifications: %w", err)
		}
		rows, _ := tx.Query(ctx, selectMailServiceForUpdate, m.ID)
		cur, err := collectMailService(rows)
		if err != nil || cur.State != statePending {
			after = cur
			return err
		}
		holder, taken, err := verifiedRelative(ctx, tx, m.OrganizationID, m.Domain)
		if err != nil {
			return err
		}
		if taken != "" {
			why := "another organization verified " + taken + " first"
			if holder == m.OrganizationID {
				why = "your organization verified " + taken + " as another mail service"
			}
			rows, _ := tx.Query(ctx, endClaim, m.ID, stateClaimLost, why)
			if after, err = collectMailService(rows); err != nil {
				return fmt.Errorf("end claim: %w", err)
			}
			return s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceClaimEnded, after, access.Caller{})
		}
		rows, _ = tx.Query(ctx, markVerified, m.ID, result)
		if after, err = collectMailService(rows); err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		// To the rest of the platform (accounts' organization domains), the
		// mail service exists from now on.
		if err := s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceCreated, after, c); err != nil {
			return err
		}
		self, sub := related(m.Domain)
		rows, _ = tx.Query(ctx, endRivals, self, sub, m.OrganizationID, "another organization verified "+m.Domain+" first")
		rivals, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[MailService])
		if err != nil {
			return fmt.Errorf("end other claims: %w", err)
		}
		for _, r := range rivals {
			if err := s.mailServiceEvent(ctx, tx, mailboxesevents.MailServiceClaimEnded, r, access.Caller{}); err != nil {
				return err
			}
		}
		return nil
	})
	return after, err
}

// requireVerified refuses, naming field, what needs org's mail service ms
// verified: a login on a domain nobody proved to control would be a login
// on someone else's domain (accounts would take its emails as ours).
func (s *Server) requireVerified(ctx context.Context, org, ms uuid.UUID, field string) error {
	m, err := activeMailService(ctx, s.pool, org, ms)
	if err != nil {
		return err
	}
	if m.State != stateVerified {
		return &errs.Error{Kind: errs.FailedPrecondition, Reason: "DOMAIN_NOT_VERIFIED",
			Message: field + ": the domain " + m.Domain + " is not verified yet; add the user once it is",
			Fields:  []errs.FieldViolation{{Field: field, Description: "the domain " + m.Domain + " is not verified yet"}}}
	}
	return nil
}

// stateProto maps a stored state to the API's.
func stateProto(state string) mailboxesv1.MailServiceState {
	switch state {
	case statePending:
		return mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_PENDING
	case stateVerified:
		return mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED
	case stateClaimLost:
		return mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_CLAIM_LOST
	case stateExpired:
		return mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_EXPIRED
	}
	return mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_UNSPECIFIED
}
