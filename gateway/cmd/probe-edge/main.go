// Command probe-edge replays, against a running stack, the bad inputs of
// the security sweep (issue #9, points 3 to 6): garbage tokens and floods on
// the unauthenticated routes, floods of invitations, resends, delete-password
// guesses and bulk uploads, too many aliases, NUL and control characters in
// every text field, unknown JSON fields and enum names, non-JSON bodies,
// text after the JSON document. It prints one row per probe: what was
// expected, what the stack answered, OK or FAIL; it exits 1 when a probe
// failed.
//
// It needs nothing but the stack (`make run`): it signs in as the demo
// owner, signs a throwaway user and organization up for whatever it
// changes, and removes the addresses it creates. The floods and the
// sign-in lockout run last, because the limits they trip hold for a while
// for the probe's address; -floods=false leaves the floods out.
//
//	scripts/probe-edge [-base http://localhost:8080]
package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
)

func main() {
	base := flag.String("base", envOr("MAILPLANE_EDGE", "http://localhost:8080"), "the REST edge's URL")
	email := flag.String("email", "demo@mailplane.test", "the demo owner's email")
	password := flag.String("password", "mailplane-demo-password", "the demo owner's password")
	floods := flag.Bool("floods", true, "run the floods (they trip per-address limits for a while)")
	flag.Parse()

	p := &prober{c: &client{base: strings.TrimSuffix(*base, "/"), http: &http.Client{Timeout: 30 * time.Second}}}
	if err := p.setUp(*email, *password); err != nil {
		fmt.Fprintln(os.Stderr, "probe-edge:", err)
		os.Exit(2)
	}
	p.edge()
	p.controlCharacters()
	p.limits()
	if *floods {
		p.unauthenticated()
	}
	p.lockout()
	p.codesAgree()
	p.cleanUp()
	if p.print(os.Stdout) > 0 {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// client speaks to the edge.
type client struct {
	base string
	http *http.Client
}

// reply is an answer, with the google.rpc.Status of an error decoded.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error

	code    int
	message string
	fields  []string // the BadRequest's field violations
	reason  string   // the ErrorInfo's reason
}

func (c *client) do(method, path, token, contentType, body string, header map[string]string) reply {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	r.body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 400 {
		var st struct {
			Code    int              `json:"code"`
			Message string           `json:"message"`
			Details []map[string]any `json:"details"`
		}
		if json.Unmarshal(r.body, &st) == nil {
			r.code, r.message = st.Code, st.Message
			for _, d := range st.Details {
				if vs, ok := d["fieldViolations"].([]any); ok {
					for _, v := range vs {
						if m, ok := v.(map[string]any); ok {
							f, _ := m["field"].(string)
							r.fields = append(r.fields, f)
						}
					}
				}
				if reason, ok := d["reason"].(string); ok {
					r.reason = reason
				}
			}
		}
	}
	return r
}

// json sends v as JSON.
func (c *client) json(method, path, token string, v any) reply {
	b, err := json.Marshal(v)
	if err != nil {
		return reply{err: err}
	}
	return c.do(method, path, token, "application/json", string(b), nil)
}

// String is what a reply shows in the table.
func (r reply) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	if r.status < 400 {
		return fmt.Sprint(r.status)
	}
	s := fmt.Sprintf("%d code %d", r.status, r.code)
	if len(r.fields) > 0 {
		s += " " + strings.Join(r.fields, ",")
	}
	if r.reason != "" {
		s += " " + r.reason
	}
	if r.message != "" && len(r.fields) == 0 {
		m := r.message
		if len(m) > 60 {
			m = m[:57] + "..."
		}
		s += fmt.Sprintf(" %q", m)
	}
	return s
}

// decode decodes a successful reply's body into v.
func (r reply) decode(v any) error {
	if r.err != nil {
		return r.err
	}
	if r.status >= 300 {
		return fmt.Errorf("status %d: %s", r.status, r.body)
	}
	return json.Unmarshal(r.body, v)
}

// names reports whether r is a 400 naming a field that contains field.
func (r reply) names(field string) bool {
	return r.status == http.StatusBadRequest && slices.ContainsFunc(r.fields, func(f string) bool { return strings.Contains(f, field) })
}

