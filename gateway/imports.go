package gateway

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	importspb "github.com/mailplane/mailplane/proto/mailplane/imports/v1"
)

const (
	// importTemplatePath is the REST route of ImportService.GetImportTemplate:
	// the CSV template of a bulk import, downloaded as a .csv file (the
	// generated handler would answer it inside JSON).
	importTemplatePath   = "/v1/organizations/{organization}/importJobs:template"
	importTemplateMethod = "/mailplane.imports.v1.ImportService/GetImportTemplate"
)

// registerImportTemplate routes GET importTemplatePath to the imports
// service and answers a text/csv download.
func registerImportTemplate(mux *runtime.ServeMux, imports *grpc.ClientConn) error {
	client := importspb.NewImportServiceClient(imports)
	err := mux.HandlePath(http.MethodGet, importTemplatePath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, importTemplateMethod, runtime.WithHTTPPathPattern(importTemplatePath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.GetImportTemplate(ctx, &importspb.GetImportTemplateRequest{Parent: "organizations/" + params["organization"]},
			grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		if err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "imports-template.csv"}))
		h.Set("Content-Length", strconv.Itoa(len(resp.GetCsv())))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, resp.GetCsv())
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", importTemplatePath, err)
	}
	return nil
}
