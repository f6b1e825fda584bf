package dnssecurity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/dnssecurityevents"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dmarc"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/spf"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/jobs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	mdns "github.com/miekg/dns"
	"github.com/riverqueue/river"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// recordTTL is the TTL of the records we write: short enough that a
// mistake is undone within minutes.
const recordTTL = 300

// followFor is how long a change is followed before we stop asking: DNS
// changes can take up to 48 hours, and a customer publishing a record
// themselves may take longer.
const followFor = 7 * 24 * time.Hour

const (
	changeColumns = `SELECT c.id, m.organization_id, c.mail_service_id, c.kind, c.record_name, c.before_value, c.after_value,
  c.state, c.instructions, c.error, c.actor, c.create_time, c.apply_time FROM changes c JOIN mail_services m ON m.id = c.mail_service_id`
	insertChange = `
INSERT INTO changes (id, mail_service_id, kind, record_name, before_value, after_value, state, instructions, error, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
	applyChange = `UPDATE changes SET state = 3, apply_time = now() WHERE id = $1 AND state IN (1, 2) RETURNING apply_time`
)

// change is one change to a mail service's records.
type change struct {
	id, org, ms         uuid.UUID
	kind                dnssecurityv1.ChangeKind
	name, before, after string
	state               dnssecurityv1.ChangeState
	instructions, err   string
	actor               string
	createTime          time.Time
	applyTime           *time.Time
}

func scanChange(row pgx.CollectableRow) (*change, error) {
	c := &change{}
	var kind, state int16
	err := row.Scan(&c.id, &c.org, &c.ms, &kind, &c.name, &c.before, &c.after, &state, &c.instructions, &c.err, &c.actor, &c.createTime, &c.applyTime)
	c.kind, c.state = dnssecurityv1.ChangeKind(kind), dnssecurityv1.ChangeState(state)
	return c, err
}

func txtRecord(name, value string) *dnssecurityv1.DnsRecord {
	if value == "" {
		return nil
	}
	return &dnssecurityv1.DnsRecord{Name: strings.TrimSuffix(name, "."), Type: "TXT", Value: value, Strings: dkim.Strings(value)}
}

func (c *change) proto() *dnssecurityv1.Change {
	p := &dnssecurityv1.Change{
		Name: changeName(c.org, c.ms, c.id), Kind: c.kind, Before: txtRecord(c.name, c.before), After: txtRecord(c.name, c.after),
		State: c.state, Instructions: c.instructions, Error: c.err, Actor: c.actor, CreateTime: timestamppb.New(c.createTime),
	}
	if c.applyTime != nil {
		p.ApplyTime = timestamppb.New(*c.applyTime)
	}
	return p
}

// CorrectSpf writes (or shows) the corrected SPF record.
func (s *Server) CorrectSpf(ctx context.Context, req *dnssecurityv1.CorrectSpfRequest) (*dnssecurityv1.CorrectSpfResponse, error) {
	org, msID, err := parseMailService("name", req.GetName(), "/security")
	if err != nil {
		return nil, err
	}
	caller, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	m, err := findMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	z, err := s.zoneOf(ctx, s.pool, m)
	if err != nil {
		return nil, err
	}
	txts, err := s.currentTXT(ctx, z, m.domain)
	if err != nil {
		return nil, err
	}
	var current, others []string
	for _, t := range txts {
		if isSPF(t) {
			current = append(current, t)
		} else {
			others = append(others, t)
		}
	}
	fixed, err := spf.Correct(ctx, s.dns, m.domain, current, spf.Ours{Include: s.ours.SPFInclude, IPs: s.ours.IPs})
	if err != nil {
		return nil, errs.E(errs.FailedPrecondition, "%v", err)
	}
	if len(current) == 1 && current[0] == fixed {
		return nil, errs.E(errs.FailedPrecondition, "the SPF record of %s is already right: %s", m.domain, fixed)
	}
	c := &change{kind: dnssecurityv1.ChangeKind_CHANGE_KIND_SPF, name: m.domain, before: strings.Join(current, " | "), after: fixed}
	// The apex holds other TXT records (verifications): they are written
	// back beside the new SPF record, since an update replaces the set.
	set := append(slices.Clone(others), fixed)
	if err := s.writeChange(ctx, caller, m, z, c, set); err != nil {
		return nil, err
	}
	return &dnssecurityv1.CorrectSpfResponse{Change: c.proto()}, nil
}

// SetDmarc writes (or shows) a DMARC record.
func (s *Server) SetDmarc(ctx context.Context, req *dnssecurityv1.SetDmarcRequest) (*dnssecurityv1.SetDmarcResponse, error) {
	org, msID, err := parseMailService("name", req.GetName(), "/security")
	if err != nil {
		return nil, err
	}
	var record, next string
	switch mode := req.GetMode().(type) {
	case *dnssecurityv1.SetDmarcRequest_Recommended:
		p := dmarc.Recommend(strings.TrimSpace(mode.Recommended.GetReportTo()))
		record = dmarc.Build(p)
		_, next = dmarc.Next(p)
	case *dnssecurityv1.SetDmarcRequest_Record:
		record = strings.TrimSpace(mode.Record)
		var v []errs.FieldViolation
		for _, e := range dmarc.Validate(record) {
			var te *dmarc.TagError
			if errors.As(e, &te) && te.Warning {
				continue
			}
			v = append(v, errs.FieldViolation{Field: "record", Description: e.Error()})
		}
		if len(v) > 0 {
			return nil, errs.Fields(v...)
		}
		if p, err := dmarc.Parse(record); err == nil {
			_, next = dmarc.Next(policyOf(p))
		}
	default:
		return nil, errs.Field("mode", "set recommended or record")
	}
	caller, err := s.roles.Manage(ctx, org)
	if err != nil {
		return nil, err
	}
	m, err := findMailService(ctx, s.pool, org, msID)
	if err != nil {
		return nil, err
	}
	z, err := s.zoneOf(ctx, s.pool, m)
	if err != nil {
		return nil, err
	}
	name := "_dmarc." + m.domain
	current, err := s.currentTXT(ctx, z, name)
	if err != nil {
		return nil, err
	}
	c := &change{kind: dnssecurityv1.ChangeKind_CHANGE_KIND_DMARC, name: name, before: strings.Join(current, " | "), after: record}
	if err := s.writeChange(ctx, caller, m, z, c, []string{record}); err != nil {
		return nil, err
	}
	return &dnssecurityv1.SetDmarcResponse{Change: c.proto(), NextSteps: next}, nil
}

// policyOf is the wizard's view of a parsed record.
func policyOf(r *dmarc.Record) dmarc.Policy {
	return dmarc.Policy{P: r.P, SP: r.SP, NP: r.NP, RUA: r.RUA, RUF: r.RUF, ADKIM: r.ADKIM, ASPF: r.ASPF, Testing: r.T == "y"}
}

// currentTXT reads name's TXT records: from the primary of a zone we host
// (what an update replaces, uncached), otherwise through the resolver.
func (s *Server) currentTXT(ctx context.Context, z *hostedZone, name string) ([]string, error) {
	var rrs []mdns.RR
	var err error
	if z != nil {
		rrs, err = s.dns.Ask(ctx, z.primary, name, mdns.TypeTXT)
	} else {
		rrs, err = s.dns.Lookup(ctx, name, mdns.TypeTXT)
	}
	if err != nil {
		return nil, errs.E(errs.Unavailable, "could not read the records of %s: %v", name, err)
	}
	var out []string
	for _, rr := range rrs {
		if t, ok := rr.(*mdns.TXT); ok {
			out = append(out, dns.TXTValue(t))
		}
	}
	return out, nil
}

// isSPF reports whether a TXT value is an SPF record (RFC 7208 4.5).
func isSPF(txt string) bool {
	return strings.EqualFold(txt, "v=spf1") || len(txt) > 7 && strings.EqualFold(txt[:7], "v=spf1 ")
}

// maxChanges is how many changes a mail service's history keeps; older
// ones go as new ones come (the audit log keeps them all).
const maxChanges = 1000

// writeChange writes c's record (set is the whole TXT set at c.name) to
// z, or records the instructions when we do not host the zone, and
// follows it until every authoritative server answers with it.
func (s *Server) writeChange(ctx context.Context, caller access.Caller, m *mailService, z *hostedZone, c *change, set []string) error {
	if caller != (access.Caller{}) {
		if err := s.checks.allow(caller, "changes"); err != nil {
			return err
		}
	}
	c.id, c.org, c.ms, c.actor, c.createTime = uuid.Must(uuid.NewV7()), m.org, m.id, actorName(caller), time.Now()
	c.state = dnssecurityv1.ChangeState_CHANGE_STATE_PROPAGATING
	c.instructions = fmt.Sprintf("Written to the zone of %s. DNS changes can take up to 48 hours to reach every server; this page follows it.", m.domain)
	if z == nil {
		c.state = dnssecurityv1.ChangeState_CHANGE_STATE_TO_PUBLISH
		if c.after == "" {
			c.instructions = fmt.Sprintf("We do not host the zone of %s. At your DNS provider, remove the TXT record named %s (%s). DNS changes can take up to 48 hours to reach every server; this page follows it.",
				m.domain, c.name, c.before)
		} else {
			c.instructions = fmt.Sprintf("We do not host the zone of %s. At your DNS provider, publish a TXT record named %s with the value %s%s. DNS changes can take up to 48 hours to reach every server; this page follows it.",
				m.domain, c.name, c.after, replacing(c.before))
		}
	}
	var refused error
	err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if z != nil {
			// Sent inside the transaction: when the server refuses, nothing
			// is recorded as written.
			u, err := s.updater(z)
			if err != nil {
				return err
			}
			values := make([][]string, len(set))
			for i, v := range set {
				values[i] = dns.TXTStrings(v)
			}
			if len(values) == 0 {
				err = u.DeleteTXT(ctx, c.name)
			} else {
				err = u.ReplaceTXT(ctx, c.name, recordTTL, values...)
			}
			if err != nil {
				refused = errs.E(errs.FailedPrecondition, "the zone's primary server refused the change: %v", err)
				return refused
			}
		}
		if _, err := tx.Exec(ctx, insertChange, c.id, c.ms, int16(c.kind), c.name, c.before, c.after, int16(c.state), c.instructions, c.err, c.actor); err != nil {
			return fmt.Errorf("record change: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM changes WHERE mail_service_id = $1 AND id IN (
  SELECT id FROM changes WHERE mail_service_id = $1 ORDER BY id DESC OFFSET $2)`, c.ms, maxChanges); err != nil {
			return fmt.Errorf("forget old changes: %w", err)
		}
		if _, err := s.jobs.InsertTx(ctx, tx, followArgs{Change: c.id}, &river.InsertOpts{MaxAttempts: 100, UniqueOpts: *jobs.Unique()}); err != nil {
			return fmt.Errorf("queue following the change: %w", err)
		}
		return s.auditChange(ctx, tx, caller, c, z != nil)
	})
	if refused == nil {
		return err
	}
	// Refused: nothing was written, and the attempt is recorded as such.
	c.state, c.err, c.instructions = dnssecurityv1.ChangeState_CHANGE_STATE_FAILED, refused.Error(), ""
	if err := pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertChange, c.id, c.ms, int16(c.kind), c.name, c.before, c.after, int16(c.state), c.instructions, c.err, c.actor); err != nil {
			return fmt.Errorf("record the refused change: %w", err)
		}
		return s.auditChange(ctx, tx, caller, c, true)
	}); err != nil {
		s.log.ErrorContext(ctx, "record refused change", "record", c.name, "error", err)
	}
	return refused
}

