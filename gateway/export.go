package gateway

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	listspb "github.com/mailplane/mailplane/proto/mailplane/lists/v1"
)

const (
	// membersExportPath is the REST route of MemberService.ExportMembers.
	// The generated handler would answer a server stream as JSON objects,
	// one per chunk; this one answers the CSV file itself, chunk by chunk
	// as the service sends them, so a list of 100,000 members is never
	// held whole in the edge.
	membersExportPath   = "/v1/organizations/{organization}/mailServices/{mail_service}/lists/{list}/members:export"
	membersExportMethod = "/mailplane.lists.v1.MemberService/ExportMembers"
)

// registerListsExport routes GET membersExportPath to the lists service
// and answers a text/csv download. An error before the first chunk is
// the same google.rpc.Status JSON as on every other route; one after it
// (the status line is sent) aborts the response, so that the client sees
// a truncated transfer rather than a short file it could take for whole.
func registerListsExport(mux *runtime.ServeMux, lists *grpc.ClientConn) error {
	client := listspb.NewMemberServiceClient(lists)
	return mux.HandlePath(http.MethodGet, membersExportPath, func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		ctx, err := runtime.AnnotateContext(r.Context(), mux, r, membersExportMethod, runtime.WithHTTPPathPattern(membersExportPath))
		if err != nil {
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		var md runtime.ServerMetadata
		parent := "organizations/" + params["organization"] + "/mailServices/" + params["mail_service"] + "/lists/" + params["list"]
		stream, err := client.ExportMembers(ctx, &listspb.ExportMembersRequest{Parent: parent}, grpc.Header(&md.HeaderMD), grpc.Trailer(&md.TrailerMD))
		var first *listspb.ExportMembersResponse
		if err == nil {
			first, err = stream.Recv()
		}
		if err != nil {
			runtime.HTTPError(runtime.NewServerMetadataContext(ctx, md), mux, out, w, r, err)
			return
		}
		writeCSVStream(w, fmt.Sprintf("members-%s.csv", params["list"]), first, stream.Recv)
	})
}

// csvChunk is a chunk of a streamed CSV download, shaped as
// google.api.HttpBody.
type csvChunk interface {
	GetContentType() string
	GetData() []byte
}

// writeCSVStream answers a download of filename, the first chunk then the
// rest as recv returns them, flushed as they come. The file may name people
// or their mistakes: no shared cache may keep it. An error after the status
// line aborts the response, so that the client sees a truncated transfer
// rather than a short file it could take for whole.
func writeCSVStream[T csvChunk](w http.ResponseWriter, filename string, first T, recv func() (T, error)) {
	ct := first.GetContentType()
	if ct == "" {
		ct = "text/csv; charset=utf-8"
	}
	h := w.Header()
	h.Set("Content-Type", ct)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	chunk := first
	for {
		if _, err := w.Write(chunk.GetData()); err != nil {
			return // the client left
		}
		rc.Flush()
		var err error
		if chunk, err = recv(); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			panic(http.ErrAbortHandler)
		}
	}
}
