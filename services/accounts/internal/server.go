package accounts

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/access"
	"github.com/mailplane/mailplane/services/platform/aip"
	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/grpcserver"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
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

// masked returns the new value (proto name → value) of each field an
// update changes, by the one rule of aip.UpdatePaths; fields holds every
// updatable field's value.
func masked(mask *fieldmaskpb.FieldMask, resource proto.Message, fields map[string]string) (map[string]string, error) {
	paths, err := aip.UpdatePaths(mask, resource, slices.Sorted(maps.Keys(fields))...)
	if err != nil {
		return nil, err
	}
	set := make(map[string]string, len(paths))
	for _, p := range paths {
		set[p] = fields[p]
	}
	return set, nil
}

// Proto conversions.
