package conformance

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/estkit/estkit"
)

const (
	versionTLS10 = tls.VersionTLS10
	versionTLS11 = tls.VersionTLS11
	dialTimeout  = 15 * time.Second
)

// Cipher suite sets a TLS 1.2 EST server must not negotiate (RFC 7030
// 3.3.1 defers to BCP 195, RFC 9325 4.1-4.2): CBC modes (ECDHE included:
// an ECDSA-keyed server could never negotiate the RSA key exchange ones
// anyway), static RSA key exchange, and 3DES and RC4 (RFC 7465).
var (
	suitesCBC = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	suitesRSAKex = []uint16{
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA256,
	}
	suitesWeak = []uint16{
		tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA,
		tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA,
		tls.TLS_RSA_WITH_RC4_128_SHA,
	}
)

// allSuites is every TLS 1.0-1.2 suite Go implements, to offer with an old
// protocol version so that only the version can make the server refuse.
func allSuites() []uint16 {
	var ids []uint16
	for _, cs := range tls.CipherSuites() {
		ids = append(ids, cs.ID)
	}
	for _, cs := range tls.InsecureCipherSuites() {
		ids = append(ids, cs.ID)
	}
	return ids
}

func tlsVersionCheck(v uint16) func(context.Context, *session) outcome {
	return func(ctx context.Context, s *session) outcome {
		what := "a " + tls.VersionName(v) + "-only client"
		return s.tlsRefused(ctx, what, &tls.Config{MinVersion: v, MaxVersion: v, CipherSuites: allSuites()})
	}
}

func tlsSuitesCheck(kind string, suites []uint16) func(context.Context, *session) outcome {
	return func(ctx context.Context, s *session) outcome {
		what := fmt.Sprintf("a TLS 1.2 client offering only the %d %s suites", len(suites), kind)
		return s.tlsRefused(ctx, what, &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
	}
}

// tlsRefused dials with cfg, which the server must refuse, and then with a
// permitted configuration, which it must accept: a server that accepts
// nobody proves nothing.
func (s *session) tlsRefused(ctx context.Context, what string, cfg *tls.Config) outcome {
	// Only whether the server negotiates matters here, not who it is.
	cfg.InsecureSkipVerify = true
	cfg.ServerName = s.host
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", s.hostport)
	if err == nil {
		st := conn.(*tls.Conn).ConnectionState()
		conn.Close()
		return fail("%s: the server negotiated %s with %s", what, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if ctx.Err() != nil {
		return fail("%s: %v", what, err)
	}
	if cerr := s.tlsControl(ctx); cerr != nil {
		return fail("%s: refused (%v), but a TLS 1.2+ client with the default suites cannot connect either: %v", what, err, cerr)
	}
	return pass("%s: refused (%v); a TLS 1.2+ client connects", what, err)
}

// tlsControl connects with TLS 1.2 or later and the default suites,
// authenticating the server.
func (s *session) tlsControl(ctx context.Context) error {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout}, Config: s.tlsConfig(nil)}
	conn, err := d.DialContext(ctx, "tcp", s.hostport)
	if err != nil {
		return err
	}
	return conn.Close()
}

// checkPlainHTTP asks for /cacerts in plain HTTP on the server's port: it
// must not be served (RFC 7030 3.3: EST runs over TLS).
func checkPlainHTTP(ctx context.Context, s *session) outcome {
	u := "http://" + s.hostport + s.base.Path + est.Path(s.cfg.ClientLabel, est.OpCACerts)
	hc := &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: dialTimeout}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fail("%v", err)
	}
	var got string
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fail("GET %s: %v", u, err)
		}
		got = fmt.Sprintf("no HTTP answer (%v)", err)
	} else {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		r := &rawResult{status: resp.StatusCode, header: resp.Header, body: body}
		if resp.StatusCode/100 == 2 && len(certsIn(r)) > 0 {
			return fail("GET %s: %s with the CA certificates: EST is served over plain HTTP", u, resp.Status)
		}
		got = r.describe()
	}
	if cerr := s.tlsControl(ctx); cerr != nil {
		return fail("plain HTTP got %s, but TLS cannot connect either: %v", got, cerr)
	}
	return pass("GET %s: %s; not served", u, got)
}
