package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Outcome is how an audited action ended.
type Outcome string

// The outcomes, as stored.
const (
	Succeeded Outcome = "succeeded"
	Denied    Outcome = "denied"
	Failed    Outcome = "failed"
)

// AuditEntry records one administrative action.
type AuditEntry struct {
	ID               uuid.UUID
	OrganizationID   uuid.UUID
	Actor            string
	ActorDisplayName string
	Action           string
	Target           string
	ClientAddress    string
	Outcome          Outcome
	Details          map[string]string
	CreateTime       time.Time
}

// auditEntry returns the entry for c's action on target in org.
func auditEntry(c access.Caller, org uuid.UUID, action, target string, details map[string]string) *AuditEntry {
	return &AuditEntry{
		ID:             uuid.Must(uuid.NewV7()),
		OrganizationID: org,
		Actor:          c.Name(),
		Action:         action,
		Target:         target,
		ClientAddress:  c.Addr,
		Outcome:        Succeeded,
		Details:        details,
	}
}

// outcomeOf classifies an action's error for the log: refused for lack of
// rights, refused by a rule, or not worth recording (nil: bad input, not
// found, internal failures).
func outcomeOf(err error) (Outcome, bool) {
	switch errs.KindOf(err) {
	case errs.PermissionDenied:
		return Denied, true
	case errs.FailedPrecondition:
		return Failed, true
	}
	return "", false
}

// auditRefusal records an administrative action that was refused. Actions
// that succeed are recorded by the store in their own transaction.
func (s *Server) auditRefusal(ctx context.Context, e *AuditEntry, err error) {
	outcome, ok := outcomeOf(err)
	if !ok {
		return
	}
	e.Outcome = outcome
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Details["reason"] = err.Error()
	if err := s.store.RecordAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.ErrorContext(ctx, "audit: record refusal", "action", e.Action, "error", err)
	}
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Actor, Target, Action string
	Start, End            time.Time
	// After is the last entry of the previous page.
	After *AuditCursor
}

// AuditCursor is a position in the log, newest first.
type AuditCursor struct {
	CreateTime time.Time
	ID         uuid.UUID
}

// ListAuditEntries lists an organization's audit log. Owners and admins only.
func (s *Server) ListAuditEntries(ctx context.Context, req *accountsv1.ListAuditEntriesRequest) (*accountsv1.ListAuditEntriesResponse, error) {
	org, role, c, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can read the audit log")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.auditEntry.list", req.GetParent()+"/auditEntries", nil), err)
		return nil, err
	}
	f := AuditFilter{Actor: req.GetActor(), Target: req.GetTarget(), Action: req.GetAction()}
	if req.GetStartTime() != nil {
		f.Start = req.GetStartTime().AsTime()
	}
	if req.GetEndTime() != nil {
		f.End = req.GetEndTime().AsTime()
	}
	if !f.Start.IsZero() && !f.End.IsZero() && !f.End.After(f.Start) {
		return nil, errs.Field("endTime", "must be after startTime")
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), "ListAuditEntries", req.GetParent(),
		f.Actor, f.Target, f.Action, aip.TimeKey(f.Start), aip.TimeKey(f.End))
	if err != nil {
		return nil, err
	}
	afterTime, afterID, err := page.Cursor(true)
	if err != nil {
		return nil, err
	}
	if afterTime != nil {
		f.After = &AuditCursor{CreateTime: afterTime.(time.Time), ID: afterID.(uuid.UUID)}
	}
	entries, err := s.store.AuditEntries(ctx, org, f, page.Size+1)
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.ListAuditEntriesResponse{}
	entries, resp.NextPageToken = aip.Trim(page, entries, func(e *AuditEntry) []string {
		return []string{aip.TimeKey(e.CreateTime), e.ID.String()}
	})
	for _, e := range entries {
		resp.AuditEntries = append(resp.AuditEntries, auditEntryProto(e))
	}
	return resp, nil
}

func auditEntryProto(e *AuditEntry) *accountsv1.AuditEntry {
	return &accountsv1.AuditEntry{
		Name:             organizationName(e.OrganizationID) + "/auditEntries/" + e.ID.String(),
		Actor:            e.Actor,
		ActorDisplayName: e.ActorDisplayName,
		Action:           e.Action,
		Target:           e.Target,
		ClientAddress:    e.ClientAddress,
		Outcome:          outcomeProto(e.Outcome),
		Details:          e.Details,
		CreateTime:       timestamppb.New(e.CreateTime),
	}
}

func outcomeProto(o Outcome) accountsv1.Outcome {
	switch o {
	case Succeeded:
		return accountsv1.Outcome_OUTCOME_SUCCEEDED
	case Denied:
		return accountsv1.Outcome_OUTCOME_DENIED
	case Failed:
		return accountsv1.Outcome_OUTCOME_FAILED
	}
	return accountsv1.Outcome_OUTCOME_UNSPECIFIED
}

func outcomeFromProto(o accountsv1.Outcome) (Outcome, bool) {
	switch o {
	case accountsv1.Outcome_OUTCOME_SUCCEEDED:
		return Succeeded, true
	case accountsv1.Outcome_OUTCOME_DENIED:
		return Denied, true
	case accountsv1.Outcome_OUTCOME_FAILED:
		return Failed, true
	}
	return "", false
}

// AuditConsumer is the durable consumer that keeps other services' audit
// records in the log.
const AuditConsumer = "accounts-audit"

// ApplyAuditRecorded stores an audit record another service published.
func (s *Store) ApplyAuditRecorded(ctx context.Context, tx pgx.Tx, ev *accountsv1.AuditRecorded) error {
	org, err := parseOrganizationName("organization", ev.GetOrganization())
	if err != nil {
		return fmt.Errorf("audit record: %w", err)
	}
	in := ev.GetEntry()
	outcome, ok := outcomeFromProto(in.GetOutcome())
	if !ok {
		outcome = Succeeded
	}
	e := &AuditEntry{
		ID:               uuid.Must(uuid.NewV7()),
		OrganizationID:   org,
		Actor:            in.GetActor(),
		ActorDisplayName: in.GetActorDisplayName(),
		Action:           in.GetAction(),
		Target:           in.GetTarget(),
		ClientAddress:    in.GetClientAddress(),
		Outcome:          outcome,
		Details:          in.GetDetails(),
	}
	if in.GetCreateTime() != nil {
		e.CreateTime = in.GetCreateTime().AsTime()
	}
	return insertAudit(ctx, tx, e)
}
