package conformance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// leafOf returns the end-entity certificate of a TLS certificate.
func leafOf(tc *tls.Certificate) (*x509.Certificate, error) {
	if tc.Leaf != nil {
		return tc.Leaf, nil
	}
	if len(tc.Certificate) == 0 {
		return nil, fmt.Errorf("empty certificate")
	}
	return x509.ParseCertificate(tc.Certificate[0])
}

// csrNamed returns a CSR for a new ECDSA key with cn.
func csrNamed(cn string) ([]byte, error) {
	key, err := newKey(algECDSA)
	if err != nil {
		return nil, err
	}
	return csrFor(key, cn, nil)
}

// certificateRefused sends simpleenroll and serverkeygen authenticated only
// by tc, which the server must refuse: 401, 403 or in TLS. A serverkeygen
// the server does not offer (404, 405, 501) is refused too.
func (s *session) certificateRefused(ctx context.Context, what string, tc *tls.Certificate) outcome {
	leaf, err := leafOf(tc)
	if err != nil {
		return fail("%s: %v", what, err)
	}
	csr, err := csrNamed(leaf.Subject.CommonName)
	if err != nil {
		return fail("%v", err)
	}
	cred := &credential{desc: what, cert: tc}
	label := s.cfg.ClientLabel
	r := s.raw(ctx, rawRequest{label: label, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: cred})
	o := s.refused(ctx, "simpleenroll with "+what, r, isAuthRefusal, "401 or 403", true)
	if o.status != Pass {
		return o
	}
	r = s.raw(ctx, rawRequest{label: label, op: est.OpServerKeyGen, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: cred})
	notOffered := func(st int) bool {
		return isAuthRefusal(st) || st == http.StatusNotFound || st == http.StatusMethodNotAllowed || st == http.StatusNotImplemented
	}
	if o2 := s.refused(ctx, "serverkeygen with "+what, r, notOffered, "401 or 403", true); o2.status != Pass {
		return o2
	}
	return pass("%s; serverkeygen refused too", o.reason)
}

func checkRogue(ctx context.Context, s *session) outcome {
	if s.cfg.Rogue == nil {
		return skip(needRogue)
	}
	return s.certificateRefused(ctx, "the rogue certificate", s.cfg.Rogue)
}

func checkExpired(ctx context.Context, s *session) outcome {
	if s.cfg.Expired == nil {
		return skip(needExpired)
	}
	return s.certificateRefused(ctx, "the expired certificate", s.cfg.Expired)
}

func is401(status int) bool { return status == http.StatusUnauthorized }

func checkNoCredentials(ctx context.Context, s *session) outcome {
	csr, err := csrNamed(s.subjectName("anonymous"))
	if err != nil {
		return fail("%v", err)
	}
	r := s.raw(ctx, rawRequest{label: s.cfg.ClientLabel, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: anonymous})
	// A 401 must challenge for an HTTP authentication scheme (RFC 9110
	// 15.5.2). Without a user to test with, the label may take only
	// certificates: then there is nothing to challenge for, and 403 is
	// the answer.
	ok, want := is401, "401 Unauthorized"
	if s.basic() == nil {
		ok, want = isAuthRefusal, "401 Unauthorized or, for a label that takes only certificates, 403"
	}
	o := s.refused(ctx, "simpleenroll without credentials", r, ok, want, true)
	if o.status == Pass && r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "" {
		return fail("simpleenroll without credentials: 401 without a WWW-Authenticate challenge (RFC 9110 15.5.2 requires one)")
	}
	return o
}

func checkWrongPassword(ctx context.Context, s *session) outcome {
	if s.basic() == nil {
		return skip(needUser)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fail("%v", err)
	}
	cred := &credential{desc: "a wrong password", user: s.cfg.Username, pass: "wrong-" + hex.EncodeToString(b[:])}
	csr, err := csrNamed(s.subjectName("wrong-password"))
	if err != nil {
		return fail("%v", err)
	}
	r := s.raw(ctx, rawRequest{label: s.cfg.ClientLabel, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: cred})
	return s.refused(ctx, "simpleenroll as "+s.cfg.Username+" with a wrong password", r, is401, "401 Unauthorized", true)
}

// badReenroll enrolls a certificate, asks to reenroll it with the request
// bad makes (which the server must refuse with a 4xx), then renews it
// correctly: the refusal must be about the request, not the certificate.
func (s *session) badReenroll(ctx context.Context, what string, rq request, bad func(ic *issuedCert) ([]byte, error)) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	ic, err := s.enroll(ctx, rq, cred)
	if err != nil {
		return fail("obtaining a certificate to reenroll: %v", err)
	}
	csr, err := bad(ic)
	if err != nil {
		return fail("%v", err)
	}
	self := ic.credential("the certificate being renewed")
	r := s.raw(ctx, rawRequest{label: rq.label, op: est.OpSimpleReenroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: self})
	o := s.refused(ctx, what, r, is4xx, "4xx", false)
	if o.status != Pass {
		return o
	}
	good, err := client.RenewalCSR(ic.cert, ic.key)
	if err != nil {
		return fail("%v", err)
	}
	if _, err := s.client(rq.label, self).Reenroll(ctx, good); err != nil {
		return fail("%s was refused, but so is a correct renewal of the same certificate, so the refusal proves nothing: %s", what, errText(err))
	}
	return pass("%s; a correct renewal succeeds", o.reason)
}

