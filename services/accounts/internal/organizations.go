package accounts

import (
	"context"
	"strings"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// GetOrganization returns an organization the caller belongs to.
func (s *Server) GetOrganization(ctx context.Context, req *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
	org, _, _, err := s.access(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	o, err := s.store.Organization(ctx, org)
	if err != nil {
		return nil, err
	}
	return &accountsv1.GetOrganizationResponse{Organization: organizationProto(o)}, nil
}

// UpdateOrganization renames an organization.
func (s *Server) UpdateOrganization(ctx context.Context, req *accountsv1.UpdateOrganizationRequest) (*accountsv1.UpdateOrganizationResponse, error) {
	org, role, c, err := s.access(ctx, "organization.name", req.GetOrganization().GetName())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can change the organization")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.organization.update", organizationName(org), nil), err)
		return nil, err
	}
	in := req.GetOrganization()
	fields := map[string]string{
		"display_name": strings.TrimSpace(in.GetDisplayName()),
		"legal_name":   strings.TrimSpace(in.GetLegalName()),
		"address":      strings.TrimSpace(in.GetAddress()),
	}
	set, err := masked(req.GetUpdateMask(), in, fields)
	if err != nil {
		return nil, err
	}
	if v, ok := set["display_name"]; ok && v == "" {
		return nil, errs.Field("organization.displayName", "must not be blank")
	}
	changed := map[string]string{}
	for p, v := range set {
		changed[p] = v
	}
	o, err := s.store.UpdateOrganization(ctx, c, org, func(o *Organization) {
		if v, ok := set["display_name"]; ok {
			o.DisplayName = v
		}
		if v, ok := set["legal_name"]; ok {
			o.LegalName = v
		}
		if v, ok := set["address"]; ok {
			o.Address = v
		}
	}, changed)
	if err != nil {
		return nil, err
	}
	return &accountsv1.UpdateOrganizationResponse{Organization: organizationProto(o)}, nil
}

func organizationProto(o *Organization) *accountsv1.Organization {
	return &accountsv1.Organization{Name: organizationName(o.ID), DisplayName: o.DisplayName, CreateTime: timestamppb.New(o.CreateTime),
		UpdateTime: timestamppb.New(o.UpdateTime), LegalName: o.LegalName, Address: o.Address}
}