type verdict string

const (
	ok   verdict = "OK"
	fail verdict = "FAIL"
	skip verdict = "SKIP"
	info verdict = "INFO"
)

type result struct {
	point, probe, expected, got string
	verdict                     verdict
}

// prober runs the probes and keeps what they found.
type prober struct {
	c       *client
	results []result
	replies []reply // every error answered, for codesAgree

	run          string // random, to keep names unique between runs
	demoEmail    string
	demoPassword string
	demoToken    string
	token        string // the probe user's
	email        string // the probe user's
	password     string
	org          string // the probe user's: "organizations/..."
	demoOrg      string
	mailSvc      string // a mail service of the probe user's organization, or ""
	cleanNames   []string
}

func (p *prober) add(point, probe, expected string, v verdict, got string) {
	p.results = append(p.results, result{point, probe, expected, got, v})
}

// check records a probe whose verdict is pass.
func (p *prober) check(point, probe, expected string, r reply, pass bool) {
	if r.status >= 400 {
		p.replies = append(p.replies, r)
	}
	v := fail
	if pass {
		v = ok
	}
	p.add(point, probe, expected, v, r.String())
}

func verdictOf(pass bool) verdict {
	if pass {
		return ok
	}
	return fail
}

func (p *prober) print(w io.Writer) (failed int) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "point\tprobe\texpected\tgot\t")
	for _, r := range p.results {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.point, r.probe, r.expected, r.got, r.verdict)
		if r.verdict == fail {
			failed++
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d probes, %d failed. Probe user: %s\n", len(p.results), failed, p.email)
	return failed
}

func randomText(n int) string {
	return strings.ToLower(rand.Text()[:n])
}

// setUp signs in as the demo owner and signs a probe user up.
func (p *prober) setUp(email, password string) error {
	p.run = randomText(8)
	p.demoEmail, p.demoPassword = email, password
	var tok struct {
		AccessToken string `json:"accessToken"`
	}
	if err := p.c.json("POST", "/v1/auth:signIn", "", map[string]string{"email": email, "password": password}).decode(&tok); err != nil {
		return fmt.Errorf("sign in as %s (is the stack running? make run): %w", email, err)
	}
	p.demoToken = tok.AccessToken
	org, err := p.firstOrg(p.demoToken)
	if err != nil {
		return err
	}
	p.demoOrg = org

	p.email = "probe-" + p.run + "@example.com"
	p.password = "probe-" + rand.Text()
	r := p.c.json("POST", "/v1/auth:signUp", "", map[string]string{
		"email": p.email, "password": p.password, "displayName": "Edge Probe", "organizationDisplayName": "Edge Probe " + p.run,
	})
	if r.status != http.StatusOK {
		// Sign-ups from this address may be limited by an earlier run:
		// carry on as the demo owner.
		p.add("-", "sign up a probe user", "200", info, r.String()+"; probing as the demo owner")
		p.email, p.password, p.token, p.org = email, password, p.demoToken, p.demoOrg
	} else {
		if err := p.c.json("POST", "/v1/auth:signIn", "", map[string]string{"email": p.email, "password": p.password}).decode(&tok); err != nil {
			return fmt.Errorf("sign in as the probe user: %w", err)
		}
		p.token = tok.AccessToken
		if p.org, err = p.firstOrg(p.token); err != nil {
			return err
		}
	}

	var ms struct {
		Name string `json:"name"`
	}
	r = p.c.json("POST", "/v1/"+p.org+"/mailServices", p.token, map[string]string{"domain": "probe-" + p.run + ".example", "displayName": "Probe"})
	if r.decode(&ms) == nil {
		p.mailSvc = ms.Name
	} else {
		p.add("-", "attach a probe domain", "200", info, r.String())
	}
	return nil
}

