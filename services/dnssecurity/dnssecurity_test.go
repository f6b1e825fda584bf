package dnssecurity_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/dnssecurity"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/events"
	"github.com/mailplane/mailplane/services/platform/natstest"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	mdns "github.com/miekg/dns"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ourZone is what our platform publishes: the include customers name.
const ourZone = `$ORIGIN mailplane.test.
@    300 SOA ns1.mailplane.test. hostmaster.mailplane.test. 1 3600 900 604800 0
@    300 NS  ns1.mailplane.test.
_spf 0   TXT "v=spf1 ip4:192.0.2.0/24 -all"
`

// customerZone has one deliberate SPF mistake: our include is missing and
// it ends in ?all.
const customerZone = `$ORIGIN example.test.
@      0 SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 0
@      0 NS  ns1.example.test.
@      0 MX  10 mx1.mailplane.test.
@      0 TXT "v=spf1 ip4:198.51.100.7 ?all"
@      0 TXT "site-verification=abc123 \"quoted\" café"
_dmarc 0 TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.test"
`

// siteVerification is the other apex TXT record of customerZone, as
// published: Correct must keep it byte for byte.
const siteVerification = `site-verification=abc123 "quoted" café`

type env struct {
	t        *testing.T
	zone     *dns.LocalServer
	svc      *dnssecurity.Service
	srv      *servicetest.Server
	pool     *pgxpool.Pool
	security dnssecurityv1.SecurityServiceClient
	spf      dnssecurityv1.SpfServiceClient
	keys     dnssecurityv1.DkimKeyServiceClient
	zones    dnssecurityv1.HostedZoneServiceClient
	org      uuid.UUID
	ms       string // the mail service's name
	tsig     string // the zone's TSIG secret
}

// start runs the service against a fresh database, a stream of its own and
// a loopback DNS server holding our zone and the customer's, working its
// jobs, with one verified mail service, example.test, announced as
// mailboxes announces it.
func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zone.Close() })
	for _, z := range []string{ourZone, customerZone} {
		if err := zone.SetZone(z); err != nil {
			t.Fatal(err)
		}
	}
	tsig := base64.StdEncoding.EncodeToString([]byte(rand.Text()[:24]))
	if err := zone.AllowUpdates("update-key.", "hmac-sha256", tsig); err != nil {
		t.Fatal(err)
	}
	resolver, err := dns.NewResolver(zone.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewMigratedDatabase(t, pgtest.Schema{Name: dnssecurity.Schema, Migrations: dnssecurity.Migrations})
	pool, err := pg.Connect(ctx, url, dnssecurity.Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	e := &env{t: t, zone: zone, pool: pool, org: uuid.Must(uuid.NewV7()), tsig: tsig}
	e.srv = servicetest.Start(t, func(s *servicetest.Server) error {
		e.svc, err = dnssecurity.Register(s.GRPC.Server, pool, dnssecurity.Config{
			MXHosts: "mx1.mailplane.test,mx2.mailplane.test", SPFInclude: "_spf.mailplane.test", SendingIPs: "192.0.2.0/24",
			DKIMGrace: time.Hour, AccountsAddr: s.Addr, SecretKeys: secret.NewKey(),
		}, resolver, s.Log)
		return err
	})
	jobsCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.WorkJobs(jobsCtx) }()
	t.Cleanup(func() { stop(); <-done })

	e.security = dnssecurityv1.NewSecurityServiceClient(e.srv.Conn)
	e.spf = dnssecurityv1.NewSpfServiceClient(e.srv.Conn)
	e.keys = dnssecurityv1.NewDkimKeyServiceClient(e.srv.Conn)
	e.zones = dnssecurityv1.NewHostedZoneServiceClient(e.srv.Conn)
	e.ms = "organizations/" + e.org.String() + "/mailServices/" + uuid.Must(uuid.NewV7()).String()
	e.announce(mailboxesevents.MailServiceCreated, "example.test")
	return e
}

