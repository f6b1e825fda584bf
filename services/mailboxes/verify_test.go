package mailboxes_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/mailboxes"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	statePending   = mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_PENDING
	stateVerified  = mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_VERIFIED
	stateClaimLost = mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_CLAIM_LOST
)

func (e *env) claim(p person, domain string) (*mailboxesv1.MailService, error) {
	resp, err := e.services.CreateMailService(p.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: p.org, MailService: &mailboxesv1.MailService{Domain: domain}})
	return resp.GetMailService(), err
}

func (e *env) get(t *testing.T, p person, ms *mailboxesv1.MailService) *mailboxesv1.MailService {
	t.Helper()
	resp, err := e.services.GetMailService(p.ctx, &mailboxesv1.GetMailServiceRequest{Name: ms.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetMailService()
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// dovecotLogins are the logins Dovecot would accept on domain.
func (e *env) dovecotLogins(t *testing.T, domain string) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), "SELECT count(*) FROM dovecot_users WHERE login LIKE '%@' || $1", domain).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A squatter's claim blocks nobody: the organization that publishes the
// record gets the domain, and the squatter's claim ends.
func TestDomainClaims(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@acme.example")
	squatter := e.person(t, "squatter@example.com")

	sq, err := e.claim(squatter, "acme.example")
	if err != nil {
		t.Fatal(err)
	}
	rec := sq.GetVerificationRecord()
	if sq.GetState() != statePending || rec.GetName() != "_mailplane-verification.acme.example" || rec.GetType() != "TXT" ||
		!strings.HasPrefix(rec.GetValue(), "mailplane-verification=") || sq.GetExpireTime().AsTime().Sub(sq.GetCreateTime().AsTime()) != 7*24*time.Hour {
		t.Errorf("a new claim: %v", sq)
	}

	// The real owner claims it too: the pending claim does not block it.
	ms, err := e.claim(owner, "acme.example")
	if err != nil {
		t.Fatalf("the owner's claim, with a squatter's pending: %v", err)
	}
	if ms.GetVerificationRecord().GetValue() == rec.GetValue() {
		t.Error("two claims share a token")
	}
	_, err = e.claim(owner, "ACME.example")
	if wantCode(t, err, codes.AlreadyExists); reason(err) != "DOMAIN_CLAIMED" || field(err) != "mailService.domain" {
		t.Errorf("a second claim by one organization: %v", err)
	}

	// Addresses can be prepared on a pending domain, but nothing serves it.
	if _, err := e.addrs.CreateAddress(owner.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.Name, Address: &mailboxesv1.Address{LocalPart: "sales"}}); err != nil {
		t.Fatalf("an address on a pending domain: %v", err)
	}
	if _, err := e.addrs.CreateAddress(squatter.ctx, &mailboxesv1.CreateAddressRequest{Parent: sq.Name, Address: &mailboxesv1.Address{LocalPart: "ceo"}}); err != nil {
		t.Fatalf("an address on a pending domain: %v", err)
	}
	if n := e.dovecotLogins(t, "acme.example"); n != 0 {
		t.Errorf("Dovecot sees %d logins of a pending domain", n)
	}

	// No record yet: still pending, and it says what it looked for.
	v, err := e.services.VerifyMailService(owner.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: ms.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetMailService(); got.GetState() != statePending || got.GetLastCheckTime() == nil ||
		!strings.Contains(got.GetLastCheckResult(), "no TXT record") {
		t.Errorf("verify without the record: %v", got)
	}

	// Asked again at once, it answers that look again, without a new one.
	e.publish(ms)
	again, err := e.services.VerifyMailService(owner.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: ms.Name})
	if err != nil || again.GetMailService().GetState() != statePending ||
		!again.GetMailService().GetLastCheckTime().AsTime().Equal(v.GetMailService().GetLastCheckTime().AsTime()) {
		t.Errorf("verify again at once: %v, %v", again.GetMailService(), err)
	}

	// Later, the record published is found: verified; the squatter's claim
	// ends.
	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET last_check_time = now() - interval '1 minute'"); err != nil {
		t.Fatal(err)
	}
	v, err = e.services.VerifyMailService(owner.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: ms.Name})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.GetMailService(); got.GetState() != stateVerified || got.GetVerifyTime() == nil {
		t.Errorf("verify with the record: %v", got)
	}
	if got := e.get(t, squatter, sq); got.GetState() != stateClaimLost || got.GetLastCheckResult() == "" {
		t.Errorf("the squatter's claim: %v", got)
	}
	_, err = e.services.VerifyMailService(squatter.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: sq.Name})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "CLAIM_ENDED" {
		t.Errorf("verify an ended claim: reason %q", reason(err))
	}
	// Even were the squatter's record published, the domain is taken.
	e.publish(sq)
	_, err = e.claim(squatter, "acme.example")
	if wantCode(t, err, codes.AlreadyExists); reason(err) != "DOMAIN_TAKEN" {
		t.Errorf("claim a verified domain: reason %q", reason(err))
	}
	if n := e.dovecotLogins(t, "acme.example"); n != 1 {
		t.Errorf("Dovecot sees %d logins of the verified domain, want 1 (the owner's sales@)", n)
	}
}

