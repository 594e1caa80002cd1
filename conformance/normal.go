package conformance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// labels returns the distinct labels of the two profiles.
func (s *session) labels() []string {
	if s.cfg.ClientLabel == s.cfg.ServerLabel {
		return []string{s.cfg.ClientLabel}
	}
	return []string{s.cfg.ClientLabel, s.cfg.ServerLabel}
}

// labelName shows a label in a reason.
func labelName(label string) string {
	if label == "" {
		return "the default CA"
	}
	return fmt.Sprintf("label %q", label)
}

func checkCACertsChain(ctx context.Context, s *session) outcome {
	var parts []string
	for _, label := range s.labels() {
		certs, err := s.cacerts(ctx, label)
		if err != nil {
			return fail("/cacerts of %s: %s", labelName(label), errText(err))
		}
		desc, err := checkCAChain(certs, time.Now())
		if err != nil {
			return fail("/cacerts of %s: %v", labelName(label), err)
		}
		parts = append(parts, labelName(label)+": "+desc)
	}
	return pass("%s", strings.Join(parts, "; "))
}

// checkCAChain checks a /cacerts answer: a self-signed root among the
// certificates, every certificate a CA, valid now, and chaining to that root
// through the others.
func checkCAChain(certs []*x509.Certificate, now time.Time) (string, error) {
	if len(certs) == 0 {
		return "", fmt.Errorf("no certificates")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	var rootCerts []*x509.Certificate
	for _, c := range certs {
		if selfSigned(c) {
			roots.AddCert(c)
			rootCerts = append(rootCerts, c)
		} else {
			inter.AddCert(c)
		}
	}
	if len(rootCerts) == 0 {
		return "", fmt.Errorf("none of the %d certificates is a self-signed root (RFC 7030 4.1.3 requires the current root)", len(certs))
	}
	for _, c := range certs {
		if !c.BasicConstraintsValid || !c.IsCA {
			return "", fmt.Errorf("%s is not a CA certificate", c.Subject)
		}
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return "", fmt.Errorf("%s is not valid now (%s to %s)", c.Subject, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly))
		}
		if selfSigned(c) {
			continue
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return "", fmt.Errorf("%s does not chain to a root among those returned: %v", c.Subject, strings.TrimPrefix(err.Error(), "x509: "))
		}
	}
	names := make([]string, len(certs))
	for i, c := range certs {
		names[i] = "CN=" + c.Subject.CommonName
	}
	return fmt.Sprintf("%d CA certificates (%s), chain verifies", len(certs), strings.Join(names, ", ")), nil
}

func checkCACertsAnchor(ctx context.Context, s *session) outcome {
	if len(s.cfg.TrustAnchors) == 0 {
		return skip(needAnchor)
	}
	var parts []string
	for _, label := range s.labels() {
		certs, err := s.cacerts(ctx, label)
		if err != nil {
			return fail("/cacerts of %s: %s", labelName(label), errText(err))
		}
		var roots []*x509.Certificate
		for _, c := range certs {
			if selfSigned(c) {
				roots = append(roots, c)
			}
		}
		found := false
		for _, r := range roots {
			for _, a := range s.cfg.TrustAnchors {
				if r.Equal(a) {
					found = true
					parts = append(parts, fmt.Sprintf("%s: root CN=%s (SHA-256 %s) is the anchor", labelName(label), r.Subject.CommonName, shortFP(r)))
				}
			}
		}
		if !found {
			got := "no root"
			if len(roots) > 0 {
				got = fmt.Sprintf("root CN=%s (SHA-256 %s)", roots[0].Subject.CommonName, shortFP(roots[0]))
			}
			a := s.cfg.TrustAnchors[0]
			return fail("/cacerts of %s returned %s, not the anchor CN=%s (SHA-256 %s)", labelName(label), got, a.Subject.CommonName, shortFP(a))
		}
	}
	return pass("%s", strings.Join(parts, "; "))
}

func shortFP(c *x509.Certificate) string {
	fp := est.Fingerprint(c)
	if len(fp) > 23 {
		return fp[:23] + "…"
	}
	return fp
}