// announce publishes a mailboxes mail service event on a stream of the
// test's own and runs the service's consumers over it.
func (e *env) announce(subject, domain string) {
	t := e.t
	ns := natstest.Start(t)
	log := slog.New(slog.DiscardHandler)
	nc, js, err := events.Connect(events.NATS{URL: ns.ClientURL()}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := events.EnsureStream(ctx, js, "DNSSECTEST", "mp", 1); err != nil {
		t.Fatal(err)
	}
	for _, sub := range e.svc.Subscriptions() {
		c := &events.Consumer{JS: js, Pool: e.pool, Stream: "DNSSECTEST", Durable: sub.Durable, Handle: sub.Handle, Log: log}
		for _, s := range sub.Subjects {
			c.Subjects = append(c.Subjects, "mp."+s)
		}
		go c.Run(ctx)
	}
	data, _ := proto.Marshal(&mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{
		Name: e.ms, Domain: domain, State: mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED,
	}})
	if _, err := js.Publish(ctx, "mp."+subject, data, jetstream.WithMsgID(uuid.NewString())); err != nil {
		t.Fatal(err)
	}
}

// as is a caller with role in org, through an API token.
func (e *env) as(org uuid.UUID, role string) context.Context {
	return e.srv.As(e.t, auth.Principal{TokenID: uuid.NewString(), OrganizationID: org.String(), Role: role})
}

// eventually retries check until it returns true, for up to 15 s.
func (e *env) eventually(what string, check func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !check(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not after 15 s", what)
		}
	}
}

// security waits for the mail service's first diagnostic and returns the
// page.
func (e *env) diagnosed(ctx context.Context) *dnssecurityv1.DomainSecurity {
	var sec *dnssecurityv1.DomainSecurity
	e.eventually("the diagnostic run on verification", func() bool {
		resp, err := e.security.GetDomainSecurity(ctx, &dnssecurityv1.GetDomainSecurityRequest{Name: e.ms + "/security"})
		if status.Code(err) == codes.NotFound {
			return false
		}
		if err != nil {
			e.t.Fatal(err)
		}
		sec = resp.GetDomainSecurity()
		return sec.GetDiagnostic() != nil
	})
	return sec
}

func area(d *dnssecurityv1.Diagnostic, a dnssecurityv1.Area) *dnssecurityv1.AreaResult {
	for _, r := range d.GetAreas() {
		if r.GetArea() == a {
			return r
		}
	}
	return nil
}

func codesOf(r *dnssecurityv1.AreaResult) []string {
	var out []string
	for _, f := range r.GetFindings() {
		out = append(out, f.GetCode())
	}
	return out
}

func wantCode(t *testing.T, err error, want codes.Code, field string) {
	t.Helper()
	if status.Code(err) != want {
		t.Fatalf("got %v, want %v", err, want)
	}
	if field != "" && !strings.Contains(status.Convert(err).Message()+detailFields(err), field) {
		t.Errorf("error %v does not name %s", err, field)
	}
}

// detailFields are the fields a BadRequest detail names.
func detailFields(err error) string {
	var b strings.Builder
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				b.WriteString(" " + v.GetField())
			}
		}
	}
	return b.String()
}

