package dnssecurity

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
)

// maxOtherSelectors caps the selectors a customer declares: each costs a
// DNS question per diagnostic.
const maxOtherSelectors = 20

const updateSelectors = `UPDATE mail_services SET other_dkim_selectors = $2 WHERE id = $1`

// GetDomainSecurity returns a mail service's security page.
func (s *Server) GetDomainSecurity(ctx context.Context, req *dnssecurityv1.GetDomainSecurityRequest) (*dnssecurityv1.GetDomainSecurityResponse, error) {
	org, msID, err := parseMailService("name", req.GetName(), "/security")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	m, err := findMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	sec, err := s.domainSecurity(ctx, m)
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.GetDomainSecurityResponse{DomainSecurity: sec}, nil
}

// UpdateDomainSecurity sets the selectors of the customer's other senders.
func (s *Server) UpdateDomainSecurity(ctx context.Context, req *dnssecurityv1.UpdateDomainSecurityRequest) (*dnssecurityv1.UpdateDomainSecurityResponse, error) {
	in := req.GetDomainSecurity()
	org, msID, err := parseMailService("domain_security.name", in.GetName(), "/security")
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "other_dkim_selectors")
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	selectors, err := checkSelectors(in.GetOtherDkimSelectors())
	if err != nil {
		return nil, err
	}
	var m *mailService
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if m, err = findMailService(ctx, tx, org, msID); err != nil {
			return err
		}
		if !slices.Contains(paths, "other_dkim_selectors") {
			return nil
		}
		if _, err := tx.Exec(ctx, updateSelectors, msID, selectors); err != nil {
			return fmt.Errorf("update selectors of %s: %w", msID, err)
		}
		m.selectors = selectors
		return audit(ctx, tx, org, c, "dnssecurity.security.update", securityName(org, msID),
			map[string]string{"otherDkimSelectors": strings.Join(selectors, " ")})
	})
	if err != nil {
		return nil, err
	}
	sec, err := s.domainSecurity(ctx, m)
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.UpdateDomainSecurityResponse{DomainSecurity: sec}, nil
}

// checkSelectors validates, lower-cases and de-duplicates selectors.
func checkSelectors(in []string) ([]string, error) {
	if len(in) > maxOtherSelectors {
		return nil, errs.Field("domainSecurity.otherDkimSelectors", fmt.Sprintf("at most %d selectors, got %d", maxOtherSelectors, len(in)))
	}
	out := make([]string, 0, len(in))
	for i, sel := range in {
		sel = strings.ToLower(strings.TrimSpace(sel))
		if err := dkim.ValidSelector(sel); err != nil {
			return nil, errs.Field(fmt.Sprintf("domainSecurity.otherDkimSelectors[%d]", i), err.Error())
		}
		if !slices.Contains(out, sel) {
			out = append(out, sel)
		}
	}
	return out, nil
}

// RunDiagnostic diagnoses a mail service's domain now.
func (s *Server) RunDiagnostic(ctx context.Context, req *dnssecurityv1.RunDiagnosticRequest) (*dnssecurityv1.RunDiagnosticResponse, error) {
	org, msID, err := parseMailService("name", req.GetName(), "/security")
	if err != nil {
		return nil, err
	}
	c, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	if err := s.checks.allow(c, "diagnostics"); err != nil {
		return nil, err
	}
	m, err := findMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	d, err := s.diagnose(ctx, m)
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.RunDiagnosticResponse{Diagnostic: d}, nil
}

// domainSecurity is m's security page.
func (s *Server) domainSecurity(ctx context.Context, m *mailService) (*dnssecurityv1.DomainSecurity, error) {
	d, err := s.lastDiagnostic(ctx, m.id)
	if err != nil {
		return nil, err
	}
	z, err := s.zoneOf(ctx, s.pool, m)
	if err != nil {
		return nil, err
	}
	return &dnssecurityv1.DomainSecurity{
		Name: securityName(m.org, m.id), Domain: m.domain, OtherDkimSelectors: m.selectors,
		Hosted: z != nil, Diagnostic: d,
	}, nil
}