func (p *prober) firstOrg(token string) (string, error) {
	var me struct {
		Memberships []struct {
			Name string `json:"name"`
		} `json:"memberships"`
	}
	if err := p.c.do("GET", "/v1/users/me", token, "", "", nil).decode(&me); err != nil {
		return "", fmt.Errorf("get the current user: %w", err)
	}
	if len(me.Memberships) == 0 {
		return "", fmt.Errorf("the user has no organization")
	}
	org, _, _ := strings.Cut(me.Memberships[0].Name, "/members/")
	return org, nil
}

// msPath is the probe's mail service, or a made-up one where the edge
// answers before any backend looks.
func (p *prober) msPath() string {
	if p.mailSvc != "" {
		return "/v1/" + p.mailSvc
	}
	return "/v1/" + p.org + "/mailServices/none"
}

// edge: point 6, what the REST edge takes.
func (p *prober) edge() {
	const pt = "6"
	nobody := `{"email":"nobody-` + p.run + `@example.com","password":"not the password"}`

	r := p.c.json("POST", p.msPath()+"/addresses", p.token, map[string]any{"address": map[string]string{"localPart": "probe-kind-" + p.run, "kind": "MAILBOX"}})
	p.check(pt, `address {"kind":"MAILBOX"}`, "400 naming address.kind", r, r.names("address.kind"))
	p.forget(r)

	r = p.c.json("POST", p.msPath()+"/addresses/none/devicePasswords", p.token, map[string]any{"deviceName": "iPhone", "protocols": []string{"PROTOCOL_IMAP"}})
	p.check(pt, `device password protocols ["PROTOCOL_IMAP"]`, "400 naming protocols", r, r.names("protocols"))

	r = p.c.do("POST", "/v1/auth:signIn", "", "application/json", `{"email":"nobody@example.com","password":"x","rememberMe":true}`, nil)
	p.check(pt, "unknown body field rememberMe", "400 naming rememberMe", r, r.names("rememberMe"))

	r = p.c.do("GET", "/v1/"+p.org+"/members?pageSise=5", p.token, "", "", nil)
	p.check(pt, "unknown query parameter pageSise", "400 naming pageSise", r, r.names("pageSise"))

	r = p.c.do("POST", "/v1/auth:signIn", "", "text/plain;charset=UTF-8", nobody, nil)
	p.check(pt, "JSON sent as text/plain", "415 code 3 UNSUPPORTED_MEDIA_TYPE", r, r.status == 415 && r.code == int(codes.InvalidArgument) && r.reason == "UNSUPPORTED_MEDIA_TYPE")

	r = p.c.do("POST", "/v1/auth:signIn", "", "application/x-www-form-urlencoded", nobody, nil)
	p.check(pt, "JSON sent as a form (curl -d)", "415", r, r.status == 415)

	r = p.c.do("POST", "/v1/auth:signIn", "", "", nobody, nil)
	p.check(pt, "JSON without Content-Type", "415", r, r.status == 415)

	r = p.c.do("POST", "/v1/auth:signIn", "", "application/json", nobody+`{"email":"other"}`, nil)
	p.check(pt, "text after the JSON document", "400", r, r.status == 400)

	r = p.c.do("POST", "/v1/auth:signIn", "", "application/json", `{"email":`, nil)
	p.check(pt, "truncated JSON", "400", r, r.status == 400)

	csv := base64.StdEncoding.EncodeToString([]byte("local_part\nprobe-json-" + p.run + "\n"))
	r = p.c.do("POST", p.msPath()+"/addresses:bulkCreate", p.token, "application/json", `{"csv":"`+csv+`"}`, nil)
	p.check(pt, `bulk upload as {"csv": base64}`, "taken (202), not 415", r, r.err == nil && r.status != 415 && r.status < 500)

	r = p.c.do("GET", "/v1/users/me", p.token, "", "", map[string]string{"Idempotency-Key": strings.Repeat("k", 129)})
	p.check(pt, "Idempotency-Key of 129 characters", "400 naming Idempotency-Key", r, r.names("Idempotency-Key"))

	r = p.c.do("GET", "/v1/no/such/route", "", "", "", nil)
	p.check(pt, "unknown route", "404 code 5", r, r.status == 404 && r.code == int(codes.NotFound))

	r = p.c.do("DELETE", "/v1/users/me", p.token, "", "", nil)
	p.check(pt, "wrong method", "405 code 12 METHOD_NOT_ALLOWED", r, r.status == 405 && r.code == int(codes.Unimplemented) && r.reason == "METHOD_NOT_ALLOWED")

	r = p.c.do("POST", "/v1/auth:signIn", "", "application/json", `{"email":"`+strings.Repeat("a", 5<<20)+`"}`, nil)
	p.check(pt, "5 MiB body", "413 code 3 REQUEST_TOO_LARGE", r, r.status == 413 && r.code == int(codes.InvalidArgument) && r.reason == "REQUEST_TOO_LARGE")
}

