package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// hostile is one request of the hostile-input catalogue.
type hostile struct {
	name   string
	method string // default GET
	target string // request-target, sent byte for byte
	header []string
	// framing replaces the Content-Length estd would get for body; body is
	// then sent as is (chunked, lying or missing lengths).
	framing []string
	body    []byte
	// closeWrite ends the TLS stream (close_notify) after the request.
	closeWrite bool
	noHost     bool // no Host header
	certs      []tls.Certificate
	// h1 marks requests that only make sense as raw HTTP/1.1 bytes; the
	// others are sent a second time over HTTP/2 by net/http's client.
	h1 bool

	status int
	words  string // the one-line reason contains this
	// issues marks unusual but valid requests, answered 200 with a
	// certificate; everything else must leave the store as it was.
	issues bool
}

// TestHostileCatalogue sends estd what scanners, broken clients and
// attackers send (issue 7): every request gets its 4xx with a one-line
// reason (or a refused handshake), estd keeps serving, and nothing is
// issued but for the few unusual-but-valid requests marked so. Each request
// is sent as raw HTTP/1.1 bytes and, unless it only makes sense there, again
// over HTTP/2.
//
// Decisions the catalogue pins down:
//   - Percent-encoded unreserved characters name the same resource (RFC 3986
//     6.2.2.2): /.well-known/est/%63acerts is cacerts. An encoded slash is
//     not a separator: tls-server%2Fsimpleenroll is one segment, 404.
//   - Bodies are base64 (RFC 8951): white space and line breaks anywhere are
//     fine; PEM armour and raw DER are 400.
//   - Chunked bodies are HTTP/1.1 and accepted, also with a Content-Length
//     (RFC 9112 6.3: Transfer-Encoding wins); an unknown transfer coding is
//     net/http's 501 (RFC 9112 6.1), the one 5xx here. A body announced over
//     the limit is 413 at once.
//   - A CSR with over 100 attributes or requested extensions is 400; a
//     certificate is not issued with over 100 subjectAltNames or a subject
//     over 1 KiB (400). Keys other than P-256, P-384, Ed25519 and RSA
//     2048/3072/4096 are 400, 16384-bit RSA included.
//   - A client certificate estd revoked is refused (403) even alongside
//     valid Basic credentials.
//   - Manufacturer (IDevID) certificates authenticate whatever their
//     extended key usage: factory certificates often carry none or only
//     serverAuth, and RFC 7030 asks a client certificate for no EKU.
func TestHostileCatalogue(t *testing.T) {
	// Many requests fail authentication on purpose, all from loopback: the
	// rate limit on failures (tested on its own) would answer 429.
	s := estdtest.Start(t, estdtest.Options{Limits: estdtest.NoAuthLimits})
	now := time.Now()
	key := testpki.Key(t, ca.P256)
	good := testpki.CSR(t, key, "hostile-ok", nil, nil)
	b64 := est.EncodeBase64(good)
	basic := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(s.User+":"+s.Password))
	pkcs10 := "Content-Type: " + est.MediaPKCS10
	authed := []string{basic, pkcs10}
	enroll := "/.well-known/est/simpleenroll"
	cacerts := "/.well-known/est/cacerts"
	basicOf := func(userPass string) string {
		return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(userPass))
	}

	// Client certificates.
	selfSigned := selfSignedCert(t, now)
	ourCA := &testpki.CA{Cert: s.Daemon.CA.Cert, Key: s.Daemon.CA.Signer}
	expiredOurs, expiredOursKey := ourCA.Expired(t, "hostile-expired", now)
	putRecord(t, s, expiredOurs)
	unrecorded, unrecordedKey := ourCA.Device(t, "hostile-unrecorded", now)
	revoked, revokedKey := enrollBasic(t, s, "hostile-revoked")
	if err := s.Daemon.Store.Revoke(context.Background(), revoked.SerialNumber, 1, now); err != nil {
		t.Fatal(err)
	}
	notYet, notYetKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-future", NotBefore: now.Add(24 * time.Hour), NotAfter: now.Add(48 * time.Hour)})
	serverEKU, serverEKUKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-server-eku", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	noEKU, noEKUKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-no-eku", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), EKU: []x509.ExtKeyUsage{}})
	device, _ := s.Manufacturer.Device(t, "SN-stolen-cert", now)
	cert := func(c *x509.Certificate, k any) []tls.Certificate {
		return []tls.Certificate{{Certificate: [][]byte{c.Raw}, PrivateKey: k, Leaf: c}}
	}

	// CSRs crypto/x509 would not make, or that no one should send.
	csrCase := func(name string, der []byte, status int, words string) hostile {
		return hostile{name: name, method: "POST", target: enroll, header: authed, body: est.EncodeBase64(der), status: status, words: words}
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	other := testpki.Key(t, ca.P256)
	spki := func(k any) []byte {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	goodReq, err := x509.ParseCertificateRequest(good)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := key.(*ecdsa.PrivateKey)
	huge := newHugeRSA(t)
	offCurve := bytes.Clone(spki(key.Public()))
	offCurve[len(offCurve)-1] ^= 0x01 // the point's y no longer fits its x
	var manyAttrs []asn1.RawValue
	for i := range 2000 {
		manyAttrs = append(manyAttrs, attribute(t, asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, i}, "x"))
	}
	var manyExts []pkix.Extension
	for i := range 2000 {
		manyExts = append(manyExts, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 2, i}, Value: []byte{5, 0}})
	}
	manySANs := make([]string, 2000)
	for i := range manySANs {
		manySANs[i] = fmt.Sprintf("h%04d.example", i)
	}
	trailing := append(bytes.Clone(good), 0x05, 0x00)

	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []hostile{
		// Paths.
		{name: "no trailing slash", target: "/.well-known/est", status: 404, words: "not an EST path"},
		{name: "no operation", target: "/.well-known/est/", status: 404, words: "unknown operation"},
		{name: "estx", target: "/.well-known/estx/cacerts", status: 404, words: "not an EST path"},
		{name: "leading double slash", target: "//.well-known/est/cacerts", status: 404, words: "not an EST path"},
		{name: "double slash before operation", target: "/.well-known/est//cacerts", status: 404, words: "invalid label"},
		{name: "double slash in prefix", target: "/.well-known//est/cacerts", status: 404, words: "not an EST path"},
		{name: "dot-dot out of a label", target: "/.well-known/est/tls-client/../cacerts", status: 404, words: "not an EST path"},
		{name: "dot-dot as label", method: "POST", target: "/.well-known/est/../simpleenroll", header: authed, body: b64, status: 404, words: "invalid label"},
		{name: "dot as label", target: "/.well-known/est/./cacerts", status: 404, words: "invalid label"},
		{name: "encoded dot-dot", target: "/.well-known/est/%2e%2e/cacerts", status: 404, words: "invalid label"},
		{name: "percent-encoded operation", target: "/.well-known/est/%63acerts", status: 200},
		{name: "encoded slash in label", target: "/.well-known/est/tls%2Fclient/cacerts", status: 404},
		{name: "encoded slash joins label and operation", target: "/.well-known/est/tls-client%2Fcacerts", status: 404},
		{name: "encoded slash enroll", method: "POST", target: "/.well-known/est/tls-server%2fsimpleenroll", header: authed, body: b64, status: 404},
		{name: "encoded NUL label", target: "/.well-known/est/%00/cacerts", status: 404, words: "invalid label"},
		{name: "bad percent-encoding", target: "/.well-known/est/%zz/cacerts", status: 400, h1: true},
		{name: "64-byte unknown label", target: "/.well-known/est/" + long(64) + "/cacerts", status: 404, words: "unknown label"},
		{name: "65-byte label", target: "/.well-known/est/" + long(65) + "/cacerts", status: 404, words: "invalid label"},
		{name: "10 KB label", method: "POST", target: "/.well-known/est/" + long(10<<10) + "/simpleenroll", header: authed, body: b64, status: 404, words: "invalid label"},
		{name: "32 KB label", target: "/.well-known/est/" + long(32<<10) + "/cacerts", status: 431, h1: true},
		{name: "label named cacerts", target: "/.well-known/est/cacerts/cacerts", status: 404, words: "invalid label"},
		{name: "label named simpleenroll", method: "POST", target: "/.well-known/est/simpleenroll/simpleenroll", header: authed, body: b64, status: 404, words: "invalid label"},
		{name: "two labels", method: "POST", target: "/.well-known/est/tls-client/tls-server/simpleenroll", header: authed, body: b64, status: 404, words: "not an EST path"},
		{name: "empty label", method: "POST", target: "/.well-known/est//simpleenroll", header: authed, body: b64, status: 404, words: "invalid label"},
		{name: "label with colon", target: "/.well-known/est/tls:client/cacerts", status: 404, words: "invalid label"},
		{name: "label with port-like colon", method: "POST", target: "/.well-known/est/localhost:8443/simpleenroll", header: authed, body: b64, status: 404, words: "invalid label"},
		{name: "operation upper case", target: "/.well-known/est/CACERTS", status: 404, words: "unknown operation"},
		{name: "operation mixed case", method: "POST", target: "/.well-known/est/SimpleEnroll", header: authed, body: b64, status: 404, words: "unknown operation"},
		{name: "prefix upper case", target: "/.WELL-KNOWN/EST/cacerts", status: 404, words: "not an EST path"},
		{name: "label upper case", target: "/.well-known/est/TLS-CLIENT/cacerts", status: 404, words: "unknown label"},
		{name: "trailing slash after operation", target: "/.well-known/est/cacerts/", status: 404, words: "invalid label"},
		{name: "fragment in request-target", target: "/.well-known/est/cacerts#x", status: 404, h1: true},
		{name: "query string ignored", target: "/.well-known/est/cacerts?label=tls-server", status: 200},
		// net/http answers OPTIONS * itself, for the whole server (RFC 9110 9.3.7).
		{name: "asterisk", method: "OPTIONS", target: "*", status: 200, h1: true},

		// Methods.
		{name: "HEAD cacerts", method: "HEAD", target: cacerts, status: 405},
		{name: "HEAD simpleenroll", method: "HEAD", target: enroll, header: []string{basic}, status: 405},
		{name: "OPTIONS cacerts", method: "OPTIONS", target: cacerts, status: 405, words: "needs GET"},
		{name: "OPTIONS simpleenroll", method: "OPTIONS", target: enroll, status: 405, words: "needs POST"},
		{name: "GET simplereenroll", target: "/.well-known/est/simplereenroll", status: 405, words: "needs POST"},
		{name: "GET serverkeygen", target: "/.well-known/est/serverkeygen", header: []string{basic}, status: 405, words: "needs POST"},
		{name: "PUT simpleenroll with a valid CSR", method: "PUT", target: enroll, header: authed, body: b64, status: 405, words: "needs POST"},
		{name: "DELETE cacerts", method: "DELETE", target: cacerts, status: 405, words: "needs GET"},
		{name: "lower-case get", method: "get", target: cacerts, status: 405, words: "needs GET", h1: true},
		{name: "TRACE", method: "TRACE", target: cacerts, status: 405, words: "needs GET"},
		{name: "CONNECT", method: "CONNECT", target: cacerts, status: 405, h1: true},
		{name: "method with a control byte", method: "GE\x01T", target: cacerts, status: 400, h1: true},

		// Bodies.
		{name: "white space only", method: "POST", target: enroll, header: authed, body: []byte(" \r\n\t "), status: 400, words: "empty body"},
		{name: "chunked", method: "POST", target: enroll, header: authed, framing: []string{"Transfer-Encoding: chunked"}, body: chunked(b64, 100), status: 200, issues: true, h1: true},
		{name: "chunked, bad chunk size", method: "POST", target: enroll, header: authed, framing: []string{"Transfer-Encoding: chunked"}, body: []byte("zz\r\nMIIB\r\n0\r\n\r\n"), status: 400, h1: true},
		{name: "chunked over the limit", method: "POST", target: enroll, header: authed, framing: []string{"Transfer-Encoding: chunked"}, body: chunked(bytes.Repeat([]byte("QUFB"), 20<<10), 4096), status: 413, words: "body over", h1: true},
		// RFC 9112 6.3: Transfer-Encoding overrides Content-Length; net/http
		// drops the Content-Length and reads the chunks.
		{name: "chunked and Content-Length", method: "POST", target: enroll, header: authed, framing: []string{"Transfer-Encoding: chunked", fmt.Sprintf("Content-Length: %d", len(b64))}, body: chunked(b64, 100), status: 200, issues: true, h1: true},
		{name: "unknown transfer coding", method: "POST", target: enroll, header: authed, framing: []string{"Transfer-Encoding: gzip, chunked"}, body: chunked(b64, 100), status: 501, h1: true},
		{name: "no Content-Length", method: "POST", target: enroll, header: authed, framing: []string{}, body: b64, status: 400, words: "empty body", h1: true},
		{name: "Content-Length larger than the body", method: "POST", target: enroll, header: authed, framing: []string{fmt.Sprintf("Content-Length: %d", len(b64)+100)}, body: b64, closeWrite: true, status: 400, words: "could not read the body", h1: true},
		{name: "Content-Length smaller than the body", method: "POST", target: enroll, header: authed, framing: []string{fmt.Sprintf("Content-Length: %d", len(b64)-9)}, body: b64, status: 400, h1: true},
		{name: "Content-Length over the limit, body never sent", method: "POST", target: enroll, header: authed, framing: []string{"Content-Length: 1000000000000"}, body: []byte("MIIB"), status: 413, words: "body over", h1: true},
		{name: "fullcmc: Content-Length over the limit, body never sent", method: "POST", target: "/.well-known/est/fullcmc", header: []string{basic, "Content-Type: " + est.MediaCMCRequest}, framing: []string{"Content-Length: 1000000000000"}, body: []byte("MIIB"), status: 413, words: "body over", h1: true},
		{name: "negative Content-Length", method: "POST", target: enroll, header: authed, framing: []string{"Content-Length: -1"}, body: b64, status: 400, h1: true},
		{name: "two Content-Lengths", method: "POST", target: enroll, header: authed, framing: []string{fmt.Sprintf("Content-Length: %d", len(b64)), "Content-Length: 4"}, body: b64, status: 400, h1: true},
		{name: "NUL byte", method: "POST", target: enroll, header: authed, body: append(append(bytes.Clone(b64[:8]), 0), b64[8:]...), status: 400, words: "malformed base64"},
		{name: "PEM-armoured CSR", method: "POST", target: enroll, header: authed, body: pemCSR(good), status: 400, words: "malformed base64"},
		{name: "raw DER", method: "POST", target: enroll, header: authed, body: good, status: 400, words: "malformed base64"},
		{name: "base64url alphabet", method: "POST", target: enroll, header: authed, body: []byte(base64.RawURLEncoding.EncodeToString(urlUnsafeCSR(t, key))), status: 400, words: "malformed base64"},
		{name: "base64 with spaces", method: "POST", target: enroll, header: authed, body: spaced(b64, 4, " \t "), status: 200, issues: true},
		{name: "base64 with CRLF lines", method: "POST", target: enroll, header: authed, body: spaced(b64, 64, "\r\n"), status: 200, issues: true},
		{name: "base64 over 64 KiB in one line", method: "POST", target: enroll, header: authed, body: bytes.Repeat([]byte("QUFB"), 17<<10), status: 413, words: "body over"},
		{name: "CSR with trailing data", method: "POST", target: enroll, header: authed, body: est.EncodeBase64(trailing), status: 400, words: "malformed PKCS#10"},
		{name: "two CSRs", method: "POST", target: enroll, header: authed, body: est.EncodeBase64(append(bytes.Clone(good), good...)), status: 400, words: "malformed PKCS#10"},
		csrCase("2000 attributes", craftCSR(t, goodReq.RawSubject, spki(key.Public()), manyAttrs, oidECDSAWithSHA256, ecdsaSigner(t, ecKey)), 400, "attributes"),
		csrCase("2000 extensions", csrWith(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "many-ext"}, ExtraExtensions: manyExts}), 400, "extensions"),
		csrCase("2000 subject attributes", csrWith(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "many-rdn", OrganizationalUnit: manySANs}}), 400, "subject"),
		csrCase("2000 SANs", csrWith(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "many-san"}, DNSNames: manySANs}), 400, "subjectAltName"),
		csrCase("16384-bit RSA key", craftCSR(t, goodReq.RawSubject, huge.spki(t), nil, oidSHA256WithRSA, huge.sign), 400, "RSA key size"),
		csrCase("16384-bit RSA modulus, bad signature", craftCSR(t, goodReq.RawSubject, huge.spki(t), nil, oidSHA256WithRSA, func([]byte) []byte { return make([]byte, hugeRSABits/8) }), 400, "signature"),
		csrCase("P-224 key", csrWith(t, p224, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "p224"}}), 400, "unsupported elliptic curve"),
		csrCase("brainpoolP256r1 key", pemFile(t, "testdata/csr-brainpool.pem"), 400, "malformed PKCS#10"),
		csrCase("point off the curve", craftCSR(t, goodReq.RawSubject, offCurve, nil, oidECDSAWithSHA256, ecdsaSigner(t, ecKey)), 400, "malformed PKCS#10"),
		csrCase("DSA key", pemFile(t, "testdata/csr-dsa.pem"), 400, "unsupported CSR signature algorithm"),
		csrCase("signed by another key", craftCSR(t, goodReq.RawSubject, spki(key.Public()), nil, oidECDSAWithSHA256, ecdsaSigner(t, other.(*ecdsa.PrivateKey))), 400, "signature does not verify"),
		csrCase("RSA algorithm on an EC key", craftCSR(t, goodReq.RawSubject, spki(key.Public()), nil, oidSHA256WithRSA, ecdsaSigner(t, ecKey)), 400, "signature"),

		// Headers.
		{name: "100 KB header", method: "POST", target: enroll, header: append([]string{"X-Junk: " + long(100<<10)}, authed...), body: b64, status: 431, h1: true},
		{name: "4000 headers", method: "POST", target: enroll, header: append(manyHeaders(4000), authed...), body: b64, status: 431, h1: true},
		{name: "100 headers", target: cacerts, header: manyHeaders(100), status: 200},
		{name: "Authorization not base64", method: "POST", target: enroll, header: []string{"Authorization: Basic !!!notbase64", pkcs10}, body: b64, status: 401, words: "authentication required"},
		{name: "Authorization empty Basic", method: "POST", target: enroll, header: []string{"Authorization: Basic", pkcs10}, body: b64, status: 401, words: "authentication required"},
		{name: "Authorization Bearer", method: "POST", target: enroll, header: []string{"Authorization: Bearer " + s.Password, pkcs10}, body: b64, status: 401, words: "authentication required"},
		{name: "Basic with no colon", method: "POST", target: enroll, header: []string{basicOf(s.User + s.Password), pkcs10}, body: b64, status: 401, words: "authentication required"},
		{name: "Basic with an empty user", method: "POST", target: enroll, header: []string{basicOf(":" + s.Password), pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "non-UTF-8 user name", method: "POST", target: enroll, header: []string{basicOf("\xff\xfe" + s.User + ":" + s.Password), pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "NUL in user name", method: "POST", target: enroll, header: []string{basicOf(s.User + "\x00:" + s.Password), pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "password with a suffix", method: "POST", target: enroll, header: []string{basicOf(s.User + ":" + s.Password + "\x00"), pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "8 KB password", method: "POST", target: enroll, header: []string{basicOf(s.User + ":" + long(8<<10)), pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "bad then good Authorization", method: "POST", target: enroll, header: []string{basicOf(s.User + ":wrong"), basic, pkcs10}, body: b64, status: 401, words: "invalid user name or password"},
		{name: "scheme in odd case", method: "POST", target: enroll, header: []string{"Authorization: bAsIc " + strings.TrimPrefix(basic, "Authorization: Basic "), pkcs10}, body: b64, status: 200, issues: true},
		{name: "no Host", target: cacerts, noHost: true, status: 400, h1: true},
		{name: "header name with a space", target: cacerts, header: []string{"Bad Header: x"}, status: 400, h1: true},
		{name: "NUL in Content-Type", method: "POST", target: enroll, header: []string{basic, "Content-Type: application/pkcs10\x00"}, body: b64, status: 400, h1: true},
		{name: "two media types", method: "POST", target: enroll, header: []string{basic, "Content-Type: application/pkcs10, application/json"}, body: b64, status: 415, words: "Content-Type"},
		{name: "media type in upper case", method: "POST", target: enroll, header: []string{basic, "Content-Type: APPLICATION/PKCS10; charset=binary"}, body: b64, status: 200, issues: true},

		// TLS client certificates.
		{name: "self-signed client certificate", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(selfSigned.cert, selfSigned.key), status: 403, words: "not issued by a trusted CA"},
		{name: "expired certificate of ours", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(expiredOurs, expiredOursKey), status: 403, words: "expired"},
		{name: "expired certificate of ours renewing", method: "POST", target: "/.well-known/est/simplereenroll", header: []string{pkcs10}, body: est.EncodeBase64(testpki.CSR(t, expiredOursKey, "hostile-expired", nil, nil)), certs: cert(expiredOurs, expiredOursKey), status: 403, words: "expired"},
		{name: "not yet valid manufacturer certificate", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(notYet, notYetKey), status: 403, words: "not yet valid"},
		{name: "signed by our CA, not on record", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(unrecorded, unrecordedKey), status: 403, words: "not on record"},
		{name: "revoked certificate enrolling", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(revoked, revokedKey), status: 403, words: "revoked"},
		{name: "revoked certificate, server key generation", method: "POST", target: "/.well-known/est/serverkeygen", header: []string{pkcs10}, body: b64, certs: cert(revoked, revokedKey), status: 403, words: "revoked"},
		{name: "revoked certificate with Basic", method: "POST", target: enroll, header: authed, body: b64, certs: cert(revoked, revokedKey), status: 403, words: "revoked"},
		{name: "manufacturer certificate with serverAuth only", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(serverEKU, serverEKUKey), status: 200, issues: true},
		{name: "manufacturer certificate without EKU", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(noEKU, noEKUKey), status: 200, issues: true},
		{name: "manufacturer certificate with another key", method: "POST", target: enroll, header: []string{pkcs10}, body: b64, certs: cert(device, other), status: -1},
	}

	before := count(t, s)
	issued := 0
	for _, c := range cases {
		if c.method == "" {
			c.method = "GET"
		}
		t.Run("h1/"+c.name, func(t *testing.T) {
			c.check(t, s, c.send1(t, s))
			if c.issues && c.status == 200 {
				issued++
			}
		})
		if c.h1 || c.status == -1 {
			continue
		}
		t.Run("h2/"+c.name, func(t *testing.T) {
			c.check(t, s, c.send2(t, s))
			if c.issues && c.status == 200 {
				issued++
			}
		})
	}

	t.Run("TLS", func(t *testing.T) {
		tlsHellos(t, s)
	})
	t.Run("h1/4 MiB body from a client without keep-alive", func(t *testing.T) {
		// net/http resets a Connection: close request's connection when
		// the handler did not read the body, unless the handler hit a
		// MaxBytesReader: the client must still read its 413.
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.Roots()}, DisableKeepAlives: true}}
		for range 3 {
			st, _, body := call(t, c, "POST", s.URL+enroll, est.MediaPKCS10, bytes.Repeat([]byte("QUFB"), 1<<20), s.User, s.Password)
			if st != 413 {
				t.Fatalf("got %d %q, want 413", st, body)
			}
		}
	})

	if st, _, _ := call(t, s.Client(), "GET", s.URL+cacerts, "", nil); st != 200 {
		t.Fatalf("after the catalogue cacerts answers %d", st)
	}
	if after := count(t, s); after != before+issued {
		t.Fatalf("the store holds %d new certificates, want %d", after-before, issued)
	}
}

