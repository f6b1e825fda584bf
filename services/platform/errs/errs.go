// Package errs is the small closed set of error kinds every Mailplane service
// returns. Domain code wraps them with context (fmt.Errorf("...: %w", err));
// the gRPC server maps each kind to one status code in one table.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds. Unknown errors are Internal and never shown to callers.
const (
	Internal Kind = iota
	NotFound
	AlreadyExists
	InvalidArgument
	FailedPrecondition
	PermissionDenied
	Unauthenticated
	Conflict
	ResourceExhausted
	// Unavailable: something the service needs (its database, another
	// service) cannot be reached just now; the same request may succeed
	// when tried again.
	Unavailable
)

var kindNames = [...]string{
	Internal:           "internal",
	NotFound:           "not found",
	AlreadyExists:      "already exists",
	InvalidArgument:    "invalid argument",
	FailedPrecondition: "failed precondition",
	PermissionDenied:   "permission denied",
	Unauthenticated:    "unauthenticated",
	Conflict:           "conflict",
	ResourceExhausted:  "resource exhausted",
	Unavailable:        "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FieldViolation names a request field and what is wrong with it.
type FieldViolation struct {
	Field       string
	Description string
}

// Error is a classified error. Its Message is safe to show to the caller.
type Error struct {
	Kind    Kind
	Message string
	// Reason is a stable UPPER_SNAKE_CASE code clients may branch on
	// (sent as google.rpc.ErrorInfo), e.g. "LAST_OWNER".
	Reason string
	// Fields lists bad request fields (sent as google.rpc.BadRequest).
	Fields []FieldViolation
	// RetryAfter tells a rate-limited caller when to try again.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Message }

// E returns an error of kind k with a message for the caller.
func E(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// WithReason sets the machine-readable reason and returns e.
func (e *Error) WithReason(reason string) *Error {
	e.Reason = reason
	return e
}

// Field returns an InvalidArgument error naming one bad field.
func Field(field, description string) *Error {
	return Fields(FieldViolation{Field: field, Description: description})
}

// Fields returns an InvalidArgument error naming every bad field.
func Fields(vs ...FieldViolation) *Error {
	msg := "invalid request"
	if len(vs) > 0 {
		msg = vs[0].Field + ": " + vs[0].Description
		if len(vs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(vs)-1)
		}
	}
	return &Error{Kind: InvalidArgument, Message: msg, Fields: vs}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err's chain holds an *Error of kind k.
func Is(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}
