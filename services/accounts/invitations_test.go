package accounts_test

import (
	"context"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts"
	"github.com/mailplane/mailplane/services/platform/smtptest"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mailer runs the notice sender against a real SMTP server on loopback.
func (e *env) mailer(t *testing.T) *smtptest.Server {
	t.Helper()
	srv := smtptest.Start(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.SMTPAddr, cfg.SMTPFrom, cfg.SMTPUsername, cfg.SMTPPassword, cfg.SMTPCAFile = srv.Addr, "Mailplane <no-reply@mailplane.test>", srv.Username, srv.Password, ca
	run, err := accounts.NoticeSender(e.pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv
}

// mailTo waits for the n-th message to rcpt and returns its subject and
// decoded body.
func mailTo(t *testing.T, srv *smtptest.Server, rcpt string, n int) (string, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []smtptest.Message
		for _, m := range srv.Messages() {
			if len(m.To) == 1 && m.To[0] == rcpt {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			msg := got[n-1].Parsed(t)
			subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
			body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
			return subject, string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message %d to %s arrived", n, rcpt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

func tokenOf(link string) string { return link[strings.LastIndex(link, "/")+1:] }

func TestInvitations(t *testing.T) {
	e := start(t)
	mail := e.mailer(t)
	ctx := context.Background()
	owner, err := e.auth.SignUp(ctx, &accountsv1.SignUpRequest{Email: "owner@example.com", Password: password, DisplayName: "Olivia Owner", OrganizationDisplayName: "Acme SA", Language: "fr"})
	if err != nil {
		t.Fatal(err)
	}
	org := owner.Organization.Name
	member := e.signUp(t, "member@example.com")
	e.join(t, org, member.User, "member")
	asOwner, asMember := e.as(t, "owner@example.com"), e.as(t, "member@example.com")
	invite := func(ctx context.Context, email string, role accountsv1.Role) (*accountsv1.CreateInvitationResponse, error) {
		return e.invites.CreateInvitation(ctx, &accountsv1.CreateInvitationRequest{Parent: org, Invitation: &accountsv1.Invitation{Email: email, Role: role, Purpose: "use sales@acme.test"}})
	}

	_, err = invite(asMember, "new@example.com", accountsv1.Role_ROLE_MEMBER)
	wantCode(t, err, codes.PermissionDenied)
	_, err = invite(asOwner, "not an email", accountsv1.Role_ROLE_MEMBER)
	if st := wantCode(t, err, codes.InvalidArgument); fieldsOf(st)[0] != "invitation.email" {
		t.Errorf("violation names %v", fieldsOf(st))
	}
	_, err = invite(asOwner, "member@example.com", accountsv1.Role_ROLE_MEMBER)
	wantCode(t, err, codes.AlreadyExists)

	inv, err := invite(asOwner, "New@Example.com", accountsv1.Role_ROLE_ADMIN)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(inv.Link, "https://app.mailplane.test/invitations/") || inv.Invitation.State != accountsv1.InvitationState_INVITATION_STATE_PENDING {
		t.Fatalf("invitation %v", inv)
	}
	if got := inv.Invitation.ExpireTime.AsTime().Sub(inv.Invitation.CreateTime.AsTime()); got != 30*24*time.Hour {
		t.Errorf("valid for %v, want 30 days", got)
	}
	_, err = invite(asOwner, "new@example.com", accountsv1.Role_ROLE_ADMIN)
	wantCode(t, err, codes.AlreadyExists)

	// The invitee has no account: the email is in the inviter's language.
	subject, body := mailTo(t, mail, "new@example.com", 1)
	if subject != "Olivia Owner vous invite à rejoindre Acme SA sur Mailplane" {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{inv.Link, "administrateur", "use sales@acme.test"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	// Another organization's owner learns nothing of this one's invitations.
	e.signUp(t, "stranger@example.com")
	asStranger := e.as(t, "stranger@example.com")
	_, err = e.invites.ResendInvitation(asStranger, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name})
	wantCode(t, err, codes.NotFound)
	_, err = e.invites.DeleteInvitation(asStranger, &accountsv1.DeleteInvitationRequest{Name: inv.Invitation.Name})
	wantCode(t, err, codes.NotFound)
	_, err = e.invites.ListInvitations(asStranger, &accountsv1.ListInvitationsRequest{Parent: org})
	wantCode(t, err, codes.NotFound)

	list, err := e.invites.ListInvitations(asOwner, &accountsv1.ListInvitationsRequest{Parent: org})
	if err != nil || len(list.Invitations) != 1 || list.Invitations[0].Email != "new@example.com" {
		t.Fatalf("list = %v, %v", list, err)
	}

	// Resend: a new link, emailed again; the old one is dead.
	re, err := e.invites.ResendInvitation(asOwner, &accountsv1.ResendInvitationRequest{Name: inv.Invitation.Name})
	if err != nil {
		t.Fatal(err)
	}
	if re.Link == inv.Link {
		t.Error("resend kept the link")
	}
	if _, body := mailTo(t, mail, "new@example.com", 2); !strings.Contains(body, re.Link) {
		t.Errorf("resent mail lacks the new link:\n%s", body)
	}
	_, err = e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: tokenOf(inv.Link)})
	wantCode(t, err, codes.NotFound)

	look, err := e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: tokenOf(re.Link)})
	if err != nil {
		t.Fatal(err)
	}
	if look.Email != "new@example.com" || look.OrganizationDisplayName != "Acme SA" || look.AccountExists || look.Role != accountsv1.Role_ROLE_ADMIN {
		t.Errorf("lookup = %v", look)
	}

	// Someone else cannot use the link; the invitee signs up and joins.
	_, err = e.invites.AcceptInvitation(asMember, &accountsv1.AcceptInvitationRequest{Token: tokenOf(re.Link)})
	wantCode(t, err, codes.PermissionDenied)
	e.signUp(t, "new@example.com")
	accepted, err := e.invites.AcceptInvitation(e.as(t, "new@example.com"), &accountsv1.AcceptInvitationRequest{Token: tokenOf(re.Link)})
	if err != nil {
		t.Fatal(err)
	}
	if accepted.Member.Role != accountsv1.Role_ROLE_ADMIN || !strings.HasPrefix(accepted.Member.Name, org+"/members/") {
		t.Errorf("member %v", accepted.Member)
	}
	_, err = e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: tokenOf(re.Link)})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "INVITATION_USED" {
		t.Errorf("used link: reason %q", reason(err))
	}
	var events int
	e.pool.QueryRow(ctx, "SELECT count(*) FROM outbox WHERE subject = 'accounts.invitation.accepted'").Scan(&events)
	if events != 1 {
		t.Errorf("%d invitation.accepted events, want 1", events)
	}

	// Revoked and expired links say so.
	rev, err := invite(asOwner, "gone@example.com", accountsv1.Role_ROLE_MEMBER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.invites.DeleteInvitation(asOwner, &accountsv1.DeleteInvitationRequest{Name: rev.Invitation.Name}); err != nil {
		t.Fatal(err)
	}
	_, err = e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: tokenOf(rev.Link)})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "INVITATION_REVOKED" {
		t.Errorf("revoked link: reason %q", reason(err))
	}
	old, err := invite(asOwner, "late@example.com", accountsv1.Role_ROLE_MEMBER)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "UPDATE invitations SET expire_time = now() - interval '1 minute' WHERE email = 'late@example.com'"); err != nil {
		t.Fatal(err)
	}
	_, err = e.invites.LookupInvitation(ctx, &accountsv1.LookupInvitationRequest{Token: tokenOf(old.Link)})
	if wantCode(t, err, codes.FailedPrecondition); reason(err) != "INVITATION_EXPIRED" {
		t.Errorf("expired link: reason %q", reason(err))
	}
	if _, err := invite(asOwner, "late@example.com", accountsv1.Role_ROLE_MEMBER); err != nil {
		t.Errorf("inviting again after expiry: %v", err)
	}

	log := e.auditLog(t, asOwner, &accountsv1.ListAuditEntriesRequest{Parent: org, Action: "accounts.invitation.accept"})
	// Newest first: the acceptance, then the other member's refused try.
	if len(log) != 2 || log[0].Actor != "new@example.com" || log[0].Outcome != accountsv1.Outcome_OUTCOME_SUCCEEDED ||
		log[1].Actor != "member@example.com" || log[1].Outcome != accountsv1.Outcome_OUTCOME_DENIED {
		t.Errorf("audit of the acceptance: %v", log)
	}
}

