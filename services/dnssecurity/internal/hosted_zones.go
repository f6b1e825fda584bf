package dnssecurity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/validate"
	mdns "github.com/miekg/dns"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// maxZoneServers caps the servers a change is followed on.
const maxZoneServers = 10

const (
	hostedZoneColumns = `SELECT id, organization_id, domain, primary_addr, servers, tsig_key_name, tsig_algorithm, tsig_secret, create_time FROM hosted_zones`
	insertHostedZone  = `
INSERT INTO hosted_zones (id, organization_id, domain, primary_addr, servers, tsig_key_name, tsig_algorithm, tsig_secret)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	// selectZoneOf finds the zone holding a domain: the domain itself or
	// its closest parent.
	selectZoneOf = hostedZoneColumns + `
WHERE organization_id = $1 AND ($2 = domain OR right($2, length(domain) + 1) = '.' || domain)
ORDER BY length(domain) DESC LIMIT 1`
)

// hostedZone is a zone we host.
type hostedZone struct {
	id, org    uuid.UUID
	domain     string
	primary    string
	servers    []string
	keyName    string
	algorithm  string
	secret     []byte // sealed
	createTime time.Time
}

func scanHostedZone(row pgx.CollectableRow) (*hostedZone, error) {
	z := &hostedZone{}
	err := row.Scan(&z.id, &z.org, &z.domain, &z.primary, &z.servers, &z.keyName, &z.algorithm, &z.secret, &z.createTime)
	return z, err
}

func (z *hostedZone) proto() *dnssecurityv1.HostedZone {
	return &dnssecurityv1.HostedZone{
		Name: hostedZoneName(z.org, z.id), Domain: z.domain, Primary: z.primary, Servers: z.servers,
		TsigKeyName: z.keyName, TsigAlgorithm: z.algorithm, CreateTime: timestamppb.New(z.createTime),
	}
}

// secretAAD binds a zone's sealed TSIG secret to its row.
func secretAAD(id uuid.UUID) []byte { return []byte("dnssecurity.hosted_zones/" + id.String()) }

// tsigAlgorithms are the TSIG algorithms a zone may use.
var tsigAlgorithms = map[string]bool{"hmac-sha256": true, "hmac-sha384": true, "hmac-sha512": true}

// CreateHostedZone registers a zone we host.
func (s *Server) CreateHostedZone(ctx context.Context, req *dnssecurityv1.CreateHostedZoneRequest) (*dnssecurityv1.CreateHostedZoneResponse, error) {
	ids, err := aip.ParseIDs("parent", req.GetParent(), "organizations/{organization}")
	if err != nil {
		return nil, err
	}
	org := ids[0]
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	in := req.GetHostedZone()
	z := &hostedZone{id: uuid.Must(uuid.NewV7()), org: org, keyName: mdns.CanonicalName(strings.TrimSpace(in.GetTsigKeyName())), algorithm: strings.ToLower(in.GetTsigAlgorithm())}
	if z.domain, _, err = validate.Domain(in.GetDomain()); err != nil {
		return nil, errs.Field("hostedZone.domain", err.Error())
	}
	if z.primary, err = hostPort(in.GetPrimary()); err != nil {
		return nil, errs.Field("hostedZone.primary", err.Error())
	}
	if len(in.GetServers()) > maxZoneServers {
		return nil, errs.Field("hostedZone.servers", fmt.Sprintf("at most %d servers", maxZoneServers))
	}
	for i, srv := range in.GetServers() {
		hp, err := hostPort(srv)
		if err != nil {
			return nil, errs.Field(fmt.Sprintf("hostedZone.servers[%d]", i), err.Error())
		}
		z.servers = append(z.servers, hp)
	}
	if _, ok := mdns.IsDomainName(z.keyName); !ok || z.keyName == "." {
		return nil, errs.Field("hostedZone.tsigKeyName", "want a key name like update-key")
	}
	if z.algorithm == "" {
		z.algorithm = "hmac-sha256"
	}
	if !tsigAlgorithms[z.algorithm] {
		return nil, errs.Field("hostedZone.tsigAlgorithm", "want hmac-sha256, hmac-sha384 or hmac-sha512")
	}
	if _, err := decodeSecret(in.GetTsigSecret()); err != nil {
		return nil, errs.Field("hostedZone.tsigSecret", err.Error())
	}
	z.secret = s.box.Seal([]byte(in.GetTsigSecret()), secretAAD(z.id))
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertHostedZone, z.id, org, z.domain, z.primary, z.servers, z.keyName, z.algorithm, z.secret); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.ConstraintName == "hosted_zones_domain_key" {
				return errs.E(errs.AlreadyExists, "the zone %s is registered already", z.domain)
			}
			return fmt.Errorf("insert hosted zone %s: %w", z.domain, err)
		}
		return audit(ctx, tx, org, c, "dnssecurity.hostedZone.create", hostedZoneName(org, z.id), map[string]string{"domain": z.domain, "primary": z.primary})
	})
	if err != nil {
		return nil, err
	}
	z.createTime = time.Now()
	return &dnssecurityv1.CreateHostedZoneResponse{HostedZone: z.proto()}, nil
}

// ListHostedZones lists an organization's zones, by domain.
func (s *Server) ListHostedZones(ctx context.Context, req *dnssecurityv1.ListHostedZonesRequest) (*dnssecurityv1.ListHostedZonesResponse, error) {
	ids, err := aip.ParseIDs("parent", req.GetParent(), "organizations/{organization}")
	if err != nil {
		return nil, err
	}
	if _, err := s.roles.Manage(ctx, ids[0]); err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	var after *string
	if len(page.After) > 0 {
		after = &page.After[0]
	}
	rows, _ := s.pool.Query(ctx, hostedZoneColumns+` WHERE organization_id = $1 AND ($2::text IS NULL OR domain > $2) ORDER BY domain LIMIT $3`, ids[0], after, page.Size+1)
	zones, err := pgx.CollectRows(rows, scanHostedZone)
	if err != nil {
		return nil, fmt.Errorf("list hosted zones: %w", err)
	}
	zones, next := aip.Trim(page, zones, func(z *hostedZone) []string { return []string{z.domain} })
	resp := &dnssecurityv1.ListHostedZonesResponse{NextPageToken: next}
	for _, z := range zones {
		resp.HostedZones = append(resp.HostedZones, z.proto())
	}
	return resp, nil
}

// DeleteHostedZone removes a zone from the registry.
func (s *Server) DeleteHostedZone(ctx context.Context, req *dnssecurityv1.DeleteHostedZoneRequest) (*dnssecurityv1.DeleteHostedZoneResponse, error) {
	ids, err := aip.ParseIDs("name", req.GetName(), "organizations/{organization}/hostedZones/{zone}")
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var domain string
		err := tx.QueryRow(ctx, `DELETE FROM hosted_zones WHERE id = $1 AND organization_id = $2 RETURNING domain`, ids[1], ids[0]).Scan(&domain)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.E(errs.NotFound, "hosted zone not found")
		}
		if err != nil {
			return fmt.Errorf("delete hosted zone: %w", err)
		}
		return audit(ctx, tx, ids[0], c, "dnssecurity.hostedZone.delete", req.GetName(), map[string]string{"domain": domain})
	})
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.DeleteHostedZoneResponse{}, nil
}

// zoneOf returns the hosted zone holding m's domain, nil when we do not
// host it.
func (s *Server) zoneOf(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, m *mailService) (*hostedZone, error) {
	rows, _ := q.Query(ctx, selectZoneOf, m.org, m.domain)
	z, err := pgx.CollectOneRow(rows, scanHostedZone)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find the zone of %s: %w", m.domain, err)
	}
	return z, nil
}

// updater returns the client writing to z.
func (s *Server) updater(z *hostedZone) (*dns.Updater, error) {
	secret, err := s.box.Open(z.secret, secretAAD(z.id))
	if err != nil {
		return nil, fmt.Errorf("open the TSIG secret of %s: %w", z.domain, err)
	}
	return &dns.Updater{Server: z.primary, Zone: z.domain, KeyName: z.keyName, Algorithm: z.algorithm, Secret: string(secret)}, nil
}

// hostPort checks a server address, host:port or a host for port 53.
func hostPort(s string) (string, error) {
	s = strings.TrimSpace(s)
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, "53"
	}
	if host == "" || strings.ContainsAny(host, " /\x00") {
		return "", errors.New("want host:port, like ns1.example.net:53 or 192.0.2.53:53")
	}
	return net.JoinHostPort(host, port), nil
}

// decodeSecret checks a TSIG secret is base64 of at least 16 bytes.
func decodeSecret(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) < 16 {
		return nil, errors.New("want the key's secret in base64, at least 16 bytes")
	}
	return b, nil
}
