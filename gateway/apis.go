package gateway

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	accountsv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/accounts/v1"
	dnssecurityv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/dnssecurity/v1"
	filtersv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/filters/v1"
	importsv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/imports/v1"
	listsv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/lists/v1"
	mailboxesv1 "github.com/mailplane/mailplane/gateway/internal/gen/mailplane/mailboxes/v1"
)

// api is one service's REST API: the grpc-gateway handlers generated from
// its protos, and the routes the edge writes by hand for it.
type api struct {
	// name is the service's name, as `mailplane serve` and its health
	// check know it.
	name     string
	handlers []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error
	// routes, when set, adds the hand-written routes.
	routes func(*runtime.ServeMux, *grpc.ClientConn) error
}

// apis is every service the edge routes to, from one table: adding a
// service adds its entry here (and its address setting follows).
var apis = []api{
	{
		name: "accounts",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			accountsv1.RegisterAuthServiceHandler,
			accountsv1.RegisterUserServiceHandler,
			accountsv1.RegisterOrganizationServiceHandler,
			accountsv1.RegisterApiTokenServiceHandler,
			accountsv1.RegisterAuditServiceHandler,
			accountsv1.RegisterInvitationServiceHandler,
			accountsv1.RegisterNoticeServiceHandler,
		},
		routes: registerDPA,
	},
	{
		name: "mailboxes",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			mailboxesv1.RegisterMailServiceServiceHandler,
			mailboxesv1.RegisterAddressServiceHandler,
			mailboxesv1.RegisterDevicePasswordServiceHandler,
			mailboxesv1.RegisterBulkServiceHandler,
			mailboxesv1.RegisterSignatureServiceHandler,
		},
		routes: registerBulk,
	},
	{
		name: "dnssecurity",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			dnssecurityv1.RegisterSecurityServiceHandler,
			dnssecurityv1.RegisterSpfServiceHandler,
			dnssecurityv1.RegisterDkimKeyServiceHandler,
		},
	},
	{
		name: "lists",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			listsv1.RegisterListServiceHandler,
			listsv1.RegisterMemberServiceHandler,
			listsv1.RegisterModerationServiceHandler,
			listsv1.RegisterFormServiceHandler,
		},
		routes: registerListsExport,
	},
	{
		name: "filters",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			filtersv1.RegisterRuleServiceHandler,
			filtersv1.RegisterFilterSettingsServiceHandler,
			filtersv1.RegisterFilterRunServiceHandler,
		},
	},
	{
		name: "imports",
		handlers: []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
			importsv1.RegisterImportServiceHandler,
		},
		routes: registerImportTemplate,
	},
}

// Services names the services the edge routes to, in order: each has an
// address setting.
func Services() []string {
	names := make([]string, len(apis))
	for i, a := range apis {
		names[i] = a.name
	}
	return names
}
