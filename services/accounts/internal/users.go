package accounts

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/accounts/accountsevents"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/outbox"
	"github.com/mailplane/mailplane/services/platform/pg"
	"golang.org/x/text/unicode/norm"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	updateUser = `
UPDATE users SET display_name = $2, phone_number = $3, language = $4, update_time = now() WHERE id = $1`

	setLogin = `UPDATE users SET email = $2, login_pending = $3, update_time = now() WHERE id = $1`

	lockUser = `
SELECT id, email, display_name, password_hash, create_time, language, phone_number, login_pending
FROM users WHERE id = $1 FOR UPDATE`
)

// GetCurrentUser returns the caller and their memberships.
func (s *Server) GetCurrentUser(ctx context.Context, _ *accountsv1.GetCurrentUserRequest) (*accountsv1.GetCurrentUserResponse, error) {
	_, id, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if errs.Is(err, errs.NotFound) {
		// A valid token for a deleted user.
		return nil, errs.E(errs.Unauthenticated, "the account no longer exists")
	}
	if err != nil {
		return nil, err
	}
	ms, err := s.store.MembershipsOfUser(ctx, id)
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.GetCurrentUserResponse{User: userProto(u)}
	for _, m := range ms {
		resp.Memberships = append(resp.Memberships, memberProto(m))
	}
	return resp, nil
}

func userProto(u *User) *accountsv1.User {
	p := &accountsv1.User{Name: userName(u.ID), Login: u.Email, DisplayName: u.DisplayName, CreateTime: timestamppb.New(u.CreateTime),
		Language: u.Language, PhoneNumber: u.PhoneNumber, LoginEmailRequired: u.LoginPending}
	if strings.Contains(u.Email, "@") {
		p.Email = u.Email
	}
	return p
}

// UpdateCurrentUser changes the caller's display name, phone or language.
func (s *Server) UpdateCurrentUser(ctx context.Context, req *accountsv1.UpdateCurrentUserRequest) (*accountsv1.UpdateCurrentUserResponse, error) {
	_, id, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetUser()
	fields := map[string]string{
		"display_name": strings.TrimSpace(in.GetDisplayName()),
		"phone_number": in.GetPhoneNumber(),
		"language":     in.GetLanguage(),
	}
	set, err := masked(req.GetUpdateMask(), in, fields)
	if err != nil {
		return nil, err
	}
	if v, ok := set["display_name"]; ok && v == "" {
		return nil, errs.Field("user.displayName", "must not be blank")
	}
	if v, ok := set["language"]; ok && supportedLanguage(v) != v {
		return nil, errs.Field("user.language", "must be one of en, fr, de, it, es")
	}
	var u *User
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, lockUser, id)
		var err error
		if u, err = pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[User]); err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		if v, ok := set["display_name"]; ok {
			u.DisplayName = v
		}
		if v, ok := set["phone_number"]; ok {
			u.PhoneNumber = v
		}
		if v, ok := set["language"]; ok {
			u.Language = v
		}
		_, err = tx.Exec(ctx, updateUser, id, u.DisplayName, u.PhoneNumber, u.Language)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &accountsv1.UpdateCurrentUserResponse{User: userProto(u)}, nil
}

// SetLoginEmail makes email the caller's login, ending a pending login.
func (s *Server) SetLoginEmail(ctx context.Context, req *accountsv1.SetLoginEmailRequest) (*accountsv1.SetLoginEmailResponse, error) {
	_, id, err := access.PersonFrom(ctx)
	if err != nil {
		return nil, err
	}
	email := normalizeEmail(req.GetEmail())
	var u *User
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, setLogin, id, email, false); err != nil {
			if pg.IsUniqueViolation(err, "users_email_key") {
				return errEmailTaken
			}
			return fmt.Errorf("set login: %w", err)
		}
		rows, _ := tx.Query(ctx, lockUser, id)
		u, err = pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[User])
		return err
	})
	if err != nil {
		return nil, err
	}
	// The new token stays in the caller's session.
	p, _ := auth.FromContext(ctx)
	access, err := s.accessToken(u, p.SessionID)
	if err != nil {
		return nil, err
	}
	return &accountsv1.SetLoginEmailResponse{User: userProto(u), AccessToken: access, ExpiresIn: int32(s.signer.TTL().Seconds())}, nil
}

