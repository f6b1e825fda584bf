package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/idempotency"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// APIToken is a machine's credential: one organization, one role.
type APIToken struct {
	ID             uuid.UUID
	OrganizationID uuid.UUID
	DisplayName    string
	Role           access.Role
	SecretHash     []byte
	CreatorID      *uuid.UUID
	CreateTime     time.Time
	ExpireTime     *time.Time
	LastUseTime    *time.Time
	RevokeTime     *time.Time
}

// apiTokenAccessTTL is the longest an access token exchanged for an API
// token lives; revoking the token ends them at once (SessionsRevoked).
const apiTokenAccessTTL = time.Minute

// API token secrets read "mpt_<token id in hex>_<32 random bytes, base64url>":
// the prefix lets the edge (and secret scanners) recognise them, the id finds
// the row, the random part is what is checked.
const apiTokenPrefix = "mpt_"

func newAPITokenSecret(id uuid.UUID) (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("api token secret: %w", err)
	}
	random := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(random))
	return apiTokenPrefix + hex.EncodeToString(id[:]) + "_" + random, h[:], nil
}

func parseAPITokenSecret(secret string) (uuid.UUID, []byte, bool) {
	rest, ok := strings.CutPrefix(secret, apiTokenPrefix)
	idHex, random, ok2 := strings.Cut(rest, "_")
	id, err := uuid.Parse(idHex)
	if !ok || !ok2 || err != nil || len(idHex) != 32 || random == "" {
		return uuid.Nil, nil, false
	}
	h := sha256.Sum256([]byte(random))
	return id, h[:], true
}

const (
	insertAPIToken = `
INSERT INTO api_tokens (id, organization_id, display_name, role, secret_hash, creator_id, expire_time)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING create_time`

	apiTokenColumns = `
SELECT id, organization_id, display_name, role, secret_hash, creator_id, create_time,
       expire_time, last_use_time, revoke_time
FROM api_tokens`

	selectAPITokens = apiTokenColumns + `
WHERE organization_id = $1 AND revoke_time IS NULL
ORDER BY create_time DESC, id DESC`

	selectAPIToken = apiTokenColumns + ` WHERE id = $1`

	revokeAPIToken = `
UPDATE api_tokens SET revoke_time = now()
WHERE id = $1 AND organization_id = $2 AND revoke_time IS NULL`

	selectAPITokenRole = `SELECT role FROM api_tokens WHERE id = $1 AND organization_id = $2 AND revoke_time IS NULL`

	touchAPIToken = `UPDATE api_tokens SET last_use_time = now() WHERE id = $1`
)

// CreateAPIToken stores a new token on behalf of c.
// idem is recorded first, so that a concurrent retry waits for this create.
func (s *Store) CreateAPIToken(ctx context.Context, c access.Caller, t *APIToken, idem idempotency.Request) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, apiTokenName(t.OrganizationID, t.ID)); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, insertAPIToken, t.ID, t.OrganizationID, t.DisplayName, t.Role, t.SecretHash, t.CreatorID, t.ExpireTime).
			Scan(&t.CreateTime)
		if err != nil {
			return fmt.Errorf("insert api token: %w", err)
		}
		details := map[string]string{"displayName": t.DisplayName, "role": t.Role.Proto().String()}
		return insertAudit(ctx, tx, auditEntry(c, t.OrganizationID, "accounts.apiToken.create", apiTokenName(t.OrganizationID, t.ID), details))
	})
}

// APITokens lists org's tokens that are not revoked, newest first.
func (s *Store) APITokens(ctx context.Context, org uuid.UUID) ([]*APIToken, error) {
	rows, _ := s.pool.Query(ctx, selectAPITokens, org)
	ts, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[APIToken])
	if err != nil {
		return nil, fmt.Errorf("list api tokens: %w", err)
	}
	return ts, nil
}

var errAPITokenNotFound = errs.E(errs.NotFound, "API token not found")

