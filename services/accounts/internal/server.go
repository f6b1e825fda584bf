package accounts

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Limits bound what a client may ask for: sign-in attempts and calls to
// unauthenticated routes within Window, invitation notices per day.
type Limits struct {
	// PerEmail bounds sign-in attempts for one email from one client
	// address; PerEmailAll, for one email from all addresses together,
	// except from addresses the user signed in from before.
	PerEmail    int
	PerEmailAll int
	PerClient   int
	Window      time.Duration
	// PublicPerClient bounds the calls to each unauthenticated route from
	// one client address.
	PublicPerClient int
	// InvitationsPerOrganization and InvitationsPerRecipient bound the
	// invitation emails (new and resent) in any 24 hours.
	InvitationsPerOrganization int
	InvitationsPerRecipient    int
}

// Server implements the accounts gRPC services.
type Server struct {
	accountsv1.UnimplementedAuthServiceServer
	accountsv1.UnimplementedUserServiceServer
	accountsv1.UnimplementedOrganizationServiceServer

	accountsv1.UnimplementedApiTokenServiceServer
	accountsv1.UnimplementedAuditServiceServer
	accountsv1.UnimplementedInvitationServiceServer
	accountsv1.UnimplementedNoticeServiceServer

	store      *Store
	signer     *auth.Signer
	refreshTTL time.Duration
	limits     Limits
	// passwords hashes for sign-in and for signed-in people's password
	// checks; anonPasswords for unauthenticated routes that set a
	// password (sign-up, setup links), which so cannot take sign-in's turns.
	passwords     *passwordWork
	anonPasswords *passwordWork
	log           *slog.Logger
	// publicURL is the frontend's address, which links in emails point to.
	publicURL string
}

// NewServer returns a server over store issuing tokens with signer, hashing
// at most passwordHashes passwords at once (0: one per CPU).
func NewServer(store *Store, signer *auth.Signer, refreshTTL time.Duration, limits Limits, passwordHashes int, publicURL string, log *slog.Logger) *Server {
	signIn, anon := splitPasswordWork(passwordHashes)
	return &Server{store: store, signer: signer, refreshTTL: refreshTTL, limits: limits, passwords: signIn, anonPasswords: anon, publicURL: publicURL, log: log}
}

// SignUp creates a user, their organization, and makes them its owner.
func (s *Server) SignUp(ctx context.Context, req *accountsv1.SignUpRequest) (*accountsv1.SignUpResponse, error) {
	lang := req.GetLanguage()
	if lang == "" {
		lang = languages[0]
	}
	if supportedLanguage(lang) != lang {
		return nil, errs.Field("language", "must be one of en, fr, de, it, es")
	}
	if err := s.publicLimit(ctx, "signUp"); err != nil {
		return nil, err
	}
	email := normalizeEmail(req.GetEmail())
	// A taken email is refused before the costly hash (the answer says it
	// is taken either way).
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		return nil, errEmailTaken
	} else if !errs.Is(err, errs.NotFound) {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	hash, err := s.anonPasswords.hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	u := &User{ID: uuid.Must(uuid.NewV7()), Email: email, DisplayName: strings.TrimSpace(req.GetDisplayName()),
		PasswordHash: hash, Language: lang, PhoneNumber: req.GetPhoneNumber()}
	o := &Organization{ID: uuid.Must(uuid.NewV7()), DisplayName: strings.TrimSpace(req.GetOrganizationDisplayName())}
	if err := s.store.CreateUserWithOrganization(ctx, u, o, grpcserver.ClientAddr(ctx)); err != nil {
		return nil, fmt.Errorf("sign up: %w", err)
	}
	return &accountsv1.SignUpResponse{User: userProto(u), Organization: organizationProto(o)}, nil
}

var errBadCredentials = errs.E(errs.Unauthenticated, "wrong email or password").WithReason("INVALID_CREDENTIALS")

