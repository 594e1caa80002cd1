package est

// CMS SignedData (RFC 5652 section 5) with signed attributes, as Full CMC
// uses it: the content of a Full PKI Request or Response is signed, and its
// eContentType is id-cct-PKIData or id-cct-PKIResponse, which the
// certs-only PKCS#7 of pkcs7.go never needs. Signatures: ECDSA (P-256,
// P-384, P-521) with SHA-2, RSA PKCS#1 v1.5 with SHA-2, Ed25519 (RFC 8419).
// The signer is named by issuer and serial number or by subject key
// identifier (RFC 5652 5.3). Input must be DER (definite lengths).

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 for crypto.Hash.New
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	sdOIDSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	sdOIDContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	sdOIDMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	sdOIDSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}

	sdOIDSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	sdOIDSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	sdOIDSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	sdOIDECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	sdOIDECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	sdOIDECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	sdOIDECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	sdOIDRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	sdOIDSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	sdOIDSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	sdOIDSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	sdOIDEd25519         = asn1.ObjectIdentifier{1, 3, 101, 112}
)

// ErrCMSAlgorithm is wrapped by the errors of SignedData.Verify and
// EncodeSignedData for a digest or signature algorithm they do not support
// (CMC's badAlg).
var ErrCMSAlgorithm = errors.New("unsupported CMS algorithm")

// SignedData is a parsed CMS SignedData with its encapsulated content.
type SignedData struct {
	// ContentType is the eContentType; Content the eContent (nil when absent).
	ContentType  asn1.ObjectIdentifier
	Content      []byte
	Certificates []*x509.Certificate
	Signers      []*SignerInfo
}

// SignerInfo is one signer of a SignedData.
type SignerInfo struct {
	// Issuer (DER Name) and Serial name the signer's certificate, or
	// SubjectKeyID names its key; exactly one of the two forms is set.
	Issuer       []byte
	Serial       *big.Int
	SubjectKeyID []byte
	// DigestAlgorithm and SignatureAlgorithm are the OIDs of the
	// digestAlgorithm and signatureAlgorithm fields.
	DigestAlgorithm    asn1.ObjectIdentifier
	SignatureAlgorithm asn1.ObjectIdentifier
	// SigningTime is the signingTime attribute; zero when absent.
	SigningTime time.Time

	signedAttrs   []byte // DER SET OF Attribute, as signed
	signature     []byte
	contentType   asn1.ObjectIdentifier
	messageDigest []byte
}

// Identifies reports whether si names cert: by issuer and serial number, or
// by the certificate's subject key identifier.
func (si *SignerInfo) Identifies(cert *x509.Certificate) bool {
	if si.SubjectKeyID != nil {
		return len(cert.SubjectKeyId) > 0 && bytes.Equal(cert.SubjectKeyId, si.SubjectKeyID)
	}
	return si.Serial != nil && si.Serial.Cmp(cert.SerialNumber) == 0 && SameName(si.Issuer, cert.RawIssuer)
}

// SignerCertificate returns the certificate among sd.Certificates that si
// names, or nil.
func (sd *SignedData) SignerCertificate(si *SignerInfo) *x509.Certificate {
	for _, c := range sd.Certificates {
		if si.Identifies(c) {
			return c
		}
	}
	return nil
}

func errSD(format string, args ...any) error {
	return Errorf(ErrBadRequest, "malformed CMS SignedData: "+format, args...)
}