// A domain related to one another organization verified is refused: its
// subdomains (which its zone controls) and its parents.
func TestDomainRelatives(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	other := e.person(t, "other@example.com")
	if _, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "mail.acme.example"}}); err != nil {
		t.Fatal(err)
	}
	for domain, want := range map[string]string{
		"x.mail.acme.example":   "PARENT_DOMAIN_TAKEN",
		"a.b.mail.acme.example": "PARENT_DOMAIN_TAKEN",
		"acme.example":          "SUBDOMAIN_TAKEN",
	} {
		_, err := e.claim(other, domain)
		if wantCode(t, err, codes.FailedPrecondition); reason(err) != want || field(err) != "mailService.domain" {
			t.Errorf("%s: reason %q, field %q; want %s on mailService.domain", domain, reason(err), field(err), want)
		}
	}
	// Not related: a sibling, a name that only ends the same way.
	for _, domain := range []string{"shop.acme.example", "xmail.acme.example"} {
		if _, err := e.claim(other, domain); err != nil {
			t.Errorf("%s: %v", domain, err)
		}
	}
	// The organization's own subdomains are its business.
	if _, err := e.claim(owner, "eu.mail.acme.example"); err != nil {
		t.Errorf("own subdomain: %v", err)
	}

	// A claim made before a relative was verified loses when that happens.
	early, err := e.claim(other, "news.acme.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "acme.example"}}); err != nil {
		t.Fatal(err)
	}
	if got := e.get(t, other, early); got.GetState() != stateClaimLost {
		t.Errorf("a subdomain's claim after its parent was verified: %v", got.GetState())
	}
}

