package mailboxes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Signature is a signature template of a mail service, which its addresses
// choose from.
type Signature struct {
	ID             uuid.UUID
	MailServiceID  uuid.UUID
	OrganizationID uuid.UUID
	DisplayName    string
	Template       string
	CreateTime     time.Time
}

// maxSignatures is how many templates one mail service may have: they are
// listed without pages.
const maxSignatures = 100

// placeholders are what a template may hold between {{ and }}: the address
// user's name, the address, the organization's name.
var placeholders = []string{"name", "email", "organization"}

const (
	signatureColumns = `
SELECT s.id, s.mail_service_id, m.organization_id, s.display_name, s.template, s.create_time
FROM signatures s JOIN mail_services m ON m.id = s.mail_service_id`

	selectSignatures = signatureColumns + `
WHERE s.mail_service_id = $1 AND m.organization_id = $2 ORDER BY lower(s.display_name), s.id`

	selectSignature = signatureColumns + `
WHERE s.id = $1 AND s.mail_service_id = $2 AND m.organization_id = $3 AND m.delete_time IS NULL`

	selectSignatureForUpdate = signatureColumns + `
WHERE s.id = $1 AND s.mail_service_id = $2 AND m.organization_id = $3 AND m.delete_time IS NULL
FOR UPDATE OF s`

	// selectSignatureForShare keeps the signature an address is about to
	// choose from being deleted meanwhile.
	selectSignatureForShare = `SELECT 1 FROM signatures WHERE id = $1 AND mail_service_id = $2 FOR SHARE`

	countSignatures = `SELECT count(*) FROM signatures WHERE mail_service_id = $1`

	insertSignature = `
INSERT INTO signatures (id, mail_service_id, display_name, template) VALUES ($1, $2, $3, $4) RETURNING create_time`

	updateSignature = `UPDATE signatures SET display_name = $2, template = $3, update_time = now() WHERE id = $1`

	// deleteSignature leaves the addresses using it without one (ON DELETE
	// SET NULL) and says how many there were.
	deleteSignature = `
WITH used AS (SELECT count(*) AS n FROM addresses WHERE signature_id = $1)
DELETE FROM signatures WHERE id = $1 RETURNING (SELECT n FROM used)`

	setAddressSignature = `UPDATE addresses SET signature_id = $2 WHERE id = $1`
)

var errSignatureNotFound = errs.E(errs.NotFound, "signature not found")

func signatureName(org, ms, id uuid.UUID) string {
	return mailServiceName(org, ms) + "/signatures/" + id.String()
}

func signatureProto(s *Signature) *mailboxesv1.Signature {
	return &mailboxesv1.Signature{
		Name: signatureName(s.OrganizationID, s.MailServiceID, s.ID), DisplayName: s.DisplayName, Template: s.Template,
		CreateTime: timestamppb.New(s.CreateTime),
	}
}

// checkTemplate checks a signature template: not blank, at most 10000
// characters, and every {{...}} one of the placeholders (spaces inside the
// braces allowed, "{{ name }}").
func checkTemplate(t string) error {
	const field = "signature.template"
	switch {
	case strings.TrimSpace(t) == "":
		return errs.Field(field, "must not be blank")
	case utf8.RuneCountInString(t) > 10000:
		return errs.Field(field, "must be at most 10000 characters")
	}
	for rest := t; ; {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return nil
		}
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return errs.Field(field, "has a {{ without its }}")
		}
		if p := strings.TrimSpace(rest[:j]); !slices.Contains(placeholders, p) {
			return errs.Field(field, fmt.Sprintf("unknown placeholder {{%s}}; use {{name}}, {{email}} or {{organization}}", rest[:j]))
		}
		rest = rest[j+2:]
	}
}