// ParseSignedData parses a DER ContentInfo holding a SignedData. It checks
// the structure and the signed attributes every signer must have (content
// type, message digest); Verify checks a signature. Errors are of kind
// ErrBadRequest.
func ParseSignedData(der []byte) (*SignedData, error) {
	in := cryptobyte.String(der)
	var ci, content, sdSeq cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, casn1.SEQUENCE) || !in.Empty() {
		return nil, errSD("not one DER ContentInfo")
	}
	if !ci.ReadASN1ObjectIdentifier(&ct) || !ci.ReadASN1(&content, casn1.Tag(0).Constructed().ContextSpecific()) || !ci.Empty() {
		return nil, errSD("ContentInfo")
	}
	if !ct.Equal(sdOIDSignedData) {
		return nil, Errorf(ErrBadRequest, "CMS content type %v is not SignedData", ct)
	}
	var version int64
	var digestAlgs, encap cryptobyte.String
	if !content.ReadASN1(&sdSeq, casn1.SEQUENCE) || !content.Empty() ||
		!sdSeq.ReadASN1Integer(&version) || !sdSeq.ReadASN1(&digestAlgs, casn1.SET) ||
		!sdSeq.ReadASN1(&encap, casn1.SEQUENCE) {
		return nil, errSD("SignedData")
	}
	sd := &SignedData{}
	var eContent cryptobyte.String
	var hasContent bool
	if !encap.ReadASN1ObjectIdentifier(&sd.ContentType) ||
		!encap.ReadOptionalASN1(&eContent, &hasContent, casn1.Tag(0).Constructed().ContextSpecific()) || !encap.Empty() {
		return nil, errSD("encapContentInfo")
	}
	if hasContent {
		var octets []byte
		if !eContent.ReadASN1Bytes(&octets, casn1.OCTET_STRING) || !eContent.Empty() {
			return nil, errSD("eContent is not a DER OCTET STRING")
		}
		if octets == nil {
			octets = []byte{}
		}
		sd.Content = octets
	}
	var certs cryptobyte.String
	var hasCerts bool
	if !sdSeq.ReadOptionalASN1(&certs, &hasCerts, casn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, errSD("certificates")
	}
	for !certs.Empty() {
		var c cryptobyte.String
		var tag casn1.Tag
		if !certs.ReadAnyASN1Element(&c, &tag) {
			return nil, errSD("certificates")
		}
		if tag != casn1.SEQUENCE {
			continue // an attribute or other certificate: not used here
		}
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			return nil, Wrap(ErrBadRequest, err, "malformed certificate in SignedData")
		}
		sd.Certificates = append(sd.Certificates, cert)
	}
	var skip cryptobyte.String
	if !sdSeq.ReadOptionalASN1(&skip, nil, casn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, errSD("crls")
	}
	var infos cryptobyte.String
	if !sdSeq.ReadASN1(&infos, casn1.SET) || !sdSeq.Empty() {
		return nil, errSD("signerInfos")
	}
	for !infos.Empty() {
		si, err := sdParseSignerInfo(&infos)
		if err != nil {
			return nil, err
		}
		sd.Signers = append(sd.Signers, si)
	}
	return sd, nil
}

func sdParseSignerInfo(s *cryptobyte.String) (*SignerInfo, error) {
	var seq cryptobyte.String
	var version int64
	if !s.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1Integer(&version) {
		return nil, errSD("SignerInfo")
	}
	si := &SignerInfo{}
	switch {
	case seq.PeekASN1Tag(casn1.SEQUENCE):
		var ias, name cryptobyte.String
		si.Serial = new(big.Int)
		if !seq.ReadASN1(&ias, casn1.SEQUENCE) || !ias.ReadASN1Element(&name, casn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.Serial) || !ias.Empty() {
			return nil, errSD("issuerAndSerialNumber")
		}
		si.Issuer = name
	case seq.PeekASN1Tag(casn1.Tag(0).ContextSpecific()):
		if !seq.ReadASN1Bytes(&si.SubjectKeyID, casn1.Tag(0).ContextSpecific()) {
			return nil, errSD("subjectKeyIdentifier")
		}
		if si.SubjectKeyID == nil {
			si.SubjectKeyID = []byte{}
		}
	default:
		return nil, errSD("SignerIdentifier")
	}
	var err error
	if si.DigestAlgorithm, err = sdReadAlgorithm(&seq); err != nil {
		return nil, err
	}
	var attrs cryptobyte.String
	if !seq.ReadASN1Element(&attrs, casn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, Errorf(ErrBadRequest, "CMS signer without signed attributes")
	}
	// The signature covers the DER of the SET OF, not of the [0].
	si.signedAttrs = append([]byte{0x31}, attrs[1:]...)
	if err := si.readSignedAttrs(); err != nil {
		return nil, err
	}
	if si.SignatureAlgorithm, err = sdReadAlgorithm(&seq); err != nil {
		return nil, err
	}
	if !seq.ReadASN1Bytes(&si.signature, casn1.OCTET_STRING) {
		return nil, errSD("signature")
	}
	var skip cryptobyte.String
	if !seq.ReadOptionalASN1(&skip, nil, casn1.Tag(1).Constructed().ContextSpecific()) || !seq.Empty() {
		return nil, errSD("SignerInfo")
	}
	return si, nil
}

