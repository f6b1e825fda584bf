package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorHandler answers an error as grpc-gateway does by default, a
// google.rpc.Status in JSON with the HTTP status of its code, and adds
// Retry-After when the status carries a google.rpc.RetryInfo, and the
// WWW-Authenticate that HTTP requires of a 401 (RFC 9110, 11.6.1).
func errorHandler(log *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		if st := status.Convert(err); st.Code() == codes.Unavailable {
			// The gRPC client makes up this message when it cannot reach
			// the backend, and it names internal addresses: log it, and
			// tell the client only what it can act on.
			log.LogAttrs(r.Context(), slog.LevelWarn, "backend unavailable",
				slog.String("path", r.URL.Path),
				slog.String("requestId", requestIDFrom(r.Context())),
				slog.Any("error", err))
			p := st.Proto()
			p.Message = "service unavailable; try again later"
			err = status.FromProto(p).Err()
		}
		if status.Code(err) == codes.Unauthenticated {
			w = bearerChallenge{w}
		}
		if d, ok := retryDelay(err); ok {
			// Retry-After takes whole seconds; round up so that a client
			// that obeys it is not refused again.
			secs := (d + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		}
		runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
	}
}

// bearerChallenge puts the scheme in the WWW-Authenticate of a 401, where
// grpc-gateway writes the error's message (which is no challenge, and says
// to every client why a token failed).
type bearerChallenge struct{ http.ResponseWriter }

func (w bearerChallenge) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mailplane"`)
	}
	w.ResponseWriter.WriteHeader(code)
}

// retryDelay returns the delay of err's RetryInfo detail, if it has one.
func retryDelay(err error) (time.Duration, bool) {
	var httpErr *runtime.HTTPStatusError
	if errors.As(err, &httpErr) {
		err = httpErr.Err
	}
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			if delay := ri.GetRetryDelay().AsDuration(); delay >= 0 {
				return delay, true
			}
		}
	}
	return 0, false
}

// routingErrorHandler answers a request no route takes with the JSON error
// every other failure gets. Unlike grpc-gateway's default, it keeps the
// HTTP status: a wrong method is 405, not the 501 of codes.Unimplemented.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	code := codes.Internal
	switch httpStatus {
	case http.StatusBadRequest:
		code = codes.InvalidArgument
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusMethodNotAllowed:
		code = codes.Unimplemented
	}
	err := &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: status.Error(code, http.StatusText(httpStatus))}
	runtime.HTTPError(ctx, mux, m, w, r, err)
}
