package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	mailboxespb "github.com/mailplane/mailplane/proto/mailplane/mailboxes/v1"
)

const (
	// The CSV routes of BulkService. The generated handlers speak JSON only
	// (the file would travel base64-encoded in a JSON string), so these two
	// are written by hand: the template downloads as a .csv file, and the
	// upload is the file itself as the request body, or the JSON form
	// {"csv": base64}. GetBulkJob keeps its generated JSON route.
	bulkTemplatePath   = "/v1/organizations/{organization}/mailServices/{mail_service}/addresses:template"
	bulkCreatePath     = "/v1/organizations/{organization}/mailServices/{mail_service}/addresses:bulkCreate"
	bulkTemplateMethod = "/mailplane.mailboxes.v1.BulkService/GetBulkTemplate"
	bulkCreateMethod   = "/mailplane.mailboxes.v1.BulkService/CreateBulkJob"
	// bulkErrorsPath downloads the rows of a job that failed as a CSV file,
	// streamed as the service reads them (ExportBulkJobErrors).
	bulkErrorsPath   = "/v1/organizations/{organization}/mailServices/{mail_service}/bulkJobs/{bulk_job}:errors"
	bulkErrorsMethod = "/mailplane.mailboxes.v1.BulkService/ExportBulkJobErrors"

	// bulkCreateVerb ends the path of a bulk upload, which sets its own
	// body limit and takes CSV as well as JSON.
	bulkCreateVerb = "/addresses:bulkCreate"

	// maxBulkBytes caps an uploaded file (100,000 rows at ~170 bytes). Note
	// that the edge-wide maxBodyBytes applies first, and the backend takes
	// messages up to its grpc.MaxRecvMsgSize (4 MiB by default).
	maxBulkBytes = 16 << 20
	// maxBulkJSONBytes caps the JSON form of an upload: the file in base64
	// (4 bytes per 3) and room for the braces and the name.
	maxBulkJSONBytes = (maxBulkBytes+2)/3*4 + 1<<10
)

// bulkContentTypes are the types a CSV file is sent with: browsers on
// Windows call a .csv file application/vnd.ms-excel, some send nothing.
var bulkContentTypes = map[string]bool{
	"": true, "text/csv": true, "application/csv": true, "text/plain": true,
	"application/vnd.ms-excel": true, "application/octet-stream": true,
}

// registerBulk routes the CSV template download and the CSV upload to the
// mailboxes service. Errors are the same google.rpc.Status JSON as on every
// other route.
func registerBulk(mux *runtime.ServeMux, mailboxes *grpc.ClientConn) error {
	client := mailboxespb.NewBulkServiceClient(mailboxes)
	parent := func(params map[string]string) string {
		return "organizations/" + params["organization"] + "/mailServices/" + params["mail_service"]
	}

	err := mux.HandlePath(http.MethodGet, bulkTemplatePath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, bulkTemplateMethod, runtime.WithHTTPPathPattern(bulkTemplatePath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		resp, err := client.GetBulkTemplate(ctx, &mailboxespb.GetBulkTemplateRequest{Parent: parent(params)},
			grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		if err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": "addresses-template.csv"}))
		h.Set("Content-Length", strconv.Itoa(len(resp.GetCsv())))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, resp.GetCsv())
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", bulkTemplatePath, err)
	}

	err = mux.HandlePath(http.MethodPost, bulkCreatePath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		in, out := runtime.MarshalerForRequest(mux, r)
		fail := func(httpStatus int, code codes.Code, msg string) {
			runtime.HTTPError(r.Context(), mux, out, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: status.Error(code, msg)})
		}
		ct := r.Header.Get("Content-Type")
		isJSON := ct != "" && jsonContentType(ct)
		if ct != "" && !isJSON {
			typ, ps, err := mime.ParseMediaType(ct)
			if err != nil || !bulkContentTypes[typ] {
				fail(http.StatusUnsupportedMediaType, codes.InvalidArgument, `send the file as the request body with Content-Type: text/csv, or as {"csv": "<the file in base64>"} with Content-Type: application/json`)
				return
			}
			if cs, ok := ps["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
				fail(http.StatusUnsupportedMediaType, codes.InvalidArgument, "the file must be UTF-8 (save it as \"CSV UTF-8\")")
				return
			}
		}
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, bulkCreateMethod, runtime.WithHTTPPathPattern(bulkCreatePath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		limit := int64(maxBulkBytes)
		if isJSON {
			limit = maxBulkJSONBytes
		}
		// The edge-wide limit may be lower than ours: it wraps the body
		// first, and answers the same error.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf("the file is larger than %d MiB; split it into several files", maxBulkBytes>>20))
				return
			}
			fail(http.StatusBadRequest, codes.InvalidArgument, "could not read the request body")
			return
		}
		req := &mailboxespb.CreateBulkJobRequest{Csv: body}
		if isJSON {
			// The JSON form of the request, for gRPC-minded clients. As on
			// the generated routes, the path names the parent.
			req = &mailboxespb.CreateBulkJobRequest{}
			if err := in.Unmarshal(body, req); err != nil {
				var be *inputError
				if errors.As(err, &be) {
					err = be.status()
				}
				runtime.HTTPError(r.Context(), mux, out, w, r, err)
				return
			}
			if len(req.GetCsv()) > maxBulkBytes {
				fail(http.StatusRequestEntityTooLarge, codes.InvalidArgument, fmt.Sprintf("the file is larger than %d MiB; split it into several files", maxBulkBytes>>20))
				return
			}
		}
		req.Parent = parent(params)
		var md runtime.ServerMetadata
		resp, err := client.CreateBulkJob(ctx, req,
			grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD), grpc.MaxCallSendMsgSize(maxBulkBytes+1<<10))
		if err != nil {
			if st := status.Convert(err); st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max") {
				// The client or the backend refused the message's size.
				fail(http.StatusRequestEntityTooLarge, codes.InvalidArgument, "the file is too large; split it into several files")
				return
			}
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		job := resp.GetJob()
		buf, err := out.Marshal(job)
		if err != nil {
			runtime.HTTPError(ctx, mux, out, w, r, err)
			return
		}
		h := w.Header()
		h.Set("Content-Type", out.ContentType(job))
		h.Set("Location", "/v1/"+job.GetName())
		w.WriteHeader(http.StatusAccepted)
		w.Write(buf)
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", bulkCreatePath, err)
	}

	err = mux.HandlePath(http.MethodGet, bulkErrorsPath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, bulkErrorsMethod, runtime.WithHTTPPathPattern(bulkErrorsPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		name := parent(params) + "/bulkJobs/" + params["bulk_job"]
		stream, err := client.ExportBulkJobErrors(ctx, &mailboxespb.ExportBulkJobErrorsRequest{Name: name}, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		var first *mailboxespb.ExportBulkJobErrorsResponse
		if err == nil {
			first, err = stream.Recv()
		}
		if err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		writeCSVStream(w, fmt.Sprintf("bulk-job-%s-errors.csv", params["bulk_job"]), first, stream.Recv)
	})
	if err != nil {
		return fmt.Errorf("route %s: %w", bulkErrorsPath, err)
	}
	return nil
}