// result is what a server answered: a response, or err for none.
type result struct {
	resp *http.Response
	body []byte
	err  error
}

// send1 sends c as raw HTTP/1.1 bytes.
func (c hostile) send1(t *testing.T, s *estdtest.Server) result {
	host := "estd.test"
	if c.noHost {
		host = ""
	}
	req := requestBytes(c.method, c.target, host, c.header, c.framing, c.body)
	resp, body, err := rawExchange(t, s, c.certs, c.method, req, c.closeWrite)
	return result{resp, body, err}
}

// send2 sends c with net/http's client, over HTTP/2.
func (c hostile) send2(t *testing.T, s *estdtest.Server) result {
	req, err := http.NewRequest(c.method, s.URL+c.target, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range c.header {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.Client(c.certs...).Do(req.WithContext(ctx))
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("answered over %s, want HTTP/2", resp.Proto)
	}
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return result{resp, b.Bytes(), err}
}

// check compares what the server answered with what c expects.
func (c hostile) check(t *testing.T, s *estdtest.Server, r result) {
	t.Helper()
	if c.status == -1 { // the handshake must fail
		if r.err == nil {
			t.Fatalf("got %d %q, want a refused handshake", r.resp.StatusCode, r.body)
		}
		return
	}
	if r.err != nil {
		t.Fatalf("no answer: %v", r.err)
	}
	reason := strings.TrimSpace(string(r.body))
	if r.resp.StatusCode != c.status {
		t.Fatalf("got %d %q, want %d", r.resp.StatusCode, clipped(reason), c.status)
	}
	if c.status == 200 {
		return
	}
	if ct := r.resp.Header.Get("Content-Type"); c.method != "HEAD" && !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if strings.Contains(reason, "\n") || len(reason) > 200 {
		t.Errorf("reason is not one short line: %q", clipped(reason))
	}
	if c.method != "HEAD" && (reason == "" || !strings.Contains(reason, c.words)) {
		t.Errorf("reason %q does not mention %q", clipped(reason), c.words)
	}
	if c.status == 405 && r.resp.Header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	if c.status == 401 && r.resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
}

func clipped(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// tlsHellos offers what RFC 8996 and BCP 195 retire: SSL 3.0, TLS 1.0 and
// 1.1 hellos, and TLS 1.2 hellos with only NULL, anonymous or export
// suites. estd must answer each with an alert (or a closed connection),
// never a ServerHello. A good TLS 1.2 hello built the same way gets one, so
// the refusals are not for a malformed hello.
func tlsHellos(t *testing.T, s *estdtest.Server) {
	aead := []uint16{0xc02b, 0xc02f} // ECDHE_{ECDSA,RSA}_WITH_AES_128_GCM_SHA256
	cases := []struct {
		name  string
		hello []byte
	}{
		{"SSL 3.0", clientHello(versionSSL30, versionSSL30, []uint16{0x000a, 0x002f, 0xc009}, false)},
		{"TLS 1.0", clientHello(versionTLS10, versionTLS10, []uint16{0xc009, 0xc013, 0x002f}, true)},
		{"TLS 1.1", clientHello(versionTLS10, versionTLS11, []uint16{0xc009, 0xc013, 0x002f}, true)},
		{"TLS 1.1 offering AEAD suites", clientHello(versionTLS10, versionTLS11, aead, true)},
		{"SSL 2.0 compatible hello", []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
			0x07, 0x00, 0xc0, 0x05, 0x00, 0x80, 0x03, 0x00, 0x80, 0x01, 0x00, 0x80, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x04,
			1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"NULL suites", clientHello(versionTLS10, versionTLS12, []uint16{0x0001, 0x0002, 0x003b, 0xc006, 0xc010}, true)},
		{"anonymous suites", clientHello(versionTLS10, versionTLS12, []uint16{0x00a6, 0x00a7, 0xc018, 0xc019, 0x0034}, true)},
		{"export suites", clientHello(versionTLS10, versionTLS12, []uint16{0x0003, 0x0006, 0x0008, 0x0014}, true)},
		{"CBC and RC4 suites", clientHello(versionTLS10, versionTLS12, []uint16{0xc009, 0xc013, 0xc011, 0x0005}, true)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			typ, alert := helloAnswer(t, s.Addr, c.hello)
			switch {
			case typ == recordHandshake:
				t.Fatal("the server answered with a handshake record")
			case typ == recordAlert && alert != alertHandshake && alert != alertProtocol:
				t.Errorf("alert %d, want handshake_failure or protocol_version", alert)
			case typ != 0 && typ != recordAlert:
				t.Errorf("answered with record type %d", typ)
			}
		})
	}
	t.Run("good TLS 1.2 hello", func(t *testing.T) {
		if typ, _ := helloAnswer(t, s.Addr, clientHello(versionTLS10, versionTLS12, aead, true)); typ != recordHandshake {
			t.Fatalf("record type %d, want a ServerHello", typ)
		}
	})
}

// chunked returns body in chunked transfer coding, n bytes a chunk.
func chunked(body []byte, n int) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&b, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

// spaced inserts sep after every n bytes of b.
func spaced(b []byte, n int, sep string) []byte {
	var out []byte
	for len(b) > n {
		out = append(append(out, b[:n]...), sep...)
		b = b[n:]
	}
	return append(out, b...)
}

func pemCSR(der []byte) []byte {
	return []byte("-----BEGIN CERTIFICATE REQUEST-----\n" + string(spaced(est.EncodeBase64(der), 64, "\n")) + "\n-----END CERTIFICATE REQUEST-----\n")
}

func manyHeaders(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("X-Hostile-%d: %d", i, i)
	}
	return h
}

