package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"

	"github.com/estkit/estkit"
)

// CACerts returns the CA certificates of the server (RFC 7030 4.1), in the
// order the server sent them: for estd the issuing CA, then the root. The
// server is authenticated as for every call (TrustAnchors or the system
// roots); before any anchor is known, use Bootstrap instead.
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	r, err := c.roundTrip(ctx, c.httpClient(), est.OpCACerts, nil)
	if err != nil {
		return nil, err
	}
	return certsOnly(est.OpCACerts, r)
}

// CSRAttrs returns the attributes the server asks requests to carry
// (RFC 7030 4.5). When the server has none to ask for it answers 204 or 404
// (4.5.2), and CSRAttrs returns an empty list and no error.
func (c *Client) CSRAttrs(ctx context.Context) (est.CSRAttrs, error) {
	r, err := c.roundTrip(ctx, c.httpClient(), est.OpCSRAttrs, nil)
	var e *Error
	if errors.As(err, &e) && e.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.status == http.StatusNoContent || len(bytes.TrimSpace(r.body)) == 0 {
		return nil, nil
	}
	der, err := decodeBody(r.body)
	if err != nil {
		return nil, malformed(est.OpCSRAttrs, "%s (%s)", err, r.describe())
	}
	attrs, err := est.ParseCSRAttrs(der)
	if err != nil {
		return nil, malformed(est.OpCSRAttrs, "%s (%s)", est.Detail(err), r.describe())
	}
	return attrs, nil
}

// Enrollment is what the server issued.
type Enrollment struct {
	// Certificate is the certificate issued: the one for the request's key
	// (Enroll, Reenroll) or for the generated key (ServerKeyGen).
	Certificate *x509.Certificate
	// Extra holds the other certificates of the response, in order (some
	// servers add the issuing chain); usually empty.
	Extra []*x509.Certificate

	// Key is the private key the server generated (ServerKeyGen only); nil
	// when KeyEncrypted.
	Key crypto.Signer
	// KeyDER is that key as the server sent it: PKCS#8, PKCS#1 or SEC 1
	// DER (once decrypted, when the server encrypted it), or CMS
	// EnvelopedData while KeyEncrypted.
	KeyDER []byte
	// KeyEncrypted reports a key encrypted for the client (RFC 7030 4.4.2,
	// smime-type=server-generated-key) that ServerKeyGen could not decrypt
	// for want of the key (see Client.KeyEncryptionKey); DecryptKey opens it.
	KeyEncrypted bool
}

// TLSCertificate returns Certificate with key (nil: the generated Key) for
// TLS client authentication, as Client.Certificate wants it for Reenroll. The
// extra certificates that are not self-signed are sent as its chain.
func (e *Enrollment) TLSCertificate(key crypto.Signer) *tls.Certificate {
	if key == nil {
		key = e.Key
	}
	tc := &tls.Certificate{Certificate: [][]byte{e.Certificate.Raw}, PrivateKey: key, Leaf: e.Certificate}
	for _, c := range e.Extra {
		if !selfSigned(c) {
			tc.Certificate = append(tc.Certificate, c.Raw)
		}
	}
	return tc
}

// Enroll requests a certificate for csr, a DER PKCS#10 request (pass
// req.Raw for an *x509.CertificateRequest), with /simpleenroll (RFC 7030
// 4.2.1). The request must parse; its signature is left to the server. A
// pending request (202) is polled until ctx's deadline.
func (c *Client) Enroll(ctx context.Context, csr []byte) (*Enrollment, error) {
	return c.enroll(ctx, est.OpSimpleEnroll, csr)
}

// Reenroll renews or rekeys a certificate with /simplereenroll (RFC 7030
// 4.2.2): csr is a DER PKCS#10 request with the subject and subjectAltName of
// the certificate being renewed, for the same or a new key, and
// Client.Certificate must be that certificate (with its key) unless the
// server accepts other credentials.
func (c *Client) Reenroll(ctx context.Context, csr []byte) (*Enrollment, error) {
	return c.enroll(ctx, est.OpSimpleReenroll, csr)
}

// RenewalCSR returns a DER PKCS#10 request for key with the Subject and
// subjectAltName of cert, byte for byte, as Reenroll needs them (RFC 7030
// 4.2.2): key is cert's own key to renew, or a new one to rekey.
func RenewalCSR(cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	req := &x509.CertificateRequest{RawSubject: cert.RawSubject}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(est.OIDSubjectAltName) {
			req.ExtraExtensions = append(req.ExtraExtensions, ext)
		}
	}
	return x509.CreateCertificateRequest(rand.Reader, req, key)
}

func (c *Client) enroll(ctx context.Context, op est.Operation, csr []byte) (*Enrollment, error) {
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("est: %s: the CSR does not parse: %w", op, err)
	}
	r, err := c.roundTrip(ctx, c.httpClient(), op, est.EncodeBase64(csr))
	if err != nil {
		return nil, err
	}
	return enrollment(op, r, req.PublicKey)
}

// enrollment reads r, the certs-only answer to an enrollment for the key
// pub.
func enrollment(op est.Operation, r *response, pub crypto.PublicKey) (*Enrollment, error) {
	certs, err := certsOnly(op, r)
	if err != nil {
		return nil, err
	}
	leaf, extra, err := pickLeaf(certs, pub, "the request's key")
	if err != nil {
		return nil, malformed(op, "%s", err)
	}
	return &Enrollment{Certificate: leaf, Extra: extra}, nil
}

// ServerKeyGen asks the server to generate a key pair and certify it
// (RFC 7030 4.4). csr is a DER PKCS#10 request naming the subject and
// subjectAltName; the server decides the key type (estd follows the type of
// the request's key). The result holds the key and the certificate for it,
// checked to match; the response parts may come in either order
// (RFC 7030 4.4.2).
func (c *Client) ServerKeyGen(ctx context.Context, csr []byte) (*Enrollment, error) {
	const op = est.OpServerKeyGen
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("est: %s: the CSR does not parse: %w", op, err)
	}
	r, err := c.roundTrip(ctx, c.httpClient(), op, est.EncodeBase64(csr))
	if err != nil {
		return nil, err
	}
	return c.serverKeyGenResult(r, req)
}

// serverKeyGenResult reads the answer to the serverkeygen request req.
func (c *Client) serverKeyGenResult(r *response, req *x509.CertificateRequest) (*Enrollment, error) {
	const op = est.OpServerKeyGen
	skg, err := est.ParseServerKeyGen(multipartType(r), r.body)
	if err != nil {
		return nil, malformed(op, "%s (%s)", est.Detail(err), r.describe())
	}
	certs, err := est.ParseCertsOnly(skg.Certs)
	if err != nil {
		return nil, malformed(op, "certificate part: %s", est.Detail(err))
	}
	e := &Enrollment{KeyDER: skg.Key, KeyEncrypted: skg.KeyEncrypted}
	var pub crypto.PublicKey
	if !skg.KeyEncrypted {
		if e.Key, err = parsePrivateKey(skg.Key); err != nil {
			return nil, malformed(op, "key part: %s", err)
		}
		pub = e.Key.Public()
	}
	if e.Certificate, e.Extra, err = pickLeaf(certs, pub, "the key returned"); err != nil {
		return nil, malformed(op, "%s", err)
	}
	if e.KeyEncrypted {
		if err := c.decryptServerKey(e, req); err != nil {
			return nil, fmt.Errorf("est: %s: %w", op, err)
		}
	}
	return e, nil
}