// forget removes an address a probe created by mistake.
func (p *prober) forget(r reply) {
	if r.status != http.StatusOK {
		return
	}
	var a struct {
		Address struct {
			Name string `json:"name"`
		} `json:"address"`
	}
	if json.Unmarshal(r.body, &a) == nil && a.Address.Name != "" {
		p.cleanNames = append(p.cleanNames, a.Address.Name)
	}
}

// controlCharacters: point 5, NUL and control characters in every text
// field are a 400 naming the field, never a 500.
func (p *prober) controlCharacters() {
	const pt = "5"
	bad := map[string]string{"NUL": "a\x00b", "ESC": "a\x1bb", "U+202E": "a\u202eb"}
	type probe struct {
		name, field string
		send        func(v string) reply
	}
	probes := []probe{
		{"sign-up displayName", "displayName", func(v string) reply {
			return p.c.json("POST", "/v1/auth:signUp", "", map[string]string{"email": "probe-nul-" + randomText(6) + "@example.com", "password": "probe-" + rand.Text(), "displayName": v, "organizationDisplayName": "Probe"})
		}},
		{"sign-up organizationDisplayName", "organizationDisplayName", func(v string) reply {
			return p.c.json("POST", "/v1/auth:signUp", "", map[string]string{"email": "probe-nul-" + randomText(6) + "@example.com", "password": "probe-" + rand.Text(), "displayName": "Probe", "organizationDisplayName": v})
		}},
		{"organization displayName", "displayName", func(v string) reply {
			return p.c.json("PATCH", "/v1/"+p.org+"?updateMask=displayName", p.token, map[string]string{"displayName": v})
		}},
		{"organization legalName", "legalName", func(v string) reply {
			return p.c.json("PATCH", "/v1/"+p.org+"?updateMask=legalName", p.token, map[string]string{"legalName": v})
		}},
		{"organization address", "address", func(v string) reply {
			return p.c.json("PATCH", "/v1/"+p.org+"?updateMask=address", p.token, map[string]string{"address": v})
		}},
		{"user displayName", "displayName", func(v string) reply {
			return p.c.json("PATCH", "/v1/users/me?updateMask=displayName", p.token, map[string]string{"displayName": v})
		}},
		{"member displayName", "displayName", func(v string) reply {
			return p.c.json("POST", "/v1/"+p.org+"/members", p.token, map[string]string{"email": "probe-m-" + randomText(6) + "@example.com", "displayName": v, "role": "ROLE_MEMBER"})
		}},
		{"API token displayName", "displayName", func(v string) reply {
			return p.c.json("POST", "/v1/"+p.org+"/apiTokens", p.token, map[string]string{"displayName": v, "role": "ROLE_MEMBER"})
		}},
		{"invitation purpose", "purpose", func(v string) reply {
			return p.c.json("POST", "/v1/"+p.org+"/invitations", p.token, map[string]string{"email": "probe-i-" + randomText(6) + "@example.com", "role": "ROLE_MEMBER", "purpose": v})
		}},
		{"mail service displayName", "displayName", func(v string) reply {
			return p.c.json("POST", "/v1/"+p.org+"/mailServices", p.token, map[string]string{"domain": "probe-" + randomText(6) + ".example", "displayName": v})
		}},
		{"signature displayName", "displayName", func(v string) reply {
			return p.c.json("POST", p.msPath()+"/signatures", p.token, map[string]string{"displayName": v, "template": "{{name}}"})
		}},
		{"signature template", "template", func(v string) reply {
			return p.c.json("POST", p.msPath()+"/signatures", p.token, map[string]string{"displayName": "Probe", "template": v})
		}},
		{"audit-log filter actor", "actor", func(v string) reply {
			return p.c.do("GET", "/v1/"+p.org+"/auditEntries?actor="+url.QueryEscape(v), p.token, "", "", nil)
		}},
	}
	for _, pr := range probes {
		for _, kind := range []string{"NUL", "ESC", "U+202E"} {
			// The bidi override matters where a name lands in an email
			// (point 4): the names of people and organizations.
			if kind == "U+202E" && !strings.Contains(pr.name, "displayName") && !strings.Contains(pr.name, "organization") {
				continue
			}
			r := pr.send(bad[kind])
			p.check(pt, fmt.Sprintf("%s with %s", pr.name, kind), "400 naming "+pr.field, r, r.names(pr.field))
		}
	}
}