// SignIn checks a password and opens a session. Unknown email and wrong
// password get the same answer, after the same work.
func (s *Server) SignIn(ctx context.Context, req *accountsv1.SignInRequest) (*accountsv1.SignInResponse, error) {
	email := normalizeEmail(req.GetEmail())
	if email == "" {
		email = strings.ToLower(strings.TrimSpace(req.GetLogin()))
	}
	if email == "" {
		return nil, errs.Field("email", "is required")
	}
	// Guesses are bounded per client address, and per email from each
	// address, so an outsider cannot lock a user out by failing from
	// elsewhere. All addresses together also have a bound per email, against
	// guessing from many addresses; it does not apply to an address the user
	// signed in from before. See docs/accounts.md.
	client := grpcserver.ClientAddr(ctx)
	if err := s.limit(ctx, "client:"+client, s.limits.PerClient); err != nil {
		return nil, err
	}
	pair := "email:" + email + " client:" + client
	if err := s.limit(ctx, pair, s.limits.PerEmail); err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if limited := s.limit(ctx, "email:"+email, s.limits.PerEmailAll); limited != nil {
		if !errs.Is(limited, errs.ResourceExhausted) || u == nil {
			return nil, limited
		}
		known, kerr := s.store.KnownClient(ctx, u.ID, client)
		if kerr != nil {
			return nil, fmt.Errorf("sign in: %w", kerr)
		}
		if !known {
			return nil, limited
		}
	}
	hash := dummyHash()
	switch {
	case err == nil && u.PasswordHash == "":
		// Created by an administrator, no password chosen yet: refused
		// like a wrong password, after the same work.
		u = nil
	case err == nil:
		hash = u.PasswordHash
	case !errs.Is(err, errs.NotFound):
		return nil, fmt.Errorf("sign in: %w", err)
	}
	ok, err := s.passwords.check(ctx, hash, req.GetPassword())
	if err != nil {
		return nil, fmt.Errorf("sign in: %w", err)
	}
	if !ok || u == nil {
		return nil, errBadCredentials
	}
	if err := s.store.ResetSignIn(ctx, pair); err != nil {
		return nil, err
	}
	if err := s.store.RememberClient(ctx, u.ID, client); err != nil {
		return nil, err
	}
	refresh, refreshHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	session, err := s.store.CreateRefreshToken(ctx, u.ID, refreshHash, time.Now().Add(s.refreshTTL))
	if err != nil {
		return nil, err
	}
	access, err := s.accessToken(u, session.String())
	if err != nil {
		return nil, err
	}
	return &accountsv1.SignInResponse{AccessToken: access, RefreshToken: refresh, ExpiresIn: int32(s.signer.TTL().Seconds()), TokenType: "Bearer",
		LoginEmailRequired: u.LoginPending}, nil
}

// limit counts a sign-in attempt under key and refuses it past allowed in
// the window.
func (s *Server) limit(ctx context.Context, key string, allowed int) error {
	return s.limitAs(ctx, key, allowed, errs.E(errs.ResourceExhausted, "too many sign-in attempts; try again later").WithReason("TOO_MANY_ATTEMPTS"))
}

// publicLimit counts a call to the unauthenticated route from the client's
// address and refuses it past the limit in the window.
func (s *Server) publicLimit(ctx context.Context, route string) error {
	allowed := s.limits.PublicPerClient
	if route == "refresh" || route == "signOut" {
		// Every signed-in browser refreshes each access token lifetime:
		// an office behind one address makes many such calls, and a
		// refresh token cannot be guessed anyway.
		allowed *= 10
	}
	return s.limitAs(ctx, "public:"+route+" client:"+grpcserver.ClientAddr(ctx), allowed,
		errs.E(errs.ResourceExhausted, "too many requests from your address; try again later").WithReason("TOO_MANY_REQUESTS"))
}

// limitAs counts a call under key and answers refusal, with when to retry,
// past allowed in the window.
func (s *Server) limitAs(ctx context.Context, key string, allowed int, refusal *errs.Error) error {
	n, reset, err := s.store.HitSignIn(ctx, key, time.Now(), s.limits.Window)
	if err != nil {
		return err
	}
	if n > allowed {
		e := *refusal
		e.RetryAfter = max(time.Until(reset).Round(time.Second), time.Second)
		return &e
	}
	return nil
}