// auditChange records c in the organization's audit log.
func (s *Server) auditChange(ctx context.Context, tx pgx.Tx, caller access.Caller, c *change, hosted bool) error {
	return audit(ctx, tx, c.org, caller, "dnssecurity.record."+strings.ToLower(strings.TrimPrefix(c.kind.String(), "CHANGE_KIND_")),
		changeName(c.org, c.ms, c.id), map[string]string{"record": c.name, "before": c.before, "after": c.after,
			"hosted": fmt.Sprint(hosted), "state": strings.ToLower(strings.TrimPrefix(c.state.String(), "CHANGE_STATE_")), "error": c.err})
}

func replacing(before string) string {
	if before == "" {
		return ""
	}
	return ", in place of " + before
}

// ListChanges lists a mail service's changes, newest first.
func (s *Server) ListChanges(ctx context.Context, req *dnssecurityv1.ListChangesRequest) (*dnssecurityv1.ListChangesResponse, error) {
	org, msID, err := parseMailService("parent", req.GetParent(), "/security")
	if err != nil {
		return nil, err
	}
	if _, _, err := s.roles.Access(ctx, org); err != nil {
		return nil, err
	}
	page, err := aip.ParsePage(req.GetPageSize(), req.GetPageToken(), req.GetParent())
	if err != nil {
		return nil, err
	}
	if _, err := findMailService(ctx, s.pool, org, msID); err != nil {
		return nil, err
	}
	var afterID *uuid.UUID
	if len(page.After) == 1 {
		id, err := uuid.Parse(page.After[0])
		if err != nil {
			return nil, aip.BadPageToken()
		}
		afterID = &id
	}
	// Ids are UUIDv7: their order is their creation's.
	rows, _ := s.pool.Query(ctx, changeColumns+` WHERE c.mail_service_id = $1 AND m.organization_id = $2 AND ($3::uuid IS NULL OR c.id < $3)
ORDER BY c.id DESC LIMIT $4`, msID, org, afterID, page.Size+1)
	cs, err := pgx.CollectRows(rows, scanChange)
	if err != nil {
		return nil, fmt.Errorf("list changes: %w", err)
	}
	cs, next := aip.Trim(page, cs, func(c *change) []string { return []string{c.id.String()} })
	resp := &dnssecurityv1.ListChangesResponse{NextPageToken: next}
	for _, c := range cs {
		resp.Changes = append(resp.Changes, c.proto())
	}
	return resp, nil
}