// matrixCheck is one cell of the enrollment matrix: key algorithm ×
// profile × authentication.
func matrixCheck(alg string, server, byIssued bool) Check {
	profile, eku := "client", "clientAuth"
	if server {
		profile, eku = "server", "serverAuth"
	}
	how, howName := "manufacturer", "the manufacturer certificate"
	if byIssued {
		how, howName = "issued", "a certificate the server issued earlier"
	}
	id := fmt.Sprintf("enroll.%s.%s.%s", strings.ToLower(alg), profile, how)
	return Check{
		ID:    id,
		Group: GroupEnroll,
		Ref:   "RFC 7030 4.2.1, 4.2.3, 3.3.2",
		Name:  fmt.Sprintf("an %s TLS %s certificate (%s) is issued to a client authenticated by %s", alg, profile, eku, howName),
		run: func(ctx context.Context, s *session) outcome {
			label := s.cfg.ClientLabel
			if server {
				label = s.cfg.ServerLabel
			}
			var cred *credential
			if byIssued {
				if s.enrollCred() == nil {
					return skip(needCredential)
				}
				var err error
				if cred, err = s.issuedCredential(ctx); err != nil {
					return fail("%v", err)
				}
			} else if cred = s.manufacturer(); cred == nil {
				return skip(needManufacturer)
			}
			purpose := fmt.Sprintf("%s-%s-%s", strings.ToLower(alg), profile, how)
			ic, err := s.enroll(ctx, request{label: label, alg: alg, purpose: purpose, server: server}, cred)
			if err != nil {
				return fail("%v", err)
			}
			return pass("%s issued %s", labelName(label), describeCert(ic.cert))
		},
	}
}

func checkEnrollBasic(ctx context.Context, s *session) outcome {
	cred := s.basic()
	if cred == nil {
		return skip(needUser)
	}
	ic, err := s.enroll(ctx, request{label: s.cfg.ClientLabel, alg: algECDSA, purpose: "basic"}, cred)
	if err != nil {
		return fail("%v", err)
	}
	return pass("%s issued %s", labelName(s.cfg.ClientLabel), describeCert(ic.cert))
}

// checkTwoKeys enrolls an ECDSA and then an RSA key for one subject, then
// checks that both certificates still verify, that no CRL or OCSP responder
// they name lists either, and that the server still accepts each as the
// credential to renew it (a server that revoked or forgot the first refuses).
func checkTwoKeys(ctx context.Context, s *session) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	label := s.cfg.ClientLabel
	cn := s.subjectName("two-keys")
	var got []*issuedCert
	for _, alg := range []string{algECDSA, algRSA} {
		key, err := newKey(alg)
		if err != nil {
			return fail("%v", err)
		}
		csr, err := csrFor(key, cn, nil)
		if err != nil {
			return fail("%v", err)
		}
		e, err := s.client(label, cred).Enroll(ctx, csr)
		if err != nil {
			return fail("enrolling the %s key of CN=%s: %s", alg, cn, errText(err))
		}
		got = append(got, &issuedCert{cert: e.Certificate, key: key, label: label})
	}
	for i, ic := range got {
		alg := []string{algECDSA, algRSA}[i]
		if err := s.validate(ctx, label, ic.cert, expectation{key: ic.key.Public(), cn: cn, eku: x509.ExtKeyUsageClientAuth}); err != nil {
			return fail("the %s certificate, after both were issued: %v", alg, err)
		}
	}
	var notes []string
	for i, ic := range got {
		alg := []string{algECDSA, algRSA}[i]
		revoked, desc, err := s.revocation(ctx, label, ic.cert)
		if err != nil {
			return fail("revocation status of the %s certificate: %v", alg, err)
		}
		if revoked {
			return fail("the %s certificate is revoked after the second was issued: %s", alg, desc)
		}
		if desc != "" {
			notes = append(notes, alg+": "+desc)
		}
	}
	for i, ic := range got {
		alg := []string{algECDSA, algRSA}[i]
		csr, err := client.RenewalCSR(ic.cert, ic.key)
		if err != nil {
			return fail("%v", err)
		}
		if _, err := s.client(label, ic.credential("")).Reenroll(ctx, csr); err != nil {
			return fail("the server no longer accepts the %s certificate of CN=%s to renew it (revoked or forgotten?): %s", alg, cn, errText(err))
		}
	}
	status := "no CRL or OCSP responder named"
	if len(notes) > 0 {
		status = strings.Join(notes, "; ")
	}
	return pass("CN=%s holds ECDSA serial %s and RSA serial %s; both verify and still authenticate; %s",
		cn, shortSerial(got[0].cert), shortSerial(got[1].cert), status)
}

