package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
)

// createCertificate is x509.CreateCertificate(rand.Reader, tmpl, parent,
// pub, key), made cheaper for the certificates Issue makes with a key of
// the standard library.
//
// x509.CreateCertificate encodes the TBSCertificate with encoding/asn1's
// reflection and verifies every signature it gets back, to catch a
// crypto.Signer that misbehaves. For an ECDSA CA key that verification
// costs three times the signature itself; with the encoding it was half of
// what issuing a certificate cost (see BENCHMARKS.md). The standard
// library's keys do not need the check: RSA signing already verifies its
// result against faults, and ECDSA and Ed25519 signatures come from the
// code that would verify them. Any other signer (an HSM through PKCS#11)
// keeps x509.CreateCertificate and its check, and so does a template that
// uses what marshalTBS does not encode.
//
// The TBSCertificate is byte for byte what x509.CreateCertificate makes;
// sign_test.go compares the two over many templates.
func createCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) ([]byte, error) {
	alg, opts, ok := signatureParams(key)
	if !ok {
		return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	}
	tbs, ok := marshalTBS(tmpl, parent, pub, key.Public(), alg)
	if !ok {
		return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	}
	sig, err := crypto.SignMessage(key, rand.Reader, tbs, opts)
	if err != nil {
		return nil, err
	}
	// Sized up front: a growing buffer copies everything it holds.
	w := derWriter{buf: make([]byte, 0, len(tbs)+len(alg)+len(sig)+16)}
	w.begin(tagSequence)
	w.raw(tbs)
	w.raw(alg)
	w.begin(tagBitString)
	w.buf = append(w.buf, 0) // no unused bits
	w.raw(sig)
	w.end()
	w.end()
	cert, _ := w.bytes()
	return cert, nil
}

// DER AlgorithmIdentifiers of the signature algorithms x509 picks for each
// key (RFC 5758 3.2, RFC 4055 5, RFC 8410 3).
var (
	algECDSAWithSHA256 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}
	algECDSAWithSHA384 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}
	algECDSAWithSHA512 = []byte{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}
	algSHA256WithRSA   = []byte{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00}
	algEd25519         = []byte{0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}
)

// signatureParams returns the AlgorithmIdentifier and signer options
// x509.CreateCertificate uses for key, when key is an in-memory key of the
// standard library.
func signatureParams(key crypto.Signer) ([]byte, crypto.SignerOpts, bool) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return algECDSAWithSHA256, crypto.SHA256, true
		case elliptic.P384():
			return algECDSAWithSHA384, crypto.SHA384, true
		case elliptic.P521():
			return algECDSAWithSHA512, crypto.SHA512, true
		}
	case *rsa.PrivateKey:
		return algSHA256WithRSA, crypto.SHA256, true
	case ed25519.PrivateKey:
		return algEd25519, crypto.Hash(0), true
	}
	return nil, nil, false
}

// DER object identifiers of the extensions marshalTBS writes (RFC 5280
// 4.2.1, 4.2.2.1).
var (
	oidKeyUsage         = derOID(asn1.ObjectIdentifier{2, 5, 29, 15})
	oidExtKeyUsage      = derOID(asn1.ObjectIdentifier{2, 5, 29, 37})
	oidBasicConstraints = derOID(asn1.ObjectIdentifier{2, 5, 29, 19})
	oidSubjectKeyID     = derOID(asn1.ObjectIdentifier{2, 5, 29, 14})
	oidAuthorityKeyID   = derOID(asn1.ObjectIdentifier{2, 5, 29, 35})
	oidAuthorityInfo    = derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1})
	oidOCSP             = derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1})
	oidSubjectAltName   = derOID(asn1.ObjectIdentifier{2, 5, 29, 17})
	oidCRLDistribution  = derOID(asn1.ObjectIdentifier{2, 5, 29, 31})
)

// extKeyUsageOIDs are the DER of the extended key usages marshalTBS writes.
var extKeyUsageOIDs = map[x509.ExtKeyUsage][]byte{
	x509.ExtKeyUsageAny:             derOID(asn1.ObjectIdentifier{2, 5, 29, 37, 0}),
	x509.ExtKeyUsageServerAuth:      derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}),
	x509.ExtKeyUsageClientAuth:      derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}),
	x509.ExtKeyUsageCodeSigning:     derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 3}),
	x509.ExtKeyUsageEmailProtection: derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 4}),
	x509.ExtKeyUsageTimeStamping:    derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}),
	x509.ExtKeyUsageOCSPSigning:     derOID(asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 9}),
}