// TestDiagnosticAndCorrect: a verified mail service is diagnosed at once;
// its SPF mistake is red, "Correct" writes the fixed record to the zone we
// host (keeping its other TXT records), the change is followed until
// applied, and the next diagnostic is green for SPF.
func TestDiagnosticAndCorrect(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	sec := e.diagnosed(admin)
	if sec.GetDomain() != "example.test" || sec.GetHosted() {
		t.Errorf("security = %v, want example.test, not hosted", sec)
	}
	d := sec.GetDiagnostic()
	if got := area(d, dnssecurityv1.Area_AREA_MX).GetStatus(); got != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("MX %v (%v), want OK", got, codesOf(area(d, dnssecurityv1.Area_AREA_MX)))
	}
	spfArea := area(d, dnssecurityv1.Area_AREA_SPF)
	if spfArea.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR || !slices.Contains(codesOf(spfArea), "spf.not_authorized") || !slices.Contains(codesOf(spfArea), "spf.neutral_all") {
		t.Errorf("SPF %v %v, want ERROR with spf.not_authorized and spf.neutral_all", spfArea.GetStatus(), codesOf(spfArea))
	}
	if !spfArea.GetFindings()[0].GetCorrectable() {
		t.Errorf("the worst SPF finding %v is not correctable", spfArea.GetFindings()[0])
	}
	if d.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR {
		t.Errorf("overall %v, want ERROR", d.GetStatus())
	}
	for _, a := range []dnssecurityv1.Area{dnssecurityv1.Area_AREA_DKIM, dnssecurityv1.Area_AREA_DMARC, dnssecurityv1.Area_AREA_MTA_STS, dnssecurityv1.Area_AREA_TLS_RPT, dnssecurityv1.Area_AREA_DNSSEC} {
		if r := area(d, a); r == nil || len(r.GetFindings()) == 0 {
			t.Errorf("area %v missing or without findings", a)
		}
	}

	// Not hosted: the answer is the record to publish, and where.
	resp, err := e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetChange()
	fixed := c.GetAfter().GetValue()
	if c.GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_TO_PUBLISH || !strings.Contains(c.GetInstructions(), fixed) ||
		!strings.Contains(fixed, "include:_spf.mailplane.test") || !strings.Contains(fixed, "ip4:198.51.100.7") || !strings.HasSuffix(fixed, "~all") {
		t.Errorf("change for a zone we do not host = %v", c)
	}

	// Hosted: written with a signed update.
	_, err = e.zones.CreateHostedZone(admin, &dnssecurityv1.CreateHostedZoneRequest{
		Parent: "organizations/" + e.org.String(),
		HostedZone: &dnssecurityv1.HostedZone{Domain: "example.test", Primary: e.zone.Addr(), Servers: []string{e.zone.Addr()},
			TsigKeyName: "update-key", TsigSecret: e.tsig},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChange().GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_PROPAGATING {
		t.Errorf("change in a hosted zone = %v, want PROPAGATING", resp.GetChange())
	}
	var apex []string
	for _, rr := range e.zone.Records("example.test.", mdns.TypeTXT) {
		apex = append(apex, dns.TXTValue(rr.(*mdns.TXT)))
	}
	slices.Sort(apex)
	if want := []string{siteVerification, fixed}; !slices.Equal(apex, want) {
		t.Errorf("apex TXT after Correct = %q, want %q", apex, want)
	}
	e.eventually("the change applied", func() bool {
		list, err := e.security.ListChanges(admin, &dnssecurityv1.ListChangesRequest{Parent: e.ms + "/security"})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.GetChanges()) == 2 && list.GetChanges()[0].GetState() == dnssecurityv1.ChangeState_CHANGE_STATE_APPLIED
	})
	run, err := e.security.RunDiagnostic(admin, &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	if got := area(run.GetDiagnostic(), dnssecurityv1.Area_AREA_SPF); got.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("SPF after Correct: %v %v, want OK", got.GetStatus(), codesOf(got))
	}
	if _, err := e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Correct on a correct record: %v, want FailedPrecondition", err)
	}
}

