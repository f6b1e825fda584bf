package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailplane/mailplane/services/platform/dns"
	"github.com/mailplane/mailplane/services/platform/freeport"
	"github.com/mailplane/mailplane/services/platform/logtest"
	"github.com/mailplane/mailplane/services/platform/pgtest"
)

type client struct {
	t    *testing.T
	base string
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func (c *client) do(method, path, token string, body any) reply {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := reply{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			c.t.Fatalf("%s %s: body is not JSON: %s", method, path, raw)
		}
	}
	return out
}

// want checks the status and returns the reply.
func (c *client) want(status int, method, path, token string, body any) reply {
	c.t.Helper()
	r := c.do(method, path, token, body)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %v", method, path, r.status, status, r.body)
	}
	return r
}

// field returns the first field violation named in an error body.
func field(r reply) string {
	details, _ := r.body["details"].([]any)
	for _, d := range details {
		m, _ := d.(map[string]any)
		if vs, ok := m["fieldViolations"].([]any); ok && len(vs) > 0 {
			f, _ := vs[0].(map[string]any)["field"].(string)
			return f
		}
	}
	return ""
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

// verify publishes the record of the mail service in ms (a create's reply)
// in zone and verifies it, as a customer would.
func verify(c *client, zone *dns.LocalServer, token string, ms reply) reply {
	c.t.Helper()
	zone.SetTXT(str(ms.body, "verificationRecord", "name"), 0, str(ms.body, "verificationRecord", "value"))
	v := c.want(200, "POST", "/v1/"+str(ms.body, "name")+":verify", token, map[string]any{})
	if str(v.body, "state") != "MAIL_SERVICE_STATE_VERIFIED" {
		c.t.Fatalf("verify: %v", v.body)
	}
	return v
}

// TestDevStackREST starts `mailplane dev` and drives the REST edge as a
// frontend would.
func TestDevStackREST(t *testing.T) {
	metricsAddr := freeport.Addr(t)
	// The DNS "out there" where customers publish their verification
	// records: dev's own DNS server answers the demo domain and asks this
	// one the rest.
	zone, err := dns.ListenLocal("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	c := startDev(t,
		"--database-url", pgtest.NewDatabase(t),
		"--metrics-addr", metricsAddr,
		"--sign-in-limit-per-email", "5",
		"--dns-resolver", zone.Addr(),
	)

	// The seeded demo owner can sign in.
	c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": demoEmail, "password": demoPassword})

	const pw = "twelve chars or more"
	signUp := c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{
		"email": "frontend@example.com", "password": pw, "displayName": "Fran", "organizationDisplayName": "Fran & Co",
	})
	org := str(signUp.body, "organization", "name")
	if !strings.HasPrefix(org, "organizations/") || str(signUp.body, "user", "email") != "frontend@example.com" {
		t.Fatalf("sign-up answer %v", signUp.body)
	}
	c.want(409, "POST", "/v1/auth:signUp", "", map[string]any{
		"email": "frontend@example.com", "password": pw, "displayName": "Fran", "organizationDisplayName": "Again",
	})

	session := c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "frontend@example.com", "password": pw})
	token, refresh := str(session.body, "accessToken"), str(session.body, "refreshToken")
	if token == "" || refresh == "" || session.body["expiresIn"] != float64(900) {
		t.Fatalf("sign-in answer %v", session.body)
	}
	if session.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on the response")
	}

	me := c.want(200, "GET", "/v1/users/me", token, nil)
	if str(me.body, "user", "email") != "frontend@example.com" {
		t.Errorf("users/me = %v", me.body)
	}
	got := c.want(200, "GET", "/v1/"+org, token, nil)
	if str(got.body, "displayName") != "Fran & Co" {
		t.Errorf("GET organization = %v", got.body)
	}
	patched := c.want(200, "PATCH", "/v1/"+org+"?updateMask=displayName", token, map[string]any{"displayName": "Fran Inc"})
	if str(patched.body, "displayName") != "Fran Inc" {
		t.Errorf("PATCH organization = %v", patched.body)
	}
	members := c.want(200, "GET", "/v1/"+org+"/members", token, nil)
	list, _ := members.body["members"].([]any)
	if len(list) != 1 || str(list[0].(map[string]any), "role") != "ROLE_OWNER" {
		t.Fatalf("members = %v", members.body)
	}
	self := str(list[0].(map[string]any), "name")
	// The last owner cannot step down.
	c.want(400, "PATCH", "/v1/"+self, token, map[string]any{"role": "ROLE_ADMIN"})

	refreshed := c.want(200, "POST", "/v1/auth:refresh", "", map[string]any{"refreshToken": refresh})
	c.want(200, "GET", "/v1/users/me", str(refreshed.body, "accessToken"), nil)
	c.want(401, "POST", "/v1/auth:refresh", "", map[string]any{"refreshToken": refresh})
	// Presenting a used refresh token ended the session: its access tokens
	// stop working at once (TestRevocationTakesEffect); sign in again.
	within(t, time.Second, "access token of the revoked session", 401, func() int { return c.do("GET", "/v1/users/me", token, nil).status })
	token = str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "frontend@example.com", "password": pw}).body, "accessToken")

	demo := c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": demoEmail, "password": demoPassword})
	demoToken := str(demo.body, "accessToken")
	demoOrg := str(c.want(200, "GET", "/v1/users/me", demoToken, nil).body["memberships"].([]any)[0].(map[string]any), "name")
	demoOrg = demoOrg[:strings.Index(demoOrg, "/members/")]
	// The demo domain was verified by dev's own DNS server.
	demoDomains, _ := c.want(200, "GET", "/v1/"+demoOrg+"/mailServices", demoToken, nil).body["mailServices"].([]any)
	if len(demoDomains) != 1 || str(demoDomains[0].(map[string]any), "domain") != demoDomain ||
		str(demoDomains[0].(map[string]any), "state") != "MAIL_SERVICE_STATE_VERIFIED" {
		t.Errorf("the demo organization's mail services: %v", demoDomains)
	}
	globalSecurity(t, c, demoToken, str(demoDomains[0].(map[string]any), "name"), token)

	// Another organization's resources, existing or not, are 404.
	c.want(404, "GET", "/v1/"+demoOrg, token, nil)
	c.want(404, "GET", "/v1/"+demoOrg+"/members", token, nil)
	c.want(404, "PATCH", "/v1/"+demoOrg, token, map[string]any{"displayName": "Hijacked"})
	c.want(404, "GET", "/v1/organizations/00000000-0000-0000-0000-000000000000", token, nil)

	bad := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"malformed email", map[string]any{"email": "nope", "password": pw, "displayName": "A", "organizationDisplayName": "B"}, "email"},
		{"short password", map[string]any{"email": "a@example.com", "password": "short", "displayName": "A", "organizationDisplayName": "B"}, "password"},
		{"long password", map[string]any{"email": "a@example.com", "password": strings.Repeat("x", 1025), "displayName": "A", "organizationDisplayName": "B"}, "password"},
		{"empty display name", map[string]any{"email": "a@example.com", "password": pw, "displayName": "", "organizationDisplayName": "B"}, "displayName"},
	}
	for _, b := range bad {
		r := c.want(400, "POST", "/v1/auth:signUp", "", b.body)
		if f := field(r); f != b.field {
			t.Errorf("%s: violation names %q, want %q (%v)", b.name, f, b.field, r.body)
		}
	}
	r := c.want(400, "PATCH", "/v1/"+org, token, map[string]any{"displayName": "  "})
	if f := field(r); f != "organization.displayName" {
		t.Errorf("blank organization name: violation names %q", f)
	}

	for name, tok := range map[string]string{"missing": "", "malformed": "garbage", "tampered": tampered(t, token)} {
		r := c.want(401, "GET", "/v1/users/me", tok, nil)
		if r.body["code"] != float64(16) || str(r.body, "message") == "" {
			t.Errorf("%s token: body %v, want a google.rpc.Status with code 16", name, r.body)
		}
	}
	wrong := c.want(401, "POST", "/v1/auth:signIn", "", map[string]any{"email": "frontend@example.com", "password": "not the password"})
	unknown := c.want(401, "POST", "/v1/auth:signIn", "", map[string]any{"email": "ghost@example.com", "password": "not the password"})
	if fmt.Sprint(wrong.body) != fmt.Sprint(unknown.body) {
		t.Errorf("wrong password %v differs from unknown email %v", wrong.body, unknown.body)
	}

	// Five attempts per email in the window; the sixth is refused.
	for range 4 {
		c.want(401, "POST", "/v1/auth:signIn", "", map[string]any{"email": "frontend@example.com", "password": "not the password"})
	}
	limited := c.want(429, "POST", "/v1/auth:signIn", "", map[string]any{"email": "frontend@example.com", "password": pw})
	if ra := limited.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("429 without a Retry-After (got %q)", ra)
	}

	c.want(200, "POST", "/v1/auth:signOut", "", map[string]any{"refreshToken": str(refreshed.body, "refreshToken")})
	c.want(401, "POST", "/v1/auth:refresh", "", map[string]any{"refreshToken": str(refreshed.body, "refreshToken")})

	// A machine with an API token, through the edge.
	fresh := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": demoEmail, "password": demoPassword}).body, "accessToken")
	created := c.want(200, "POST", "/v1/"+demoOrg+"/apiTokens", fresh, map[string]any{"displayName": "ci robot", "role": "ROLE_ADMIN"})
	secret := str(created.body, "secret")
	if !strings.HasPrefix(secret, "mpt_") {
		t.Fatalf("create API token = %v", created.body)
	}
	c.want(200, "PATCH", "/v1/"+demoOrg, secret, map[string]any{"displayName": "Renamed by robot"})
	c.want(404, "GET", "/v1/"+org, secret, nil)
	c.want(401, "GET", "/v1/"+demoOrg, "mpt_"+strings.Repeat("0", 32)+"_nope", nil)
	spare := c.want(200, "POST", "/v1/"+demoOrg+"/apiTokens", fresh, map[string]any{"displayName": "spare", "role": "ROLE_MEMBER"})
	c.want(200, "DELETE", "/v1/"+str(spare.body, "apiToken", "name"), fresh, nil)
	c.want(401, "GET", "/v1/"+demoOrg, str(spare.body, "secret"), nil)
	tokens := c.want(200, "GET", "/v1/"+demoOrg+"/apiTokens", fresh, nil)
	if list, _ := tokens.body["apiTokens"].([]any); len(list) != 1 || str(list[0].(map[string]any), "lastUseTime") == "" {
		t.Errorf("API tokens = %v, want the robot's with its last use", tokens.body)
	}

	// The audit log, as an admin reads it.
	entries := c.want(200, "GET", "/v1/"+demoOrg+"/auditEntries?action=accounts.organization.update", fresh, nil)
	auditList, _ := entries.body["auditEntries"].([]any)
	if len(auditList) != 1 {
		t.Fatalf("audit entries = %v", entries.body)
	}
	robot := auditList[0].(map[string]any)
	if str(robot, "actorDisplayName") != "ci robot" || str(robot, "clientAddress") != "127.0.0.1" || str(robot, "outcome") != "OUTCOME_SUCCEEDED" {
		t.Errorf("audit entry = %v", robot)
	}
	c.want(404, "GET", "/v1/"+demoOrg+"/auditEntries", token, nil)

	// An invitation, end to end (the dev stack logs emails instead of
	// sending them; the link comes back to the admin too).
	inv := c.want(200, "POST", "/v1/"+demoOrg+"/invitations", fresh, map[string]any{"email": "invitee@example.com", "role": "ROLE_MEMBER"})
	link := str(inv.body, "link")
	invToken := link[strings.LastIndex(link, "/")+1:]
	look := c.want(200, "GET", "/v1/invitations:lookup?token="+invToken, "", nil)
	if str(look.body, "email") != "invitee@example.com" || look.body["accountExists"] == true {
		t.Errorf("lookup = %v", look.body)
	}
	c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{"email": "invitee@example.com", "password": pw, "displayName": "Invitee", "organizationDisplayName": "Invitee's own", "language": "de"})
	invitee := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "invitee@example.com", "password": pw}).body, "accessToken")
	c.want(200, "POST", "/v1/invitations:accept", invitee, map[string]any{"token": invToken})
	c.want(200, "GET", "/v1/"+demoOrg, invitee, nil)
	used := c.want(400, "GET", "/v1/invitations:lookup?token="+invToken, "", nil)
	if !strings.Contains(str(used.body, "message"), "already used") {
		t.Errorf("used invitation: %v", used.body)
	}
	c.want(200, "GET", "/v1/"+demoOrg+"/deadNotices", fresh, nil)

	// The DPA, once the legal details are set.
	c.want(400, "GET", "/v1/"+demoOrg+"/dataProcessingAgreement", fresh, nil)
	c.want(200, "PATCH", "/v1/"+demoOrg+"?updateMask=legalName,address", fresh, map[string]any{"legalName": "Demo SA", "address": "Rue du Lac 1\n1000 Lausanne"})
	req, _ := http.NewRequest("GET", c.base+"/v1/"+demoOrg+"/dataProcessingAgreement", nil)
	req.Header.Set("Authorization", "Bearer "+fresh)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pdf, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Errorf("DPA: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(pdf))
	}

	// The invitee adds a phone; the demo owner releases their login email.
	c.want(400, "PATCH", "/v1/users/me", invitee, map[string]any{"phoneNumber": "079 123 45 67"})
	c.want(200, "PATCH", "/v1/users/me", invitee, map[string]any{"phoneNumber": "+41791234567"})
	inviteeMember := ""
	for _, m := range c.want(200, "GET", "/v1/"+demoOrg+"/members", fresh, nil).body["members"].([]any) {
		if str(m.(map[string]any), "email") == "invitee@example.com" {
			inviteeMember = str(m.(map[string]any), "name")
		}
	}
	c.want(400, "POST", "/v1/"+inviteeMember+":releaseLogin", fresh, map[string]any{})
	// A login is released only on a domain the organization hosts: once
	// it attaches example.com, mailboxes' event tells accounts.
	notHosted := c.want(400, "POST", "/v1/"+inviteeMember+":releaseLogin", fresh, map[string]any{"confirm": true})
	if !strings.Contains(fmt.Sprint(notHosted.body), "LOGIN_NOT_HOSTED") {
		t.Errorf("release on a domain not hosted: %v", notHosted.body)
	}
	verify(c, zone, fresh, c.want(200, "POST", "/v1/"+demoOrg+"/mailServices", fresh, map[string]any{"domain": "example.com"}))
	var released reply
	for deadline := time.Now().Add(15 * time.Second); ; {
		if released = c.do("POST", "/v1/"+inviteeMember+":releaseLogin", fresh, map[string]any{"confirm": true}); !strings.Contains(fmt.Sprint(released.body), "LOGIN_NOT_HOSTED") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release still refused: %v", released.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if released.status != 200 || str(released.body, "releasedEmail") != "invitee@example.com" {
		t.Errorf("release = %d %v", released.status, released.body)
	}
	c.want(401, "POST", "/v1/auth:signIn", "", map[string]any{"email": "invitee@example.com", "password": pw})
	// Her sessions ended with the release: her access token is refused at once.
	within(t, time.Second, "released member's access token", 401, func() int { return c.do("GET", "/v1/"+demoOrg, invitee, nil).status })

	// Personal data: export, then delete (the frontend user owns an
	// organization alone, which goes with them).
	export := c.want(200, "GET", "/v1/users/me:exportPersonalData", token, nil)
	if str(export.body, "user", "email") != "frontend@example.com" {
		t.Errorf("export = %v", export.body)
	}
	c.want(403, "POST", "/v1/users/me:delete", token, map[string]any{"password": "not the password"})
	c.want(200, "POST", "/v1/users/me:delete", token, map[string]any{"password": pw})
	c.want(401, "GET", "/v1/users/me", token, nil)

	// Mailboxes: a domain and an address on it, as a frontend creates them.
	ms := c.want(200, "POST", "/v1/"+demoOrg+"/mailServices", fresh, map[string]any{"domain": "Bücher.example"})
	if str(ms.body, "domain") != "xn--bcher-kva.example" || str(ms.body, "unicodeDomain") != "bücher.example" {
		t.Errorf("mail service = %v", ms.body)
	}
	if str(ms.body, "state") != "MAIL_SERVICE_STATE_PENDING" || str(ms.body, "verificationRecord", "name") != "_mailplane-verification.xn--bcher-kva.example" {
		t.Errorf("a new mail service is pending with its record: %v", ms.body)
	}
	c.want(409, "POST", "/v1/"+demoOrg+"/mailServices", fresh, map[string]any{"domain": "xn--bcher-kva.example"})
	ms = verify(c, zone, fresh, ms)
	badDomain := c.want(400, "POST", "/v1/"+demoOrg+"/mailServices", fresh, map[string]any{"domain": "not a domain"})
	if field(badDomain) != "mailService.domain" {
		t.Errorf("bad domain: %v", badDomain.body)
	}
	addr := c.want(200, "POST", "/v1/"+str(ms.body, "name")+"/addresses", fresh, map[string]any{
		"address": map[string]any{"localPart": "info", "aliases": []string{"contact"}}, "access": map[string]any{"caller": true}})
	if str(addr.body, "address", "email") != "info@xn--bcher-kva.example" {
		t.Errorf("address = %v", addr.body)
	}
	c.want(409, "POST", "/v1/"+str(ms.body, "name")+"/addresses", fresh, map[string]any{"address": map[string]any{"localPart": "INFO"}})
	c.want(400, "POST", "/v1/"+str(ms.body, "name")+"/addresses", fresh, map[string]any{"address": map[string]any{"localPart": "contact"}})
	if list, _ := c.want(200, "GET", "/v1/"+str(ms.body, "name")+"/addresses", fresh, nil).body["addresses"].([]any); len(list) != 1 {
		t.Errorf("addresses = %v", list)
	}
	// Lists filter, sort, count and page over REST as over gRPC.
	q := url.Values{"filter": {`localPart = "inf*"`}, "orderBy": {"createTime desc"}, "pageSize": {"1"}}
	if found := c.want(200, "GET", "/v1/"+str(ms.body, "name")+"/addresses?"+q.Encode(), fresh, nil); found.body["totalSize"] != 1.0 || found.body["nextPageToken"] != nil {
		t.Errorf("filtered addresses = %v", found.body)
	}
	q.Set("filter", `local_part != "info"`)
	if bad := c.want(400, "GET", "/v1/"+str(ms.body, "name")+"/addresses?"+q.Encode(), fresh, nil); field(bad) != "filter" {
		t.Errorf("bad filter: %v", bad.body)
	}
	// Bulk creation through the edge, as a frontend does it: a users
	// column naming a member and a stranger; the stranger's row fails with
	// the email, the other is created, and the error CSV downloads.
	bulkJob := c.want(202, "POST", "/v1/"+str(ms.body, "name")+"/addresses:bulkCreate", fresh, map[string]any{
		"csv": []byte("local_part,users\r\nteam,demo@mailplane.test\r\nghosts,ghost@example.org\r\n")})
	jobName := str(bulkJob.body, "name")
	for deadline := time.Now().Add(60 * time.Second); str(bulkJob.body, "state") == "BULK_JOB_STATE_RUNNING"; {
		if time.Now().After(deadline) {
			t.Fatalf("bulk job still running after 60 s: %v", bulkJob.body)
		}
		time.Sleep(20 * time.Millisecond)
		bulkJob = c.want(200, "GET", "/v1/"+jobName, fresh, nil)
	}
	if str(bulkJob.body, "state") != "BULK_JOB_STATE_SUCCEEDED" || bulkJob.body["createdRows"] != 1.0 || bulkJob.body["failedRows"] != 1.0 {
		t.Errorf("bulk job %v", bulkJob.body)
	}
	failedRows, _ := c.want(200, "GET", "/v1/"+jobName+"/rows?"+url.Values{"filter": {"outcome = FAILED"}}.Encode(), fresh, nil).body["rows"].([]any)
	if len(failedRows) != 1 || !strings.Contains(fmt.Sprint(failedRows[0]), "user ghost@example.org is not a member") {
		t.Errorf("failed rows %v", failedRows)
	}
	errorsReq, _ := http.NewRequest("GET", c.base+"/v1/"+jobName+":errors", nil)
	errorsReq.Header.Set("Authorization", "Bearer "+fresh)
	errorsResp, err := http.DefaultClient.Do(errorsReq)
	if err != nil {
		t.Fatal(err)
	}
	errorsCSV, _ := io.ReadAll(errorsResp.Body)
	errorsResp.Body.Close()
	if errorsResp.StatusCode != 200 || errorsResp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(string(errorsCSV), "local_part,users,line,error\r\nghosts,ghost@example.org,3,") {
		t.Errorf("error CSV: %d %q %q", errorsResp.StatusCode, errorsResp.Header.Get("Content-Type"), errorsCSV)
	}
	if jobs, _ := c.want(200, "GET", "/v1/"+str(ms.body, "name")+"/bulkJobs", fresh, nil).body["jobs"].([]any); len(jobs) != 1 {
		t.Errorf("bulk jobs %v", jobs)
	}
	c.want(400, "POST", "/v1/"+jobName+":cancel", fresh, map[string]any{})

	// An external person invited to use an address joins it once they
	// accept: accounts' event reaches mailboxes through JetStream.
	shared := c.want(200, "POST", "/v1/"+str(ms.body, "name")+"/addresses", fresh, map[string]any{
		"address": map[string]any{"localPart": "shared"}, "access": map[string]any{"caller": true, "inviteEmails": []string{"partner@example.net"}}})
	links, _ := shared.body["invitationLinks"].(map[string]any)
	partnerLink, _ := links["partner@example.net"].(string)
	if partnerLink == "" {
		t.Fatalf("no invitation link: %v", shared.body)
	}
	// The address shows the partner as pending, with the invitation to
	// resend: a new link, and the first one stops working.
	sharedName := str(shared.body, "address", "name")
	var invitation string
	for _, u := range c.want(200, "GET", "/v1/"+sharedName, fresh, nil).body["users"].([]any) {
		if u := u.(map[string]any); u["email"] == "partner@example.net" && u["state"] == "ADDRESS_USER_STATE_PENDING" {
			invitation, _ = u["invitation"].(string)
		}
	}
	if !strings.HasPrefix(invitation, demoOrg+"/invitations/") {
		t.Fatalf("the pending partner's invitation is %q", invitation)
	}
	resent := str(c.want(200, "POST", "/v1/"+invitation+":resend", fresh, map[string]any{}).body, "link")
	if resent == "" || resent == partnerLink {
		t.Fatalf("resent link %q (first %q)", resent, partnerLink)
	}
	c.want(200, "POST", "/v1/auth:signUp", "", map[string]any{"email": "partner@example.net", "password": pw, "displayName": "Partner", "organizationDisplayName": "Partner's"})
	partner := str(c.want(200, "POST", "/v1/auth:signIn", "", map[string]any{"email": "partner@example.net", "password": pw}).body, "accessToken")
	c.want(404, "POST", "/v1/invitations:accept", partner, map[string]any{"token": partnerLink[strings.LastIndex(partnerLink, "/")+1:]})
	c.want(200, "POST", "/v1/invitations:accept", partner, map[string]any{"token": resent[strings.LastIndex(resent, "/")+1:]})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if r := c.do("GET", "/v1/"+sharedName, partner, nil); r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the invited partner never became a user of the address")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Removed from the organization, the partner is taken off the address
	// the same way: by accounts' event.
	for _, m := range c.want(200, "GET", "/v1/"+demoOrg+"/members", fresh, nil).body["members"].([]any) {
		if str(m.(map[string]any), "email") == "partner@example.net" {
			c.want(200, "DELETE", "/v1/"+str(m.(map[string]any), "name"), fresh, nil)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		users, _ := c.want(200, "GET", "/v1/"+sharedName, fresh, nil).body["users"].([]any)
		if len(users) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the removed partner still uses the address: %v", users)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A device password for the address, through the edge: shown once,
	// listed without it, revoked.
	dp := c.want(200, "POST", "/v1/"+str(addr.body, "address", "name")+"/devicePasswords", fresh, map[string]any{"deviceName": "Phone"})
	if len(str(dp.body, "password")) != 19 {
		t.Errorf("device password = %v", dp.body)
	}
	dps := c.want(200, "GET", "/v1/"+str(addr.body, "address", "name")+"/devicePasswords", fresh, nil)
	if list, _ := dps.body["devicePasswords"].([]any); len(list) != 1 || list[0].(map[string]any)["password"] != nil {
		t.Errorf("device passwords = %v", dps.body)
	}
	c.want(200, "DELETE", "/v1/"+str(dp.body, "devicePassword", "name"), fresh, nil)

	c.want(200, "DELETE", "/v1/"+str(addr.body, "address", "name"), fresh, nil)
	c.want(200, "DELETE", "/v1/"+str(ms.body, "name"), fresh, nil)
	c.want(200, "POST", "/v1/"+str(ms.body, "name")+":undelete", fresh, map[string]any{})

	openapi := c.want(200, "GET", "/openapi.json", "", nil)
	if paths, _ := openapi.body["paths"].(map[string]any); paths["/v1/auth:signIn"] == nil {
		t.Error("OpenAPI document lacks /v1/auth:signIn")
	}

	// The mailboxes' audit records travel through the outbox, JetStream and
	// accounts' audit consumer, as the metrics SREs watch show.
	var metrics string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if metrics = string(b); strings.Contains(metrics, `mailplane_events_applied_total{consumer="accounts-audit"`) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{`mailplane_outbox_published_total{`, `service="mailboxes"`, `mailplane_outbox_delay_seconds_bucket{`,
		`mailplane_events_applied_total{consumer="accounts-audit"`, `mailplane_events_lag_seconds_bucket{`, `mailplane_pg_group_writes_bucket{group="mailboxes.addresses"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}

	// The cleanup stops dev as Ctrl-C does, and fails the test unless it
	// returns nil within 30 s.
}

// tampered alters a valid token's payload, which the signature check must
// refuse. (Expired and forged tokens are tested in the accounts package.)
func tampered(t *testing.T, token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", token)
	}
	return parts[0] + "." + parts[1] + "x." + parts[2]
}

// globalSecurity is the demo of item 7 of the DNS security issue, over
// REST and offline: the demo domain's Global Security page shows the SPF
// mistake dev's zone holds in red; "Correct" writes the fixed record to
// dev's own DNS server with a signed update; the change is applied and
// SPF turns green. other, a token of another organization, sees nothing.
func globalSecurity(t *testing.T, c *client, token, ms, other string) {
	t.Helper()
	security := "/v1/" + ms + "/security"
	var spfArea map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		page := c.want(200, "GET", security, token, nil)
		if d, ok := page.body["diagnostic"].(map[string]any); ok {
			if page.body["hosted"] != true {
				t.Errorf("the demo zone is not hosted: %v", page.body)
			}
			for _, a := range d["areas"].([]any) {
				if str(a.(map[string]any), "area") == "AREA_SPF" {
					spfArea = a.(map[string]any)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no diagnostic of the demo domain: %v", page.body)
		}
	}
	if str(spfArea, "status") != "SECURITY_STATUS_ERROR" {
		t.Errorf("the demo SPF area = %v, want SECURITY_STATUS_ERROR", spfArea)
	}
	c.want(404, "GET", security, other, nil)
	change := c.want(200, "POST", security+":correctSpf", token, map[string]any{})
	if str(change.body, "state") != "CHANGE_STATE_PROPAGATING" || !strings.Contains(str(change.body, "after", "value"), "include:_spf.mailplane.test") {
		t.Errorf("Correct = %v", change.body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		changes, _ := c.want(200, "GET", security+"/changes", token, nil).body["changes"].([]any)
		if len(changes) > 0 && str(changes[0].(map[string]any), "state") == "CHANGE_STATE_APPLIED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the correction was not applied: %v", changes)
		}
	}
	d := c.want(200, "POST", security+":diagnose", token, map[string]any{})
	for _, a := range d.body["areas"].([]any) {
		if str(a.(map[string]any), "area") == "AREA_SPF" && str(a.(map[string]any), "status") != "SECURITY_STATUS_OK" {
			t.Errorf("SPF after Correct = %v, want SECURITY_STATUS_OK", a)
		}
	}
	// Test a sender, for any domain.
	r := c.want(200, "POST", "/v1/spf:checkHost", token, map[string]any{"ip": "127.0.0.1", "mailFrom": "someone@mailplane.test"})
	if str(r.body, "result") != "SPF_RESULT_PASS" {
		t.Errorf("checkHost = %v, want SPF_RESULT_PASS", r.body)
	}
	c.want(400, "POST", "/v1/spf:checkHost", token, map[string]any{"ip": "not an ip", "mailFrom": "someone@mailplane.test"})
}

// startDev runs `mailplane dev` until t ends, with args and, for the
// flags args does not set, a data directory of the test's, a free port for
// every listener and warnings only in the log; it returns a client of the
// REST edge once dev is ready. The cleanup stops dev as Ctrl-C does and
// fails t unless it returns nil within 30 s.
func startDev(t *testing.T, args ...string) *client {
	t.Helper()
	set := map[string]string{}
	for i, a := range args {
		if strings.HasPrefix(a, "--") && i+1 < len(args) {
			set[a] = args[i+1]
		} else if strings.HasPrefix(a, "--") {
			set[a] = ""
		}
	}
	flags := []string{"dev"}
	defaults := []string{"--data-dir", t.TempDir(), "--log-level", "warn"}
	for _, f := range []string{"--grpc-addr", "--http-addr", "--metrics-addr", "--socketmap-addr", "--policy-addr", "--milter-addr", "--lmtp-addr", "--report-addr"} {
		defaults = append(defaults, f, freeport.Addr(t))
	}
	for i := 0; i < len(defaults); i += 2 {
		if _, ok := set[defaults[i]]; !ok {
			flags = append(flags, defaults[i], defaults[i+1])
			set[defaults[i]] = defaults[i+1]
		}
	}
	flags = append(flags, args...)

	ctx, cancel := context.WithCancel(context.Background())
	var out logtest.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, flags, func(string) string { return "" }, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("dev did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("dev's output:\n%s", out.String())
		}
	})
	c := &client{t: t, base: "http://" + set["--http-addr"]}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(c.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c
			}
		}
		select {
		case err := <-done:
			done <- err // the cleanup waits for it
			t.Fatalf("dev stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("dev not ready in time")
		}
	}
}