// RevokeAPIToken revokes org's token id on behalf of c; the access tokens
// exchanged for it, which expire by until, stop working everywhere at once.
func (s *Store) RevokeAPIToken(ctx context.Context, c access.Caller, org, id uuid.UUID, until time.Time) error {
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, revokeAPIToken, id, org)
		if err != nil {
			return fmt.Errorf("revoke api token: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errAPITokenNotFound
		}
		if err := publishRevoked(ctx, tx, []uuid.UUID{id}, until, accountsv1.RevocationReason_REVOCATION_REASON_API_TOKEN_REVOKED); err != nil {
			return err
		}
		return insertAudit(ctx, tx, auditEntry(c, org, "accounts.apiToken.delete", apiTokenName(org, id), nil))
	})
}

var errBadAPIToken = errs.E(errs.Unauthenticated, "invalid, expired or revoked API token").WithReason("INVALID_API_TOKEN")

// UseAPIToken checks a token's secret and records its use.
func (s *Store) UseAPIToken(ctx context.Context, id uuid.UUID, hash []byte, now time.Time) (*APIToken, error) {
	rows, _ := s.pool.Query(ctx, selectAPIToken, id)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[APIToken])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errBadAPIToken
	}
	if err != nil {
		return nil, fmt.Errorf("get api token: %w", err)
	}
	if subtle.ConstantTimeCompare(t.SecretHash, hash) != 1 || t.RevokeTime != nil || (t.ExpireTime != nil && !t.ExpireTime.After(now)) {
		return nil, errBadAPIToken
	}
	if _, err := s.pool.Exec(ctx, touchAPIToken, id); err != nil {
		return nil, fmt.Errorf("record api token use: %w", err)
	}
	return t, nil
}

// CreateApiToken creates an API token and returns its secret, once.
func (s *Server) CreateApiToken(ctx context.Context, req *accountsv1.CreateApiTokenRequest) (*accountsv1.CreateApiTokenResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	in := req.GetApiToken()
	want, ok := access.RoleFromProto(in.GetRole())
	if !ok {
		return nil, errs.Field("apiToken.role", "must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER")
	}
	var expire *time.Time
	if in.GetExpireTime() != nil {
		t := in.GetExpireTime().AsTime()
		if !t.After(time.Now()) {
			return nil, errs.Field("apiToken.expireTime", "must be in the future")
		}
		expire = &t
	}
	refuse := func(err error) error {
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.apiToken.create", req.GetParent()+"/apiTokens", map[string]string{"displayName": in.GetDisplayName()}), err)
		return err
	}
	switch {
	case !role.CanManage():
		return nil, refuse(errs.E(errs.PermissionDenied, "only owners and admins can create API tokens"))
	case want == access.Owner && role != access.Owner:
		return nil, refuse(errs.E(errs.PermissionDenied, "only an owner can create an owner token"))
	}
	idem, err := idempotencyKey(ctx, req, c, "CreateApiToken")
	if err != nil {
		return nil, err
	}
	t := &APIToken{ID: uuid.Must(uuid.NewV7()), OrganizationID: org, DisplayName: strings.TrimSpace(in.GetDisplayName()), Role: want, ExpireTime: expire}
	if !c.IsToken() {
		t.CreatorID = &c.UserID
	}
	secret, hash, err := newAPITokenSecret(t.ID)
	if err != nil {
		return nil, err
	}
	t.SecretHash = hash
	resp := &accountsv1.CreateApiTokenResponse{ApiToken: apiTokenProto(t), Secret: secret}
	create := func() error {
		if err := s.store.CreateAPIToken(ctx, c, t, idem); err != nil {
			return err
		}
		resp.ApiToken = apiTokenProto(t) // with its create time
		return nil
	}
	// A retry answers the token without its secret, which is shown once
	// and kept nowhere.
	replay := func(name string) error {
		rows, _ := s.store.pool.Query(ctx, selectAPIToken, lastID(name))
		first, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[APIToken])
		if err != nil {
			return fmt.Errorf("get api token: %w", err)
		}
		resp = &accountsv1.CreateApiTokenResponse{ApiToken: apiTokenProto(first)}
		return nil
	}
	if err := s.keyed(ctx, idem, create, replay); err != nil {
		return nil, err
	}
	return resp, nil
}