// TestRefusedUpdate: a primary refusing our update (a wrong TSIG secret)
// fails the correction with the server's reason, changes nothing in the
// zone, and records the attempt as FAILED.
func TestRefusedUpdate(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	_, err := e.zones.CreateHostedZone(admin, &dnssecurityv1.CreateHostedZoneRequest{
		Parent: "organizations/" + e.org.String(),
		HostedZone: &dnssecurityv1.HostedZone{Domain: "example.test", Primary: e.zone.Addr(), Servers: []string{e.zone.Addr()},
			TsigKeyName: "update-key", TsigSecret: base64.StdEncoding.EncodeToString([]byte("not the zone's secret at all"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	before := e.zone.Records("example.test.", mdns.TypeTXT)
	_, err = e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "refused") {
		t.Errorf("Correct with a wrong key: %v, want FailedPrecondition saying the server refused", err)
	}
	if after := e.zone.Records("example.test.", mdns.TypeTXT); len(after) != len(before) {
		t.Errorf("apex TXT after a refused update: %v, want %v", after, before)
	}
	list, err := e.security.ListChanges(admin, &dnssecurityv1.ListChangesRequest{Parent: e.ms + "/security"})
	if err != nil || len(list.GetChanges()) != 1 || list.GetChanges()[0].GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_FAILED || list.GetChanges()[0].GetError() == "" {
		t.Errorf("changes after a refused update: %v, %v; want one FAILED with its error", list.GetChanges(), err)
	}
}

// TestAccess: members read, owners and admins act, another organization
// gets NotFound, and bad names and fields are InvalidArgument naming them.
func TestAccess(t *testing.T) {
	e := start(t)
	member := e.as(e.org, "member")
	e.diagnosed(member)
	name := &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"}
	if _, err := e.security.RunDiagnostic(member, name); status.Code(err) != codes.PermissionDenied {
		t.Errorf("member runs the diagnostic: %v, want PermissionDenied", err)
	}
	if _, err := e.security.CorrectSpf(member, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("member corrects SPF: %v, want PermissionDenied", err)
	}
	// Each refusal is in the organization's audit log, named by action.
	var denied []string
	rows, err := e.pool.Query(context.Background(), "SELECT payload FROM outbox WHERE subject = 'dnssecurity.audit.recorded' ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		var ev accountsv1.AuditRecorded
		if err := proto.Unmarshal(payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.GetEntry().GetOutcome() == accountsv1.Outcome_OUTCOME_DENIED && ev.GetOrganization() == "organizations/"+e.org.String() {
			denied = append(denied, ev.GetEntry().GetAction())
		}
	}
	if want := []string{"dnssecurity.diagnostic.run", "dnssecurity.spf.correct"}; !slices.Equal(denied, want) {
		t.Errorf("refusals audited: %q, want %q", denied, want)
	}
	other := e.as(uuid.Must(uuid.NewV7()), "owner")
	if _, err := e.security.GetDomainSecurity(other, &dnssecurityv1.GetDomainSecurityRequest{Name: e.ms + "/security"}); status.Code(err) != codes.NotFound {
		t.Errorf("another organization reads: %v, want NotFound", err)
	}
	if _, err := e.keys.ListDkimKeys(other, &dnssecurityv1.ListDkimKeysRequest{Parent: e.ms}); status.Code(err) != codes.NotFound {
		t.Errorf("another organization lists keys: %v, want NotFound", err)
	}
	admin := e.as(e.org, "admin")
	_, err = e.security.GetDomainSecurity(admin, &dnssecurityv1.GetDomainSecurityRequest{Name: "organizations/x/mailServices/y/security"})
	wantCode(t, err, codes.InvalidArgument, "name")
	_, err = e.security.UpdateDomainSecurity(admin, &dnssecurityv1.UpdateDomainSecurityRequest{DomainSecurity: &dnssecurityv1.DomainSecurity{
		Name: e.ms + "/security", OtherDkimSelectors: []string{"s1", "bad selector"}}})
	wantCode(t, err, codes.InvalidArgument, "otherDkimSelectors[1]")
	_, err = e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms, DkimKey: &dnssecurityv1.DkimKey{Selector: "a..b"}})
	wantCode(t, err, codes.InvalidArgument, "selector")
	_, err = e.zones.CreateHostedZone(admin, &dnssecurityv1.CreateHostedZoneRequest{Parent: "organizations/" + e.org.String(),
		HostedZone: &dnssecurityv1.HostedZone{Domain: "not a domain", Primary: "127.0.0.1:53", TsigKeyName: "k", TsigSecret: e.tsig}})
	wantCode(t, err, codes.InvalidArgument, "domain")
	_, err = e.security.SetDmarc(admin, &dnssecurityv1.SetDmarcRequest{Name: e.ms + "/security", Mode: &dnssecurityv1.SetDmarcRequest_Record{Record: "v=DMARC1; p=maybe"}})
	wantCode(t, err, codes.InvalidArgument, "record")

	up, err := e.security.UpdateDomainSecurity(admin, &dnssecurityv1.UpdateDomainSecurityRequest{DomainSecurity: &dnssecurityv1.DomainSecurity{
		Name: e.ms + "/security", OtherDkimSelectors: []string{"S1", "s1", "k2"}}})
	if err != nil || !slices.Equal(up.GetDomainSecurity().GetOtherDkimSelectors(), []string{"s1", "k2"}) {
		t.Errorf("update selectors: %v, %v; want [s1 k2]", up, err)
	}
}

// TestCheckHost: "test a sender" answers check_host() for any domain, the
// term that decided, and the explanation of a fail; bad input names its
// field.
func TestCheckHost(t *testing.T) {
	e := start(t)
	ctx := e.as(e.org, "member")
	for _, c := range []struct {
		ip, from, helo string
		want           dnssecurityv1.SpfResult
		term           string
	}{
		{"192.0.2.10", "someone@mailplane.test", "", dnssecurityv1.SpfResult_SPF_RESULT_NONE, ""},
		{"192.0.2.10", "someone@_spf.mailplane.test", "", dnssecurityv1.SpfResult_SPF_RESULT_PASS, "ip4:192.0.2.0/24"},
		{"203.0.113.1", "someone@_spf.mailplane.test", "", dnssecurityv1.SpfResult_SPF_RESULT_FAIL, "-all"},
		{"198.51.100.7", "", "example.test", dnssecurityv1.SpfResult_SPF_RESULT_PASS, "ip4:198.51.100.7"},
		{"203.0.113.1", "a@example.test", "", dnssecurityv1.SpfResult_SPF_RESULT_NEUTRAL, "?all"},
	} {
		resp, err := e.spf.CheckHost(ctx, &dnssecurityv1.CheckHostRequest{Ip: c.ip, MailFrom: c.from, Helo: c.helo})
		if err != nil {
			t.Fatalf("%v: %v", c, err)
		}
		if resp.GetResult() != c.want || resp.GetMatchedTerm() != c.term {
			t.Errorf("%s from %q helo %q: %v, term %q; want %v, %q", c.ip, c.from, c.helo, resp.GetResult(), resp.GetMatchedTerm(), c.want, c.term)
		}
		if c.want == dnssecurityv1.SpfResult_SPF_RESULT_FAIL && !strings.Contains(resp.GetExplanation(), "203.0.113.1") {
			t.Errorf("fail without an explanation naming the IP: %q", resp.GetExplanation())
		}
	}
	_, err := e.spf.CheckHost(ctx, &dnssecurityv1.CheckHostRequest{Ip: "300.1.1.1", MailFrom: "a@example.test"})
	wantCode(t, err, codes.InvalidArgument, "ip")
	_, err = e.spf.CheckHost(ctx, &dnssecurityv1.CheckHostRequest{Ip: "192.0.2.1", MailFrom: "a@exa mple"})
	wantCode(t, err, codes.InvalidArgument, "mail")
	_, err = e.spf.CheckHost(ctx, &dnssecurityv1.CheckHostRequest{Ip: "192.0.2.1"})
	wantCode(t, err, codes.InvalidArgument, "helo")
	// A flood is cut.
	var limited bool
	for range 100 {
		_, err := e.spf.CheckHost(ctx, &dnssecurityv1.CheckHostRequest{Ip: "192.0.2.1", Helo: "example.test"})
		if status.Code(err) == codes.ResourceExhausted {
			limited = true
			break
		}
	}
	if !limited {
		t.Error("100 checks at once were all answered, want the caller limited")
	}
}

// TestDKIMRotation: a key is published in the hosted zone and becomes
// active only once answered; a rotation publishes the new key, switches
// to it only once published, and keeps the old one published (retiring).
func TestDKIMRotation(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	_, err := e.zones.CreateHostedZone(admin, &dnssecurityv1.CreateHostedZoneRequest{
		Parent: "organizations/" + e.org.String(),
		HostedZone: &dnssecurityv1.HostedZone{Domain: "example.test", Primary: e.zone.Addr(), Servers: []string{e.zone.Addr()},
			TsigKeyName: "update-key", TsigSecret: e.tsig},
	})
	if err != nil {
		t.Fatal(err)
	}
	created, err := e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms, DkimKey: &dnssecurityv1.DkimKey{Selector: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	if k := created.GetDkimKey(); k.GetState() != dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_PUBLISHING || k.GetAlgorithm() != dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_RSA_2048 ||
		k.GetRecord().GetName() != "first._domainkey.example.test" || len(k.GetRecord().GetStrings()) < 2 {
		t.Errorf("new key = %v", k)
	}
	states := func() map[string]dnssecurityv1.DkimKeyState {
		list, err := e.keys.ListDkimKeys(admin, &dnssecurityv1.ListDkimKeysRequest{Parent: e.ms})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]dnssecurityv1.DkimKeyState{}
		for _, k := range list.GetDkimKeys() {
			m[k.GetSelector()] = k.GetState()
		}
		return m
	}
	e.eventually("the first key active", func() bool { return states()["first"] == dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE })
	signing, err := e.keys.GetSigningKey(admin, &dnssecurityv1.GetSigningKeyRequest{Domain: "example.test"})
	if err != nil || signing.GetDkimKey().GetSelector() != "first" || len(signing.GetPrivateKey()) == 0 {
		t.Fatalf("signing key = %v, %v; want first's", signing.GetDkimKey(), err)
	}
	if _, err := e.keys.GetSigningKey(e.as(e.org, "member"), &dnssecurityv1.GetSigningKeyRequest{Domain: "example.test"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a member reads the private key: %v, want PermissionDenied", err)
	}

	// Hold the new key's record back: until it is answered, the first key
	// signs.
	release := e.zone.Hold("second._domainkey.example.test.")
	rotated, err := e.keys.RotateDkimKey(admin, &dnssecurityv1.RotateDkimKeyRequest{Name: e.ms + "/dkimKeys/first", Algorithm: dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_ED25519})
	if err != nil {
		t.Fatal(err)
	}
	second := rotated.GetDkimKey().GetSelector()
	if second == "first" || rotated.GetDkimKey().GetAlgorithm() != dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_ED25519 {
		t.Errorf("rotated key = %v", rotated.GetDkimKey())
	}
	if s := states(); s["first"] != dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE || s[second] != dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_PUBLISHING {
		t.Errorf("while the new record is not answered: %v, want first active, %s publishing", s, second)
	}
	if signing, err := e.keys.GetSigningKey(admin, &dnssecurityv1.GetSigningKeyRequest{Domain: "example.test"}); err != nil || signing.GetDkimKey().GetSelector() != "first" {
		t.Errorf("signing key before the new record is answered = %v, %v; want first", signing.GetDkimKey(), err)
	}
	release()
	e.eventually("the second key active", func() bool {
		s := states()
		return s[second] == dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE && s["first"] == dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_RETIRING
	})
	if got := e.zone.Records("first._domainkey.example.test.", mdns.TypeTXT); len(got) != 1 {
		t.Errorf("the retiring key's record: %v, want it still published", got)
	}
	signing, err = e.keys.GetSigningKey(admin, &dnssecurityv1.GetSigningKeyRequest{Domain: "example.test"})
	if err != nil || signing.GetDkimKey().GetSelector() != second {
		t.Errorf("signing key after rotation = %v, %v; want %s", signing.GetDkimKey(), err, second)
	}
	run, err := e.security.RunDiagnostic(admin, &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	if got := area(run.GetDiagnostic(), dnssecurityv1.Area_AREA_DKIM); got.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("DKIM after rotation %v %v, want OK", got.GetStatus(), codesOf(got))
	}

	// Within its grace period the old key stays; after it, its record goes.
	ctx := context.Background()
	if n, err := e.svc.RetireDKIMKeys(ctx); err != nil || n != 0 {
		t.Errorf("retire within the grace period: %d, %v; want 0", n, err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE dkim_keys SET retire_time = now() - interval '1 minute' WHERE selector = 'first'"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.RetireDKIMKeys(ctx); err != nil || n != 1 {
		t.Fatalf("retire after the grace period: %d, %v; want 1", n, err)
	}
	if got := e.zone.Records("first._domainkey.example.test.", mdns.TypeTXT); len(got) != 0 {
		t.Errorf("the retired key's record: %v, want none", got)
	}
	if s := states(); s["first"] != dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_RETIRED || s[second] != dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE {
		t.Errorf("after retirement: %v", s)
	}
}

// TestDailyDiagnostics: the hourly run queues a diagnostic of each mail
// service whose last one is a day old, and none of the others.
func TestDailyDiagnostics(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	first := e.diagnosed(admin).GetDiagnostic().GetRunTime().AsTime()
	ctx := context.Background()
	// Its job is done (River marks it so a moment after it stored the
	// diagnostic); until then, queueing another would find it and add none.
	e.eventually("the first diagnostic's job completed", func() bool {
		var done bool
		err := e.pool.QueryRow(ctx, "SELECT bool_and(state = 'completed') FROM river_job WHERE kind = 'diagnose'").Scan(&done)
		return err == nil && done
	})
	if n, err := e.svc.QueueDailyDiagnostics(ctx); err != nil || n != 0 {
		t.Errorf("queued %d (%v) right after a diagnostic, want 0", n, err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE diagnostics SET run_time = now() - interval '25 hours'"); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.QueueDailyDiagnostics(ctx); err != nil || n != 1 {
		t.Fatalf("queued %d (%v) a day later, want 1", n, err)
	}
	e.eventually("the daily diagnostic", func() bool {
		resp, err := e.security.GetDomainSecurity(admin, &dnssecurityv1.GetDomainSecurityRequest{Name: e.ms + "/security"})
		return err == nil && resp.GetDomainSecurity().GetDiagnostic().GetRunTime().AsTime().After(first)
	})
}

// TestDmarcWizard: the recommendation is written first-tag-v, second-p,
// without pct, with the next step explained.
func TestDmarcWizard(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	resp, err := e.security.SetDmarc(admin, &dnssecurityv1.SetDmarcRequest{Name: e.ms + "/security",
		Mode: &dnssecurityv1.SetDmarcRequest_Recommended{Recommended: &dnssecurityv1.DmarcRecommendation{ReportTo: "reports@example.test"}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := resp.GetChange().GetAfter()
	if rec.GetName() != "_dmarc.example.test" || !strings.HasPrefix(rec.GetValue(), "v=DMARC1; p=none;") || strings.Contains(rec.GetValue(), "pct") ||
		!strings.Contains(rec.GetValue(), "rua=mailto:reports@example.test") || resp.GetNextSteps() == "" {
		t.Errorf("recommended DMARC = %v, next %q", rec, resp.GetNextSteps())
	}
	if resp.GetChange().GetBefore().GetValue() != "v=DMARC1; p=none; rua=mailto:dmarc@example.test" {
		t.Errorf("before = %v, want the published record", resp.GetChange().GetBefore())
	}
}

// TestLimits: a mail service has at most 10 DKIM keys that are not
// retired, and a caller's diagnostics, checks and changes are rate
// limited.
func TestLimits(t *testing.T) {
	e := start(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	for i := range 10 {
		_, err := e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms,
			DkimKey: &dnssecurityv1.DkimKey{Algorithm: dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_ED25519}})
		if err != nil {
			t.Fatalf("key %d: %v", i+1, err)
		}
	}
	_, err := e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms,
		DkimKey: &dnssecurityv1.DkimKey{Algorithm: dnssecurityv1.DkimAlgorithm_DKIM_ALGORITHM_ED25519}})
	wantCode(t, err, codes.ResourceExhausted, "")

	other := e.as(e.org, "admin")
	var limited bool
	for range 50 {
		_, err := e.security.RunDiagnostic(other, &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"})
		if status.Code(err) == codes.ResourceExhausted {
			limited = true
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !limited {
		t.Error("50 diagnostics at once were all run, want the caller limited")
	}
}