// limits: point 4, what sends mail or grows is capped.
func (p *prober) limits() {
	const pt = "4"
	aliases := make([]string, 51)
	for i := range aliases {
		aliases[i] = fmt.Sprintf("probe-alias-%d", i)
	}
	r := p.c.json("POST", p.msPath()+"/addresses", p.token, map[string]any{"address": map[string]any{"localPart": "probe-a-" + p.run, "kind": "ADDRESS_KIND_MAILBOX", "aliases": aliases}})
	p.check(pt, "address with 51 aliases", "400 naming address.aliases", r, r.names("aliases"))
	p.forget(r)

	// One invitation, resent 20 times.
	var inv struct {
		Invitation struct {
			Name string `json:"name"`
		} `json:"invitation"`
	}
	r = p.c.json("POST", "/v1/"+p.org+"/invitations", p.token, map[string]string{"email": "probe-r-" + p.run + "@example.com", "role": "ROLE_MEMBER"})
	if err := r.decode(&inv); err != nil || inv.Invitation.Name == "" {
		p.add(pt, "20 resends of one invitation", "429 before the 20th", skip, "could not invite: "+r.String())
	} else {
		p.flood(pt, "20 resends of one invitation", 20, func(int) reply {
			return p.c.json("POST", "/v1/"+inv.Invitation.Name+":resend", p.token, map[string]any{})
		})
	}
	p.flood(pt, "201 invitations in a row (200 per organization a day)", 201, func(i int) reply {
		return p.c.json("POST", "/v1/"+p.org+"/invitations", p.token, map[string]string{"email": fmt.Sprintf("probe-f%d-%s@example.com", i, p.run), "role": "ROLE_MEMBER"})
	})
	p.flood(pt, "15 wrong passwords to users/me:delete", 15, func(i int) reply {
		return p.c.json("POST", "/v1/users/me:delete", p.token, map[string]string{"password": fmt.Sprintf("wrong password %d", i)})
	})
	if p.mailSvc == "" {
		p.add(pt, "21 bulk uploads in a row (20 an hour)", "429 before the 21th", skip, "no mail service")
	} else {
		p.flood(pt, "21 bulk uploads in a row (20 an hour)", 21, func(i int) reply {
			return p.c.do("POST", "/v1/"+p.mailSvc+"/addresses:bulkCreate", p.token, "text/csv", fmt.Sprintf("local_part\nprobe-b%d-%s\n", i, p.run), nil)
		})
	}

}

// lockout: point 4, the per-email sign-in limit. It locks the probe user
// out from here for a while, so it runs last.
func (p *prober) lockout() {
	// Brute force from here is refused; whether the owner still gets in
	// from elsewhere cannot be seen from one address.
	var n int
	var last reply
	for n = 1; n <= 12; n++ {
		if last = p.c.json("POST", "/v1/auth:signIn", "", map[string]string{"email": p.email, "password": "wrong password"}); last.status == 429 {
			break
		}
	}
	right := p.c.json("POST", "/v1/auth:signIn", "", map[string]string{"email": p.email, "password": p.password})
	p.add("4", "12 wrong sign-ins, then the right password", "brute force refused (429); the owner not locked out from elsewhere", info,
		fmt.Sprintf("wrong: %s after %d; right: %s", last.String(), n, right.String()))
}