// renewal enrolls a certificate under label and renews it with a request
// for newKey (nil: the same key), authenticated by the certificate itself.
func (s *session) renewal(ctx context.Context, rq request, newKey crypto.Signer) (old *issuedCert, renewed *x509.Certificate, o *outcome) {
	cred := s.enrollCred()
	if cred == nil {
		sk := skip(needCredential)
		return nil, nil, &sk
	}
	old, err := s.enroll(ctx, rq, cred)
	if err != nil {
		f := fail("obtaining the certificate to renew: %v", err)
		return nil, nil, &f
	}
	key := old.key
	if newKey != nil {
		key = newKey
	}
	csr, err := client.RenewalCSR(old.cert, key)
	if err != nil {
		f := fail("%v", err)
		return nil, nil, &f
	}
	e, err := s.client(rq.label, old.credential("the certificate being renewed")).Reenroll(ctx, csr)
	if err != nil {
		f := fail("simplereenroll under %s: %s", labelName(rq.label), errText(err))
		return old, nil, &f
	}
	w := expectation{key: key.Public(), cn: old.cert.Subject.CommonName, dns: old.cert.DNSNames, eku: x509.ExtKeyUsageClientAuth}
	if rq.server {
		w.eku = x509.ExtKeyUsageServerAuth
	}
	if !est.SameName(e.Certificate.RawSubject, old.cert.RawSubject) {
		f := fail("the renewed certificate's subject %s differs from %s", e.Certificate.Subject, old.cert.Subject)
		return old, nil, &f
	}
	if !equalSets(sanSet(e.Certificate), sanSet(old.cert)) {
		f := fail("the renewed certificate's subjectAltName %v differs from %v", sanList(e.Certificate), sanList(old.cert))
		return old, nil, &f
	}
	if e.Certificate.SerialNumber.Cmp(old.cert.SerialNumber) == 0 {
		f := fail("the renewed certificate reuses serial %s", shortSerial(old.cert))
		return old, nil, &f
	}
	if err := s.validate(ctx, rq.label, e.Certificate, w); err != nil {
		f := fail("the renewed certificate: %v", err)
		return old, nil, &f
	}
	return old, e.Certificate, nil
}

func checkRenew(ctx context.Context, s *session) outcome {
	old, renewed, o := s.renewal(ctx, request{label: s.cfg.ServerLabel, alg: algECDSA, purpose: "renew", server: true}, nil)
	if o != nil {
		return *o
	}
	return pass("%s renewed CN=%s DNS:%s, serial %s → %s, same key, subject and subjectAltName",
		labelName(s.cfg.ServerLabel), old.cert.Subject.CommonName, strings.Join(old.cert.DNSNames, ","), shortSerial(old.cert), shortSerial(renewed))
}

func checkRekey(ctx context.Context, s *session) outcome {
	if s.enrollCred() == nil {
		return skip(needCredential)
	}
	key, err := newKey(algRSA)
	if err != nil {
		return fail("%v", err)
	}
	old, renewed, o := s.renewal(ctx, request{label: s.cfg.ClientLabel, alg: algECDSA, purpose: "rekey"}, key)
	if o != nil {
		return *o
	}
	return pass("%s rekeyed CN=%s from %s to %s, serial %s → %s, same subject",
		labelName(s.cfg.ClientLabel), old.cert.Subject.CommonName, keyAlg(old.cert.PublicKey), keyAlg(renewed.PublicKey), shortSerial(old.cert), shortSerial(renewed))
}

// mediaType parses a Content-Type.
func mediaType(ct string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil
	}
	return strings.ToLower(mt), params
}

// decodeStrict decodes a response body that must be base64 (RFC 8951 3.1),
// saying what it is instead when it is not.
func decodeStrict(body []byte) ([]byte, error) {
	der, err := est.DecodeBase64(body)
	if err == nil {
		return der, nil
	}
	t := bytes.TrimSpace(body)
	switch {
	case bytes.HasPrefix(t, []byte("-----BEGIN")):
		return nil, fmt.Errorf("the body is PEM, not base64 DER (RFC 8951 3.1)")
	case len(t) > 0 && t[0] == 0x30:
		return nil, fmt.Errorf("the body is binary DER, not base64 (RFC 8951 3.1)")
	case len(t) == 0:
		return nil, fmt.Errorf("the body is empty")
	}
	return nil, fmt.Errorf("the body is not base64: %s", est.Detail(err))
}