// CreateSignature creates a signature template on a mail service.
func (s *Server) CreateSignature(ctx context.Context, req *mailboxesv1.CreateSignatureRequest) (*mailboxesv1.CreateSignatureResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	org, msID := ids[0], ids[1]
	display, err := checkLabel("signature.displayName", req.GetSignature().GetDisplayName())
	if err != nil {
		return nil, err
	}
	if err := checkTemplate(req.GetSignature().GetTemplate()); err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, org)
	if err != nil {
		return nil, err
	}
	idem, done, err := s.idempotencyKey(ctx, req, c, "CreateSignature")
	if err != nil || done != "" {
		return s.createdSignature(ctx, done, err)
	}
	sig := &Signature{ID: uuid.Must(uuid.NewV7()), MailServiceID: msID, OrganizationID: org, DisplayName: display, Template: req.GetSignature().GetTemplate()}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if err := idem.Insert(ctx, tx, signatureName(org, msID, sig.ID)); err != nil {
			return err
		}
		if _, err := activeMailService(ctx, tx, org, msID); err != nil {
			return err
		}
		// A soft limit: two concurrent creations may both pass it.
		var n int
		if err := tx.QueryRow(ctx, countSignatures, msID).Scan(&n); err != nil {
			return fmt.Errorf("count signatures: %w", err)
		}
		if n >= maxSignatures {
			return errs.E(errs.ResourceExhausted, "this mail service already has %d signatures; delete one first", n).WithReason("TOO_MANY_SIGNATURES")
		}
		err := tx.QueryRow(ctx, insertSignature, sig.ID, msID, display, sig.Template).Scan(&sig.CreateTime)
		if pg.IsUniqueViolation(err, "signatures_display_name") {
			return errSignatureNameTaken(display)
		}
		if err != nil {
			return fmt.Errorf("insert signature: %w", err)
		}
		return audit(ctx, tx, organizationName(org), c, "mailboxes.signature.create", signatureName(org, msID, sig.ID), map[string]string{"displayName": display})
	})
	if err != nil {
		done, err := s.raced(ctx, idem, err)
		return s.createdSignature(ctx, done, err)
	}
	return &mailboxesv1.CreateSignatureResponse{Signature: signatureProto(sig)}, nil
}

// createdSignature answers a create again with the signature name it
// made, read afresh, or err.
func (s *Server) createdSignature(ctx context.Context, name string, err error) (*mailboxesv1.CreateSignatureResponse, error) {
	if err != nil {
		return nil, err
	}
	ids, err := parseName("name", name, "organizations", "mailServices", "signatures")
	if err != nil {
		return nil, fmt.Errorf("idempotency key names %q: %w", name, err)
	}
	rows, _ := s.pool.Query(ctx, selectSignature, ids[2], ids[1], ids[0])
	sig, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Signature])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errSignatureNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get signature: %w", err)
	}
	return &mailboxesv1.CreateSignatureResponse{Signature: signatureProto(sig)}, nil
}

func errSignatureNameTaken(display string) error {
	return errs.E(errs.AlreadyExists, "this mail service already has a signature named %q", display).WithReason("SIGNATURE_NAME_TAKEN")
}

// ListSignatures lists a mail service's signature templates by display
// name. Every member of the organization may: they choose from them.
func (s *Server) ListSignatures(ctx context.Context, req *mailboxesv1.ListSignaturesRequest) (*mailboxesv1.ListSignaturesResponse, error) {
	ids, err := parseName("parent", req.GetParent(), "organizations", "mailServices")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.access(ctx, ids[0]); err != nil {
		return nil, err
	}
	if _, err := activeMailService(ctx, s.pool, ids[0], ids[1]); err != nil {
		return nil, err
	}
	rows, _ := s.pool.Query(ctx, selectSignatures, ids[1], ids[0])
	sigs, err := pgx.CollectRows(rows, pgx.RowToAddrOfStructByPos[Signature])
	if err != nil {
		return nil, fmt.Errorf("list signatures: %w", err)
	}
	resp := &mailboxesv1.ListSignaturesResponse{}
	for _, sig := range sigs {
		resp.Signatures = append(resp.Signatures, signatureProto(sig))
	}
	return resp, nil
}

