package dnssecurity

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/dnssecurityevents"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/validate"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxDKIMKeys caps the keys of a mail service that are not retired (each
// is a record in its zone and a DNS question per diagnostic); retired keys
// are kept for the record and do not count.
const maxDKIMKeys = 10

// Key states, as stored (DkimKeyState).
const (
	keyPublishing = int16(dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_PUBLISHING)
	keyActive     = int16(dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE)
	keyRetiring   = int16(dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_RETIRING)
	keyRetired    = int16(dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_RETIRED)
)

const (
	dkimKeyColumns = `SELECT k.mail_service_id, m.organization_id, m.domain, k.selector, k.algorithm, k.state, k.record, k.private_key,
  k.create_time, k.activate_time, k.retire_time FROM dkim_keys k JOIN mail_services m ON m.id = k.mail_service_id`
	insertDKIMKey = `
INSERT INTO dkim_keys (mail_service_id, selector, algorithm, state, record, private_key) VALUES ($1, $2, $3, 1, $4, $5)`
)

type dkimKey struct {
	ms, org                  uuid.UUID
	domain, selector         string
	algorithm                dnssecurityv1.DkimAlgorithm
	state                    int16
	record                   string
	private                  []byte // sealed PKCS #8
	createTime               time.Time
	activateTime, retireTime *time.Time
}

func scanDKIMKey(row pgx.CollectableRow) (*dkimKey, error) {
	k := &dkimKey{}
	var alg int16
	err := row.Scan(&k.ms, &k.org, &k.domain, &k.selector, &alg, &k.state, &k.record, &k.private, &k.createTime, &k.activateTime, &k.retireTime)
	k.algorithm = dnssecurityv1.DkimAlgorithm(alg)
	return k, err
}

func (k *dkimKey) proto() *dnssecurityv1.DkimKey {
	p := &dnssecurityv1.DkimKey{
		Name: dkimKeyName(k.org, k.ms, k.selector), Selector: k.selector, Algorithm: k.algorithm,
		State: dnssecurityv1.DkimKeyState(k.state), Record: txtRecord(dkim.RecordName(k.selector, k.domain), k.record),
		CreateTime: timestamppb.New(k.createTime),
	}
	if k.activateTime != nil {
		p.ActivateTime = timestamppb.New(*k.activateTime)
	}
	if k.retireTime != nil {
		p.RetireTime = timestamppb.New(*k.retireTime)
	}
	return p
}

// keyAAD binds a sealed private key to its mail service and selector.
func keyAAD(ms uuid.UUID, selector string) []byte {
	return []byte("dnssecurity.dkim_keys/" + ms.String() + "/" + selector)
}

// CreateDkimKey makes a key and publishes its record.
func (s *Server) CreateDkimKey(ctx context.Context, req *dnssecurityv1.CreateDkimKeyRequest) (*dnssecurityv1.CreateDkimKeyResponse, error) {
	org, msID, err := parseMailService("parent", req.GetParent(), "")
	if err != nil {
		return nil, err
	}
	selector := strings.ToLower(strings.TrimSpace(req.GetDkimKey().GetSelector()))
	if selector != "" {
		if err := dkim.ValidSelector(selector); err != nil {
			return nil, errs.Field("dkimKey.selector", err.Error())
		}
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	k, err := s.newKey(ctx, c, org, msID, selector, req.GetDkimKey().GetAlgorithm())
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.CreateDkimKeyResponse{DkimKey: k.proto()}, nil
}

// RotateDkimKey starts replacing the active key: the new one is published
// now and signs once published everywhere (keyPublished).
func (s *Server) RotateDkimKey(ctx context.Context, req *dnssecurityv1.RotateDkimKeyRequest) (*dnssecurityv1.RotateDkimKeyResponse, error) {
	ids, err := aip.ParseName("name", req.GetName(), "organizations/{organization}/mailServices/{mail_service}/dkimKeys/{dkim_key}")
	if err != nil {
		return nil, err
	}
	org, msID, err := parseMailService("name", strings.Join([]string{"organizations", ids[0], "mailServices", ids[1]}, "/"), "")
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, dkimKeyColumns+` WHERE k.mail_service_id = $1 AND m.organization_id = $2 AND k.selector = $3`, msID, org, ids[2])
	old, err := pgx.CollectOneRow(rows, scanDKIMKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errs.E(errs.NotFound, "DKIM key not found")
	}
	if err != nil {
		return nil, fmt.Errorf("read dkim key: %w", err)
	}
	if old.state != keyActive {
		return nil, errs.E(errs.FailedPrecondition, "only the active key can be rotated; %s is %s", old.selector, strings.ToLower(strings.TrimPrefix(dnssecurityv1.DkimKeyState(old.state).String(), "DKIM_KEY_STATE_")))
	}
	alg := req.GetAlgorithm()
	if alg == dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_UNSPECIFIED {
		alg = old.algorithm
	}
	k, err := s.newKey(ctx, c, org, msID, "", alg)
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.RotateDkimKeyResponse{DkimKey: k.proto()}, nil
}

// newKey generates a key under selector (chosen when empty), stores it
// sealed and publishes its record.
func (s *Server) newKey(ctx context.Context, c access.Caller, org, msID uuid.UUID, selector string, alg dnssecurityv1.DkimAlgorithm) (*dkimKey, error) {
	m, err := findMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM dkim_keys WHERE mail_service_id = $1 AND state <> 4`, msID).Scan(&n); err != nil {
		return nil, fmt.Errorf("count dkim keys: %w", err)
	}
	if n >= maxDKIMKeys {
		return nil, errs.E(errs.ResourceExhausted, "a mail service has at most %d DKIM keys that are not retired", maxDKIMKeys)
	}
	if selector == "" {
		// The date and a random suffix: unique without a count that
		// retired keys would confuse.
		selector = fmt.Sprintf("mp%s%s", time.Now().UTC().Format("20060102"), strings.ToLower(rand.Text()[:4]))
	}
	kind := dkim.RSA
	if alg == dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_ED25519 {
		kind = dkim.Ed25519
	} else {
		alg = dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_RSA_2048
	}
	priv, err := dkim.Generate(kind)
	if err != nil {
		return nil, err
	}
	der, err := priv.Marshal()
	if err != nil {
		return nil, err
	}
	record, err := dkim.TXT(priv.Public())
	if err != nil {
		return nil, err
	}
	k := &dkimKey{ms: msID, org: org, domain: m.domain, selector: selector, algorithm: alg, state: keyPublishing, record: record,
		private: s.box.Seal(der, keyAAD(msID, selector)), createTime: time.Now()}
	z, err := s.zoneOf(ctx, s.pool, m)
	if err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, insertDKIMKey, msID, selector, int16(alg), record, k.private); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return nil, errs.E(errs.AlreadyExists, "the selector %s is taken", selector)
		}
		return nil, fmt.Errorf("store dkim key: %w", err)
	}
	ch := &change{kind: dnssecurityv1.ChangeKind_CHANGE_KIND_DKIM_PUBLISH, name: dkim.RecordName(selector, m.domain), after: record}
	if err := s.writeChange(ctx, c, m, z, ch, []string{record}); err != nil {
		// The key was never published: forget it.
		s.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM dkim_keys WHERE mail_service_id = $1 AND selector = $2`, msID, selector) //nolint:errcheck
		return nil, err
	}
	return k, nil
}

