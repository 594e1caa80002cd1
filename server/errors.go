package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/estkit/estkit"
)

// status maps an error kind to its HTTP status. It is the only place that does.
func status(k *est.Kind) int {
	switch k {
	case est.ErrBadRequest, est.ErrPolicy:
		// A CSR the label does not issue for is a refused request, not a
		// refused requester: 400 keeps 401/403 for authentication.
		return http.StatusBadRequest
	case est.ErrUnauthorized:
		return http.StatusUnauthorized
	case est.ErrForbidden:
		return http.StatusForbidden
	case est.ErrNotFound:
		return http.StatusNotFound
	case est.ErrMethod:
		return http.StatusMethodNotAllowed
	case est.ErrTimeout:
		return http.StatusRequestTimeout
	case est.ErrTooLarge:
		return http.StatusRequestEntityTooLarge
	case est.ErrMediaType:
		return http.StatusUnsupportedMediaType
	case est.ErrConflict:
		return http.StatusConflict
	case est.ErrTooManyRequests:
		return http.StatusTooManyRequests
	case est.ErrUnavailable:
		return http.StatusServiceUnavailable
	case est.ErrNotImplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// statusClientClosed is what the access log and the metrics record for a
// request whose client closed the connection before the answer: 499, as
// other servers log it.
const statusClientClosed = 499

// retryAfter is the Retry-After sent with 503 and 429 when the handler set
// none (a rate limit sets its own), in seconds.
const retryAfter = "30"

// writeError answers err as a one-line plain-text reason and returns the
// status. Internal causes stay in the log; only est.Detail reaches the wire.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, rq *request, err error) int {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client closed the connection while its request was being
		// served (net/http then cancels the request's context): nothing
		// failed here, and no one reads the answer.
		level := slog.LevelInfo
		if est.KindOf(err) == est.ErrUnavailable {
			// It went away while the store or the CA key kept it waiting:
			// worth a look if it happens often.
			level = slog.LevelWarn
		}
		h.log.Log(r.Context(), level, "client went away", "path", r.URL.Path, "err", err.Error())
		w.WriteHeader(statusClientClosed)
		return statusClientClosed
	}
	code := status(est.KindOf(err))
	if (code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	if code == http.StatusInternalServerError {
		h.log.Error("internal error", "path", r.URL.Path, "err", err.Error())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(est.Detail(err) + "\n"))
	return code
}

// signingFailed is the error of a signature by the CA key that failed:
// internal, unless the key was only busy (est.ErrUnavailable, an HSM with
// no free session), which the client may retry.
func signingFailed(err error, detail string) error {
	if est.KindOf(err) == est.ErrUnavailable {
		return err
	}
	return est.Wrap(est.ErrInternal, err, detail)
}
