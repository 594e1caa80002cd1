package client

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 5 ", 5 * time.Second, true},
		{"0", 0, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Sunday, 01-Mar-26 12:00:30 GMT", 30 * time.Second, true}, // RFC 850
		{"Sun Mar  1 12:01:00 2026", time.Minute, true},            // asctime
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"99999999999999999999", time.Duration(1<<63-1) / time.Second * time.Second, true},
		{"", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"tomorrow", 0, false},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestMessage(t *testing.T) {
	for in, want := range map[string]string{
		"authentication required\n":           "authentication required",
		"  two\r\nlines\t here  ":             "two lines here",
		"bell\a and \x00nul":                  "bell and nul",
		"bad \xff utf-8":                      "bad ? utf-8",
		"":                                    "",
		strings.Repeat("é", 400):              strings.Repeat("é", 254) + "...",
		strings.Repeat("a", maxMessage):       strings.Repeat("a", maxMessage),
		strings.Repeat("a", maxMessage+1):     strings.Repeat("a", maxMessage-3) + "...",
		"<html><body>Forbidden</body></html>": "<html><body>Forbidden</body></html>",
	} {
		got := message([]byte(in))
		if got != want || len(got) > maxMessage {
			t.Errorf("message(%.20q) = %.40q (%d bytes), want %.40q", in, got, len(got), want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	for status, want := range map[int]*est.Kind{
		400: est.ErrBadRequest, 401: est.ErrUnauthorized, 403: est.ErrForbidden, 404: est.ErrNotFound,
		405: est.ErrMethod, 413: est.ErrTooLarge, 415: est.ErrMediaType, 429: est.ErrTooManyRequests,
		500: est.ErrInternal, 501: est.ErrNotImplemented, 502: est.ErrInternal, 503: est.ErrUnavailable,
		202: nil, 302: nil, 409: nil,
	} {
		e := &Error{Op: est.OpSimpleEnroll, StatusCode: status}
		if e.Kind() != want {
			t.Errorf("%d: kind %v, want %v", status, e.Kind(), want)
		}
		if e.Is(ErrRejected) != (status/100 == 4) || e.Is(ErrServerFailure) != (status/100 == 5) {
			t.Errorf("%d: class wrong", status)
		}
		if want == nil && e.Is((*est.Kind)(nil)) {
			t.Errorf("%d matches a nil kind", status)
		}
	}
	e := &Error{Op: est.OpCACerts, StatusCode: 418, Message: "short and stout"}
	if got := e.Error(); got != "est: cacerts: 418 I'm a teapot: short and stout" {
		t.Errorf("Error() = %q", got)
	}
}

func TestDecodeBody(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"MAA=", "\x30\x00", true},
		{"MAA", "\x30\x00", true},
		{" M\r\nAA=\n", "\x30\x00", true},
		{"\x30\x03\x02\x01\x00", "\x30\x03\x02\x01\x00", true},
		{"-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n", "\x30\x00", true},
		{"", "", false},
		{"   \n", "", false},
		{"<html>", "", false},
	} {
		got, err := decodeBody([]byte(tc.in))
		if (err == nil) != tc.ok || string(got) != tc.want {
			t.Errorf("decodeBody(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestMultipartType(t *testing.T) {
	body := []byte("\r\n--abc123\r\nContent-Type: application/pkcs8\r\n\r\nMAA=\r\n--abc123--\r\n")
	for ct, want := range map[string]string{
		"multipart/mixed; boundary=xyz":   "multipart/mixed; boundary=xyz",
		"multipart/related; boundary=xyz": "multipart/mixed; boundary=xyz",
		"":                                "multipart/mixed; boundary=abc123",
		"application/octet-stream":        "multipart/mixed; boundary=abc123",
	} {
		r := &response{header: http.Header{}, body: body}
		if ct != "" {
			r.header.Set("Content-Type", ct)
		}
		if got := multipartType(r); got != want {
			t.Errorf("multipartType(%q) = %q, want %q", ct, got, want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ server, label, want string }{
		{"est.example", "", "https://est.example/.well-known/est/cacerts"},
		{"est.example:8443", "tls-server", "https://est.example:8443/.well-known/est/tls-server/cacerts"},
		{"[::1]:8443", "", "https://[::1]:8443/.well-known/est/cacerts"},
		{"HTTPS://est.example/", "", "https://est.example/.well-known/est/cacerts"},
		{"https://est.example/pki/", "a", "https://est.example/pki/.well-known/est/a/cacerts"},
	} {
		c := &Client{Server: tc.server, Label: tc.label}
		u, err := c.endpoint(est.OpCACerts)
		if err != nil || u.String() != tc.want {
			t.Errorf("Server %q Label %q: %v %v, want %s", tc.server, tc.label, u, err, tc.want)
		}
	}
}
