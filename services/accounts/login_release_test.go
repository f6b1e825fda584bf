package accounts_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	mailboxesv1 "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
	"github.com/mailplane/mailplane/services/accounts"
	internal "github.com/mailplane/mailplane/services/accounts/internal"
	"github.com/mailplane/mailplane/services/mailboxes/mailboxesevents"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// smsProvider runs the notice sender with an SMS provider on loopback that
// speaks the HTTP provider's protocol, and returns what it received.
func (e *env) smsProvider(t *testing.T) func() []map[string]string {
	t.Helper()
	var mu sync.Mutex
	var got []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		if r.Header.Get("Authorization") != "Bearer sms-key" || json.NewDecoder(r.Body).Decode(&m) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(srv.Close)
	cfg := e.cfg
	cfg.SMSURL, cfg.SMSKey = srv.URL, "sms-key"
	run, err := accounts.NoticeSender(e.pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return func() []map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]string(nil), got...)
	}
}

func TestLoginRelease(t *testing.T) {
	e := start(t)
	sms := e.smsProvider(t)
	ctx := context.Background()
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	vol, err := e.auth.SignUp(ctx, &accountsv1.SignUpRequest{Email: "volunteer@example.org", Password: password, DisplayName: "Véronique Dubois",
		OrganizationDisplayName: "Her own", Language: "fr", PhoneNumber: "+41791234567"})
	if err != nil {
		t.Fatal(err)
	}
	nophone := e.signUp(t, "nophone@example.org")
	e.join(t, org, vol.User, "member")
	e.join(t, org, nophone.User, "member")
	asOwner := e.as(t, "owner@example.com")
	before, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "volunteer@example.org", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	memberName := func(u *accountsv1.User) string { return org + "/members/" + strings.TrimPrefix(u.Name, "users/") }
	release := func(ctx context.Context, u *accountsv1.User, confirm bool) (*accountsv1.ReleaseMemberLoginResponse, error) {
		return e.orgs.ReleaseMemberLogin(ctx, &accountsv1.ReleaseMemberLoginRequest{Name: memberName(u), Confirm: confirm})
	}

	_, err = release(e.as(t, "nophone@example.org"), vol.User, true)
	wantCode(t, err, codes.PermissionDenied)
	_, err = release(asOwner, vol.User, false)
	if st := wantCode(t, err, codes.InvalidArgument); fieldsOf(st)[0] != "confirm" {
		t.Errorf("violation names %v", fieldsOf(st))
	}
	_, err = release(asOwner, nophone.User, true)
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "NO_PHONE_NUMBER" {
		t.Errorf("no phone: reason %q", reason(err))
	}

	// Only a login on one of the organization's mail domains is its to
	// release: the mailboxes service's events say which those are.
	host := func(subject, org, domain string) {
		t.Helper()
		ev := &mailboxesv1.MailServiceChanged{MailService: &mailboxesv1.MailService{Name: org + "/mailServices/" + uuid.NewString(), Domain: domain}}
		if err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error { return internal.ApplyMailServiceChanged(ctx, tx, subject, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	wantNotHosted := func(when string) {
		t.Helper()
		_, err := release(asOwner, vol.User, true)
		if wantCode(t, err, codes.FailedPrecondition); reason(err) != "LOGIN_NOT_HOSTED" {
			t.Errorf("%s: reason %q", when, reason(err))
		}
	}
	wantNotHosted("no mail domain") // each refusal is audited as failed, like the others
	host(mailboxesevents.MailServiceCreated, vol.Organization.Name, "example.org")
	wantNotHosted("hosted by her own organization")
	host(mailboxesevents.MailServiceCreated, org, "example.org")
	host(mailboxesevents.MailServicePurged, org, "example.org")
	wantNotHosted("purged")
	host(mailboxesevents.MailServiceCreated, org, "example.org")

	resp, err := release(asOwner, vol.User, true)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ReleasedEmail != "volunteer@example.org" {
		t.Errorf("released %q", resp.ReleasedEmail)
	}
	_, err = release(asOwner, vol.User, true)
	wantCode(t, err, codes.FailedPrecondition)

	// The SMS, in her language, carries the generated identifier.
	var text string
	deadline := time.Now().Add(10 * time.Second)
	for text == "" {
		if got := sms(); len(got) > 0 {
			if got[0]["to"] != "+41791234567" {
				t.Errorf("SMS to %q", got[0]["to"])
			}
			text = got[0]["text"]
		}
		if time.Now().After(deadline) {
			t.Fatal("no SMS")
		}
		time.Sleep(20 * time.Millisecond)
	}
	login := regexp.MustCompile(`identifiant (vd\d{4}) `).FindStringSubmatch(text)
	if login == nil {
		t.Fatalf("SMS %q does not give an identifier vd<4 digits> in French", text)
	}

	// Her old email and sessions no longer work; the identifier does, for
	// choosing a new login email only.
	_, err = e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "volunteer@example.org", Password: password})
	wantCode(t, err, codes.Unauthenticated)
	_, err = e.auth.Refresh(ctx, &accountsv1.RefreshRequest{RefreshToken: before.RefreshToken})
	wantCode(t, err, codes.Unauthenticated)
	pending, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Login: strings.ToUpper(login[1]), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if !pending.LoginEmailRequired {
		t.Error("sign-in did not say a login email is required")
	}
	asPending := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+pending.AccessToken)
	_, err = e.orgs.GetOrganization(asPending, &accountsv1.GetOrganizationRequest{Name: org})
	if wantCode(t, err, codes.PermissionDenied); reason(err) != "LOGIN_EMAIL_REQUIRED" {
		t.Errorf("pending login: reason %q", reason(err))
	}
	me, err := e.users.GetCurrentUser(asPending, &accountsv1.GetCurrentUserRequest{})
	if err != nil || !me.User.LoginEmailRequired || me.User.Login != login[1] || me.User.Email != "" {
		t.Errorf("pending user = %v, %v", me, err)
	}
	_, err = e.users.SetLoginEmail(asPending, &accountsv1.SetLoginEmailRequest{Email: "owner@example.com"})
	wantCode(t, err, codes.AlreadyExists)
	set, err := e.users.SetLoginEmail(asPending, &accountsv1.SetLoginEmailRequest{Email: "veronique@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	asNew := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+set.AccessToken)
	if _, err := e.orgs.GetOrganization(asNew, &accountsv1.GetOrganizationRequest{Name: org}); err != nil {
		t.Errorf("after choosing a login email: %v", err)
	}
	if _, err := e.auth.SignIn(ctx, &accountsv1.SignInRequest{Email: "veronique@example.net", Password: password}); err != nil {
		t.Errorf("sign in with the new login email, same password: %v", err)
	}
	// The released address is free for someone else.
	e.signUp(t, "volunteer@example.org")

	log := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "accounts.login.release"})
	outcomes := map[accountsv1.Outcome]int{}
	for _, l := range log {
		outcomes[l.Outcome]++
	}
	if outcomes[accountsv1.Outcome_OUTCOME_SUCCEEDED] != 1 || outcomes[accountsv1.Outcome_OUTCOME_DENIED] != 1 || outcomes[accountsv1.Outcome_OUTCOME_FAILED] != 5 {
		t.Errorf("audit of releases: %v", log)
	}
}

func TestUpdateCurrentUser(t *testing.T) {
	e := start(t)
	e.signUp(t, "me@example.com")
	as := e.as(t, "me@example.com")
	_, err := e.users.UpdateCurrentUser(as, &accountsv1.UpdateCurrentUserRequest{User: &accountsv1.User{PhoneNumber: "0791234567"}})
	if st := wantCode(t, err, codes.InvalidArgument); fieldsOf(st)[0] != "user.phoneNumber" {
		t.Errorf("violation names %v", fieldsOf(st))
	}
	_, err = e.users.UpdateCurrentUser(as, &accountsv1.UpdateCurrentUserRequest{User: &accountsv1.User{Language: "xx"}})
	wantCode(t, err, codes.InvalidArgument)
	resp, err := e.users.UpdateCurrentUser(as, &accountsv1.UpdateCurrentUserRequest{User: &accountsv1.User{PhoneNumber: "+41791234567", Language: "it"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.User.PhoneNumber != "+41791234567" || resp.User.Language != "it" || resp.User.DisplayName != "Someone" {
		t.Errorf("user = %v", resp.User)
	}
}