// UpdateSignature changes a template's display name or text.
func (s *Server) UpdateSignature(ctx context.Context, req *mailboxesv1.UpdateSignatureRequest) (*mailboxesv1.UpdateSignatureResponse, error) {
	in := req.GetSignature()
	ids, err := parseName("signature.name", in.GetName(), "organizations", "mailServices", "signatures")
	if err != nil {
		return nil, err
	}
	paths, err := aip.UpdatePaths(req.GetUpdateMask(), in, "display_name", "template")
	if err != nil {
		return nil, err
	}
	var display, template *string
	for _, p := range paths {
		switch p {
		case "display_name":
			d, err := checkLabel("signature.displayName", in.GetDisplayName())
			if err != nil {
				return nil, err
			}
			display = &d
		case "template":
			if err := checkTemplate(in.GetTemplate()); err != nil {
				return nil, err
			}
			t := in.GetTemplate()
			template = &t
		}
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	var sig *Signature
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if sig, err = lockSignature(ctx, tx, ids[0], ids[1], ids[2]); err != nil {
			return err
		}
		if display != nil {
			sig.DisplayName = *display
		}
		if template != nil {
			sig.Template = *template
		}
		_, err = tx.Exec(ctx, updateSignature, sig.ID, sig.DisplayName, sig.Template)
		if pg.IsUniqueViolation(err, "signatures_display_name") {
			return errSignatureNameTaken(sig.DisplayName)
		}
		if err != nil {
			return fmt.Errorf("update signature: %w", err)
		}
		return audit(ctx, tx, organizationName(ids[0]), c, "mailboxes.signature.update", in.GetName(), map[string]string{"fields": strings.Join(paths, ",")})
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.UpdateSignatureResponse{Signature: signatureProto(sig)}, nil
}

// DeleteSignature deletes a template; the addresses using it are left
// without a signature.
func (s *Server) DeleteSignature(ctx context.Context, req *mailboxesv1.DeleteSignatureRequest) (*mailboxesv1.DeleteSignatureResponse, error) {
	ids, err := parseName("name", req.GetName(), "organizations", "mailServices", "signatures")
	if err != nil {
		return nil, err
	}
	c, err := s.manage(ctx, ids[0])
	if err != nil {
		return nil, err
	}
	err = pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		sig, err := lockSignature(ctx, tx, ids[0], ids[1], ids[2])
		if err != nil {
			return err
		}
		var used int
		if err := tx.QueryRow(ctx, deleteSignature, sig.ID).Scan(&used); err != nil {
			return fmt.Errorf("delete signature: %w", err)
		}
		return audit(ctx, tx, organizationName(ids[0]), c, "mailboxes.signature.delete", req.GetName(),
			map[string]string{"displayName": sig.DisplayName, "addresses": fmt.Sprint(used)})
	})
	if err != nil {
		return nil, err
	}
	return &mailboxesv1.DeleteSignatureResponse{}, nil
}

// lockSignature loads org's signature id of mail service ms, not deleted,
// for update.
func lockSignature(ctx context.Context, tx pgx.Tx, org, ms, id uuid.UUID) (*Signature, error) {
	rows, _ := tx.Query(ctx, selectSignatureForUpdate, id, ms, org)
	sig, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[Signature])
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errSignatureNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get signature: %w", err)
	}
	return sig, nil
}

// Choosing an address's signature (UpdateAddress, mask "signature").

// canChooseSignature reports why c, a member who is not an owner or admin,
// may not make the update named by paths on a: they may choose the
// address's signature, and only that, when they use it with the
// "signatures" right.
func canChooseSignature(a *Address, c access.Caller, paths []string) error {
	if len(paths) == 0 || slices.ContainsFunc(paths, func(p string) bool { return p != "signature" }) {
		return errs.E(errs.PermissionDenied, "only owners and admins can change an address")
	}
	if r, ok := a.userRights(c); !ok || !r.Signatures {
		return errs.E(errs.PermissionDenied, "your rights on %s do not include signatures; ask an owner or admin", a.Email()).WithReason("SIGNATURES_RIGHT_REQUIRED")
	}
	return nil
}

// parseAddressSignature checks name, the signature an address is to use,
// names a signature of a's mail service, and returns its id; nil for "",
// no signature.
func parseAddressSignature(a *Address, name string) (*uuid.UUID, error) {
	if name == "" {
		return nil, nil
	}
	ids, err := parseName("address.signature", name, "organizations", "mailServices", "signatures")
	if err != nil {
		return nil, err
	}
	if ids[0] != a.OrganizationID || ids[1] != a.MailServiceID {
		return nil, errs.Field("address.signature", "must be a signature of the address's mail service")
	}
	return &ids[2], nil
}

// chooseSignature sets a's signature in tx; sig is from
// parseAddressSignature.
func chooseSignature(ctx context.Context, tx pgx.Tx, a *Address, sig *uuid.UUID) error {
	if sig != nil {
		var one int
		err := tx.QueryRow(ctx, selectSignatureForShare, *sig, a.MailServiceID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return errs.Field("address.signature", "no such signature on the address's mail service")
		}
		if err != nil {
			return fmt.Errorf("get signature: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, setAddressSignature, a.ID, sig); err != nil {
		return fmt.Errorf("set signature: %w", err)
	}
	return nil
}