// marshalTBS returns the DER TBSCertificate (RFC 5280 4.1) that
// x509.CreateCertificate makes for tmpl, issued by parent whose key has the
// public key signerPub and signs with the AlgorithmIdentifier alg. It
// reports false for a template that uses fields it does not encode (CA
// certificates, policies, name constraints, extra extensions, ...) or that
// x509 would refuse; x509.CreateCertificate then handles it.
func marshalTBS(tmpl, parent *x509.Certificate, pub, signerPub crypto.PublicKey, alg []byte) ([]byte, bool) {
	if !simpleTemplate(tmpl) || len(parent.RawSubject) == 0 || len(tmpl.RawSubject) == 0 {
		return nil, false
	}
	if k, ok := signerPub.(interface{ Equal(crypto.PublicKey) bool }); !ok || parent.PublicKey != nil && !k.Equal(parent.PublicKey) {
		return nil, false
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, false
	}
	akid := tmpl.AuthorityKeyId
	if !bytes.Equal(parent.RawSubject, tmpl.RawSubject) && len(parent.SubjectKeyId) > 0 {
		akid = parent.SubjectKeyId
	}
	w := derWriter{buf: make([]byte, 0, 512+len(spki)+len(parent.RawSubject)+len(tmpl.RawSubject))}
	w.begin(tagSequence)
	w.raw([]byte{contextTag(0, true), 3, tagInteger, 1, 2}) // [0] version v3
	w.positiveInteger(tmpl.SerialNumber)
	w.raw(alg)
	w.raw(parent.RawSubject)
	w.begin(tagSequence) // validity
	if !w.time(tmpl.NotBefore) || !w.time(tmpl.NotAfter) {
		return nil, false
	}
	w.end()
	w.raw(tmpl.RawSubject)
	w.raw(spki)
	mark := len(w.buf)
	w.begin(contextTag(3, true))
	w.begin(tagSequence)
	if !writeExtensions(&w, tmpl, akid) {
		w.buf = w.buf[:mark] // none: no [3] either
		w.depth -= 2
	} else {
		w.end()
		w.end()
	}
	w.end()
	return w.bytes()
}

// simpleTemplate reports whether tmpl uses only what marshalTBS encodes,
// in ways x509.CreateCertificate accepts.
func simpleTemplate(t *x509.Certificate) bool {
	if t.SerialNumber == nil || t.SerialNumber.Sign() <= 0 || t.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
		return false
	}
	if t.IsCA || t.MaxPathLenZero || t.MaxPathLen != 0 && t.MaxPathLen != -1 {
		return false
	}
	if len(t.ExtraExtensions) > 0 || len(t.IssuingCertificateURL) > 0 ||
		len(t.PolicyIdentifiers) > 0 || len(t.Policies) > 0 ||
		len(t.PermittedDNSDomains) > 0 || len(t.ExcludedDNSDomains) > 0 ||
		len(t.PermittedIPRanges) > 0 || len(t.ExcludedIPRanges) > 0 ||
		len(t.PermittedEmailAddresses) > 0 || len(t.ExcludedEmailAddresses) > 0 ||
		len(t.PermittedURIDomains) > 0 || len(t.ExcludedURIDomains) > 0 {
		return false
	}
	for _, u := range t.ExtKeyUsage {
		if _, ok := extKeyUsageOIDs[u]; !ok {
			return false
		}
	}
	for _, s := range t.DNSNames {
		if !ia5(s) {
			return false
		}
	}
	for _, s := range t.EmailAddresses {
		if !ia5(s) {
			return false
		}
	}
	for _, u := range t.URIs {
		if !ia5(u.String()) {
			return false
		}
	}
	return true
}

