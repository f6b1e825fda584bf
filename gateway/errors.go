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
// Retry-After when the status carries a google.rpc.RetryInfo or is
// UNAVAILABLE, and the WWW-Authenticate that HTTP requires of a 401 (RFC
// 9110, 11.6.1). The body's code always agrees with the HTTP status
// (consistent).
func errorHandler(log *slog.Logger) runtime.ErrorHandlerFunc {
	return func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
		st := status.Convert(err)
		if st.Code() == codes.Unavailable && len(st.Details()) == 0 {
			// The gRPC client makes up this message when it cannot reach
			// the backend, and it names internal addresses: log it, and
			// tell the client only what it can act on. A backend's own
			// UNAVAILABLE carries details, and its message is kept.
			log.LogAttrs(r.Context(), slog.LevelWarn, "backend unavailable",
				slog.String("path", r.URL.Path),
				slog.String("requestId", requestIDFrom(r.Context())),
				slog.Any("error", err))
			p := st.Proto()
			p.Message = "service unavailable; try again later"
			err = status.FromProto(p).Err()
		}
		if st.Code() == codes.InvalidArgument && len(st.Details()) == 0 {
			// A body the JSON decoder refused, as the generated handlers
			// report it: name the field.
			if be, ok := parseInputError(st.Message()); ok {
				err = be.status()
			}
		}
		err = consistent(err)
		if status.Code(err) == codes.Unauthenticated {
			w = bearerChallenge{w}
		}
		if d, ok := retryDelay(err); ok {
			// Retry-After takes whole seconds; round up so that a client
			// that obeys it is not refused again.
			secs := (d + time.Second - 1) / time.Second
			w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
		} else if status.Code(err) == codes.Unavailable {
			w.Header().Set("Retry-After", strconv.Itoa(int(unavailableRetryAfter/time.Second)))
		}
		runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
	}
}

// unavailableRetryAfter is the Retry-After of an UNAVAILABLE without a
// RetryInfo: a backend that cannot be reached (restarting, or cut off from
// its database) is usually back within seconds, and clients that all come
// back at once within one second would only keep it down.
const unavailableRetryAfter = 2 * time.Second

// status is e as a google.rpc.Status: INVALID_ARGUMENT, with a BadRequest
// naming the field when there is one.
func (e *inputError) status() error {
	if e.field == "" {
		return status.Error(codes.InvalidArgument, e.Error())
	}
	st, err := status.New(codes.InvalidArgument, e.field+": "+e.desc).WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: e.field, Description: e.desc}},
	})
	if err != nil {
		return status.Error(codes.InvalidArgument, e.Error())
	}
	return st.Err()
}

// statusExceptions are the HTTP statuses the edge answers that no gRPC code
// maps to (runtime.HTTPStatusFromCode), with the code their body carries
// and the google.rpc.ErrorInfo reason that names them. The HTTP status is
// authoritative.
var statusExceptions = map[int]struct {
	code   codes.Code
	reason string
}{
	http.StatusMethodNotAllowed:      {codes.Unimplemented, "METHOD_NOT_ALLOWED"},
	http.StatusRequestEntityTooLarge: {codes.InvalidArgument, "REQUEST_TOO_LARGE"},
	http.StatusUnsupportedMediaType:  {codes.InvalidArgument, "UNSUPPORTED_MEDIA_TYPE"},
}

// statusCodes maps the other HTTP statuses the edge may set itself to the
// code whose HTTP status they are.
var statusCodes = map[int]codes.Code{
	http.StatusBadRequest:          codes.InvalidArgument,
	http.StatusUnauthorized:        codes.Unauthenticated,
	http.StatusForbidden:           codes.PermissionDenied,
	http.StatusNotFound:            codes.NotFound,
	http.StatusConflict:            codes.AlreadyExists,
	http.StatusTooManyRequests:     codes.ResourceExhausted,
	http.StatusInternalServerError: codes.Internal,
	http.StatusNotImplemented:      codes.Unimplemented,
	http.StatusServiceUnavailable:  codes.Unavailable,
	http.StatusGatewayTimeout:      codes.DeadlineExceeded,
}

// consistent makes the code of err's body agree with the HTTP status it is
// answered with: an error that sets its own HTTP status (routing errors,
// 413, 415) gets the code of that status, and one of statusExceptions its
// ErrorInfo.
func consistent(err error) error {
	var httpErr *runtime.HTTPStatusError
	if !errors.As(err, &httpErr) {
		return err
	}
	st := status.Convert(httpErr.Err)
	if ex, ok := statusExceptions[httpErr.HTTPStatus]; ok {
		p := st.Proto()
		p.Code = int32(ex.code)
		st = status.FromProto(p)
		if !hasErrorInfo(st) {
			if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: ex.reason, Domain: "mailplane"}); err == nil {
				st = withInfo
			}
		}
	} else if runtime.HTTPStatusFromCode(st.Code()) != httpErr.HTTPStatus {
		c, ok := statusCodes[httpErr.HTTPStatus]
		if !ok {
			// No code says this status: answer the code's own.
			return &runtime.HTTPStatusError{HTTPStatus: runtime.HTTPStatusFromCode(st.Code()), Err: st.Err()}
		}
		p := st.Proto()
		p.Code = int32(c)
		st = status.FromProto(p)
	}
	return &runtime.HTTPStatusError{HTTPStatus: httpErr.HTTPStatus, Err: st.Err()}
}

func hasErrorInfo(st *status.Status) bool {
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return true
		}
	}
	return false
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
// HTTP status: a wrong method is 405, not the 501 of codes.Unimplemented
// (errorHandler gives the body its code).
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	err := &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: status.Error(codes.Unknown, http.StatusText(httpStatus))}
	runtime.HTTPError(ctx, mux, m, w, r, err)
}
