package gateway

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	accountspb "github.com/mailplane/mailplane/proto/mailplane/accounts/v1"
)

const (
	// dpaPath is the REST route of OrganizationService.GetDataProcessingAgreement.
	// The generated handlers answer JSON only, so this one is written by hand
	// to answer the PDF itself.
	dpaPath   = "/v1/organizations/{organization}/dataProcessingAgreement"
	dpaMethod = "/mailplane.accounts.v1.OrganizationService/GetDataProcessingAgreement"
)

// registerDPA routes GET dpaPath to the accounts service and answers the
// agreement as an application/pdf download. Errors are the same
// google.rpc.Status JSON as on every other route.
func registerDPA(mux *runtime.ServeMux, accounts *grpc.ClientConn) error {
	client := accountspb.NewOrganizationServiceClient(accounts)
	return mux.HandlePath(http.MethodGet, dpaPath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		// As in the generated handlers: Authorization, X-Forwarded-For and
		// the request id travel as gRPC metadata.
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, dpaMethod, runtime.WithHTTPPathPattern(dpaPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.GetDataProcessingAgreement(ctx,
			&accountspb.GetDataProcessingAgreementRequest{Name: "organizations/" + params["organization"]},
			grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		if err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		name := resp.GetFileName()
		if name == "" {
			name = "data-processing-agreement.pdf"
		}
		h := w.Header()
		h.Set("Content-Type", "application/pdf")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		h.Set("Content-Length", strconv.Itoa(len(resp.GetPdf())))
		// It names the customer: no shared cache may keep it.
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		w.Write(resp.GetPdf())
	})
}