// sdReadAlgorithm reads an AlgorithmIdentifier and returns its OID; the
// parameters are absent or NULL for every algorithm supported.
func sdReadAlgorithm(s *cryptobyte.String) (asn1.ObjectIdentifier, error) {
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&alg, casn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, errSD("AlgorithmIdentifier")
	}
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, casn1.NULL) || !null.Empty() || !alg.Empty() {
			return nil, Wrap(ErrBadRequest, ErrCMSAlgorithm, fmt.Sprintf("algorithm %v with parameters", oid))
		}
	}
	return oid, nil
}

// readSignedAttrs reads the content type, message digest and signing time
// out of the signed attributes; the first two must be there once with one
// value each (RFC 5652 5.3, 11).
func (si *SignerInfo) readSignedAttrs() error {
	in := cryptobyte.String(si.signedAttrs)
	var set cryptobyte.String
	if !in.ReadASN1(&set, casn1.SET) {
		return errSD("signedAttrs")
	}
	var seenCT, seenMD, seenST bool
	for !set.Empty() {
		var attr, vals cryptobyte.String
		var typ asn1.ObjectIdentifier
		if !set.ReadASN1(&attr, casn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&typ) || !attr.ReadASN1(&vals, casn1.SET) || !attr.Empty() {
			return errSD("signed attribute")
		}
		switch {
		case typ.Equal(sdOIDContentType):
			if seenCT || !vals.ReadASN1ObjectIdentifier(&si.contentType) || !vals.Empty() {
				return errSD("content-type attribute")
			}
			seenCT = true
		case typ.Equal(sdOIDMessageDigest):
			if seenMD || !vals.ReadASN1Bytes(&si.messageDigest, casn1.OCTET_STRING) || !vals.Empty() {
				return errSD("message-digest attribute")
			}
			seenMD = true
		case typ.Equal(sdOIDSigningTime):
			var ok bool
			switch {
			case vals.PeekASN1Tag(casn1.UTCTime):
				ok = vals.ReadASN1UTCTime(&si.SigningTime)
			case vals.PeekASN1Tag(casn1.GeneralizedTime):
				ok = vals.ReadASN1GeneralizedTime(&si.SigningTime)
			}
			if seenST || !ok || !vals.Empty() {
				return errSD("signing-time attribute")
			}
			seenST = true
		}
	}
	if !seenCT || !seenMD {
		return Errorf(ErrBadRequest, "CMS signer without the content-type and message-digest attributes")
	}
	return nil
}

// sdScheme is how a signature is checked or made: the key type, and the
// hash of the signed attributes (0 for Ed25519, which signs them whole).
type sdScheme struct {
	key  string // "ecdsa", "rsa", "ed25519"
	hash crypto.Hash
}

