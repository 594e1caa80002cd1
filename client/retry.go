package client

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// parseRetryAfter parses a Retry-After value (RFC 9110 10.2.3): delay-seconds
// or an HTTP-date, which is taken relative to now. A date in the past is a
// delay of 0.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" { // delay-seconds, however large
		const maxSeconds = uint64(1<<63-1) / uint64(time.Second)
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > maxSeconds { // only a range error is possible
			n = maxSeconds
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

// wait waits d (bounded by MinWait and MaxWait) before the request that e
// answered is sent again. It fails, without waiting, when the wait would end
// after ctx's deadline, and when ctx is done while waiting; the error is e
// with Err saying why.
func (c *Client) wait(ctx context.Context, e *Error, d time.Duration) error {
	d = max(d, MinWait)
	maxWait := c.MaxWait
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	d = min(d, maxWait)
	if err := ctx.Err(); err != nil {
		e.Err = err
		return e
	}
	if deadline, ok := ctx.Deadline(); ok {
		if left := deadline.Sub(c.now()); d > left {
			e.Err = fmt.Errorf("gave up: the server asked to retry in %v, %v after the deadline: %w",
				d, (d - left).Round(time.Second), context.DeadlineExceeded)
			return e
		}
	}
	if c.OnWait != nil {
		reason := fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Message != "" {
			reason += ": " + e.Message
		}
		c.OnWait(e.Op, d, reason)
	}
	if err := c.sleep(ctx, d); err != nil {
		e.Err = fmt.Errorf("gave up waiting to retry: %w", err)
		return e
	}
	return nil
}
