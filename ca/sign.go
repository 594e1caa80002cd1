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
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
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
	// Sized up front: a growing builder copies everything it holds.
	b := cryptobyte.NewBuilder(make([]byte, 0, len(tbs)+len(alg)+len(sig)+16))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		b.AddBytes(alg)
		b.AddASN1BitString(sig)
	})
	return b.Bytes()
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

// Object identifiers of the extensions marshalTBS writes (RFC 5280 4.2.1,
// 4.2.2.1).
var (
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage      = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidSubjectKeyID     = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidAuthorityKeyID   = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidAuthorityInfo    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 1}
	oidOCSP             = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1}
	oidSubjectAltName   = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidCRLDistribution  = asn1.ObjectIdentifier{2, 5, 29, 31}
)

// extKeyUsageOIDs are the extended key usages marshalTBS writes.
var extKeyUsageOIDs = map[x509.ExtKeyUsage]asn1.ObjectIdentifier{
	x509.ExtKeyUsageAny:             {2, 5, 29, 37, 0},
	x509.ExtKeyUsageServerAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 1},
	x509.ExtKeyUsageClientAuth:      {1, 3, 6, 1, 5, 5, 7, 3, 2},
	x509.ExtKeyUsageCodeSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 3},
	x509.ExtKeyUsageEmailProtection: {1, 3, 6, 1, 5, 5, 7, 3, 4},
	x509.ExtKeyUsageTimeStamping:    {1, 3, 6, 1, 5, 5, 7, 3, 8},
	x509.ExtKeyUsageOCSPSigning:     {1, 3, 6, 1, 5, 5, 7, 3, 9},
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
	notBefore, ok1 := asn1Time(tmpl.NotBefore)
	notAfter, ok2 := asn1Time(tmpl.NotAfter)
	if !ok1 || !ok2 {
		return nil, false
	}
	akid := tmpl.AuthorityKeyId
	if !bytes.Equal(parent.RawSubject, tmpl.RawSubject) && len(parent.SubjectKeyId) > 0 {
		akid = parent.SubjectKeyId
	}
	exts, ok := marshalExtensions(tmpl, akid)
	if !ok {
		return nil, false
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, 256+len(spki)+len(exts)+len(parent.RawSubject)+len(tmpl.RawSubject)))
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1Int64(2) // v3
		})
		b.AddASN1BigInt(tmpl.SerialNumber)
		b.AddBytes(alg)
		b.AddBytes(parent.RawSubject)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(notBefore)
			b.AddBytes(notAfter)
		})
		b.AddBytes(tmpl.RawSubject)
		b.AddBytes(spki)
		if len(exts) > 0 {
			b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(exts) })
			})
		}
	})
	tbs, err := b.Bytes()
	return tbs, err == nil
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

// asn1Time encodes t as encoding/asn1 does: UTCTime for 1950 to 2049,
// GeneralizedTime otherwise, in UTC, to the second.
func asn1Time(t time.Time) ([]byte, bool) {
	t = t.UTC()
	y := t.Year()
	if y < 0 || y > 9999 {
		return nil, false
	}
	var b cryptobyte.Builder
	if y >= 1950 && y < 2050 {
		b.AddASN1(cbasn1.UTCTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(t.Format("060102150405Z"))) })
	} else {
		b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) { b.AddBytes([]byte(t.Format("20060102150405Z"))) })
	}
	der, err := b.Bytes()
	return der, err == nil
}

// marshalExtensions encodes the extensions of tmpl in x509's order (key
// usage, extended key usage, basic constraints, subject and authority key
// identifiers, authority information access, subject alternative name, CRL
// distribution points), without the enclosing SEQUENCE.
func marshalExtensions(t *x509.Certificate, akid []byte) ([]byte, bool) {
	b := cryptobyte.NewBuilder(make([]byte, 0, 1024))
	ext := func(oid asn1.ObjectIdentifier, critical bool, value func(*cryptobyte.Builder)) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if critical {
				b.AddASN1Boolean(true)
			}
			b.AddASN1(cbasn1.OCTET_STRING, value)
		})
	}
	if t.KeyUsage != 0 {
		ext(oidKeyUsage, true, func(b *cryptobyte.Builder) { b.AddBytes(keyUsageBits(t.KeyUsage)) })
	}
	if len(t.ExtKeyUsage) > 0 || len(t.UnknownExtKeyUsage) > 0 {
		ext(oidExtKeyUsage, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.ExtKeyUsage {
					b.AddASN1ObjectIdentifier(extKeyUsageOIDs[u])
				}
				for _, oid := range t.UnknownExtKeyUsage {
					b.AddASN1ObjectIdentifier(oid)
				}
			})
		})
	}
	if t.BasicConstraintsValid {
		// Not a CA, no path length: both fields take their defaults.
		ext(oidBasicConstraints, true, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {})
		})
	}
	if len(t.SubjectKeyId) > 0 {
		ext(oidSubjectKeyID, false, func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.SubjectKeyId) })
	}
	if len(akid) > 0 {
		ext(oidAuthorityKeyID, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(akid) })
			})
		})
	}
	if len(t.OCSPServer) > 0 {
		ext(oidAuthorityInfo, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.OCSPServer {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidOCSP)
						b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
					})
				}
			})
		})
	}
	if len(t.DNSNames) > 0 || len(t.EmailAddresses) > 0 || len(t.IPAddresses) > 0 || len(t.URIs) > 0 {
		// RFC 5280 4.2.1.6: critical when the subject is empty.
		emptySubject := bytes.Equal(t.RawSubject, []byte{0x30, 0x00})
		ext(oidSubjectAltName, emptySubject, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				name := func(tag uint8, v []byte) {
					b.AddASN1(cbasn1.Tag(tag).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(v) })
				}
				for _, d := range t.DNSNames {
					name(2, []byte(d))
				}
				for _, e := range t.EmailAddresses {
					name(1, []byte(e))
				}
				for _, ip := range t.IPAddresses {
					if ip4 := ip.To4(); ip4 != nil {
						ip = ip4
					}
					name(7, ip)
				}
				for _, u := range t.URIs {
					name(6, []byte(u.String()))
				}
			})
		})
	}
	if len(t.CRLDistributionPoints) > 0 {
		ext(oidCRLDistribution, false, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, u := range t.CRLDistributionPoints {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // DistributionPoint
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // distributionPoint
							b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { // fullName
								b.AddASN1(cbasn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u)) })
							})
						})
					})
				}
			})
		})
	}
	der, err := b.Bytes()
	return der, err == nil
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
