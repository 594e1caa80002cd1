package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/estkit/estkit"
)

// Defaults of Client.
const (
	// MaxResponseSize bounds every response body the client reads.
	MaxResponseSize = 1 << 20
	// DefaultTimeout bounds one HTTP exchange of the HTTP client built when
	// Client.HTTPClient is nil. Waiting between polls is not part of it.
	DefaultTimeout = 60 * time.Second
	// DefaultMaxWait is the longest single wait when Client.MaxWait is 0: a
	// server asking for more is polled again after DefaultMaxWait.
	DefaultMaxWait = 10 * time.Minute
	// DefaultRetryAfter is the wait after a 202 Accepted without a usable
	// Retry-After (RFC 7030 4.2.3 requires one; not every server sends it).
	DefaultRetryAfter = 60 * time.Second
	// MinWait is the shortest wait before polling again, whatever the server
	// asks, so that a Retry-After of 0 or in the past does not spin.
	MinWait = time.Second
	// DefaultUserAgent is the User-Agent when Client.UserAgent is "".
	DefaultUserAgent = "estkit-client"
)

// Client talks to one EST server. Its zero value is usable once Server is
// set: it then trusts the system roots, presents no credentials, and waits
// on real time. A Client is safe for concurrent use; its fields may be
// changed between calls but not during them (the HTTP client built from
// TrustAnchors and Certificate is rebuilt when either changes, as after
// Bootstrap). A Client must not be copied after first use.
type Client struct {
	// Server is the EST server: "host", "host:port", or an https URL whose
	// path, if any, is prefixed to /.well-known/est (for a server behind a
	// path-routing proxy). Plain http is refused: EST runs over TLS.
	Server string
	// Label is the CA label (RFC 7030 3.2.2); "" for the default CA.
	Label string

	// HTTPClient sends the requests. When nil, the client builds one from
	// TrustAnchors and Certificate with TLS 1.2 as the minimum (RFC 8996);
	// when set, those two fields are ignored except by Bootstrap, and the
	// caller is responsible for the TLS configuration.
	HTTPClient *http.Client
	// TrustAnchors authenticates the server: the explicit trust anchor
	// database of RFC 7030 3.6.1. Nil means the system roots.
	TrustAnchors *x509.CertPool
	// Certificate is presented for TLS client authentication (RFC 7030
	// 3.3.2) whenever the server asks for one: a manufacturer certificate for
	// enrollment, the certificate being renewed for Reenroll. Its PrivateKey
	// may be any crypto.Signer.
	Certificate *tls.Certificate
	// Username and Password are sent with HTTP Basic (RFC 7030 3.2.3) on
	// every request but /cacerts, when Username is not "".
	Username, Password string
	// KeyEncryptionKey is the symmetric key (AES, 16, 24 or 32 bytes) shared
	// with the server that ServerKeyGen decrypts the generated private key
	// with when the CSR carried DecryptKeyIdentifier (RFC 7030 4.4.1.1). A
	// key encrypted to AsymmetricDecryptKeyIdentifier is decrypted with
	// Certificate's key when the identifier is that certificate's (4.4.1.2).
	KeyEncryptionKey []byte
	// UserAgent is sent as User-Agent; "" means DefaultUserAgent.
	UserAgent string

	// Clock returns the current time; nil means time.Now. It dates
	// Retry-After HTTP-dates and is compared with context deadlines, so it
	// must run at the pace of real time (a fake clock starting at time.Now
	// and advanced by Sleep does).
	Clock func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() then; nil
	// means a timer. Tests replace it so that they never sleep.
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxWait caps one wait before polling again; 0 means DefaultMaxWait.
	MaxWait time.Duration
	// OnWait, when set, is called before each wait with the operation, the
	// delay and a one-line reason (for example "202 Accepted: pending
	// approval"), so that a command line tool can tell what it waits for.
	OnWait func(op est.Operation, d time.Duration, reason string)

	mu     sync.Mutex
	hc     *http.Client // built from the fields below when HTTPClient is nil
	hcKey  transportKey
	hcDone bool
}

// transportKey is what the built HTTP client depends on.
type transportKey struct {
	anchors *x509.CertPool
	cert    *tls.Certificate
}