func ia5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// writeExtensions writes the extensions of tmpl in x509's order (key
// usage, extended key usage, basic constraints, subject and authority key
// identifiers, authority information access, subject alternative name, CRL
// distribution points), without the enclosing SEQUENCE, and reports
// whether there were any.
func writeExtensions(w *derWriter, t *x509.Certificate, akid []byte) bool {
	any := false
	begin := func(oid []byte, critical bool) {
		any = true
		w.begin(tagSequence)
		w.raw(oid)
		if critical {
			w.raw([]byte{tagBoolean, 1, 0xff})
		}
		w.begin(tagOctetString)
	}
	end := func() { w.end(); w.end() }
	if t.KeyUsage != 0 {
		begin(oidKeyUsage, true)
		w.raw(keyUsageBits(t.KeyUsage))
		end()
	}
	if len(t.ExtKeyUsage) > 0 || len(t.UnknownExtKeyUsage) > 0 {
		begin(oidExtKeyUsage, false)
		w.begin(tagSequence)
		for _, u := range t.ExtKeyUsage {
			w.raw(extKeyUsageOIDs[u])
		}
		for _, oid := range t.UnknownExtKeyUsage {
			der, err := asn1.Marshal(oid)
			if err != nil {
				w.bad = true // x509.CreateCertificate will say what is wrong
				continue
			}
			w.raw(der)
		}
		w.end()
		end()
	}
	if t.BasicConstraintsValid {
		// Not a CA, no path length: both fields take their defaults.
		begin(oidBasicConstraints, true)
		w.raw([]byte{tagSequence, 0})
		end()
	}
	if len(t.SubjectKeyId) > 0 {
		begin(oidSubjectKeyID, false)
		w.element(tagOctetString, t.SubjectKeyId)
		end()
	}
	if len(akid) > 0 {
		begin(oidAuthorityKeyID, false)
		w.begin(tagSequence)
		w.element(contextTag(0, false), akid)
		w.end()
		end()
	}
	if len(t.OCSPServer) > 0 {
		begin(oidAuthorityInfo, false)
		w.begin(tagSequence)
		for _, u := range t.OCSPServer {
			w.begin(tagSequence)
			w.raw(oidOCSP)
			w.element(contextTag(6, false), []byte(u))
			w.end()
		}
		w.end()
		end()
	}
	if len(t.DNSNames) > 0 || len(t.EmailAddresses) > 0 || len(t.IPAddresses) > 0 || len(t.URIs) > 0 {
		// RFC 5280 4.2.1.6: critical when the subject is empty.
		begin(oidSubjectAltName, bytes.Equal(t.RawSubject, []byte{tagSequence, 0}))
		w.begin(tagSequence)
		for _, d := range t.DNSNames {
			w.element(contextTag(2, false), []byte(d))
		}
		for _, e := range t.EmailAddresses {
			w.element(contextTag(1, false), []byte(e))
		}
		for _, ip := range t.IPAddresses {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			w.element(contextTag(7, false), ip)
		}
		for _, u := range t.URIs {
			w.element(contextTag(6, false), []byte(u.String()))
		}
		w.end()
		end()
	}
	if len(t.CRLDistributionPoints) > 0 {
		begin(oidCRLDistribution, false)
		w.begin(tagSequence)
		for _, u := range t.CRLDistributionPoints {
			w.begin(tagSequence)         // DistributionPoint
			w.begin(contextTag(0, true)) // distributionPoint
			w.begin(contextTag(0, true)) // fullName
			w.element(contextTag(6, false), []byte(u))
			w.end()
			w.end()
			w.end()
		}
		w.end()
		end()
	}
	return any
}

// keyUsageBits is the DER BIT STRING of a KeyUsage: bit 0 (digitalSignature)
// first, trailing zero bits dropped, as x509 writes it.
func keyUsageBits(ku x509.KeyUsage) []byte {
	var a [2]byte
	a[0] = reverseBits(byte(ku))
	a[1] = reverseBits(byte(ku >> 8))
	n := 1
	if a[1] != 0 {
		n = 2
	}
	bits := a[:n]
	length := 0 // bits up to and including the last one set
	for i := n*8 - 1; i >= 0; i-- {
		if bits[i/8]&(0x80>>(i%8)) != 0 {
			length = i + 1
			break
		}
	}
	out := []byte{0x03, byte(1 + n), byte((8 - length%8) % 8)}
	return append(out, bits...)
}

func reverseBits(b byte) byte {
	var r byte
	for range 8 {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}
