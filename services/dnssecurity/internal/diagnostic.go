package dnssecurity

import (
	"context"
	"crypto"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity/dnssecurityevents"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dkim"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/dmarc"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/finding"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/mtasts"
	"github.com/mailplane/mailplane/services/dnssecurity/internal/spf"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	mdns "github.com/miekg/dns"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// diagnosticTimeout bounds a whole diagnostic: each DNS question has its
// own timeout (the resolver's), and areas run in parallel.
const diagnosticTimeout = 20 * time.Second

const (
	upsertDiagnostic = `
INSERT INTO diagnostics (mail_service_id, status, diagnostic, run_time) VALUES ($1, $2, $3, $4)
ON CONFLICT (mail_service_id) DO UPDATE SET status = $2, diagnostic = $3, run_time = $4
RETURNING (SELECT status FROM diagnostics WHERE mail_service_id = $1)`
	selectDiagnostic = `SELECT diagnostic FROM diagnostics WHERE mail_service_id = $1`
	// selectHeldKeys are the keys whose records should be published: the
	// ones being published, signing, or still in their grace period.
	selectHeldKeys = `SELECT selector, record FROM dkim_keys WHERE mail_service_id = $1 AND state IN (1, 2, 3) ORDER BY selector`
)

// diagnose checks m's domain, every area in parallel, and stores the
// result; a changed overall status is published.
func (s *Server) diagnose(ctx context.Context, m *mailService) (*dnssecurityv1.Diagnostic, error) {
	held, err := s.heldKeys(ctx, m.id)
	if err != nil {
		return nil, err
	}
	d := s.check(ctx, m.domain, held, m.selectors)
	if err := s.storeDiagnostic(ctx, m, d); err != nil {
		return nil, err
	}
	return d, nil
}

// heldKeys returns the public keys of the selectors we publish for mail
// service ms.
func (s *Server) heldKeys(ctx context.Context, ms uuid.UUID) (map[string]crypto.PublicKey, error) {
	rows, _ := s.pool.Query(ctx, selectHeldKeys, ms)
	held := map[string]crypto.PublicKey{}
	var sel, record string
	_, err := pgx.ForEachRow(rows, []any{&sel, &record}, func() error {
		k, err := dkim.ParseKey(record)
		if err != nil {
			return fmt.Errorf("our key %s: %w", sel, err)
		}
		held[sel] = k.Public
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dkim keys of %s: %w", ms, err)
	}
	return held, nil
}

// check runs the diagnostic of domain: held are the DKIM keys we publish
// there by selector, others the selectors of the customer's other senders.
func (s *Server) check(ctx context.Context, domain string, held map[string]crypto.PublicKey, others []string) *dnssecurityv1.Diagnostic {
	ctx, cancel := context.WithTimeout(ctx, diagnosticTimeout)
	defer cancel()
	var (
		wg                         sync.WaitGroup
		mx, sp, dk, dm, tlsfs, sec []finding.Finding
	)
	wg.Go(func() { mx = checkMX(ctx, s.dns, domain, s.ours.MX) })
	wg.Go(func() {
		tree := spf.Walk(ctx, s.dns, domain)
		sp = spf.Lint(tree, spf.Ours{Include: s.ours.SPFInclude, IPs: s.ours.IPs})
	})
	wg.Go(func() { dk = checkDKIM(ctx, s.dns, domain, held, others) })
	wg.Go(func() { tlsfs = mtasts.Lint(ctx, s.dns, domain) })
	wg.Go(func() { sec = checkDNSSEC(ctx, s.dns, domain) })
	wg.Wait()
	// DMARC says whether SPF and DKIM are in place, so it runs after them;
	// its questions were mostly asked by then (and cached).
	dm = dmarc.Lint(ctx, s.dns, domain, finding.Worst(sp) != finding.Error, len(held) > 0 && finding.Worst(dk) != finding.Error)
	sts, rpt := splitByPrefix(tlsfs, "mtasts.")
	if mxElsewhere(mx) {
		// As the provider's own tool does: whether SPF lets our servers
		// send means little while the domain's mail goes elsewhere.
		sp = append([]finding.Finding{{
			Code: "spf.mx_elsewhere", Severity: finding.Warning,
			Message: fmt.Sprintf("Mail for %s is not directed to our servers (see MX), so the SPF analysis for our servers is not meaningful yet.", domain),
			Fix:     "Fix the MX records first, then look at SPF again.",
		}}, sp...)
	}
	areas := []*dnssecurityv1.AreaResult{
		areaResult(dnssecurityv1.Area_AREA_MX, mx),
		areaResult(dnssecurityv1.Area_AREA_SPF, sp),
		areaResult(dnssecurityv1.Area_AREA_DKIM, dk),
		areaResult(dnssecurityv1.Area_AREA_DMARC, dm),
		areaResult(dnssecurityv1.Area_AREA_MTA_STS, sts),
		areaResult(dnssecurityv1.Area_AREA_TLS_RPT, rpt),
		areaResult(dnssecurityv1.Area_AREA_DNSSEC, sec),
	}
	d := &dnssecurityv1.Diagnostic{Areas: areas, RunTime: timestamppb.Now()}
	all := make([]finding.Finding, 0)
	for _, fs := range [][]finding.Finding{mx, sp, dk, dm, tlsfs, sec} {
		all = append(all, fs...)
	}
	d.Status = statusProto(finding.Worst(all))
	return d
}

// checkDNSSEC tells whether domain's zone is signed: a DNSKEY at the
// domain or, for a name below its zone's apex, at the closest parent that
// has one. Unsigned is a note, not a warning: most zones are.
func checkDNSSEC(ctx context.Context, r *dns.Resolver, domain string) []finding.Finding {
	for d := domain; strings.Count(d, ".") >= 1; d = d[strings.Index(d, ".")+1:] {
		signed, err := r.Signed(ctx, d)
		if err != nil {
			return []finding.Finding{{
				Code: "dnssec.dns_failure", Severity: finding.Unknown,
				Message: fmt.Sprintf("We could not tell whether the zone of %s is signed: the DNS did not answer.", domain),
				Fix:     "Nothing to change; we check again later.",
			}}
		}
		if signed {
			return []finding.Finding{{Code: "dnssec.signed", Message: fmt.Sprintf("The zone of %s is signed with DNSSEC: its records cannot be forged on the way.", domain)}}
		}
	}
	return []finding.Finding{{
		Code: "dnssec.unsigned", Message: fmt.Sprintf("The zone of %s is not signed with DNSSEC.", domain),
		Fix: "If your DNS host offers DNSSEC, turn it on: it protects your records, MX included, from forgery.",
	}}
}

// splitByPrefix splits fs into the findings whose code starts with prefix
// and the others.
func splitByPrefix(fs []finding.Finding, prefix string) (with, without []finding.Finding) {
	for _, f := range fs {
		if strings.HasPrefix(f.Code, prefix) {
			with = append(with, f)
		} else {
			without = append(without, f)
		}
	}
	return with, without
}

// checkMX tells whether domain's MX records name our MX hosts.
func checkMX(ctx context.Context, r spf.Resolver, domain string, ours []string) []finding.Finding {
	rrs, err := r.Lookup(ctx, domain, mdns.TypeMX)
	if err != nil {
		return []finding.Finding{{
			Code: "mx.dns_failure", Severity: finding.Unknown,
			Message: fmt.Sprintf("We could not read the MX records of %s: the DNS did not answer.", domain),
			Fix:     "Nothing to change; we check again later.",
		}}
	}
	want := make([]string, len(ours))
	for i, h := range ours {
		want[i] = fmt.Sprintf("10 %s.", h)
	}
	fix := "Publish these MX records for " + domain + ": " + strings.Join(want, ", ") + ", and remove the others."
	if len(rrs) == 0 {
		return []finding.Finding{{
			Code: "mx.missing", Severity: finding.Error,
			Message: fmt.Sprintf("%s has no MX record: mail sent to your addresses does not reach us.", domain), Fix: fix,
		}}
	}
	var records, foreign []string
	for _, rr := range rrs {
		mx, ok := rr.(*mdns.MX)
		if !ok {
			continue
		}
		host := strings.ToLower(strings.TrimSuffix(mx.Mx, "."))
		records = append(records, fmt.Sprintf("%d %s", mx.Preference, mx.Mx))
		if !slices.Contains(ours, host) {
			foreign = append(foreign, host)
		}
	}
	record := strings.Join(records, ", ")
	switch {
	case len(records) == 1 && len(foreign) == 1 && foreign[0] == "":
		// A null MX (RFC 7505): the domain says it takes no mail at all.
		return []finding.Finding{{
			Code: "mx.null", Severity: finding.Error, Record: record, Fix: fix,
			Message: fmt.Sprintf("%s publishes a null MX record: it declares that it accepts no mail, so your addresses here receive nothing.", domain),
		}}
	case len(foreign) == len(records):
		return []finding.Finding{{
			Code: "mx.not_ours", Severity: finding.Error, Record: record, Fix: fix,
			Message: fmt.Sprintf("Mail for %s goes to %s, not to our servers: your addresses here receive nothing.", domain, strings.Join(foreign, ", ")),
		}}
	case len(foreign) > 0:
		return []finding.Finding{{
			Code: "mx.partly_ours", Severity: finding.Warning, Record: record, Fix: fix,
			Message: fmt.Sprintf("Some mail for %s may go to %s instead of our servers.", domain, strings.Join(foreign, ", ")),
		}}
	}
	return []finding.Finding{{Code: "mx.ok", Record: record, Message: fmt.Sprintf("Mail for %s comes to our servers.", domain)}}
}

// mxElsewhere reports whether the MX findings say the domain's mail does
// not come to us.
func mxElsewhere(fs []finding.Finding) bool {
	return slices.ContainsFunc(fs, func(f finding.Finding) bool { return f.Code == "mx.not_ours" || f.Code == "mx.missing" })
}

// checkDKIM checks our selectors against the keys we hold and the
// customer's other selectors for themselves.
func checkDKIM(ctx context.Context, r dkim.Resolver, domain string, held map[string]crypto.PublicKey, others []string) []finding.Finding {
	if len(held) == 0 && len(others) == 0 {
		return []finding.Finding{{
			Code: "dkim.no_key", Severity: finding.Warning,
			Message: "We do not sign your mail with DKIM yet: receivers trust it less.",
			Fix:     "Create a DKIM key; when we host your zone, we publish it for you.",
		}}
	}
	type sel struct {
		name string
		key  crypto.PublicKey
	}
	var sels []sel
	for name, k := range held {
		sels = append(sels, sel{name, k})
	}
	for _, name := range others {
		if _, ours := held[name]; !ours {
			sels = append(sels, sel{name: name})
		}
	}
	slices.SortFunc(sels, func(a, b sel) int { return strings.Compare(a.name, b.name) })
	results := make([][]finding.Finding, len(sels))
	var wg sync.WaitGroup
	for i, sl := range sels {
		wg.Go(func() { results[i] = dkim.Lint(ctx, r, domain, sl.name, sl.key) })
	}
	wg.Wait()
	return slices.Concat(results...)
}

// areaResult is an area's findings, worst first.
func areaResult(area dnssecurityv1.Area, fs []finding.Finding) *dnssecurityv1.AreaResult {
	out := &dnssecurityv1.AreaResult{Area: area, Status: statusProto(finding.Worst(fs))}
	sorted := slices.Clone(fs)
	slices.SortStableFunc(sorted, func(a, b finding.Finding) int { return rank(b.Severity) - rank(a.Severity) })
	for _, f := range sorted {
		out.Findings = append(out.Findings, &dnssecurityv1.Finding{
			Code: f.Code, Status: statusProto(f.Severity), Message: f.Message, Record: f.Record, Fix: f.Fix,
			Correctable: correctable(f.Code),
		})
	}
	return out
}

// correctable reports whether CorrectSpf fixes findings of code.
func correctable(code string) bool {
	switch code {
	case "spf.missing", "spf.multiple", "spf.plus_all", "spf.neutral_all", "spf.no_all", "spf.not_authorized", "spf.syntax":
		return true
	}
	return false
}

func rank(s finding.Severity) int {
	return map[finding.Severity]int{finding.OK: 0, finding.Warning: 1, finding.Unknown: 2, finding.Error: 3}[s]
}

func statusProto(s finding.Severity) dnssecurityv1.SecurityStatus {
	switch s {
	case finding.OK:
		return dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK
	case finding.Warning:
		return dnssecurityv1.SecurityStatus_SECURITY_STATUS_WARNING
	case finding.Error:
		return dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR
	}
	return dnssecurityv1.SecurityStatus_SECURITY_STATUS_UNKNOWN
}

// storeDiagnostic keeps d as m's last diagnostic and publishes a change of
// its overall status.
func (s *Server) storeDiagnostic(ctx context.Context, m *mailService, d *dnssecurityv1.Diagnostic) error {
	data, err := proto.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode diagnostic: %w", err)
	}
	return pg.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var before *int16
		if err := tx.QueryRow(ctx, upsertDiagnostic, m.id, int16(d.Status), data, d.RunTime.AsTime()).Scan(&before); err != nil {
			return fmt.Errorf("store diagnostic of %s: %w", m.domain, err)
		}
		prev := dnssecurityv1.SecurityStatus_SECURITY_STATUS_UNSPECIFIED
		if before != nil {
			prev = dnssecurityv1.SecurityStatus(*before)
		}
		if prev == d.Status {
			return nil
		}
		return outbox.Write(ctx, tx, dnssecurityevents.DiagnosticStatusChanged, &dnssecurityv1.DiagnosticStatusChanged{
			Name: securityName(m.org, m.id), Domain: m.domain, Before: prev, After: d.Status, Diagnostic: d,
		})
	})
}

// lastDiagnostic returns mail service ms's stored diagnostic, nil before
// the first.
func (s *Server) lastDiagnostic(ctx context.Context, ms uuid.UUID) (*dnssecurityv1.Diagnostic, error) {
	var data []byte
	err := s.pool.QueryRow(ctx, selectDiagnostic, ms).Scan(&data)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read diagnostic of %s: %w", ms, err)
	}
	d := &dnssecurityv1.Diagnostic{}
	if err := proto.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("decode diagnostic of %s: %w", ms, err)
	}
	return d, nil
}