func (c *Client) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// baseURL returns the server's https URL without a trailing slash.
func (c *Client) baseURL() (*url.URL, error) {
	s := strings.TrimSpace(c.Server)
	if s == "" {
		return nil, errors.New("est: Client.Server is not set")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("est: invalid server %q: %w", c.Server, err)
	}
	if !strings.EqualFold(u.Scheme, "https") {
		return nil, fmt.Errorf("est: invalid server %q: EST needs https (RFC 7030 3.3)", c.Server)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("est: invalid server %q: want host[:port] or https://host[:port][/path]", c.Server)
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// endpoint returns the URL of op under c.Label.
func (c *Client) endpoint(op est.Operation) (*url.URL, error) {
	if c.Label != "" && !est.ValidLabel(c.Label) {
		return nil, fmt.Errorf("est: invalid label %q", c.Label)
	}
	u, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	u.Path += est.Path(c.Label, op)
	return u, nil
}

// httpClient returns c.HTTPClient, or the client built from the TLS fields,
// rebuilt when TrustAnchors or Certificate changed (as after Bootstrap).
func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := transportKey{c.TrustAnchors, c.Certificate}
	if c.hcDone && c.hcKey == key {
		return c.hc
	}
	if c.hc != nil {
		c.hc.CloseIdleConnections()
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: key.anchors}
	if cert := key.cert; cert != nil {
		// Always present the certificate, whatever CA names the server
		// lists: estd and others verify it per request, not in the handshake.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	c.hc = &http.Client{Transport: newTransport(nil, cfg), Timeout: DefaultTimeout}
	c.hcKey, c.hcDone = key, true
	return c.hc
}

// newTransport clones base (or http.DefaultTransport) with TLS configuration cfg.
func newTransport(base *http.Transport, cfg *tls.Config) *http.Transport {
	if base == nil {
		if dt, ok := http.DefaultTransport.(*http.Transport); ok {
			base = dt
		} else {
			base = &http.Transport{Proxy: http.ProxyFromEnvironment}
		}
	}
	tr := base.Clone()
	tr.TLSClientConfig = cfg
	tr.ForceAttemptHTTP2 = true
	return tr
}

// response is a success answer read in full.
type response struct {
	status int
	header http.Header
	body   []byte
	tls    *tls.ConnectionState
}

// roundTrip sends op with body (nil for GET) until the server answers other
// than 202, or 503/429 with Retry-After, and returns a 2xx answer; any other
// status is an *Error.
func (c *Client) roundTrip(ctx context.Context, hc *http.Client, op est.Operation, body []byte) (*response, error) {
	u, err := c.endpoint(op)
	if err != nil {
		return nil, err
	}
	for {
		resp, err := c.send(ctx, hc, op, u, body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 && resp.StatusCode != http.StatusAccepted {
			b, err := readBody(op, resp)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			return &response{status: resp.StatusCode, header: resp.Header, body: b, tls: resp.TLS}, nil
		}
		e := &Error{Op: op, StatusCode: resp.StatusCode, Message: readMessage(resp)}
		resp.Body.Close()
		d, again := c.retryAfter(resp, e)
		if !again {
			return nil, e
		}
		if err := c.wait(ctx, e, d); err != nil {
			return nil, err
		}
	}
}

// retryAfter reports whether resp, whose error is e, asks to try again and
// after how long: a 202 (after its Retry-After, or DefaultRetryAfter), or a
// 503 or 429 with a Retry-After. It records the Retry-After in e.
func (c *Client) retryAfter(resp *http.Response, e *Error) (time.Duration, bool) {
	d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	if ok {
		e.RetryAfter = d
	}
	switch {
	case resp.StatusCode == http.StatusAccepted:
		if !ok {
			d = DefaultRetryAfter
		}
		return d, true
	case ok && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests):
		return d, true
	}
	return 0, false
}

// send makes one request.
func (c *Client) send(ctx context.Context, hc *http.Client, op est.Operation, u *url.URL, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, op.Method(), u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("est: %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", est.MediaPKCS10)
		// RFC 8951 made it unnecessary; servers built on RFC 7030 alone
		// may still look for it.
		req.Header.Set("Content-Transfer-Encoding", "base64")
	}
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	if c.Username != "" && op != est.OpCACerts {
		req.SetBasicAuth(c.Username, c.Password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("est: %s: %w", op, err)
	}
	return resp, nil
}

// readBody reads a success body, refusing one over MaxResponseSize.
func readBody(op est.Operation, resp *http.Response) ([]byte, error) {
	tooLarge := fmt.Errorf("est: %s: %w: over %d bytes", op, ErrResponseTooLarge, MaxResponseSize)
	if resp.ContentLength > MaxResponseSize {
		return nil, tooLarge
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("est: %s: reading the response: %w", op, err)
	}
	if len(b) > MaxResponseSize {
		return nil, tooLarge
	}
	return b, nil
}

// readMessage returns the text of an error body, if it has one.
func readMessage(resp *http.Response) string {
	// Enough for any one-line reason; the rest is not read.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxMessage))
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "" && !strings.HasPrefix(mt, "text/") && !strings.HasSuffix(mt, "json") && !strings.HasSuffix(mt, "+xml") {
		return "" // binary: nothing to show
	}
	return message(b)
}