// A label mixing scripts, the look-alike trick, is refused.
func TestDomainScripts(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	for _, bad := range []string{"p\u0430ypal.example", "\u03bfpen.example", "shop.g\u043e\u043egle.example"} { // Cyrillic а, Greek ο, Cyrillic о
		_, err := e.claim(owner, bad)
		if wantCode(t, err, codes.InvalidArgument); field(err) != "mailService.domain" || !strings.Contains(status.Convert(err).Message(), "scripts") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, good := range []string{"bücher.example", "пример.example", "παράδειγμα.example", "日本語ひらがな.example", "mail-2.пример.example", "xn--80akhbyknj4f.example"} {
		if _, err := e.claim(owner, good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

// Pending claims are checked periodically: one whose record appears is
// verified without anyone asking.
func TestDomainCheckedPeriodically(t *testing.T) {
	e := startEnv(t, mailboxes.Config{}, false)
	owner := e.person(t, "owner@example.com")
	ms, err := e.claim(owner, "later.example")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	e.publish(ms)
	deadline := time.Now().Add(20 * time.Second)
	for e.get(t, owner, ms).GetState() != stateVerified {
		if time.Now().After(deadline) {
			t.Fatalf("not verified by the periodic check: %v", e.get(t, owner, ms))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A login on a domain nobody proved to control would be a login on someone
// else's domain (gmail.com): a new user whose login is the address waits
// for verification.
func TestNewUserWaitsForVerification(t *testing.T) {
	e := start(t)
	squatter := e.person(t, "squatter@example.com")
	ms, err := e.claim(squatter, "gmail.example")
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.addrs.CreateAddress(squatter.ctx, &mailboxesv1.CreateAddressRequest{Parent: ms.Name,
		Address: &mailboxesv1.Address{LocalPart: "victim"}, Access: &mailboxesv1.AddressAccess{NewUser: &mailboxesv1.NewUser{DisplayName: "Victim"}}})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "DOMAIN_NOT_VERIFIED" || field(err) != "access.newUser" {
		t.Errorf("a new user on a pending domain: %v", err)
	}
	// Nothing was made: neither the address nor, in accounts, the login.
	list, err := e.addrs.ListAddresses(squatter.ctx, &mailboxesv1.ListAddressesRequest{Parent: ms.Name})
	if err != nil || len(list.GetAddresses()) != 0 {
		t.Errorf("addresses after the refusal: %v, %v", list.GetAddresses(), err)
	}
	e.person(t, "victim@gmail.example") // the real person can still sign up
}

// Pending claims cost DNS questions until they end: an organization holds
// a bounded number.
func TestDomainClaimsCapped(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	for i := range 20 {
		if _, err := e.claim(owner, fmt.Sprintf("d%d.example", i)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.claim(owner, "one-too-many.example")
	if wantCode(t, err, codes.ResourceExhausted); reason(err) != "TOO_MANY_CLAIMS" {
		t.Errorf("claim 21: %v", err)
	}
	// A verified domain is no longer waiting: room for one more.
	list, err := e.services.ListMailServices(owner.ctx, &mailboxesv1.ListMailServicesRequest{Parent: owner.org})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(list.GetMailServices()[0])
	if _, err := e.services.VerifyMailService(owner.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: list.GetMailServices()[0].GetName()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.claim(owner, "one-more.example"); err != nil {
		t.Errorf("a claim after one was verified: %v", err)
	}
}

// Two claims whose records are both found at once: one wins, the other's
// claim ends.
func TestDomainClaimsRace(t *testing.T) {
	e := start(t)
	a, b := e.person(t, "a@example.com"), e.person(t, "b@example.com")
	msA, err := e.claim(a, "contested.example")
	if err != nil {
		t.Fatal(err)
	}
	msB, err := e.claim(b, "contested.example")
	if err != nil {
		t.Fatal(err)
	}
	e.dns.SetTXT(msA.GetVerificationRecord().GetName(), 0, msA.GetVerificationRecord().GetValue(), msB.GetVerificationRecord().GetValue())
	var wg sync.WaitGroup
	for _, c := range []struct {
		p  person
		ms *mailboxesv1.MailService
	}{{a, msA}, {b, msB}} {
		wg.Go(func() {
			_, err := e.services.VerifyMailService(c.p.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: c.ms.Name})
			if err != nil && reason(err) != "CLAIM_ENDED" {
				t.Errorf("verify: %v", err)
			}
		})
	}
	wg.Wait()
	states := map[mailboxesv1.MailServiceState]int{}
	states[e.get(t, a, msA).GetState()]++
	states[e.get(t, b, msB).GetState()]++
	if states[stateVerified] != 1 || states[stateClaimLost] != 1 {
		t.Errorf("states after a race: %v", states)
	}
}

// A claim not verified within 7 days ends, and its record no longer counts.
func TestDomainClaimExpires(t *testing.T) {
	e := start(t)
	owner := e.person(t, "owner@example.com")
	ms, err := e.claim(owner, "slow.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(context.Background(), "UPDATE mail_services SET create_time = now() - interval '8 days'"); err != nil {
		t.Fatal(err)
	}
	e.publish(ms)
	if n, err := e.svc.CheckClaims(context.Background()); err != nil || n != 1 {
		t.Fatalf("checked: %d ended, %v", n, err)
	}
	if got := e.get(t, owner, ms); got.GetState() != mailboxesv1.MailServiceState_MAIL_SERVICE_STATE_EXPIRED {
		t.Errorf("after 8 days: %v", got)
	}
	_, err = e.services.VerifyMailService(owner.ctx, &mailboxesv1.VerifyMailServiceRequest{Name: ms.Name})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "CLAIM_ENDED" {
		t.Errorf("verify an expired claim: %v", err)
	}
	// Claiming again starts afresh.
	if _, err := e.createVerified(t, owner.ctx, &mailboxesv1.CreateMailServiceRequest{Parent: owner.org, MailService: &mailboxesv1.MailService{Domain: "slow.example"}}); err != nil {
		t.Errorf("claim again: %v", err)
	}
}