func sdDigestHash(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case oid.Equal(sdOIDSHA256):
		return crypto.SHA256, true
	case oid.Equal(sdOIDSHA384):
		return crypto.SHA384, true
	case oid.Equal(sdOIDSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

func sdDigestOID(h crypto.Hash) asn1.ObjectIdentifier {
	switch h {
	case crypto.SHA384:
		return sdOIDSHA384
	case crypto.SHA512:
		return sdOIDSHA512
	}
	return sdOIDSHA256
}

// scheme maps a signer's algorithms to a sdScheme. SHA-1 and RSASSA-PSS are
// not supported.
func (si *SignerInfo) scheme() (sdScheme, error) {
	dh, ok := sdDigestHash(si.DigestAlgorithm)
	if !ok {
		return sdScheme{}, Wrap(ErrBadRequest, ErrCMSAlgorithm, fmt.Sprintf("digest algorithm %v is not supported", si.DigestAlgorithm))
	}
	a := si.SignatureAlgorithm
	switch {
	case a.Equal(sdOIDECDSAWithSHA256):
		return sdScheme{"ecdsa", crypto.SHA256}, nil
	case a.Equal(sdOIDECDSAWithSHA384):
		return sdScheme{"ecdsa", crypto.SHA384}, nil
	case a.Equal(sdOIDECDSAWithSHA512):
		return sdScheme{"ecdsa", crypto.SHA512}, nil
	case a.Equal(sdOIDECPublicKey):
		return sdScheme{"ecdsa", dh}, nil
	case a.Equal(sdOIDSHA256WithRSA):
		return sdScheme{"rsa", crypto.SHA256}, nil
	case a.Equal(sdOIDSHA384WithRSA):
		return sdScheme{"rsa", crypto.SHA384}, nil
	case a.Equal(sdOIDSHA512WithRSA):
		return sdScheme{"rsa", crypto.SHA512}, nil
	case a.Equal(sdOIDRSAEncryption):
		return sdScheme{"rsa", dh}, nil
	case a.Equal(sdOIDEd25519):
		return sdScheme{"ed25519", 0}, nil
	}
	return sdScheme{}, Wrap(ErrBadRequest, ErrCMSAlgorithm, fmt.Sprintf("signature algorithm %v is not supported", a))
}

// Verify checks the signature of si over sd's content with the public key
// pub: the content-type attribute equals the eContentType, the
// message-digest attribute is the digest of the eContent, and the signature
// of the signed attributes verifies. Errors are of kind ErrBadRequest; those
// for an unsupported algorithm wrap ErrCMSAlgorithm.
func (sd *SignedData) Verify(si *SignerInfo, pub crypto.PublicKey) error {
	sc, err := si.scheme()
	if err != nil {
		return err
	}
	if sd.Content == nil {
		return Errorf(ErrBadRequest, "CMS SignedData without content (detached signatures are not supported)")
	}
	if !si.contentType.Equal(sd.ContentType) {
		return Errorf(ErrBadRequest, "the signed content-type attribute %v differs from the eContentType %v", si.contentType, sd.ContentType)
	}
	dh, _ := sdDigestHash(si.DigestAlgorithm)
	h := dh.New()
	h.Write(sd.Content)
	if !bytes.Equal(h.Sum(nil), si.messageDigest) {
		return Errorf(ErrBadRequest, "the message digest does not match the content")
	}
	bad := Errorf(ErrBadRequest, "the CMS signature does not verify")
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if sc.key != "ecdsa" || !ecdsa.VerifyASN1(k, sdHashOf(sc.hash, si.signedAttrs), si.signature) {
			return bad
		}
	case *rsa.PublicKey:
		if sc.key != "rsa" || rsa.VerifyPKCS1v15(k, sc.hash, sdHashOf(sc.hash, si.signedAttrs), si.signature) != nil {
			return bad
		}
	case ed25519.PublicKey:
		if sc.key != "ed25519" || !ed25519.Verify(k, si.signedAttrs, si.signature) {
			return bad
		}
	default:
		return Wrap(ErrBadRequest, ErrCMSAlgorithm, fmt.Sprintf("public key type %T is not supported", pub))
	}
	return nil
}

func sdHashOf(h crypto.Hash, b []byte) []byte {
	hh := h.New()
	hh.Write(b)
	return hh.Sum(nil)
}

// CMSSigner is who signs a SignedData made by EncodeSignedData.
type CMSSigner struct {
	Key crypto.Signer
	// Certificate, when set, names the signer by issuer and serial number
	// (a version 1 SignerInfo); otherwise SubjectKeyID names it (version 3).
	Certificate  *x509.Certificate
	SubjectKeyID []byte
	// SigningTime goes into a signingTime attribute unless zero.
	SigningTime time.Time
}

// EncodeSignedData returns the DER of a ContentInfo holding a SignedData
// (version 3: the eContentType is not id-data) of content with eContentType
// contentType, signed by s with signed attributes, and holding certs. The
// digest follows the key: SHA-256 for P-256 and RSA, SHA-384 for P-384,
// SHA-512 for P-521 and Ed25519 (RFC 8419). RSA signs with PKCS#1 v1.5 and
// the signatureAlgorithm rsaEncryption (RFC 3370 3.2). Ed25519 signatures
// and a zero SigningTime make the output deterministic.
func EncodeSignedData(contentType asn1.ObjectIdentifier, content []byte, s CMSSigner, certs ...*x509.Certificate) ([]byte, error) {
	if s.Key == nil || (s.Certificate == nil && len(s.SubjectKeyID) == 0) {
		return nil, errors.New("est: CMS signer needs a key and a certificate or subject key identifier")
	}
	var sc sdScheme
	var sigAlg asn1.ObjectIdentifier
	switch k := s.Key.Public().(type) {
	case *ecdsa.PublicKey:
		sc = sdScheme{"ecdsa", crypto.SHA256}
		sigAlg = sdOIDECDSAWithSHA256
		switch k.Curve {
		case elliptic.P384():
			sc.hash, sigAlg = crypto.SHA384, sdOIDECDSAWithSHA384
		case elliptic.P521():
			sc.hash, sigAlg = crypto.SHA512, sdOIDECDSAWithSHA512
		}
	case *rsa.PublicKey:
		sc, sigAlg = sdScheme{"rsa", crypto.SHA256}, sdOIDRSAEncryption
	case ed25519.PublicKey:
		sc, sigAlg = sdScheme{"ed25519", 0}, sdOIDEd25519
	default:
		return nil, fmt.Errorf("est: %w: key type %T", ErrCMSAlgorithm, k)
	}
	dh := sc.hash
	if sc.key == "ed25519" {
		dh = crypto.SHA512
	}
	if s.Certificate != nil && !SamePublicKey(s.Certificate.PublicKey, s.Key.Public()) {
		return nil, errors.New("est: the CMS signer's key does not match its certificate")
	}
	attrs, err := sdSignedAttributes(contentType, sdHashOf(dh, content), s.SigningTime)
	if err != nil {
		return nil, err
	}
	var sig []byte
	if sc.key == "ed25519" {
		sig, err = s.Key.Sign(rand.Reader, attrs, crypto.Hash(0))
	} else {
		sig, err = s.Key.Sign(rand.Reader, sdHashOf(sc.hash, attrs), sc.hash)
	}
	if err != nil {
		return nil, fmt.Errorf("est: CMS signature: %w", err)
	}
	rawCerts := make([][]byte, len(certs))
	for i, c := range certs {
		rawCerts[i] = c.Raw
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(sdOIDSignedData)
		b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(3)
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) { sdAddAlgorithm(b, sdDigestOID(dh), false) })
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(contentType)
					b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1OctetString(content)
					})
				})
				if len(certs) > 0 {
					b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						derSetOf(b, rawCerts)
					})
				}
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						if s.Certificate != nil {
							b.AddASN1Int64(1)
							b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
								b.AddBytes(s.Certificate.RawIssuer)
								b.AddASN1BigInt(s.Certificate.SerialNumber)
							})
						} else {
							b.AddASN1Int64(3)
							b.AddASN1(casn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(s.SubjectKeyID) })
						}
						sdAddAlgorithm(b, sdDigestOID(dh), false)
						b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
							b.AddBytes(attrs[2+sdLengthBytes(attrs):])
						})
						sdAddAlgorithm(b, sigAlg, sc.key == "rsa")
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