// keyPublished runs, in tx, once a key's record is answered everywhere:
// the key signs from then on, and the one it replaces retires after the
// grace period, its record kept published until then.
func (s *Server) keyPublished(ctx context.Context, tx pgx.Tx, m *mailService, c *change) error {
	selector := strings.TrimSuffix(strings.TrimSuffix(c.name, "."+m.domain), "._domainkey")
	rows, _ := tx.Query(ctx, `UPDATE dkim_keys SET state = 3, retire_time = now() + $3::interval
WHERE mail_service_id = $1 AND state = 2 AND selector <> $2 RETURNING selector`, m.id, selector, s.dkimGrace.String())
	replaced, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("retire the active key of %s: %w", m.domain, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE dkim_keys SET state = 2, activate_time = now() WHERE mail_service_id = $1 AND selector = $2 AND state = 1`, m.id, selector); err != nil {
		return fmt.Errorf("activate key %s of %s: %w", selector, m.domain, err)
	}
	read := func(sel string) (*dnssecurityv1.DkimKey, error) {
		rows, _ := tx.Query(ctx, dkimKeyColumns+` WHERE k.mail_service_id = $1 AND k.selector = $2`, m.id, sel)
		k, err := pgx.CollectOneRow(rows, scanDKIMKey)
		if err != nil {
			return nil, fmt.Errorf("read key %s: %w", sel, err)
		}
		return k.proto(), nil
	}
	ev := &dnssecurityv1.DkimKeyChanged{}
	if ev.DkimKey, err = read(selector); err != nil {
		return err
	}
	if err := outbox.Write(ctx, tx, dnssecurityevents.DkimKeyPublished, ev); err != nil {
		return err
	}
	if len(replaced) == 0 {
		return nil
	}
	if ev.Replaced, err = read(replaced[0]); err != nil {
		return err
	}
	return outbox.Write(ctx, tx, dnssecurityevents.DkimKeyRotated, ev)
}

// RetireDKIMKeys removes the records of keys whose grace period ended and
// reports how many.
func (s *Server) RetireDKIMKeys(ctx context.Context) (int, error) {
	rows, _ := s.pool.Query(ctx, dkimKeyColumns+` WHERE k.state = 3 AND k.retire_time <= now() LIMIT 100`)
	keys, err := pgx.CollectRows(rows, scanDKIMKey)
	if err != nil {
		return 0, fmt.Errorf("find keys to retire: %w", err)
	}
	for i, k := range keys {
		m := &mailService{org: k.org, id: k.ms, domain: k.domain}
		z, err := s.zoneOf(ctx, s.pool, m)
		if err != nil {
			return i, err
		}
		ch := &change{kind: dnssecurityv1.ChangeKind_CHANGE_KIND_DKIM_REMOVE, name: dkim.RecordName(k.selector, k.domain), before: k.record}
		if err := s.writeChange(ctx, access.Caller{}, m, z, ch, nil); err != nil {
			return i, err
		}
		if _, err := s.pool.Exec(ctx, `UPDATE dkim_keys SET state = 4 WHERE mail_service_id = $1 AND selector = $2 AND state = 3`, k.ms, k.selector); err != nil {
			return i, fmt.Errorf("retire key %s: %w", k.selector, err)
		}
	}
	return len(keys), nil
}

// ListDkimKeys lists a mail service's keys, newest first.
func (s *Server) ListDkimKeys(ctx context.Context, req *dnssecurityv1.ListDkimKeysRequest) (*dnssecurityv1.ListDkimKeysResponse, error) {
	org, msID, err := parseMailService("parent", req.GetParent(), "")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	if _, err := findMailService(ctx, s.pool, org, msID); err != nil {
		return nil, err
	}
	// A mail service holds few keys (maxDKIMKeys live, and those retired,
	// one per rotation): one page, newest first, at most 1000.
	rows, _ := s.pool.Query(ctx, dkimKeyColumns+` WHERE k.mail_service_id = $1 AND m.organization_id = $2 ORDER BY k.create_time DESC, k.selector LIMIT 1000`, msID, org)
	keys, err := pgx.CollectRows(rows, scanDKIMKey)
	if err != nil {
		return nil, fmt.Errorf("list dkim keys: %w", err)
	}
	resp := &dnssecurityv1.ListDkimKeysResponse{}
	for _, k := range keys {
		resp.DkimKeys = append(resp.DkimKeys, k.proto())
	}
	return resp, nil
}

// GetSigningKey returns a domain's active key, private half included.
func (s *Server) GetSigningKey(ctx context.Context, req *dnssecurityv1.GetSigningKeyRequest) (*dnssecurityv1.GetSigningKeyResponse, error) {
	domain, _, err := validate.Domain(req.GetDomain())
	if err != nil {
		return nil, errs.Field("domain", err.Error())
	}
	rows, _ := s.pool.Query(ctx, dkimKeyColumns+` WHERE m.domain = $1 AND m.active AND k.state = 2`, domain)
	k, err := pgx.CollectOneRow(rows, scanDKIMKey)
	notFound := errs.E(errs.NotFound, "no active DKIM key for %s", domain)
	if errors.Is(err, pgx.ErrNoRows) {
		// Whether the domain is ours is not told to strangers either.
		if _, err := access.CallerFrom(ctx); err != nil {
			return nil, err
		}
		return nil, notFound
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if _, err := s.roles.Manage(ctx, k.org); err != nil {
		return nil, err
	}
	der, err := s.box.Open(k.private, keyAAD(k.ms, k.selector))
	if err != nil {
		return nil, fmt.Errorf("open the key of %s: %w", domain, err)
	}
	return &dnssecurityv1.GetSigningKeyResponse{DkimKey: k.proto(), PrivateKey: der}, nil
}
