package grpcserver

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/mailplane/mailplane/services/platform/errs"
	"github.com/mailplane/mailplane/services/platform/pg"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// RetryAfter is what a caller is told to wait when something the service
// needs cannot be reached: long enough for a database failover or a pod
// restart to show, short enough that a retry soon finds it back.
const RetryAfter = 2 * time.Second

// errUnavailable is the answer to a failure to reach a dependency. It names
// none: the caller can only wait and retry.
var errUnavailable = &errs.Error{Kind: errs.Unavailable, Message: "service unavailable; try again later", RetryAfter: RetryAfter}

// classify gives an unclassified error the kind it deserves when its cause
// is known, or returns nil (Internal). It is the one place where a dropped
// connection, a database that is down and an UNAVAILABLE from another
// service become an answer the caller can act on.
func classify(err error) *errs.Error {
	switch {
	case pg.BadText(err):
		return errs.E(errs.InvalidArgument, "the request holds text that cannot be stored (control characters or invalid UTF-8)")
	case unreachable(err):
		return errUnavailable
	}
	return nil
}

// unreachable reports whether err is a failure to reach or keep talking to
// a dependency, rather than its answer.
func unreachable(err error) bool {
	if pg.Unreachable(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// Another service answered UNAVAILABLE, or could not be reached (the
	// gRPC client says so itself), or did not answer in time.
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		switch se.GRPCStatus().Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	var oe *net.OpError
	return errors.As(err, &oe) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}