// sdLengthBytes returns how many octets after the first length octet the DER
// element b uses for its length.
func sdLengthBytes(b []byte) int {
	if b[1] < 0x80 {
		return 0
	}
	return int(b[1] & 0x7f)
}

func sdAddAlgorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
}

// sdSignedAttributes returns the DER SET OF the signed attributes.
func sdSignedAttributes(contentType asn1.ObjectIdentifier, digest []byte, at time.Time) ([]byte, error) {
	var attrs [][]byte
	add := func(typ asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) error {
		var b cryptobyte.Builder
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(typ)
			b.AddASN1(casn1.SET, value)
		})
		der, err := b.Bytes()
		attrs = append(attrs, der)
		return err
	}
	err := errors.Join(
		add(sdOIDContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) }),
		add(sdOIDMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) }),
	)
	if !at.IsZero() {
		at = at.UTC().Truncate(time.Second)
		err = errors.Join(err, add(sdOIDSigningTime, func(b *cryptobyte.Builder) {
			// RFC 5652 11.3: UTCTime from 1950 through 2049.
			if y := at.Year(); y >= 1950 && y < 2050 {
				b.AddASN1UTCTime(at)
			} else {
				b.AddASN1GeneralizedTime(at)
			}
		}))
	}
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) { derSetOf(b, attrs) })
	return b.Bytes()
}