func checkFormatCACerts(ctx context.Context, s *session) outcome {
	label := s.cfg.ClientLabel
	r := s.raw(ctx, rawRequest{label: label, op: est.OpCACerts})
	what := "GET " + est.Path(label, est.OpCACerts)
	if r.err != nil || r.status != http.StatusOK {
		return fail("%s: %s, want 200", what, r.describe())
	}
	ct := r.header.Get("Content-Type")
	mt, params := mediaType(ct)
	if mt != est.MediaPKCS7 {
		return fail("%s: Content-Type %q, want %s (RFC 7030 4.1.3)", what, ct, est.MediaPKCS7)
	}
	if st, ok := params["smime-type"]; ok && !strings.EqualFold(st, "certs-only") {
		return fail("%s: Content-Type %q: smime-type must be certs-only", what, ct)
	}
	der, err := decodeStrict(r.body)
	if err != nil {
		return fail("%s: %v", what, err)
	}
	certs, note, err := certsOnlyStructure(der)
	if err != nil {
		return fail("%s: %v", what, err)
	}
	return pass("%s: 200 %s, base64 certs-only PKCS#7 with %d certificates%s", what, ct, len(certs), note)
}

func checkFormatEnroll(ctx context.Context, s *session) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	label := s.cfg.ClientLabel
	key, err := newKey(algECDSA)
	if err != nil {
		return fail("%v", err)
	}
	csr, err := csrFor(key, s.subjectName("format"), nil)
	if err != nil {
		return fail("%v", err)
	}
	r := s.raw(ctx, rawRequest{label: label, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: cred})
	what := "POST " + est.Path(label, est.OpSimpleEnroll)
	if r.err != nil || r.status != http.StatusOK {
		return fail("%s with %s: %s, want 200", what, cred.desc, r.describe())
	}
	ct := r.header.Get("Content-Type")
	mt, params := mediaType(ct)
	if ct == "" {
		return fail("%s: no Content-Type, want %q (RFC 7030 4.2.3)", what, est.MediaCertsOnly)
	}
	if mt != est.MediaPKCS7 || !strings.EqualFold(params["smime-type"], "certs-only") {
		return fail("%s: Content-Type %q, want %q (RFC 7030 4.2.3)", what, ct, est.MediaCertsOnly)
	}
	der, err := decodeStrict(r.body)
	if err != nil {
		return fail("%s: %v", what, err)
	}
	certs, note, err := certsOnlyStructure(der)
	if err != nil {
		return fail("%s: %v", what, err)
	}
	if len(certs) != 1 {
		return fail("%s: %d certificates, want only the one issued (RFC 7030 4.2.3)", what, len(certs))
	}
	if k, ok := certs[0].PublicKey.(publicKey); !ok || !k.Equal(key.Public()) {
		return fail("%s: the certificate is not for the request's key", what)
	}
	return pass("%s: 200 %s, base64 certs-only PKCS#7 with the issued certificate only%s", what, ct, note)
}

// wrapLines inserts CRLF every n characters, as MIME base64 does.
func wrapLines(b []byte, n int) []byte {
	var out []byte
	for len(b) > n {
		out = append(out, b[:n]...)
		out = append(out, '\r', '\n')
		b = b[n:]
	}
	out = append(out, b...)
	return append(out, '\r', '\n')
}

func checkFormatBase64(ctx context.Context, s *session) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	label := s.cfg.ClientLabel
	for _, v := range []struct {
		name   string
		encode func([]byte) []byte
	}{
		{"with line breaks (64 columns, CRLF)", func(der []byte) []byte { return wrapLines(est.EncodeBase64(der), 64) }},
		{"without line breaks", est.EncodeBase64},
	} {
		key, err := newKey(algECDSA)
		if err != nil {
			return fail("%v", err)
		}
		csr, err := csrFor(key, s.subjectName("base64"), nil)
		if err != nil {
			return fail("%v", err)
		}
		r := s.raw(ctx, rawRequest{label: label, op: est.OpSimpleEnroll, contentType: est.MediaPKCS10, body: v.encode(csr), cred: cred})
		if r.err != nil || r.status != http.StatusOK {
			return fail("a CSR in base64 %s: %s, want 200", v.name, r.describe())
		}
		if !hasCertFor(certsIn(r), key.Public()) {
			return fail("a CSR in base64 %s: 200 without a certificate for the request's key", v.name)
		}
	}
	return pass("CSRs in base64 with and without line breaks were both issued")
}

func hasCertFor(certs []*x509.Certificate, pub crypto.PublicKey) bool {
	for _, c := range certs {
		if k, ok := c.PublicKey.(publicKey); ok && k.Equal(pub) {
			return true
		}
	}
	return false
}

