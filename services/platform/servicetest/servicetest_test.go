package servicetest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mailplane/mailplane/services/platform/auth"
	"github.com/mailplane/mailplane/services/platform/servicetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// whoAmI is a service answering who the interceptors say is calling.
var whoAmI = grpc.ServiceDesc{
	ServiceName: "servicetest.WhoAmI",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Get",
		Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(emptypb.Empty)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				p, _ := auth.FromContext(ctx)
				return wrapperspb.String(fmt.Sprintf("user=%s token=%s org=%s role=%s", p.UserID, p.TokenID, p.OrganizationID, p.Role)), nil
			}
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/servicetest.WhoAmI/Get"}, h)
		},
	}},
}

func TestAs(t *testing.T) {
	s := servicetest.Start(t, func(s *servicetest.Server) error {
		s.GRPC.RegisterService(&whoAmI, struct{}{})
		return nil
	})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"person", s.As(t, auth.Principal{UserID: "u1"}), "user=u1 token= org= role="},
		{"API token", s.As(t, auth.Principal{TokenID: "t1", OrganizationID: "o1", Role: "admin"}), "user= token=t1 org=o1 role=admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got wrapperspb.StringValue
			if err := s.Conn.Invoke(tc.ctx, "/servicetest.WhoAmI/Get", &emptypb.Empty{}, &got); err != nil {
				t.Fatal(err)
			}
			if got.Value != tc.want {
				t.Errorf("got %q, want %q", got.Value, tc.want)
			}
		})
	}
	t.Run("nobody", func(t *testing.T) {
		err := s.Conn.Invoke(context.Background(), "/servicetest.WhoAmI/Get", &emptypb.Empty{}, &wrapperspb.StringValue{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("got %v, want Unauthenticated: the interceptors run", err)
		}
	})
}