// derSetOf adds DER elements in the order DER gives a SET OF: ascending by
// their encodings (X.690 11.6).
func derSetOf(b *cryptobyte.Builder, elems [][]byte) {
	sorted := slices.Clone(elems)
	slices.SortFunc(sorted, bytes.Compare)
	for _, e := range sorted {
		b.AddBytes(e)
	}
}

// SamePublicKey reports whether a and b are the same public key (a key of
// the standard library's types, which can tell).
func SamePublicKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// KeyID returns the key identifier of RFC 5280 section 4.2.1.2 method 1
// for the DER SubjectPublicKeyInfo spki: the SHA-1 of the subjectPublicKey
// BIT STRING's bits. It names a key, not a secret; SHA-1 is what the RFC
// and openssl use for it.
func KeyID(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil || len(rest) > 0 {
		return nil, Errorf(ErrBadRequest, "malformed SubjectPublicKeyInfo")
	}
	sum := sha1.Sum(info.PublicKey.Bytes)
	return sum[:], nil
}

// sdKeyIDs returns the identifiers a CA may have derived for spki: RFC 5280
// method 1 (SHA-1) and RFC 7093 method 1 (leftmost 160 bits of SHA-256).
func sdKeyIDs(spki []byte) [][]byte {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil || len(rest) > 0 {
		return nil
	}
	s1 := sha1.Sum(info.PublicKey.Bytes)
	s256 := sha256.Sum256(info.PublicKey.Bytes)
	return [][]byte{s1[:], s256[:20]}
}

// CSRKeyID returns the subjectKeyIdentifier extension a PKCS#10 request asks
// for (in its extensionRequest attribute), or nil when it asks for none.
func CSRKeyID(req *x509.CertificateRequest) []byte {
	for _, e := range req.Extensions {
		if e.Id.Equal(OIDSubjectKeyIdentifier) {
			var id []byte
			if rest, err := asn1.Unmarshal(e.Value, &id); err == nil && len(rest) == 0 {
				return id
			}
			return nil
		}
	}
	return nil
}

// MatchesCSRKey reports whether the subject key identifier ski names the key
// of req: it is the identifier req's subjectKeyIdentifier extension
// declares (RFC 5272 section 3.2.1.3.1 asks for one) or, for a request
// without one, the RFC 5280 or RFC 7093 method-1 identifier of its key.
func MatchesCSRKey(ski []byte, req *x509.CertificateRequest) bool {
	if len(ski) == 0 {
		return false
	}
	if declared := CSRKeyID(req); declared != nil {
		return bytes.Equal(declared, ski)
	}
	for _, id := range sdKeyIDs(req.RawSubjectPublicKeyInfo) {
		if bytes.Equal(id, ski) {
			return true
		}
	}
	return false
}