func checkFormatCSRAttrs(ctx context.Context, s *session) outcome {
	cred := s.enrollCred()
	if cred == nil {
		cred = anonymous
	}
	var parts []string
	for _, label := range s.labels() {
		what := "GET " + est.Path(label, est.OpCSRAttrs)
		r := s.raw(ctx, rawRequest{label: label, op: est.OpCSRAttrs, cred: cred})
		if r.err != nil {
			return fail("%s: %s", what, r.describe())
		}
		switch r.status {
		case http.StatusNoContent, http.StatusNotFound:
			parts = append(parts, fmt.Sprintf("%s: %d, no attributes", what, r.status))
			continue
		case http.StatusOK:
		default:
			return fail("%s: %s, want 200, 204 or 404 (RFC 7030 4.5.2)", what, r.describe())
		}
		ct := r.header.Get("Content-Type")
		if mt, _ := mediaType(ct); mt != est.MediaCSRAttrs {
			return fail("%s: Content-Type %q, want %s (RFC 7030 4.5.2)", what, ct, est.MediaCSRAttrs)
		}
		der, err := decodeStrict(r.body)
		if err != nil {
			return fail("%s: %v", what, err)
		}
		attrs, err := est.ParseCSRAttrs(der)
		if err != nil {
			return fail("%s: %s", what, est.Detail(err))
		}
		oids := attrs.OIDs()
		names := make([]string, len(oids))
		for i, o := range oids {
			names[i] = o.String()
		}
		parts = append(parts, fmt.Sprintf("%s: %d attributes [%s]", what, len(attrs), strings.Join(names, " ")))
	}
	return pass("%s", strings.Join(parts, "; "))
}

func checkFormatServerKeyGen(ctx context.Context, s *session) outcome {
	cred := s.enrollCred()
	if cred == nil {
		return skip(needCredential)
	}
	label := s.cfg.ClientLabel
	key, err := newKey(algECDSA)
	if err != nil {
		return fail("%v", err)
	}
	cn := s.subjectName("serverkeygen")
	csr, err := csrFor(key, cn, nil)
	if err != nil {
		return fail("%v", err)
	}
	what := "POST " + est.Path(label, est.OpServerKeyGen)
	r := s.raw(ctx, rawRequest{label: label, op: est.OpServerKeyGen, contentType: est.MediaPKCS10, body: est.EncodeBase64(csr), cred: cred})
	switch {
	case r.err != nil:
		return fail("%s: %s", what, r.describe())
	case r.status == http.StatusNotFound || r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotImplemented:
		return skip("%s: %s: the server does not offer serverkeygen (optional, RFC 7030 4.4)", what, r.describe())
	case r.status != http.StatusOK:
		return fail("%s with %s: %s, want 200", what, cred.desc, r.describe())
	}
	ct := r.header.Get("Content-Type")
	if mt, params := mediaType(ct); mt != est.MediaMultipartMixed || params["boundary"] == "" {
		return fail("%s: Content-Type %q, want multipart/mixed with a boundary (RFC 7030 4.4.2)", what, ct)
	}
	skg, err := est.ParseServerKeyGen(ct, r.body)
	if err != nil {
		return fail("%s: %s", what, est.Detail(err))
	}
	if skg.KeyEncrypted {
		return skip("%s: the server encrypted the key, which was not asked for; cannot check it matches", what)
	}
	k, err := x509.ParsePKCS8PrivateKey(skg.Key)
	if err != nil {
		return fail("%s: the application/pkcs8 part is not a PKCS#8 private key (RFC 7030 4.4.2, RFC 5958)", what)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return fail("%s: the key part holds a %T, which cannot sign", what, k)
	}
	certs, _, err := certsOnlyStructure(skg.Certs)
	if err != nil {
		return fail("%s: certificate part: %v", what, err)
	}
	if !hasCertFor(certs, signer.Public()) {
		return fail("%s: the key returned does not match the certificate returned", what)
	}
	var cert *x509.Certificate
	for _, c := range certs {
		if k, ok := c.PublicKey.(publicKey); ok && k.Equal(signer.Public()) {
			cert = c
		}
	}
	if err := s.validate(ctx, label, cert, expectation{key: signer.Public(), cn: cn, eku: x509.ExtKeyUsageClientAuth}); err != nil {
		return fail("%s: %v", what, err)
	}
	return pass("%s: multipart/mixed, PKCS#8 %s key matching the certificate %s", what, keyAlg(signer.Public()), describeCert(cert))
}
