package access

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	accountsv1 "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
	"github.com/mailplane/mailplane/services/platform/errs"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Accounts is a Source over the accounts service's gRPC API, for the other
// services. It asks on the caller's behalf: their token travels with each
// call, so accounts answers only what the caller may see.
type Accounts struct {
	orgs accountsv1.OrganizationServiceClient
}

// NewAccounts returns Accounts over conn.
func NewAccounts(conn grpc.ClientConnInterface) *Accounts {
	return &Accounts{orgs: accountsv1.NewOrganizationServiceClient(conn)}
}

// maxBatch is the most names BatchGetMembers takes at once.
const maxBatch = 1000

// Role asks accounts for user's membership of org (GetMember).
func (a *Accounts) Role(ctx context.Context, org, user uuid.UUID) (Role, error) {
	m, err := a.orgs.GetMember(Forward(ctx), &accountsv1.GetMemberRequest{Name: memberName(org, user)})
	if err != nil {
		return "", FromAccounts(err, "get member")
	}
	r, ok := RoleFromProto(m.GetMember().GetRole())
	if !ok {
		return "", fmt.Errorf("get member: accounts answered role %v", m.GetMember().GetRole())
	}
	return r, nil
}

// Members returns the role in org of each of users who is a member of it;
// the others are left out. NotFound when the caller is not in org.
func (a *Accounts) Members(ctx context.Context, org uuid.UUID, users []uuid.UUID) (map[uuid.UUID]Role, error) {
	roles := map[uuid.UUID]Role{}
	for len(users) > 0 {
		n := min(len(users), maxBatch)
		req := &accountsv1.BatchGetMembersRequest{Parent: "organizations/" + org.String(), AllowMissing: true}
		for _, u := range users[:n] {
			req.Names = append(req.Names, memberName(org, u))
		}
		users = users[n:]
		resp, err := a.orgs.BatchGetMembers(Forward(ctx), req)
		if err != nil {
			return nil, FromAccounts(err, "get members")
		}
		for _, m := range resp.GetMembers() {
			id, err := uuid.Parse(strings.TrimPrefix(m.GetUser(), "users/"))
			if r, ok := RoleFromProto(m.GetRole()); err == nil && ok {
				roles[id] = r
			}
		}
	}
	return roles, nil
}

func memberName(org, user uuid.UUID) string {
	return "organizations/" + org.String() + "/members/" + user.String()
}

// Forward passes the caller's credentials, address and request id on to
// another service.
func Forward(ctx context.Context) context.Context {
	out := metadata.MD{}
	for _, k := range []string{"authorization", "x-forwarded-for", "x-request-id"} {
		if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
			out.Set(k, v...)
		}
	}
	return metadata.NewOutgoingContext(ctx, out)
}

// FromAccounts turns an error of the accounts service into one of ours,
// never forwarded as it came: what accounts does not show the caller
// (another organization, a member) is NotFound "organization not found".
func FromAccounts(err error, what string) error {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied:
		return orgNotFound()
	case codes.Unauthenticated:
		return errs.E(errs.Unauthenticated, "missing, malformed or expired access token")
	case codes.AlreadyExists:
		return errs.E(errs.AlreadyExists, "%s", status.Convert(err).Message())
	case codes.InvalidArgument:
		return errs.E(errs.InvalidArgument, "%s", status.Convert(err).Message())
	case codes.FailedPrecondition:
		return errs.E(errs.FailedPrecondition, "%s", status.Convert(err).Message())
	case codes.ResourceExhausted:
		e := errs.E(errs.ResourceExhausted, "%s", status.Convert(err).Message())
		e.RetryAfter = max(retryDelay(err), time.Second)
		return e
	case codes.Unavailable, codes.DeadlineExceeded:
		// Accounts cannot be reached (or answer) just now: the caller may
		// retry, which a 500 would not tell them. The status is answered as
		// it is, not wrapped.
		st, _ := status.New(codes.Unavailable, "the accounts service is unavailable; try again shortly").
			WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
		return st.Err()
	}
	return fmt.Errorf("%s: accounts: %w", what, err)
}

// retryDelay is the delay of err's RetryInfo, or 0.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}