func checkReenrollOtherSubject(ctx context.Context, s *session) outcome {
	other := s.subjectName("someone-else")
	return s.badReenroll(ctx, "simplereenroll asking for CN="+other,
		request{label: s.cfg.ClientLabel, alg: algECDSA, purpose: "other-subject"},
		func(ic *issuedCert) ([]byte, error) { return csrFor(ic.key, other, ic.cert.DNSNames) })
}

func checkReenrollOtherSAN(ctx context.Context, s *session) outcome {
	other := s.dnsName("hijacked")
	return s.badReenroll(ctx, "simplereenroll asking for DNS:"+other,
		request{label: s.cfg.ServerLabel, alg: algECDSA, purpose: "other-san", server: true},
		func(ic *issuedCert) ([]byte, error) {
			return x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: ic.cert.RawSubject, DNSNames: []string{other}}, ic.key)
		})
}

// malformed first makes a well-formed enrollment with the same credentials
// (so that a refusal cannot be about them), then sends the request bad
// builds from a good CSR: it must get a 4xx, carry no certificate, and leave
// the server serving.
func (s *session) malformed(ctx context.Context, what string, bad func(csr []byte) (contentType string, body []byte, err error)) outcome {
	return s.malformedOpt(ctx, what, bad, false)
}

// malformedCutOff is malformed for a body so large that a server may also
// refuse it by closing the connection while it still arrives (RFC 9110
// 15.5.14): the client then sees a reset instead of the 413. Nothing is
// issued either way, and the server must still serve.
func (s *session) malformedCutOff(ctx context.Context, what string, bad func(csr []byte) (contentType string, body []byte, err error)) outcome {
	return s.malformedOpt(ctx, what, bad, true)
}

func (s *session) malformedOpt(ctx context.Context, what string, bad func(csr []byte) (contentType string, body []byte, err error), cutOffOK bool) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	label := s.cfg.ClientLabel
	good, err := csrNamed(s.subjectName("control"))
	if err != nil {
		return fail("%v", err)
	}
	r := s.raw(ctx, rawRequest{label: label, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(good), cred: cred})
	if r.err != nil || r.status != http.StatusOK {
		return fail("a well-formed request with %s, sent first as a control, got %s", cred.desc, r.describe())
	}
	csr, err := csrNamed(s.subjectName("malformed"))
	if err != nil {
		return fail("%v", err)
	}
	ct, body, err := bad(csr)
	if err != nil {
		return fail("%v", err)
	}
	r = s.raw(ctx, rawRequest{label: label, op: est.OpSimpleEnroll, contentType: ct, body: body, cred: cred})
	if cutOffOK && r.err != nil && cutOff(r.err) {
		if err := s.healthy(ctx); err != nil {
			return fail("%s: connection closed, and then the server stopped serving: %v", what, err)
		}
		return pass("%s: connection closed while the body was sent (%s); nothing issued, still serving", what, errText(r.err))
	}
	return s.refused(ctx, what, r, is4xx, "4xx", false)
}

func checkBadBase64(ctx context.Context, s *session) outcome {
	return s.malformed(ctx, "a CSR in base64 with '*' and '!' inside", func(csr []byte) (string, []byte, error) {
		b := est.EncodeBase64(csr)
		bad := append(append(append([]byte{}, b[:24]...), "*!*"...), b[24:]...)
		return est.MediaPKCS10, bad, nil
	})
}

func checkBadSignature(ctx context.Context, s *session) outcome {
	return s.malformed(ctx, "a CSR whose signature does not verify", func(csr []byte) (string, []byte, error) {
		bad := append([]byte(nil), csr...)
		bad[len(bad)-5] ^= 0x55 // inside the signature value
		req, err := x509.ParseCertificateRequest(bad)
		if err != nil {
			return "", nil, fmt.Errorf("corrupting the CSR's signature broke its structure: %v", err)
		}
		if req.CheckSignature() == nil {
			return "", nil, fmt.Errorf("corrupting the CSR's signature left it valid")
		}
		return est.MediaPKCS10, est.EncodeBase64(bad), nil
	})
}

func checkBadContentType(ctx context.Context, s *session) outcome {
	return s.malformed(ctx, "a CSR sent as application/json", func(csr []byte) (string, []byte, error) {
		return "application/json", est.EncodeBase64(csr), nil
	})
}

// hugeBodySize is the size of the base64 body of bad.huge-body: far beyond
// any CSR (a few KiB), small enough to send in a moment.
const hugeBodySize = 4 << 20

// oidPadding names the extension that pads the huge CSR: an arc under the
// UUID OID 2.25 (X.667), which no server gives a meaning.
var oidPadding = asn1.ObjectIdentifier{2, 25, 276447221, 31243, 18000, 39442, 271828}

func checkHugeBody(ctx context.Context, s *session) outcome {
	return s.malformedCutOff(ctx, fmt.Sprintf("a %d MiB CSR", hugeBodySize>>20), func([]byte) (string, []byte, error) {
		// A well-formed, correctly signed CSR padded with a large extension:
		// a server without a size limit would issue for it.
		key, err := newKey(algECDSA)
		if err != nil {
			return "", nil, err
		}
		pad, err := asn1.Marshal(make([]byte, hugeBodySize*3/4))
		if err != nil {
			return "", nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject:         pkix.Name{Organization: []string{"estkit conformance"}, CommonName: s.subjectName("huge")},
			ExtraExtensions: []pkix.Extension{{Id: oidPadding, Value: pad}},
		}, key)
		if err != nil {
			return "", nil, err
		}
		return est.MediaPKCS10, est.EncodeBase64(der), nil
	})
}
