package dnssecurity_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/dnssecurity"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/knottest"
	"github.com/mailplane/mailplane/services/platform/pg"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/secret"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	mdns "github.com/miekg/dns"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// knotCustomerZone is customerZone as a real primary serves it: with the
// same SPF mistake (our include missing, ?all), MX to our hosts, and the
// address of its name server. TTL 0: the service's resolver caches nothing
// of it, so what Knot holds now is what the next diagnostic reads.
const knotCustomerZone = `$ORIGIN example.test.
$TTL 0
@      SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 0
@      NS  ns1.example.test.
ns1    A   127.0.0.1
@      MX  10 mx1.mailplane.test.
@      TXT "v=spf1 ip4:198.51.100.7 ?all"
@      TXT "site-verification=abc123"
_dmarc TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.test"
`

// startKnot is start with the customer's zone on a real Knot: the
// service's resolver is a loopback server holding our zone (the SPF include)
// and forwarding every other question, example.test's, to Knot. e.zone is
// that loopback server; e.tsig is Knot's TSIG secret.
func startKnot(t *testing.T) (*env, *knottest.Server) {
	t.Helper()
	k := knottest.Start(t, knotCustomerZone)
	ctx := context.Background()
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zone.Close() })
	if err := zone.SetZone(ourZone); err != nil {
		t.Fatal(err)
	}
	zone.Forward(k.Addr)
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
	e := &env{t: t, zone: zone, pool: pool, org: uuid.Must(uuid.NewV7()), tsig: k.Secret}
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
	return e, k
}

