package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dnssecurityv1 "github.com/mailplane/mailplane/proto/mailplane/dnssecurity/v1"
	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/dovecottest"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/knottest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
	"github.com/mailplane/mailplane/services/platform/postfixtest"
	mdns "github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// journeyZone is the customer's zone, served by a real Knot: mail to our
// MX hosts, an SPF record without our include that ends in ?all (the
// mistake "Correct" fixes), a DMARC record. TTL 0: what Knot holds now is
// what the next lookup reads.
const journeyZone = `$ORIGIN journey.test.
$TTL 0
@      SOA ns1.journey.test. hostmaster.journey.test. 1 3600 900 604800 0
@      NS  ns1.journey.test.
ns1    A   127.0.0.1
@      MX  10 mx1.mailplane.test.
@      TXT "v=spf1 mx ?all"
_dmarc TXT "v=DMARC1; p=none; rua=mailto:postmaster@journey.test"
`

// TestCustomerJourney is one customer's journey on real mail servers,
// through the REST edge as the manager's frontend drives it: `mailplane
// dev` (every service, in this process) in front of a Postfix and a
// Dovecot configured from deploy/mail, and a Knot serving the customer's
// zone. Postfix asks the mailboxes service (socketmap, policy, milter),
// authenticates submission through Dovecot's auth (device passwords),
// delivers over LMTP to Dovecot (Sieve from the filters service) and to
// the lists service; the lists' copies and Dovecot's auto-replies come
// back through Postfix. Each step checks what the customer sees: REST
// answers, SMTP replies, mail in folders over IMAP.
func TestCustomerJourney(t *testing.T) {
	postfixtest.Require(t)
	began := time.Now()
	dbURL := pgtest.NewDatabase(t)
	pgc, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	knot := knottest.Start(t, journeyZone)
	// Dovecot submits auto-replies to Postfix's port 25, and Postfix
	// authenticates through Dovecot: Postfix's port is chosen first.
	smtpAddr := freeport.Addr(t)
	mail := dovecottest.StartPlatform(t, pgc, smtpAddr)
	socketmap, policy, milter, lmtp := freeport.Addr(t), freeport.Addr(t), freeport.Addr(t), freeport.Addr(t)
	pf := postfixtest.StartOptions(t, postfixtest.Fragment(t, socketmap, policy, milter, "lmtp:inet:"+mail.LMTPAddr),
		postfixtest.Options{Addr: smtpAddr, SASL: mail.SASLAddr})
	grpcAddr, httpAddr := freeport.Addr(t), freeport.Addr(t)
	c := startDev(t,
		"--grpc-addr", grpcAddr,
		"--http-addr", httpAddr,
		"--database-url", dbURL,
		// dev's own DNS server holds mailplane.test (our MX hosts, the SPF
		// include) and asks the rest of a resolver that knows journey.test.
		"--dns-resolver", resolver(t, "journey.test.", knot.Addr),
		"--socketmap-addr", socketmap, "--policy-addr", policy, "--milter-addr", milter,
		"--lmtp-addr", lmtp, "--lists-lmtp-addr", lmtp,
		"--smtp-relay", pf.Addr, "--smtp-relay-insecure",
		"--managesieve-addr", mail.SieveAddr,
		"--managesieve-master-user", dovecottest.PersonalMaster, "--managesieve-master-password", dovecottest.PersonalSecret,
		"--managesieve-platform-user", dovecottest.PlatformMaster, "--managesieve-platform-password", dovecottest.PlatformSecret,
		"--imap-addr", mail.Addr,
		"--imports-imap-addr", mail.Addr, "--imports-imap-security", "plain",
		"--imports-master-user", dovecottest.ImportsMaster, "--imports-master-password", dovecottest.ImportsSecret,
	)
	ready := time.Now()
	t.Logf("servers and dev stack ready in %v", ready.Sub(began).Round(time.Millisecond))

	// Sign up.
	const pw = "journey password 1"
	signUp := c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{
		"email": "owner@example.com", "password": pw, "displayName": "Olive Owner", "organizationDisplayName": "Journey Ltd"})
	org := str(signUp.body, "organization", "name")
	token := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "owner@example.com", "password": pw}).body, "accessToken")

	// A mail service, verified with a TXT record published on Knot (with
	// the zone owner's key, as the customer does at their DNS host).
	created := c.want(200, "POST", "/v1/"+org+"/mailServices", token, map[string]any{"domain": "journey.test"})
	ms := str(created.body, "name")
	knot.SetTXT(t, str(created.body, "verificationRecord", "name"), str(created.body, "verificationRecord", "value"))
	if v := c.want(200, "POST", "/v1/"+ms+":verify", token, map[string]any{}); str(v.body, "state") != "MAIL_SERVICE_STATE_VERIFIED" {
		t.Fatalf("verify: %v", v.body)
	}

	// Two addresses, a third whose old mail is imported later, a redirect
	// to bob, and a device password each.
	addresses := map[string]string{}
	passwords := map[string]string{}
	for _, local := range []string{"alice", "bob", "carol"} {
		a := c.want(200, "POST", "/v1/"+ms+"/addresses", token, map[string]any{
			"address": map[string]any{"localPart": local}, "access": map[string]any{"caller": true}})
		addresses[local] = str(a.body, "address", "name")
		dp := c.want(200, "POST", "/v1/"+addresses[local]+"/devicePasswords", token, map[string]any{"deviceName": local + "'s laptop"})
		passwords[local] = str(dp.body, "password")
	}
	alice, bob, carol := "alice@journey.test", "bob@journey.test", "carol@journey.test"
	redirect := c.want(200, "POST", "/v1/"+ms+"/addresses", token, map[string]any{
		"address": map[string]any{"localPart": "contact", "kind": "ADDRESS_KIND_REDIRECT", "redirectDestinations": []string{bob}}})
	if got := redirect.body["address"].(map[string]any)["redirectDestinations"]; fmt.Sprint(got) != "["+bob+"]" {
		t.Errorf("redirect = %v", redirect.body)
	}

	// Bob's rule (invoices to a folder) and auto-reply, installed by the
	// filters service over ManageSieve: the rule is in effect once his
	// filter settings say INSTALLED; the auto-reply reaches filters as
	// mailboxes' event a moment later, so its script is awaited on the
	// mail store.
	var rule reply
	eventually(t, "the filters service knows bob", func() bool {
		rule = c.do("POST", "/v1/"+addresses["bob"]+"/rules", token, map[string]any{
			"displayName": "Invoices",
			"conditions":  []any{map[string]any{"field": "FIELD_SUBJECT", "operator": "OPERATOR_CONTAINS", "value": "Invoice"}},
			"actions":     []any{map[string]any{"kind": "ACTION_KIND_MOVE", "folder": "Invoices"}},
		})
		return rule.status != 404
	})
	if rule.status != 200 {
		t.Fatalf("create rule: %d %v", rule.status, rule.body)
	}
	eventually(t, "bob's rule installed", func() bool {
		st := c.want(200, "GET", "/v1/"+addresses["bob"]+"/filterSettings", token, nil)
		return str(st.body, "installState") == "INSTALL_STATE_INSTALLED"
	})
	bobHome := home(mail, addresses["bob"])
	if personal, _ := os.ReadFile(filepath.Join(bobHome, "sieve", "mailplane.sieve")); !bytes.Contains(personal, []byte("Invoices")) {
		t.Fatalf("INSTALLED, but bob's script on the mail store is %q", personal)
	}
	c.want(200, "PATCH", "/v1/"+addresses["bob"]+"/autoReply", token, map[string]any{
		"enabled": true, "subject": "Away until Monday", "message": "Bob is away; he reads his mail on Monday."})
	eventually(t, "bob's auto-reply installed", func() bool {
		vacation, _ := os.ReadFile(filepath.Join(bobHome, "sieve-platform", "vacation.sieve"))
		return bytes.Contains(vacation, []byte("vacation"))
	})

	// Alice sends over submission, signed in with her device password.
	send(t, pf.Submission, alice, passwords["alice"], alice, []string{bob}, message(alice, bob, "Invoice 42"))
	send(t, pf.Submission, alice, passwords["alice"], alice, []string{"contact@journey.test"}, message(alice, "contact@journey.test", "Through the redirect"))
	// Signed in as alice, she may not send as bob: the envelope is refused
	// by the policy service, the From header by the milter, both with the
	// Sender Mismatch words.
	err = trySend(pf.Submission, alice, passwords["alice"], bob, []string{bob}, message(bob, bob, "Forged envelope"))
	wantRefused(t, "MAIL FROM:<bob@>", err, 554, `"bob@journey.test" used as sender is not "alice@journey.test" (the address you signed in with) nor one of its aliases`)
	err = trySend(pf.Submission, alice, passwords["alice"], alice, []string{bob}, message(bob, bob, "Forged From"))
	wantRefused(t, "From: bob@", err, 550, `"bob@journey.test" in the From header is not "alice@journey.test" (the address you signed in with) nor one of its aliases`)
	// Nobody signed in: submission is refused.
	if err := trySend(pf.Submission, "", "", alice, []string{bob}, message(alice, bob, "Anonymous")); err == nil {
		t.Error("submission without AUTH was accepted")
	}

	// Bob reads his mail over IMAP: the invoice sorted by his rule, the
	// redirected mail in his INBOX; alice gets his auto-reply, which the
	// platform's ad filter (on by default) files in Notifications.
	waitMail(t, mail, bob, passwords["bob"], "Invoice 42", "Invoices")
	waitMail(t, mail, bob, passwords["bob"], "Through the redirect", "INBOX")
	waitMail(t, mail, alice, passwords["alice"], "Away until Monday", "Notifications")

	// A list of the three; alice posts to it through Postfix, the lists
	// service sends the copies back through Postfix, Dovecot stores them
	// in the INBOX: the ad filter leaves a discussion list's posts there.
	list := c.want(200, "POST", "/v1/"+ms+"/lists", token, map[string]any{"localPart": "team", "displayName": "Team", "subjectPrefix": "[team]"})
	for _, m := range []string{alice, bob, carol} {
		c.want(200, "POST", "/v1/"+str(list.body, "name")+"/members?silent=true", token, map[string]any{"email": m})
	}
	send(t, pf.Submission, alice, passwords["alice"], alice, []string{"team@journey.test"}, message(alice, "team@journey.test", "Lunch on Friday"))
	waitMail(t, mail, bob, passwords["bob"], "[team] Lunch on Friday", "INBOX")
	waitMail(t, mail, carol, passwords["carol"], "[team] Lunch on Friday", "INBOX")

	// Carol's old mail, in a folder of her own, is imported into alice's
	// mailbox through the edge (a hosted source, read with her device
	// password; the destination written as the imports' master user).
	old := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	mail.Seed(t, carol, passwords["carol"], nil, []dovecottest.Message{
		{Folder: "Archive/2024", Date: old, Flags: []string{`\Seen`}, Raw: []byte(message("someone@example.org", carol, "Old news 1"))},
		{Folder: "Archive/2024", Date: old, Raw: []byte(message("someone@example.org", carol, "Old news 2"))},
	})
	job := c.want(200, "POST", "/v1/"+org+"/importJobs", token, map[string]any{
		"destination": addresses["alice"], "sources": []any{map[string]any{"hostedEmail": carol, "password": passwords["carol"]}}})
	eventually(t, "the import ended", func() bool {
		job = c.want(200, "GET", "/v1/"+str(job.body, "name"), token, nil)
		s := str(job.body, "state")
		return s != "STATE_PENDING" && s != "STATE_RUNNING"
	})
	if str(job.body, "state") != "STATE_SUCCEEDED" {
		t.Fatalf("import job %v", job.body)
	}
	for _, s := range []string{"Old news 1", "Old news 2"} {
		waitMail(t, mail, alice, passwords["alice"], s, "Archive/2024")
	}

	// Global Security: the zone is registered as one we host (over gRPC:
	// the provider does it, not the customer; it has no REST route), the
	// diagnostic shows the SPF mistake in red, "Correct" writes the fixed
	// record to Knot with a TSIG-signed update, and SPF turns green.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
	if _, err := dnssecurityv1.NewHostedZoneServiceClient(conn).CreateHostedZone(ctx, &dnssecurityv1.CreateHostedZoneRequest{
		Parent: org, HostedZone: &dnssecurityv1.HostedZone{Domain: "journey.test", Primary: knot.Addr, Servers: []string{knot.Addr},
			TsigKeyName: knot.KeyName, TsigAlgorithm: knot.Algorithm, TsigSecret: knot.Secret},
	}); err != nil {
		t.Fatalf("register the hosted zone: %v", err)
	}
	security := "/v1/" + ms + "/security"
	var diagnostic reply
	eventually(t, "a diagnostic of journey.test", func() bool {
		diagnostic = c.do("POST", security+":diagnose", token, map[string]any{})
		return diagnostic.status != 404
	})
	if diagnostic.status != 200 || area(diagnostic, "AREA_SPF") != "SECURITY_STATUS_ERROR" {
		t.Fatalf("SPF before Correct: %d %v, want SECURITY_STATUS_ERROR", diagnostic.status, diagnostic.body)
	}
	change := c.want(200, "POST", security+":correctSpf", token, map[string]any{})
	if !strings.Contains(str(change.body, "after", "value"), "include:_spf.mailplane.test") {
		t.Errorf("Correct = %v", change.body)
	}
	eventually(t, "the SPF correction applied", func() bool {
		changes, _ := c.want(200, "GET", security+"/changes", token, nil).body["changes"].([]any)
		return len(changes) > 0 && str(changes[0].(map[string]any), "state") == "CHANGE_STATE_APPLIED"
	})
	if spf := knotTXT(t, knot, "journey.test."); !slices.ContainsFunc(spf, func(s string) bool { return strings.Contains(s, "include:_spf.mailplane.test") }) {
		t.Errorf("Knot serves %q at the apex, want the corrected SPF record", spf)
	}
	diagnostic = c.want(200, "POST", security+":diagnose", token, map[string]any{})
	if got := area(diagnostic, "AREA_SPF"); got != "SECURITY_STATUS_OK" {
		t.Errorf("SPF after Correct = %s, want SECURITY_STATUS_OK (%v)", got, diagnostic.body)
	}

	// The rest of the page: a DKIM key, published to Knot and active once
	// Knot answers with it, and the DMARC wizard's last step (quarantine).
	// Then every area is green.
	c.want(200, "POST", "/v1/"+ms+"/dkimKeys", token, map[string]any{})
	eventually(t, "the DKIM key active", func() bool {
		keys, _ := c.want(200, "GET", "/v1/"+ms+"/dkimKeys", token, nil).body["dkimKeys"].([]any)
		return len(keys) == 1 && str(keys[0].(map[string]any), "state") == "DKIM_KEY_STATE_ACTIVE"
	})
	const dmarcRecord = "v=DMARC1; p=quarantine; rua=mailto:postmaster@journey.test"
	c.want(200, "POST", security+":setDmarc", token, map[string]any{"record": dmarcRecord})
	eventually(t, "the DMARC record applied", func() bool {
		changes, _ := c.want(200, "GET", security+"/changes", token, nil).body["changes"].([]any)
		return len(changes) > 0 && str(changes[0].(map[string]any), "state") == "CHANGE_STATE_APPLIED" &&
			strings.Contains(str(changes[0].(map[string]any), "after", "value"), "p=quarantine")
	})
	if got := knotTXT(t, knot, "_dmarc.journey.test."); !slices.Equal(got, []string{dmarcRecord}) {
		t.Errorf("Knot serves %q at _dmarc, want the wizard's record", got)
	}
	diagnostic = c.want(200, "POST", security+":diagnose", token, map[string]any{})
	for _, a := range []string{"AREA_MX", "AREA_SPF", "AREA_DKIM", "AREA_DMARC"} {
		if got := area(diagnostic, a); got != "SECURITY_STATUS_OK" {
			t.Errorf("%s after DKIM and DMARC = %s, want SECURITY_STATUS_OK", a, got)
		}
	}
	if got := str(diagnostic.body, "status"); got != "SECURITY_STATUS_OK" {
		t.Errorf("the diagnostic's status = %s, want SECURITY_STATUS_OK (%v)", got, diagnostic.body)
	}

	// The refused mail never arrived.
	for _, s := range []string{"Forged envelope", "Forged From", "Anonymous"} {
		if found, err := mail.Find(bob, passwords["bob"], s); err != nil || len(found) > 0 {
			t.Errorf("bob's %q: %v %v, want nothing", s, found, err)
		}
	}
	t.Logf("journey: %v after the servers were ready, %v in all", time.Since(ready).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// eventually polls cond until it holds, failing t after a minute: the
// steps it waits for (events, jobs, mail through two servers) take well
// under a second on an idle machine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// home is the mail store's directory of an address, by its resource name:
// mailplane-sql.conf.ext's home, <mail root>/<mail service id>/<address id>.
func home(m *dovecottest.Mail, address string) string {
	parts := strings.Split(address, "/")
	return filepath.Join(m.Vmail, parts[3], parts[5])
}

// message is a plain message from from to to with subject, CRLF lines.
func message(from, to, subject string) string {
	return "From: " + from + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "." + fmt.Sprint(time.Now().UnixNano()) + "@journey.test>\r\n\r\n" + subject + ".\r\n"
}

// trySend submits msg at addr, signed in as login with password (none
// when login is empty), and returns the first refusal.
func trySend(addr, login, password, from string, to []string, msg string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("laptop.journey.test"); err != nil {
		return err
	}
	if login != "" {
		// net/smtp sends PLAIN in the clear to 127.0.0.1 only.
		if err := c.Auth(smtp.PlainAuth("", login, password, "127.0.0.1")); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// send submits msg and fails t unless it is accepted.
func send(t *testing.T, addr, login, password, from string, to []string, msg string) {
	t.Helper()
	if err := trySend(addr, login, password, from, to, msg); err != nil {
		t.Fatalf("submit from %s to %v: %v", from, to, err)
	}
}

// wantRefused checks that err is an SMTP refusal with code and text.
func wantRefused(t *testing.T, what string, err error, code int, text string) {
	t.Helper()
	var tp *textproto.Error
	if !errors.As(err, &tp) || tp.Code != code || !strings.Contains(tp.Msg, text) {
		t.Errorf("%s: %v, want %d ...%s...", what, err, code, text)
	}
}

// waitMail waits until user finds a message whose subject contains
// subject over IMAP, and checks it is in folder.
func waitMail(t *testing.T, m *dovecottest.Mail, user, password, subject, folder string) {
	t.Helper()
	var found []dovecottest.Found
	eventually(t, user+" receives "+subject, func() bool {
		var err error
		if found, err = m.Find(user, password, subject); err != nil {
			t.Fatalf("IMAP as %s: %v", user, err)
		}
		return len(found) > 0
	})
	if len(found) != 1 || found[0].Mailbox != folder {
		t.Errorf("%s's %q: %v, want one in %s", user, subject, found, folder)
	}
}

// resolver plays the recursive resolver of a small internet, on a free
// loopback port (UDP and TCP), and returns its address: names in zone are
// asked of their authoritative server at addr, the others do not exist.
// Knot itself would refuse them, and the diagnostic asks some: the DMARC
// tree walk (RFC 9989) asks _dmarc.test, of the top-level domain.
func resolver(t *testing.T, zone, addr string) string {
	t.Helper()
	mux := mdns.NewServeMux()
	mux.HandleFunc(zone, func(w mdns.ResponseWriter, req *mdns.Msg) {
		// Over the transport the question came by: a truncated UDP answer
		// is asked again over TCP, here and there.
		c := &mdns.Client{Net: w.RemoteAddr().Network(), Timeout: 5 * time.Second}
		in, _, err := c.Exchange(req, addr)
		if err != nil {
			in = new(mdns.Msg)
			in.SetRcode(req, mdns.RcodeServerFailure)
		}
		in.Authoritative, in.RecursionAvailable = false, true
		w.WriteMsg(in) //nolint:errcheck // the client asks again
	})
	mux.HandleFunc(".", func(w mdns.ResponseWriter, req *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetRcode(req, mdns.RcodeNameError)
		m.RecursionAvailable = true
		w.WriteMsg(m) //nolint:errcheck
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*mdns.Server{{PacketConn: pc, Handler: mux}, {Listener: ln, Handler: mux}} {
		go srv.ActivateAndServe() //nolint:errcheck // ends with Shutdown
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// area is the status of one area of a diagnostic.
func area(d reply, name string) string {
	areas, _ := d.body["areas"].([]any)
	for _, a := range areas {
		if str(a.(map[string]any), "area") == name {
			return str(a.(map[string]any), "status")
		}
	}
	return ""
}

// knotTXT asks Knot itself name's TXT records, each record's strings
// joined.
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
	return out
}
