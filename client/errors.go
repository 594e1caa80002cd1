package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/estkit/estkit"
)

// Error classes, for errors.Is.
var (
	// ErrRejected matches an *Error for any 4xx status: the server refused the
	// request (credentials, authorization, policy, malformed request).
	ErrRejected = errors.New("request rejected")
	// ErrServerFailure matches an *Error for any 5xx status.
	ErrServerFailure = errors.New("server failure")
	// ErrMalformedResponse is a success status whose body cannot be used: not
	// the expected structure, no certificate for the request's key, a key
	// that does not match the certificate.
	ErrMalformedResponse = errors.New("malformed response")
	// ErrResponseTooLarge is a response body over MaxResponseSize.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrServerMismatch is returned by Bootstrap when the TLS server
	// certificate of the connection does not chain to the root it returned.
	ErrServerMismatch = errors.New("the TLS server certificate does not chain to the returned root")
)

// maxMessage caps the server's reason kept in Error.Message, in bytes.
const maxMessage = 512

// Error is an answer of the server other than success: a refusal (4xx), a
// failure (5xx), or a 202 or 503 the client gave up waiting on (Err then
// says why, for example context.DeadlineExceeded).
//
// errors.Is(err, ErrRejected) is true for 4xx and errors.Is(err,
// ErrServerFailure) for 5xx. errors.Is(err, kind) is true for the est kind
// of the status: est.ErrUnauthorized (401), est.ErrForbidden (403, which is
// also how a server says est.ErrPolicy), est.ErrBadRequest (400),
// est.ErrNotFound (404), est.ErrMethod (405), est.ErrTimeout (408),
// est.ErrTooLarge (413),
// est.ErrMediaType (415), est.ErrTooManyRequests (429),
// est.ErrNotImplemented (501), est.ErrUnavailable (503), est.ErrInternal
// (other 5xx).
type Error struct {
	// Op is the operation that was refused.
	Op est.Operation
	// StatusCode is the HTTP status of the last answer.
	StatusCode int
	// Message is the server's reason from the body: one line, trimmed,
	// at most 512 bytes; "" when the body held no text.
	Message string
	// RetryAfter is the delay the server asked for with Retry-After, when it did.
	RetryAfter time.Duration
	// Err is why the client stopped waiting on a 202, 503 or 429; nil otherwise.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "est: %s: %d", e.Op, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e is of class target (ErrRejected, ErrServerFailure)
// or of the est kind target.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRejected:
		return e.StatusCode >= 400 && e.StatusCode < 500
	case ErrServerFailure:
		return e.StatusCode >= 500 && e.StatusCode < 600
	}
	if k, ok := target.(*est.Kind); ok {
		return k != nil && k == e.Kind()
	}
	return false
}

// Kind returns the est kind of the status, or nil for a status that has none
// (a 2xx, a 3xx or a 4xx EST does not use).
func (e *Error) Kind() *est.Kind {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return est.ErrBadRequest
	case http.StatusUnauthorized:
		return est.ErrUnauthorized
	case http.StatusForbidden:
		return est.ErrForbidden
	case http.StatusNotFound:
		return est.ErrNotFound
	case http.StatusMethodNotAllowed:
		return est.ErrMethod
	case http.StatusRequestTimeout:
		return est.ErrTimeout
	case http.StatusRequestEntityTooLarge:
		return est.ErrTooLarge
	case http.StatusUnsupportedMediaType:
		return est.ErrMediaType
	case http.StatusTooManyRequests:
		return est.ErrTooManyRequests
	case http.StatusNotImplemented:
		return est.ErrNotImplemented
	case http.StatusServiceUnavailable:
		return est.ErrUnavailable
	}
	if e.StatusCode >= 500 && e.StatusCode < 600 {
		return est.ErrInternal
	}
	return nil
}

// message turns an error body into one printable line of at most maxMessage
// bytes: white space runs become one space, control characters are dropped,
// invalid UTF-8 is replaced.
func message(body []byte) string {
	var b strings.Builder
	space := false
	for len(body) > 0 {
		r, n := utf8.DecodeRune(body)
		body = body[n:]
		switch {
		case unicode.IsSpace(r):
			space = true
			continue
		case r == utf8.RuneError && n == 1:
			r = '?'
		case !unicode.IsPrint(r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if b.Len()+utf8.RuneLen(r) > maxMessage {
			s := b.String()
			// Leave room for the ellipsis, cutting at a rune boundary.
			for len(s) > maxMessage-3 {
				_, n := utf8.DecodeLastRuneInString(s)
				s = s[:len(s)-n]
			}
			return s + "..."
		}
		b.WriteRune(r)
	}
	return b.String()
}

// malformed returns an error matching ErrMalformedResponse. The cause is
// formatted, not wrapped: a parse error of package est carries a kind such
// as est.ErrBadRequest that would otherwise read as a 400 from the server.
func malformed(op est.Operation, format string, args ...any) error {
	return fmt.Errorf("est: %s: %w: %s", op, ErrMalformedResponse, fmt.Sprintf(format, args...))
}
