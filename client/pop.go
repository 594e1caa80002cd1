package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"

	"github.com/estkit/estkit"
)

// Proof-of-possession linking (RFC 7030 section 3.5): the CSR carries, in
// its challengePassword, the channel binding of the TLS connection it is
// sent on (est.ChannelBinding: tls-unique on TLS 1.2, tls-exporter of RFC
// 9266 on TLS 1.3). The binding is known only once the connection is up, so
// the linked methods take the CSR's key and sign the CSR again with the
// binding in it. They keep the request on one connection: a transport of
// their own with at most one connection to the server first fetches
// /cacerts, which opens the connection; the binding is read from it; the
// request then goes on that same connection (HTTP/1.1 keep-alive or one
// HTTP/2 connection), and is abandoned, then tried once more from the start,
// if the transport picked another. A request polled again after 202 or 503
// is linked again to the connection it goes on.

// AsksForLink reports whether a server's csrattrs ask for challengePassword,
// which RFC 7030 3.5 uses to ask for a CSR linked to its TLS connection.
func AsksForLink(attrs est.CSRAttrs) bool {
	return slices.ContainsFunc(attrs.OIDs(), est.OIDChallengePassword.Equal)
}

// EnrollLinked is Enroll with csr linked to the TLS connection it is sent on
// (RFC 7030 3.5): its challengePassword is set to the connection's channel
// binding and it is signed again with key, its own key, with its signature
// algorithm. A challengePassword csr already has is replaced.
func (c *Client) EnrollLinked(ctx context.Context, csr []byte, key crypto.Signer) (*Enrollment, error) {
	return c.enrollLinked(ctx, est.OpSimpleEnroll, csr, key)
}

// ReenrollLinked is Reenroll with csr linked to the TLS connection it is
// sent on, as EnrollLinked does.
func (c *Client) ReenrollLinked(ctx context.Context, csr []byte, key crypto.Signer) (*Enrollment, error) {
	return c.enrollLinked(ctx, est.OpSimpleReenroll, csr, key)
}

// ServerKeyGenLinked is ServerKeyGen with csr linked to the TLS connection
// it is sent on, as EnrollLinked does; key is the key csr was made with,
// not the one the server generates.
func (c *Client) ServerKeyGenLinked(ctx context.Context, csr []byte, key crypto.Signer) (*Enrollment, error) {
	const op = est.OpServerKeyGen
	r, req, err := c.sendLinked(ctx, op, csr, key)
	if err != nil {
		return nil, err
	}
	return c.serverKeyGenResult(r, req)
}

func (c *Client) enrollLinked(ctx context.Context, op est.Operation, csr []byte, key crypto.Signer) (*Enrollment, error) {
	r, req, err := c.sendLinked(ctx, op, csr, key)
	if err != nil {
		return nil, err
	}
	return enrollment(op, r, req.PublicKey)
}

// sendLinked sends csr, linked, for op and returns the answer and the
// request as first given.
func (c *Client) sendLinked(ctx context.Context, op est.Operation, csr []byte, key crypto.Signer) (*response, *x509.CertificateRequest, error) {
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, nil, fmt.Errorf("est: %s: the CSR does not parse: %w", op, err)
	}
	if key == nil {
		return nil, nil, fmt.Errorf("est: %s: linking the CSR needs its key", op)
	}
	if _, err := est.SetRequestAttributes(csr, key, est.ChallengePasswordAttribute("check")); err != nil {
		return nil, nil, fmt.Errorf("est: %s: cannot link the CSR: %w", op, err)
	}
	warm, err := c.endpoint(est.OpCACerts)
	if err != nil {
		return nil, nil, err
	}
	base := c.httpClient()
	var tr *http.Transport
	switch t := base.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, nil, fmt.Errorf("est: %s: linking a CSR to its TLS connection needs an *http.Transport, and Client.HTTPClient has a %T", op, base.Transport)
	}
	tr.MaxConnsPerHost = 1
	tr.DisableKeepAlives = false
	defer tr.CloseIdleConnections()
	l := &linker{tr: tr, key: key, warmup: warm.String(), userAgent: c.userAgent()}
	hc := &http.Client{Transport: l, Timeout: base.Timeout, CheckRedirect: base.CheckRedirect, Jar: base.Jar}
	r, err := c.roundTrip(ctx, hc, op, est.EncodeBase64(csr))
	if err != nil {
		return nil, nil, err
	}
	return r, req, nil
}

func (c *Client) userAgent() string {
	if c.UserAgent != "" {
		return c.UserAgent
	}
	return DefaultUserAgent
}

// linker is an http.RoundTripper that links the CSR of each POST to the
// connection the POST goes on.
type linker struct {
	tr        *http.Transport
	key       crypto.Signer
	warmup    string // URL fetched to open the connection
	userAgent string
}

// errOtherConn means the transport picked another connection than the one
// the CSR was linked to.
var errOtherConn = errors.New("the request would have gone on another TLS connection than the one the CSR is linked to")

// tlsState is what a TLS connection tells of itself (*tls.Conn).
type tlsState interface {
	ConnectionState() tls.ConnectionState
}

func (l *linker) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.GetBody == nil {
		return l.tr.RoundTrip(req)
	}
	rc, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if req.Body != nil {
		req.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	csr, err := est.DecodeBase64(body)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		conn, err := l.connect(req.Context())
		if err != nil {
			return nil, fmt.Errorf("opening the connection to link the CSR to: %w", err)
		}
		cs := conn.(tlsState).ConnectionState()
		link, err := est.LinkValue(&cs)
		if err != nil {
			return nil, fmt.Errorf("cannot link the CSR: %w", err)
		}
		linked, err := est.SetRequestAttributes(csr, l.key, est.ChallengePasswordAttribute(link))
		if err != nil {
			return nil, fmt.Errorf("cannot link the CSR: %w", err)
		}
		b := est.EncodeBase64(linked)
		ctx, cancel := context.WithCancelCause(req.Context())
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Conn != conn {
				cancel(errOtherConn)
			}
		}}
		r2 := req.Clone(httptrace.WithClientTrace(ctx, trace))
		r2.Body = io.NopCloser(bytes.NewReader(b))
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		r2.ContentLength = int64(len(b))
		resp, err := l.tr.RoundTrip(r2)
		if err != nil {
			cause := context.Cause(ctx)
			cancel(nil)
			if errors.Is(cause, errOtherConn) {
				if attempt == 0 {
					continue
				}
				return nil, fmt.Errorf("%w; the server seems to close the connection after each request", errOtherConn)
			}
			return nil, err
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		return resp, nil
	}
}

// connect fetches the warm-up URL, which leaves the connection open, and
// returns that connection.
func (l *linker) connect(ctx context.Context) (net.Conn, error) {
	var conn net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, l.warmup, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", l.userAgent)
	resp, err := l.tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// Read the answer whole, whatever it is, so the connection stays open.
	io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseSize))
	resp.Body.Close()
	if conn == nil {
		return nil, errors.New("the transport did not say which connection it used")
	}
	if _, ok := conn.(tlsState); !ok {
		return nil, fmt.Errorf("the transport's connection (%T) is not a TLS connection", conn)
	}
	return conn, nil
}

// cancelOnClose releases a request's context once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}
