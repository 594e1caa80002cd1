package est

import (
	"errors"
	"fmt"
)

// Kind classifies an Error. Kinds are errors themselves so that
// errors.Is(err, est.ErrBadRequest) works on any wrapped Error.
type Kind struct{ name string }

func (k *Kind) Error() string { return k.name }

// The kinds of Error. The server maps each to exactly one HTTP status.
var (
	ErrBadRequest      = &Kind{"bad request"}            // malformed input: 400
	ErrUnauthorized    = &Kind{"unauthorized"}           // no or unusable credentials: 401
	ErrForbidden       = &Kind{"forbidden"}              // credentials not allowed this: 403
	ErrNotFound        = &Kind{"not found"}              // unknown path, label or record: 404
	ErrMethod          = &Kind{"method not allowed"}     // 405
	ErrTimeout         = &Kind{"request timeout"}        // the request did not arrive in time: 408
	ErrTooLarge        = &Kind{"request too large"}      // 413
	ErrMediaType       = &Kind{"unsupported media type"} // 415
	ErrPolicy          = &Kind{"refused by policy"}      // well-formed CSR the profile does not issue for: 400
	ErrConflict        = &Kind{"conflict"}               // not servable in the current state: 409
	ErrTooManyRequests = &Kind{"too many requests"}      // 429
	ErrUnavailable     = &Kind{"unavailable"}            // 503
	ErrNotImplemented  = &Kind{"not implemented"}        // 501
	ErrInternal        = &Kind{"internal error"}         // 500: a bug or an outage, detail never sent
)

// Error is the one domain error of estkit. Detail is a one-line reason that is
// safe to show to the requester; internal causes are wrapped in Err and never
// sent over the wire.
type Error struct {
	Kind   *Kind
	Detail string
	Err    error
}

// kind is e.Kind, or ErrInternal for an Error built without one, so that a
// zero Error is an internal error rather than a nil dereference on the error path.
func (e *Error) kind() *Kind {
	if e.Kind == nil {
		return ErrInternal
	}
	return e.Kind
}

func (e *Error) Error() string {
	s := e.kind().name
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, kind) true for an Error of that kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(*Kind)
	return ok && k == e.kind()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted detail.
func Errorf(kind *Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind with detail for the requester and cause for the log.
func Wrap(kind *Kind, cause error, detail string) *Error {
	return &Error{Kind: kind, Detail: detail, Err: cause}
}

// KindOf returns the kind of err, or ErrInternal when err is not an *Error
// (or is one without a Kind).
func KindOf(err error) *Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.kind()
	}
	var k *Kind
	if errors.As(err, &k) {
		return k
	}
	return ErrInternal
}

// Detail returns the requester-safe detail of err: the Detail of an *Error,
// or the generic text of ErrInternal for anything else.
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Detail != "" && e.kind() != ErrInternal {
			return e.Detail
		}
		return e.kind().name
	}
	return ErrInternal.name
}