// flood sends up to n requests and reports the first that is refused with
// 429 (or RESOURCE_EXHAUSTED).
func (p *prober) flood(pt, name string, n int, send func(i int) reply) {
	expected := fmt.Sprintf("429 by the %dth", n)
	codes := map[int]int{}
	for i := range n {
		r := send(i)
		if r.err != nil {
			p.add(pt, name, expected, fail, r.String())
			return
		}
		if r.status == http.StatusTooManyRequests {
			p.replies = append(p.replies, r)
			p.add(pt, name, expected, ok, fmt.Sprintf("429 after %d (Retry-After %q)", i, r.header.Get("Retry-After")))
			return
		}
		codes[r.status]++
	}
	p.add(pt, name, expected, fail, fmt.Sprintf("no 429 in %d: %v", n, codes))
}

// unauthenticated: point 3, the routes anyone may call.
func (p *prober) unauthenticated() {
	const pt = "3"
	garbage := func() reply {
		return p.c.json("POST", "/v1/auth:setInitialPassword", "", map[string]string{"token": "garbage-" + rand.Text(), "password": "probe password " + rand.Text()})
	}

	// A garbage token is refused before any password is hashed, so that
	// 32 senders cannot crowd a sign-in out.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	stop := make(chan struct{})
	for range 32 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := garbage()
				mu.Lock()
				statuses[r.status]++
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	r := p.c.json("POST", "/v1/auth:signIn", "", map[string]string{"email": p.demoEmail, "password": p.demoPassword})
	took := time.Since(start)
	close(stop)
	wg.Wait()
	p.add(pt, "sign-in while 32 clients send garbage setup tokens", "200", verdictOf(r.status == 200),
		fmt.Sprintf("%s in %s; the garbage got %v", r, took.Round(time.Millisecond), statuses))

	p.flood(pt, "setInitialPassword with garbage tokens", 101, func(int) reply { return garbage() })
	p.flood(pt, "invitation lookups with garbage tokens", 101, func(int) reply {
		return p.c.do("GET", "/v1/invitations:lookup?token=garbage-"+rand.Text(), "", "", "", nil)
	})
	p.flood(pt, "invitation accepts with garbage tokens", 101, func(int) reply {
		return p.c.json("POST", "/v1/invitations:accept", p.token, map[string]string{"token": "garbage-" + rand.Text()})
	})
	p.flood(pt, "sign-ups of a taken email", 101, func(i int) reply {
		// A valid request (an invalid one is refused before any limit and
		// costs nothing), of a taken email, so that no hash runs.
		return p.c.json("POST", "/v1/auth:signUp", "", map[string]string{"email": p.email, "password": "probe password " + p.run,
			"displayName": "Probe", "organizationDisplayName": "Probe"})
	})
}

// codesAgree: every error's body code is the code of its HTTP status, or
// one of the documented exceptions (gateway/README.md).
func (p *prober) codesAgree() {
	exceptions := map[int]codes.Code{405: codes.Unimplemented, 413: codes.InvalidArgument, 415: codes.InvalidArgument}
	var bad []string
	for _, r := range p.replies {
		if r.err != nil || r.status < 400 {
			continue
		}
		if c, ok := exceptions[r.status]; ok && codes.Code(r.code) == c {
			continue
		}
		if runtime.HTTPStatusFromCode(codes.Code(r.code)) != r.status {
			bad = append(bad, fmt.Sprintf("%d with code %d", r.status, r.code))
		}
	}
	got := fmt.Sprintf("%d errors agree", len(p.replies))
	if len(bad) > 0 {
		got = strings.Join(slices.Compact(slices.Sorted(slices.Values(bad))), "; ")
	}
	p.add("6", "every error's code agrees with its HTTP status", "all", verdictOf(len(bad) == 0), got)
}

// cleanUp deletes the addresses the probes created.
func (p *prober) cleanUp() {
	for _, name := range p.cleanNames {
		p.c.do("DELETE", "/v1/"+name, p.token, "", "", nil)
	}
}
