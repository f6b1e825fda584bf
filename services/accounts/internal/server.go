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
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
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
	roles      *access.Roles // from store, afresh each time
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
	notices   Notices
}

// NewServer returns a server over store issuing tokens with signer, hashing
// at most passwordHashes passwords at once (0: one per CPU).
func NewServer(store *Store, signer *auth.Signer, refreshTTL time.Duration, limits Limits, passwordHashes int, publicURL string, log *slog.Logger) *Server {
	signIn, anon := splitPasswordWork(passwordHashes)
	return &Server{store: store, roles: access.NewRoles(store, 0), signer: signer, refreshTTL: refreshTTL, limits: limits, passwords: signIn, anonPasswords: anon, publicURL: publicURL, log: log}
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

// access returns the organization named name and the caller's role in it. A
// caller from another organization gets NotFound, whether or not it exists.
func (s *Server) access(ctx context.Context, field, name string) (uuid.UUID, access.Role, access.Caller, error) {
	c, err := access.CallerFrom(ctx)
	if err != nil {
		return uuid.Nil, "", c, err
	}
	org, err := parseOrganizationName(field, name)
	if err != nil {
		return uuid.Nil, "", c, err
	}
	c, role, err := s.roles.Access(ctx, org)
	if err != nil {
		return uuid.Nil, "", c, err
	}
	return org, role, c, nil
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