// accessToken signs u's access token in session sid: a full one, or, while
// u must choose a new login email, one that allows only that.
func (s *Server) accessToken(u *User, sid string) (string, error) {
	tok, _, err := s.signer.SignSession(u.ID.String(), sid, u.LoginPending, time.Now())
	return tok, err
}

// sessionsEnd is when the access tokens issued until now have all expired:
// how long a revocation made now must be remembered.
func (s *Server) sessionsEnd() time.Time { return time.Now().Add(s.signer.TTL()) }

// Refresh rotates a refresh token and issues a new access token.
func (s *Server) Refresh(ctx context.Context, req *accountsv1.RefreshRequest) (*accountsv1.RefreshResponse, error) {
	if err := s.publicLimit(ctx, "refresh"); err != nil {
		return nil, err
	}
	refresh, refreshHash, err := newRefreshToken()
	if err != nil {
		return nil, err
	}
	id, session, err := s.store.RotateRefreshToken(ctx, hashRefreshToken(req.GetRefreshToken()), refreshHash, time.Now().Add(s.refreshTTL), s.sessionsEnd())
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	access, err := s.accessToken(u, session.String())
	if err != nil {
		return nil, err
	}
	return &accountsv1.RefreshResponse{AccessToken: access, RefreshToken: refresh, ExpiresIn: int32(s.signer.TTL().Seconds()), TokenType: "Bearer"}, nil
}

// SignOut ends the session of a refresh token; its access tokens stop
// working everywhere at once.
func (s *Server) SignOut(ctx context.Context, req *accountsv1.SignOutRequest) (*accountsv1.SignOutResponse, error) {
	if err := s.publicLimit(ctx, "signOut"); err != nil {
		return nil, err
	}
	if err := s.store.RevokeRefreshToken(ctx, hashRefreshToken(req.GetRefreshToken()), s.sessionsEnd()); err != nil {
		return nil, err
	}
	return &accountsv1.SignOutResponse{}, nil
}

// GetCurrentUser returns the caller and their memberships.
func (s *Server) GetCurrentUser(ctx context.Context, _ *accountsv1.GetCurrentUserRequest) (*accountsv1.GetCurrentUserResponse, error) {
	_, id, err := personFrom(ctx)
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

// access returns the organization named name and the caller's role in it. A
// caller from another organization gets NotFound, whether or not it exists.
func (s *Server) access(ctx context.Context, field, name string) (uuid.UUID, Role, Caller, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return uuid.Nil, "", c, err
	}
	org, err := parseOrganizationName(field, name)
	if err != nil {
		return uuid.Nil, "", c, err
	}
	if c.IsToken() {
		if c.TokenOrg != org {
			return uuid.Nil, "", c, errOrgNotFound
		}
		return org, c.TokenRole, c, nil
	}
	m, err := s.store.Membership(ctx, org, c.UserID)
	if errs.Is(err, errs.NotFound) {
		return uuid.Nil, "", c, errOrgNotFound
	}
	if err != nil {
		return uuid.Nil, "", c, err
	}
	return org, m.Role, c, nil
}