func TestNoticeDeadLetters(t *testing.T) {
	e := start(t)
	mail := e.mailer(t)
	mail.FailNext(3)
	owner := e.signUp(t, "owner@example.com")
	org := owner.Organization.Name
	asOwner := e.as(t, "owner@example.com")
	if _, err := e.invites.CreateInvitation(asOwner, &accountsv1.CreateInvitationRequest{Parent: org, Invitation: &accountsv1.Invitation{Email: "x@example.com", Role: accountsv1.Role_ROLE_MEMBER}}); err != nil {
		t.Fatal(err)
	}
	// Two attempts (the test's limit) fail: the notice is dead.
	var dead *accountsv1.Notice
	deadline := time.Now().Add(10 * time.Second)
	for dead == nil {
		resp, err := e.notices.ListDeadNotices(asOwner, &accountsv1.ListDeadNoticesRequest{Parent: org})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Notices) > 0 {
			dead = resp.Notices[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("notice never died")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if dead.Attempts != 2 || dead.Recipient != "x@example.com" || !strings.Contains(dead.LastError, "try again later") {
		t.Errorf("dead notice %v", dead)
	}
	if len(mail.Messages()) != 0 {
		t.Fatal("a failed delivery was kept")
	}
	// Retried, it fails once more, then goes out, and its link is erased.
	if _, err := e.notices.RetryNotice(asOwner, &accountsv1.RetryNoticeRequest{Name: dead.Name}); err != nil {
		t.Fatal(err)
	}
	mailTo(t, mail, "x@example.com", 1)
	var params string
	waitFor := time.Now().Add(5 * time.Second)
	for params != "{}" && time.Now().Before(waitFor) {
		e.pool.QueryRow(context.Background(), "SELECT params::text FROM notices").Scan(&params)
		time.Sleep(10 * time.Millisecond)
	}
	if params != "{}" {
		t.Errorf("sent notice still holds its params: %s", params)
	}
	_, err := e.notices.RetryNotice(asOwner, &accountsv1.RetryNoticeRequest{Name: dead.Name})
	wantCode(t, err, codes.NotFound)
}

// noticeJob is the args of the River job delivering a notice, as the test
// reads them.
type noticeJob struct {
	ID string `json:"id"`
}

func (noticeJob) Kind() string { return "notice" }

// TestNoticeQueuedWithChange: an invitation's email is queued in the
// invitation's transaction, as a River job naming the notice, with the
// configured attempts.
func TestNoticeQueuedWithChange(t *testing.T) {
	e := start(t)
	owner := e.signUp(t, "owner@example.com")
	asOwner := e.as(t, "owner@example.com")
	if _, err := e.invites.CreateInvitation(asOwner, &accountsv1.CreateInvitationRequest{Parent: owner.Organization.Name,
		Invitation: &accountsv1.Invitation{Email: "new@example.com", Role: accountsv1.Role_ROLE_MEMBER}}); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := e.pool.QueryRow(context.Background(), "SELECT id::text FROM notices WHERE recipient = 'new@example.com'").Scan(&id); err != nil {
		t.Fatal(err)
	}
	job := rivertest.RequireInserted(context.Background(), t, riverpgxv5.New(e.pool), &noticeJob{}, &rivertest.RequireInsertedOpts{
		MaxAttempts: e.cfg.NoticeAttempts, Schema: accounts.Schema, State: rivertype.JobStateAvailable})
	if job.Args.ID != id {
		t.Errorf("job for notice %s, want %s", job.Args.ID, id)
	}
}
