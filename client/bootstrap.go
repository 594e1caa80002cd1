package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/estkit/estkit"
)

// BootstrapResult is what Bootstrap fetched from a server it did not
// authenticate: nothing in it is trusted until Fingerprint has been compared
// with one obtained out of band.
type BootstrapResult struct {
	// Certs are the CA certificates in the order the server sent them.
	Certs []*x509.Certificate
	// Root is the self-signed certificate among Certs that the TLS server
	// certificate of the connection chains to (or, when it chains to none,
	// the first self-signed one and Bootstrap also returns an error).
	Root *x509.Certificate
	// Fingerprint is the SHA-256 fingerprint of Root (see Fingerprint).
	Fingerprint string
}

// Matches reports whether fingerprint, as a person would paste it, is the
// fingerprint of Root: case, colons, spaces and an "sha256 Fingerprint="
// prefix as openssl prints it do not matter.
func (b *BootstrapResult) Matches(fingerprint string) bool {
	norm := func(s string) string {
		if _, after, ok := strings.Cut(s, "="); ok {
			s = after
		}
		return strings.Map(func(r rune) rune {
			switch r {
			case ':', ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, strings.ToUpper(s))
	}
	want := norm(fingerprint)
	return len(want) == 2*sha256.Size && want == norm(b.Fingerprint)
}

// Anchors returns a pool holding Root, for Client.TrustAnchors once the
// fingerprint has been checked.
func (b *BootstrapResult) Anchors() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(b.Root)
	return p
}

// Fingerprint returns the SHA-256 fingerprint of cert in the form
// `openssl x509 -fingerprint -sha256` prints ("AB:CD:...").
func Fingerprint(cert *x509.Certificate) string { return est.Fingerprint(cert) }

// Bootstrap is the bootstrap distribution of CA certificates (RFC 7030
// 4.1.1): it fetches /cacerts WITHOUT authenticating the server, checks that
// the certificates returned chain to a self-signed root among them, and that
// the TLS server certificate of that same connection chains to that root and
// is valid for the server's name. The caller must compare the result's
// Fingerprint with one obtained out of band (Matches), and only then trust
// it, for example with c.TrustAnchors = result.Anchors().
//
// No credentials are sent: neither Basic nor the TLS client certificate.
// Bootstrap uses its own connection; when HTTPClient is set and has an
// *http.Transport, that transport's settings (proxy, dialer) are kept.
//
// When the TLS server certificate does not chain to any returned root,
// Bootstrap returns the result together with an error matching
// ErrServerMismatch: that root would not authenticate this server later.
func (c *Client) Bootstrap(ctx context.Context) (*BootstrapResult, error) {
	const op = est.OpCACerts
	u, err := c.baseURL()
	if err != nil {
		return nil, err
	}
	var base *http.Transport
	timeout := DefaultTimeout
	if c.HTTPClient != nil {
		base, _ = c.HTTPClient.Transport.(*http.Transport)
		timeout = c.HTTPClient.Timeout
	}
	cfg := &tls.Config{}
	if base != nil && base.TLSClientConfig != nil {
		cfg = base.TLSClientConfig.Clone()
		cfg.Certificates, cfg.GetClientCertificate = nil, nil
	}
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	// The server is not authenticated in this one call: the point of
	// bootstrapping is that there is no anchor yet. What it sends is checked
	// below and then by the caller, out of band.
	cfg.InsecureSkipVerify = true
	tr := newTransport(base, cfg)
	tr.DisableKeepAlives = true
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		Timeout:   timeout,
		// A redirect would be another connection, with another certificate.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r, err := c.roundTrip(ctx, hc, op, nil)
	if err != nil {
		return nil, err
	}
	if r.tls == nil || len(r.tls.PeerCertificates) == 0 {
		return nil, fmt.Errorf("est: bootstrap: no TLS server certificate")
	}
	certs, err := certsOnly(op, r)
	if err != nil {
		return nil, err
	}
	roots, err := checkChain(certs)
	if err != nil {
		return nil, fmt.Errorf("est: bootstrap: %w: %v", ErrMalformedResponse, err)
	}
	res := &BootstrapResult{Certs: certs, Root: roots[0]}
	peers := r.tls.PeerCertificates
	inter := x509.NewCertPool()
	for _, cert := range certs {
		if !selfSigned(cert) {
			inter.AddCert(cert)
		}
	}
	for _, cert := range peers[1:] {
		inter.AddCert(cert)
	}
	var mismatch error
	for i, root := range roots {
		pool := x509.NewCertPool()
		pool.AddCert(root)
		_, err := peers[0].Verify(x509.VerifyOptions{
			DNSName:       u.Hostname(),
			Roots:         pool,
			Intermediates: inter,
			CurrentTime:   c.now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err == nil {
			res.Root, mismatch = root, nil
			break
		}
		if i == 0 {
			mismatch = err
		}
	}
	res.Fingerprint = Fingerprint(res.Root)
	if mismatch != nil {
		return res, fmt.Errorf("est: bootstrap: %w: %v", ErrServerMismatch, mismatch)
	}
	return res, nil
}

// selfSigned reports whether c is a self-signed certificate. A self-signature
// with an algorithm Go no longer accepts (SHA-1) still counts: a root's own
// signature is not what makes it trusted.
func selfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	var insecure x509.InsecureAlgorithmError
	return err == nil || errors.As(err, &insecure)
}

// checkChain checks that certs are consistent: at least one self-signed
// root, and every other certificate signed by a CA among certs that itself
// chains to a root. It returns the roots, in order. Validity periods are not
// checked here: a CA response may carry an old root-rollover certificate.
func checkChain(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	good := make(map[*x509.Certificate]bool, len(certs))
	for _, c := range certs {
		if selfSigned(c) {
			roots = append(roots, c)
			good[c] = true
		}
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("none of the %d CA certificates is a self-signed root", len(certs))
	}
	for grown := true; grown; {
		grown = false
		for _, c := range certs {
			if good[c] {
				continue
			}
			for _, p := range certs {
				if good[p] && bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
					good[c], grown = true, true
					break
				}
			}
		}
	}
	for _, c := range certs {
		if !good[c] {
			return nil, fmt.Errorf("CA certificate %q does not chain to a root among those returned", c.Subject)
		}
	}
	return roots, nil
}