// followArgs is the River job following a change until every
// authoritative server answers with it.
type followArgs struct {
	Change uuid.UUID `json:"change"`
}

func (followArgs) Kind() string { return "follow_change" }

type followWorker struct {
	river.WorkerDefaults[followArgs]
	s *Server
}

// Work asks each authoritative server; until all answer with the change,
// the job snoozes, a little longer each time.
func (w *followWorker) Work(ctx context.Context, job *river.Job[followArgs]) error {
	s := w.s
	rows, _ := s.pool.Query(ctx, changeColumns+` WHERE c.id = $1`, job.Args.Change)
	c, err := pgx.CollectOneRow(rows, scanChange)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read change %s: %w", job.Args.Change, err)
	}
	if c.state != dnssecurityv1.ChangeState_CHANGE_STATE_PROPAGATING && c.state != dnssecurityv1.ChangeState_CHANGE_STATE_TO_PUBLISH {
		return nil
	}
	if time.Since(c.createTime) > followFor {
		s.log.WarnContext(ctx, "change no longer followed", "change", changeName(c.org, c.ms, c.id), "record", c.name)
		return nil
	}
	m := &mailService{org: c.org, id: c.ms}
	if err := s.pool.QueryRow(ctx, `SELECT domain FROM mail_services WHERE id = $1`, c.ms).Scan(&m.domain); err != nil {
		return fmt.Errorf("read mail service of change %s: %w", c.id, err)
	}
	applied, err := s.answeredEverywhere(ctx, m, c)
	if err != nil || !applied {
		if err != nil {
			s.log.InfoContext(ctx, "change not checked", "change", c.id, "error", err)
		}
		// River does not count snoozes as attempts: the pause grows with
		// the change's age instead, from 2 s to half an hour.
		return river.JobSnooze(min(max(time.Since(c.createTime)/10, 2*time.Second), 30*time.Minute))
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var at time.Time
		if err := tx.QueryRow(ctx, applyChange, c.id).Scan(&at); errors.Is(err, pgx.ErrNoRows) {
			return nil
		} else if err != nil {
			return fmt.Errorf("mark change %s applied: %w", c.id, err)
		}
		c.state, c.applyTime = dnssecurityv1.ChangeState_CHANGE_STATE_APPLIED, &at
		if err := outbox.Write(ctx, tx, dnssecurityevents.ChangeApplied, &dnssecurityv1.ChangeApplied{Change: c.proto()}); err != nil {
			return err
		}
		if c.kind == dnssecurityv1.ChangeKind_CHANGE_KIND_DKIM_PUBLISH {
			return s.keyPublished(ctx, tx, m, c)
		}
		return nil
	})
}