// csrWith signs tmpl with key.
// urlUnsafeCSR returns a CSR whose standard base64 differs from its
// base64url form (it has a '+' or '/'): a random CSR lacks both now and then,
// and is then valid in either alphabet.
func urlUnsafeCSR(t *testing.T, key any) []byte {
	t.Helper()
	for i := 0; ; i++ {
		der := csrWith(t, key, &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprintf("hostile-url-%d", i)}})
		if bytes.ContainsAny(est.EncodeBase64(der), "+/") {
			return der
		}
	}
}

func csrWith(t *testing.T, key any, tmpl *x509.CertificateRequest) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type certKey struct {
	cert *x509.Certificate
	key  any
}

// selfSignedCert is a client certificate signed by its own key.
func selfSignedCert(t *testing.T, now time.Time) certKey {
	t.Helper()
	key := testpki.Key(t, ca.P256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "SN-self-signed"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return certKey{c, key}
}

// putRecord records cert in s's store as if estd had issued it.
func putRecord(t *testing.T, s *estdtest.Server, cert *x509.Certificate) {
	t.Helper()
	rec := server.Record(cert, "", auth.Identity{Method: auth.Basic, Name: "hostile"}, time.Now())
	if err := s.Daemon.Store.Put(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
}

// enrollBasic enrolls a new P-256 key with the bootstrap user.
func enrollBasic(t *testing.T, s *estdtest.Server, cn string) (*x509.Certificate, any) {
	t.Helper()
	k := testpki.Key(t, ca.P256)
	status, reason, c := enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, s.Password}, csr: testpki.CSR(t, k, cn, nil, nil)}.do(t, s)
	if status != 200 {
		t.Fatalf("enroll %s: %d %s", cn, status, reason)
	}
	return c, k
}