// ListApiTokens lists an organization's tokens.
func (s *Server) ListApiTokens(ctx context.Context, req *accountsv1.ListApiTokensRequest) (*accountsv1.ListApiTokensResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can list API tokens")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.apiToken.list", req.GetParent()+"/apiTokens", nil), err)
		return nil, err
	}
	ts, err := s.store.APITokens(ctx, org)
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.ListApiTokensResponse{}
	for _, t := range ts {
		resp.ApiTokens = append(resp.ApiTokens, apiTokenProto(t))
	}
	return resp, nil
}

// DeleteApiToken revokes a token.
func (s *Server) DeleteApiToken(ctx context.Context, req *accountsv1.DeleteApiTokenRequest) (*accountsv1.DeleteApiTokenResponse, error) {
	orgName, id, err := parseAPITokenName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	org, role, c, err := s.access(ctx, "name", orgName)
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can revoke API tokens")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.apiToken.delete", req.GetName(), nil), err)
		return nil, err
	}
	if role != access.Owner {
		// An owner's token acts as an owner: only an owner ends it, as
		// only an owner made it.
		var tokenRole access.Role
		err := s.store.pool.QueryRow(ctx, selectAPITokenRole, id, org).Scan(&tokenRole)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("api token role: %w", err)
		}
		if tokenRole == access.Owner {
			err := errs.E(errs.PermissionDenied, "only an owner can revoke an owner token")
			s.auditRefusal(ctx, auditEntry(c, org, "accounts.apiToken.delete", req.GetName(), nil), err)
			return nil, err
		}
	}
	if err := s.store.RevokeAPIToken(ctx, c, org, id, time.Now().Add(s.exchangeTTL())); err != nil {
		return nil, err
	}
	return &accountsv1.DeleteApiTokenResponse{}, nil
}

// ExchangeApiToken trades an API token's secret for a short-lived access
// token carrying the token's organization and role.
func (s *Server) ExchangeApiToken(ctx context.Context, req *accountsv1.ExchangeApiTokenRequest) (*accountsv1.ExchangeApiTokenResponse, error) {
	id, hash, ok := parseAPITokenSecret(req.GetSecret())
	if !ok {
		return nil, errBadAPIToken
	}
	now := time.Now()
	t, err := s.store.UseAPIToken(ctx, id, hash, now)
	if err != nil {
		return nil, err
	}
	ttl := s.exchangeTTL()
	if t.ExpireTime != nil {
		ttl = min(ttl, t.ExpireTime.Sub(now))
	}
	access, _, err := s.signer.SignAPIToken(t.ID.String(), t.OrganizationID.String(), string(t.Role), ttl, now)
	if err != nil {
		return nil, err
	}
	return &accountsv1.ExchangeApiTokenResponse{AccessToken: access, ExpiresIn: int32(max(ttl/time.Second, 1))}, nil
}

// exchangeTTL is how long an access token exchanged for an API token
// lives.
func (s *Server) exchangeTTL() time.Duration { return min(apiTokenAccessTTL, s.signer.TTL()) }

func parseAPITokenName(field, name string) (string, uuid.UUID, error) {
	ids, err := aip.ParseIDs(field, name, "organizations/{organization}/apiTokens/{api_token}")
	if err != nil {
		return "", uuid.Nil, err
	}
	return organizationName(ids[0]), ids[1], nil
}

func apiTokenProto(t *APIToken) *accountsv1.ApiToken {
	p := &accountsv1.ApiToken{
		Name:        apiTokenName(t.OrganizationID, t.ID),
		DisplayName: t.DisplayName,
		Role:        t.Role.Proto(),
		CreateTime:  timestamppb.New(t.CreateTime),
	}
	if t.CreatorID != nil {
		p.Creator = userName(*t.CreatorID)
	}
	if t.ExpireTime != nil {
		p.ExpireTime = timestamppb.New(*t.ExpireTime)
	}
	if t.LastUseTime != nil {
		p.LastUseTime = timestamppb.New(*t.LastUseTime)
	}
	return p
}