// answeredEverywhere reports whether every authoritative server of m's
// zone answers c.name with c.after among its TXT records (without it, for
// a removal).
func (s *Server) answeredEverywhere(ctx context.Context, m *mailService, c *change) (bool, error) {
	servers, err := s.followedServers(ctx, m)
	if err != nil {
		return false, err
	}
	if len(servers) == 0 {
		return false, fmt.Errorf("no authoritative server found for %s", m.domain)
	}
	for _, srv := range servers {
		rrs, err := s.dns.Ask(ctx, srv, c.name, mdns.TypeTXT)
		if err != nil {
			return false, err
		}
		found := false
		for _, rr := range rrs {
			if t, ok := rr.(*mdns.TXT); ok && dns.TXTValue(t) == c.after {
				found = true
			}
		}
		if want := c.after != ""; found != want {
			return false, nil
		}
	}
	return true, nil
}

// followedServers are the servers a change to m's records must reach: a
// hosted zone's listed servers (its primary when none is listed), or the
// NS of the domain's zone.
func (s *Server) followedServers(ctx context.Context, m *mailService) ([]string, error) {
	z, err := s.zoneOf(ctx, s.pool, m)
	if err != nil {
		return nil, err
	}
	if z != nil {
		if len(z.servers) > 0 {
			return z.servers, nil
		}
		if servers, err := s.dns.Authoritatives(ctx, z.domain); err == nil && len(servers) > 0 {
			return servers, nil
		}
		return []string{z.primary}, nil
	}
	// The zone's apex is the domain or one of its parents.
	for d := m.domain; strings.Contains(d, "."); d = d[strings.Index(d, ".")+1:] {
		servers, err := s.dns.Authoritatives(ctx, d)
		if err != nil {
			return nil, err
		}
		if len(servers) > 0 {
			return servers, nil
		}
	}
	return nil, nil
}