// GetOrganization returns an organization the caller belongs to.
func (s *Server) GetOrganization(ctx context.Context, req *accountsv1.GetOrganizationRequest) (*accountsv1.GetOrganizationResponse, error) {
	org, _, _, err := s.access(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	o, err := s.store.Organization(ctx, org)
	if err != nil {
		return nil, err
	}
	return &accountsv1.GetOrganizationResponse{Organization: organizationProto(o)}, nil
}

// UpdateOrganization renames an organization.
func (s *Server) UpdateOrganization(ctx context.Context, req *accountsv1.UpdateOrganizationRequest) (*accountsv1.UpdateOrganizationResponse, error) {
	org, role, c, err := s.access(ctx, "organization.name", req.GetOrganization().GetName())
	if err != nil {
		return nil, err
	}
	if !role.canManage() {
		err := errs.E(errs.PermissionDenied, "only owners and admins can change the organization")
		s.auditRefusal(ctx, c.audit(org, "accounts.organization.update", organizationName(org), nil), err)
		return nil, err
	}
	in := req.GetOrganization()
	fields := map[string]string{
		"display_name": strings.TrimSpace(in.GetDisplayName()),
		"legal_name":   strings.TrimSpace(in.GetLegalName()),
		"address":      strings.TrimSpace(in.GetAddress()),
	}
	set, err := masked(req.GetUpdateMask().GetPaths(), fields)
	if err != nil {
		return nil, err
	}
	if v, ok := set["display_name"]; ok && v == "" {
		return nil, errs.Field("organization.displayName", "must not be blank")
	}
	if len(set) == 0 {
		return nil, errs.Field("updateMask", "names no field to change")
	}
	changed := map[string]string{}
	for p, v := range set {
		changed[p] = v
	}
	o, err := s.store.UpdateOrganization(ctx, c, org, func(o *Organization) {
		if v, ok := set["display_name"]; ok {
			o.DisplayName = v
		}
		if v, ok := set["legal_name"]; ok {
			o.LegalName = v
		}
		if v, ok := set["address"]; ok {
			o.Address = v
		}
	}, changed)
	if err != nil {
		return nil, err
	}
	return &accountsv1.UpdateOrganizationResponse{Organization: organizationProto(o)}, nil
}

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// masked returns the fields (proto name → new value) an update mask names,
// or, for an empty mask, those the request sets, as AIP-134 has it.
func masked(paths []string, fields map[string]string) (map[string]string, error) {
	set := map[string]string{}
	for _, p := range paths {
		p = snakeCase(p)
		v, ok := fields[p]
		if !ok {
			var names []string
			for f := range fields {
				names = append(names, camelCase(f))
			}
			slices.Sort(names)
			return nil, errs.Field("updateMask", fmt.Sprintf("field %q cannot be updated; updatable: %s", p, strings.Join(names, ", ")))
		}
		set[p] = v
	}
	if len(paths) == 0 {
		for p, v := range fields {
			if v != "" {
				set[p] = v
			}
		}
	}
	return set, nil
}

// camelCase turns a proto field name ("legal_name") into its JSON name.
func camelCase(f string) string {
	parts := strings.Split(f, "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

// snakeCase turns a field mask path's JSON form ("legalName") into its
// proto form ("legal_name"); gRPC callers send the latter, REST the former.
func snakeCase(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pageSize applies the default and the maximum to a requested page size.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, errs.Field("pageSize", "must not be negative")
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// ListMembers lists an organization's members, oldest first.
func (s *Server) ListMembers(ctx context.Context, req *accountsv1.ListMembersRequest) (*accountsv1.ListMembersResponse, error) {
	org, _, _, err := s.access(ctx, "parent", req.GetParent())
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodeCursor(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	ms, err := s.store.Members(ctx, org, after, size+1)
	if err != nil {
		return nil, err
	}
	resp := &accountsv1.ListMembersResponse{}
	if len(ms) > size {
		ms = ms[:size]
		last := ms[size-1]
		resp.NextPageToken = encodeCursor(Cursor{CreateTime: last.CreateTime, UserID: last.UserID})
	}
	for _, m := range ms {
		resp.Members = append(resp.Members, memberProto(m))
	}
	return resp, nil
}

// UpdateMember changes a member's role.
func (s *Server) UpdateMember(ctx context.Context, req *accountsv1.UpdateMemberRequest) (*accountsv1.UpdateMemberResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	org, target, err := parseMemberName("member.name", req.GetMember().GetName())
	if err != nil {
		return nil, err
	}
	for _, p := range req.GetUpdateMask().GetPaths() {
		if p != "role" {
			return nil, errs.Field("updateMask", fmt.Sprintf("field %q cannot be updated; updatable: role", p))
		}
	}
	to, ok := roleFromProto(req.GetMember().GetRole())
	if !ok {
		return nil, errs.Field("member.role", "must be ROLE_OWNER, ROLE_ADMIN or ROLE_MEMBER")
	}
	m, err := s.store.UpdateRole(ctx, c, org, target, to)
	if err != nil {
		s.auditRefusal(ctx, c.audit(org, "accounts.member.update", memberName(org, target), map[string]string{"role": roleProto(to).String()}), err)
		return nil, err
	}
	return &accountsv1.UpdateMemberResponse{Member: memberProto(m)}, nil
}

// DeleteMember removes a member from an organization.
func (s *Server) DeleteMember(ctx context.Context, req *accountsv1.DeleteMemberRequest) (*accountsv1.DeleteMemberResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	org, target, err := parseMemberName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := s.store.DeleteMember(ctx, c, org, target); err != nil {
		s.auditRefusal(ctx, c.audit(org, "accounts.member.delete", memberName(org, target), nil), err)
		return nil, err
	}
	return &accountsv1.DeleteMemberResponse{}, nil
}

// Resource names.

func userName(id uuid.UUID) string         { return "users/" + id.String() }
func organizationName(id uuid.UUID) string { return "organizations/" + id.String() }
func memberName(org, user uuid.UUID) string {
	return organizationName(org) + "/members/" + user.String()
}
func apiTokenName(org, token uuid.UUID) string {
	return organizationName(org) + "/apiTokens/" + token.String()
}

func parseOrganizationName(field, name string) (uuid.UUID, error) {
	rest, ok := strings.CutPrefix(name, "organizations/")
	id, err := uuid.Parse(rest)
	if !ok || err != nil || strings.Contains(rest, "/") {
		return uuid.Nil, errs.Field(field, "must be an organization name like organizations/{id}")
	}
	return id, nil
}

func parseMemberName(field, name string) (org, user uuid.UUID, err error) {
	parts := strings.Split(name, "/")
	if len(parts) == 4 && parts[0] == "organizations" && parts[2] == "members" {
		org, err1 := uuid.Parse(parts[1])
		user, err2 := uuid.Parse(parts[3])
		if err1 == nil && err2 == nil {
			return org, user, nil
		}
	}
	return uuid.Nil, uuid.Nil, errs.Field(field, "must be a member name like organizations/{id}/members/{user}")
}

func encodeCursor(c Cursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.CreateTime.UnixMicro(), 10) + "." + c.UserID.String()))
}

func decodeCursor(token string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	bad := errs.Field("pageToken", "is not a token from a previous page")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return Cursor{}, bad
	}
	ts, id, ok := strings.Cut(string(b), ".")
	micros, err1 := strconv.ParseInt(ts, 10, 64)
	user, err2 := uuid.Parse(id)
	if !ok || err1 != nil || err2 != nil {
		return Cursor{}, bad
	}
	return Cursor{CreateTime: time.UnixMicro(micros), UserID: user}, nil
}

// Proto conversions.

func userProto(u *User) *accountsv1.User {
	p := &accountsv1.User{Name: userName(u.ID), Login: u.Email, DisplayName: u.DisplayName, CreateTime: timestamppb.New(u.CreateTime),
		Language: u.Language, PhoneNumber: u.PhoneNumber, LoginEmailRequired: u.LoginPending}
	if strings.Contains(u.Email, "@") {
		p.Email = u.Email
	}
	return p
}

func organizationProto(o *Organization) *accountsv1.Organization {
	return &accountsv1.Organization{Name: organizationName(o.ID), DisplayName: o.DisplayName, CreateTime: timestamppb.New(o.CreateTime),
		UpdateTime: timestamppb.New(o.UpdateTime), LegalName: o.LegalName, Address: o.Address}
}

func memberProto(m *Membership) *accountsv1.Member {
	return &accountsv1.Member{
		Name:        memberName(m.OrganizationID, m.UserID),
		User:        userName(m.UserID),
		Email:       m.Email,
		DisplayName: m.DisplayName,
		Role:        roleProto(m.Role),
		CreateTime:  timestamppb.New(m.CreateTime),
	}
}

func roleProto(r Role) accountsv1.Role {
	switch r {
	case Owner:
		return accountsv1.Role_ROLE_OWNER
	case Admin:
		return accountsv1.Role_ROLE_ADMIN
	case Member:
		return accountsv1.Role_ROLE_MEMBER
	}
	return accountsv1.Role_ROLE_UNSPECIFIED
}

func roleFromProto(p accountsv1.Role) (Role, bool) {
	switch p {
	case accountsv1.Role_ROLE_OWNER:
		return Owner, true
	case accountsv1.Role_ROLE_ADMIN:
		return Admin, true
	case accountsv1.Role_ROLE_MEMBER:
		return Member, true
	}
	return "", false
}