// ReleaseMemberLogin frees a member's login email: they get a generated
// login by SMS and must choose a new login email at their next sign-in.
func (s *Server) ReleaseMemberLogin(ctx context.Context, req *accountsv1.ReleaseMemberLoginRequest) (*accountsv1.ReleaseMemberLoginResponse, error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return nil, err
	}
	org, target, err := parseMemberName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	_, role, _, err := s.access(ctx, "name", organizationName(org))
	if err != nil {
		return nil, err
	}
	if !role.CanManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can release a login")
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.login.release", req.GetName(), nil), err)
		return nil, err
	}
	if !req.GetConfirm() {
		return nil, errs.Field("confirm", "must be true: releasing a login is confirmed explicitly")
	}
	var m *Membership
	var released string
	err = pg.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, lockUser, target)
		u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByPos[User])
		if err != nil {
			return errMemberNotFound
		}
		tm, err := membership(ctx, tx, org, target)
		if err != nil {
			return err
		}
		// An admin who could release an owner's login could then create a
		// member with that email and hold its setup link: the owner's
		// account, taken over.
		if tm.Role == access.Owner && role != access.Owner {
			return errs.E(errs.PermissionDenied, "only an owner can release an owner's login")
		}
		switch {
		case !strings.Contains(u.Email, "@"):
			return errs.E(errs.FailedPrecondition, "this member's login is not an email; there is nothing to release").WithReason("LOGIN_NOT_EMAIL")
		case u.PhoneNumber == "":
			return errs.E(errs.FailedPrecondition, "this member has no phone number, so they could not learn their new login; ask them to add one first").WithReason("NO_PHONE_NUMBER")
		}
		// Only an address the organization hosts is its to take back; a
		// member's own email elsewhere is not.
		if hosted, err := hostsEmail(ctx, tx, org, u.Email); err != nil {
			return fmt.Errorf("release login: %w", err)
		} else if !hosted {
			return errs.E(errs.FailedPrecondition, "%s is not on one of the organization's mail domains; only a login the organization hosts can be released", u.Email).WithReason("LOGIN_NOT_HOSTED")
		}
		login, err := uniqueLogin(ctx, tx, u.DisplayName)
		if err != nil {
			return err
		}
		released = u.Email
		if _, err := tx.Exec(ctx, setLogin, target, login, true); err != nil {
			return fmt.Errorf("release login: %w", err)
		}
		if err := revokeSessionsOf(ctx, tx, target, s.sessionsEnd(), accountsv1.RevocationReason_REVOCATION_REASON_LOGIN_RELEASED); err != nil {
			return fmt.Errorf("release login: %w", err)
		}
		if err := s.enqueueNotice(ctx, tx, &Notice{ID: uuid.Must(uuid.NewV7()), OrganizationID: &org, Channel: "sms", Recipient: u.PhoneNumber,
			Language: supportedLanguage(u.Language), Template: "login-released", Params: map[string]string{"Login": login}}); err != nil {
			return err
		}
		if m, err = membership(ctx, tx, org, target); err != nil {
			return err
		}
		if err := insertAudit(ctx, tx, auditEntry(c, org, "accounts.login.release", req.GetName(), map[string]string{"releasedEmail": released})); err != nil {
			return err
		}
		return outbox.Write(ctx, tx, accountsevents.UserLoginReleased, &accountsv1.LoginReleased{User: userName(target), ReleasedEmail: released, Actor: c.Name()})
	})
	if err != nil {
		s.auditRefusal(ctx, auditEntry(c, org, "accounts.login.release", req.GetName(), nil), err)
		return nil, err
	}
	return &accountsv1.ReleaseMemberLoginResponse{Member: memberProto(m), ReleasedEmail: released}, nil
}

// uniqueLogin generates a login identifier from a person's initials and four
// digits ("jd4821") that no one has.
func uniqueLogin(ctx context.Context, tx pgx.Tx, displayName string) (string, error) {
	prefix := initials(displayName)
	for range 20 {
		n, err := rand.Int(rand.Reader, big.NewInt(10000))
		if err != nil {
			return "", err
		}
		login := fmt.Sprintf("%s%04d", prefix, n.Int64())
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM users WHERE email = $1)", login).Scan(&taken); err != nil {
			return "", err
		}
		if !taken {
			return login, nil
		}
	}
	return "", fmt.Errorf("no free login identifier for %q", prefix)
}

// initials returns the lower-case ASCII initials of up to the first two
// words of name ("Zoë Müller" -> "zm"), or "u" when it has none.
func initials(name string) string {
	var b strings.Builder
	for _, w := range strings.Fields(name) {
		for _, r := range norm.NFD.String(w) {
			if r < unicode.MaxASCII && unicode.IsLetter(r) {
				b.WriteRune(unicode.ToLower(r))
				break
			}
		}
		if b.Len() == 2 {
			break
		}
	}
	if b.Len() == 0 {
		return "u"
	}
	return b.String()
}