// hostOnKnot registers example.test as a zone we host on k, updated with
// k's TSIG key under secret.
func (e *env) hostOnKnot(ctx context.Context, k *knottest.Server, secret string) {
	e.t.Helper()
	_, err := e.zones.CreateHostedZone(ctx, &dnssecurityv1.CreateHostedZoneRequest{
		Parent: "organizations/" + e.org.String(),
		HostedZone: &dnssecurityv1.HostedZone{Domain: "example.test", Primary: k.Addr, Servers: []string{k.Addr},
			TsigKeyName: k.KeyName, TsigAlgorithm: k.Algorithm, TsigSecret: secret},
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// knotTXT asks Knot itself (not the service's resolver) name's TXT
// records, each record's strings joined, sorted.
func knotTXT(t *testing.T, k *knottest.Server, name string) []string {
	t.Helper()
	r, err := dns.NewResolver(k.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rrs, err := r.Ask(context.Background(), k.Addr, name, mdns.TypeTXT)
	if err != nil {
		t.Fatalf("ask knot %s TXT: %v", name, err)
	}
	var out []string
	for _, rr := range rrs {
		out = append(out, strings.Join(rr.(*mdns.TXT).Txt, ""))
	}
	slices.Sort(out)
	return out
}

// changes lists the mail service's changes, newest first.
func (e *env) changes(ctx context.Context) []*dnssecurityv1.Change {
	e.t.Helper()
	list, err := e.security.ListChanges(ctx, &dnssecurityv1.ListChangesRequest{Parent: e.ms + "/security"})
	if err != nil {
		e.t.Fatal(err)
	}
	return list.GetChanges()
}

// TestKnotCorrectSpf: the SPF mistake in a zone a real Knot serves is
// diagnosed; Correct writes the fixed record there with a TSIG-signed
// update, keeping the apex's other TXT record; the change is followed
// until Knot answers it, and the next diagnostic is green for SPF.
func TestKnotCorrectSpf(t *testing.T) {
	e, k := startKnot(t)
	admin := e.as(e.org, "admin")
	d := e.diagnosed(admin).GetDiagnostic()
	if got := area(d, dnssecurityv1.Area_AREA_MX); got.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("MX %v %v, want OK", got.GetStatus(), codesOf(got))
	}
	spfArea := area(d, dnssecurityv1.Area_AREA_SPF)
	if spfArea.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_ERROR || !slices.Contains(codesOf(spfArea), "spf.not_authorized") {
		t.Fatalf("SPF %v %v, want ERROR with spf.not_authorized", spfArea.GetStatus(), codesOf(spfArea))
	}

	e.hostOnKnot(admin, k, k.Secret)
	resp, err := e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetChange()
	fixed := c.GetAfter().GetValue()
	if c.GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_PROPAGATING || !strings.Contains(fixed, "include:_spf.mailplane.test") ||
		!strings.Contains(fixed, "ip4:198.51.100.7") || c.GetBefore().GetValue() != "v=spf1 ip4:198.51.100.7 ?all" {
		t.Errorf("change = %v, want PROPAGATING from the published record to one including ours", c)
	}
	want := []string{"site-verification=abc123", fixed}
	slices.Sort(want)
	if got := knotTXT(t, k, "example.test."); !slices.Equal(got, want) {
		t.Errorf("apex TXT on Knot after Correct = %q, want %q", got, want)
	}
	if got := knotTXT(t, k, "_dmarc.example.test."); len(got) != 1 {
		t.Errorf("_dmarc TXT on Knot after Correct = %q, want it untouched", got)
	}
	e.eventually("the change applied", func() bool {
		cs := e.changes(admin)
		return len(cs) == 1 && cs[0].GetState() == dnssecurityv1.ChangeState_CHANGE_STATE_APPLIED && cs[0].GetApplyTime() != nil
	})
	run, err := e.security.RunDiagnostic(admin, &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	if got := area(run.GetDiagnostic(), dnssecurityv1.Area_AREA_SPF); got.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("SPF after Correct: %v %v, want OK", got.GetStatus(), codesOf(got))
	}
}

// TestKnotDKIMKey: a key created for a zone on Knot is published under
// <selector>._domainkey there, becomes active once Knot answers it, and
// the diagnostic finds it.
func TestKnotDKIMKey(t *testing.T) {
	e, k := startKnot(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	e.hostOnKnot(admin, k, k.Secret)
	created, err := e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms, DkimKey: &dnssecurityv1.DkimKey{Selector: "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := created.GetDkimKey().GetRecord()
	if rec.GetName() != "k1._domainkey.example.test" || !strings.HasPrefix(rec.GetValue(), "v=DKIM1;") {
		t.Fatalf("new key's record = %v", rec)
	}
	// An RSA 2048 record is longer than one TXT string: Knot must hold
	// the strings that join into it.
	if got := knotTXT(t, k, "k1._domainkey.example.test."); !slices.Equal(got, []string{rec.GetValue()}) {
		t.Errorf("k1._domainkey TXT on Knot = %q, want the key's record %q", got, rec.GetValue())
	}
	e.eventually("the key active", func() bool {
		list, err := e.keys.ListDkimKeys(admin, &dnssecurityv1.ListDkimKeysRequest{Parent: e.ms})
		if err != nil {
			t.Fatal(err)
		}
		return len(list.GetDkimKeys()) == 1 && list.GetDkimKeys()[0].GetState() == dnssecurityv1.DkimKeyState_DKIM_KEY_STATE_ACTIVE
	})
	run, err := e.security.RunDiagnostic(admin, &dnssecurityv1.RunDiagnosticRequest{Name: e.ms + "/security"})
	if err != nil {
		t.Fatal(err)
	}
	if got := area(run.GetDiagnostic(), dnssecurityv1.Area_AREA_DKIM); got.GetStatus() != dnssecurityv1.SecurityStatus_SECURITY_STATUS_OK {
		t.Errorf("DKIM with the key published: %v %v, want OK", got.GetStatus(), codesOf(got))
	}
}

// TestKnotWrongSecret: with a TSIG secret Knot does not know, Correct and
// a new DKIM key fail as FailedPrecondition saying the server refused;
// Knot's records are unchanged, no key is kept, and each attempt is
// recorded as a FAILED change with the server's reason, not as written.
func TestKnotWrongSecret(t *testing.T) {
	e, k := startKnot(t)
	admin := e.as(e.org, "admin")
	e.diagnosed(admin)
	wrong := make([]byte, 32)
	rand.Read(wrong)
	e.hostOnKnot(admin, k, base64.StdEncoding.EncodeToString(wrong))
	before := knotTXT(t, k, "example.test.")

	_, err := e.security.CorrectSpf(admin, &dnssecurityv1.CorrectSpfRequest{Name: e.ms + "/security"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Correct with a wrong secret: %v, want FailedPrecondition", err)
	}
	// Knot answers NOTAUTH with the TSIG error BADSIG.
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "refused") || !strings.Contains(msg, "BADSIG") || !strings.Contains(msg, k.Addr) {
		t.Errorf("error %q does not say that %s refused the signature (BADSIG)", msg, k.Addr)
	}
	if got := knotTXT(t, k, "example.test."); !slices.Equal(got, before) {
		t.Errorf("apex TXT on Knot after a refused Correct = %q, want %q", got, before)
	}
	// The attempt is recorded, as FAILED with the server's reason.
	if cs := e.changes(admin); len(cs) != 1 || cs[0].GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_FAILED || !strings.Contains(cs[0].GetError(), "BADSIG") {
		t.Errorf("changes after a refused Correct: %v, want one FAILED naming BADSIG", cs)
	}

	_, err = e.keys.CreateDkimKey(admin, &dnssecurityv1.CreateDkimKeyRequest{Parent: e.ms, DkimKey: &dnssecurityv1.DkimKey{Selector: "k1"}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "refused") {
		t.Errorf("a DKIM key with a wrong secret: %v, want FailedPrecondition saying the server refused", err)
	}
	if got := knotTXT(t, k, "k1._domainkey.example.test."); len(got) != 0 {
		t.Errorf("k1._domainkey TXT on Knot after a refused key = %q, want none", got)
	}
	list, err := e.keys.ListDkimKeys(admin, &dnssecurityv1.ListDkimKeysRequest{Parent: e.ms})
	if err != nil || len(list.GetDkimKeys()) != 0 {
		t.Errorf("keys after a refused key: %v, %v; want none", list.GetDkimKeys(), err)
	}
	if cs := e.changes(admin); len(cs) != 2 || cs[0].GetKind() != dnssecurityv1.ChangeKind_CHANGE_KIND_DKIM_PUBLISH || cs[0].GetState() != dnssecurityv1.ChangeState_CHANGE_STATE_FAILED {
		t.Errorf("changes after a refused key: %v, want the refused publication on top, FAILED", cs)
	}
}
