package est

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// CSR attributes that ask for an encrypted server-generated key
// (RFC 7030 section 4.4.1.1 and 4.4.1.2).
var (
	// OIDDecryptKeyID is id-aa-decryptKeyID: the identifier of a symmetric
	// key the client and server share (DecryptKeyIdentifier).
	OIDDecryptKeyID = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 37}
	// OIDAsymmDecryptKeyID is id-aa-asymmDecryptKeyID: the subject key
	// identifier of the certificate whose key the private key is encrypted
	// to (AsymmetricDecryptKeyIdentifier).
	OIDAsymmDecryptKeyID = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 54}
)

// tbsRequest is a CertificationRequestInfo (RFC 2986 section 4.1).
type tbsRequest struct {
	Version    int
	Subject    asn1.RawValue
	PublicKey  asn1.RawValue
	Attributes []asn1.RawValue `asn1:"tag:0,optional"`
}

// rawRequest is a CertificationRequest (RFC 2986 section 4.2).
type rawRequest struct {
	Info      asn1.RawValue
	Algorithm asn1.RawValue
	Signature asn1.BitString
}

func parseTBSRequest(der []byte) (*tbsRequest, error) {
	var tbs tbsRequest
	rest, err := asn1.Unmarshal(der, &tbs)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed CSR attributes")
	}
	if len(rest) != 0 {
		return nil, Errorf(ErrBadRequest, "trailing data after the CSR's CertificationRequestInfo")
	}
	return &tbs, nil
}

// RequestAttributes returns the attributes of a PKCS#10 request in the order
// they appear (RFC 2986 section 4.1). Errors are of kind ErrBadRequest.
func RequestAttributes(req *x509.CertificateRequest) ([]Attribute, error) {
	tbs, err := parseTBSRequest(req.RawTBSCertificateRequest)
	if err != nil {
		return nil, err
	}
	out := make([]Attribute, 0, len(tbs.Attributes))
	for _, raw := range tbs.Attributes {
		var a Attribute
		if rest, err := asn1.Unmarshal(raw.FullBytes, &a); err != nil || len(rest) != 0 {
			return nil, Errorf(ErrBadRequest, "malformed CSR attribute")
		}
		out = append(out, a)
	}
	return out, nil
}

// requestAttribute returns the single value of the attribute oid of req, nil
// when req has none. An attribute given twice or with other than one value
// is refused.
func requestAttribute(req *x509.CertificateRequest, oid asn1.ObjectIdentifier, name string) (*asn1.RawValue, error) {
	attrs, err := RequestAttributes(req)
	if err != nil {
		return nil, err
	}
	var found *asn1.RawValue
	for _, a := range attrs {
		if !a.Type.Equal(oid) {
			continue
		}
		if found != nil || len(a.Values) != 1 {
			return nil, Errorf(ErrBadRequest, "the CSR's %s attribute must appear once with one value", name)
		}
		found = &a.Values[0]
	}
	return found, nil
}

// ChallengePassword returns the challengePassword of req (RFC 2985
// section 5.4.1) and whether it has one. A value that is not a
// PrintableString, UTF8String or IA5String is refused with ErrBadRequest.
func ChallengePassword(req *x509.CertificateRequest) (string, bool, error) {
	v, err := requestAttribute(req, OIDChallengePassword, "challengePassword")
	if err != nil || v == nil {
		return "", false, err
	}
	switch {
	case v.Class == asn1.ClassUniversal && !v.IsCompound &&
		(v.Tag == asn1.TagPrintableString || v.Tag == asn1.TagUTF8String || v.Tag == asn1.TagIA5String) &&
		utf8.Valid(v.Bytes):
		return string(v.Bytes), true, nil
	}
	return "", false, Errorf(ErrBadRequest, "the CSR's challengePassword is not a PrintableString, UTF8String or IA5String")
}

// RequestKeyID returns the OCTET STRING value of the attribute oid of req
// (OIDDecryptKeyID or OIDAsymmDecryptKeyID) and whether req has it.
func RequestKeyID(req *x509.CertificateRequest, oid asn1.ObjectIdentifier) ([]byte, bool, error) {
	v, err := requestAttribute(req, oid, oid.String())
	if err != nil || v == nil {
		return nil, false, err
	}
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagOctetString || v.IsCompound || len(v.Bytes) == 0 {
		return nil, false, Errorf(ErrBadRequest, "the CSR's attribute %s is not a non-empty OCTET STRING", oid)
	}
	return v.Bytes, true, nil
}

// ChallengePasswordAttribute returns a challengePassword attribute holding
// pw: a PrintableString when pw fits one (a base64 link value does), else a
// UTF8String.
func ChallengePasswordAttribute(pw string) Attribute {
	tag := asn1.TagPrintableString
	if !printable(pw) {
		tag = asn1.TagUTF8String
	}
	v := asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(pw)}
	der, _ := asn1.Marshal(v)
	return Attribute{Type: OIDChallengePassword, Values: []asn1.RawValue{{FullBytes: der}}}
}

// KeyIDAttribute returns a DecryptKeyIdentifier or
// AsymmetricDecryptKeyIdentifier attribute (oid) holding id.
func KeyIDAttribute(oid asn1.ObjectIdentifier, id []byte) Attribute {
	der, _ := asn1.Marshal(id)
	return Attribute{Type: oid, Values: []asn1.RawValue{{FullBytes: der}}}
}

func printable(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || bytes.ContainsRune([]byte(" '()+,-./:=?"), r)) {
			return false
		}
	}
	return true
}

// SetRequestAttributes returns csr, a DER PKCS#10 request, with attrs set:
// each replaces the request's attributes of its type, the others are kept.
// The request is signed again with key, which must be the request's key,
// with the request's signature algorithm.
func SetRequestAttributes(csr []byte, key crypto.Signer, attrs ...Attribute) ([]byte, error) {
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		return nil, fmt.Errorf("est: the CSR does not parse: %w", err)
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(req.PublicKey) {
		return nil, errors.New("est: the key is not the CSR's")
	}
	var outer rawRequest
	if _, err := asn1.Unmarshal(req.Raw, &outer); err != nil {
		return nil, fmt.Errorf("est: the CSR does not parse: %w", err)
	}
	tbs, err := parseTBSRequest(req.RawTBSCertificateRequest)
	if err != nil {
		return nil, err
	}
	var elems [][]byte
	for _, raw := range tbs.Attributes {
		var a Attribute
		if _, err := asn1.Unmarshal(raw.FullBytes, &a); err == nil && slices.ContainsFunc(attrs, func(n Attribute) bool { return n.Type.Equal(a.Type) }) {
			continue
		}
		elems = append(elems, raw.FullBytes)
	}
	for _, a := range attrs {
		der, err := asn1.Marshal(a)
		if err != nil {
			return nil, err
		}
		elems = append(elems, der)
	}
	slices.SortFunc(elems, bytes.Compare) // DER: SET OF in order of encoding
	version, _ := asn1.Marshal(tbs.Version)
	set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: bytes.Join(elems, nil)})
	if err != nil {
		return nil, err
	}
	info, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true,
		Bytes: bytes.Join([][]byte{version, tbs.Subject.FullBytes, tbs.PublicKey.FullBytes, set}, nil)})
	if err != nil {
		return nil, err
	}
	sig, err := SignWith(key, req.SignatureAlgorithm, info)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(rawRequest{
		Info:      asn1.RawValue{FullBytes: info},
		Algorithm: outer.Algorithm,
		Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	})
}

// SignWith signs msg with key as the signature algorithm alg does: ECDSA,
// RSA PKCS #1 v1.5 and RSA-PSS with SHA-256, SHA-384 or SHA-512, and
// Ed25519.
func SignWith(key crypto.Signer, alg x509.SignatureAlgorithm, msg []byte) ([]byte, error) {
	var h crypto.Hash
	pss := false
	switch alg {
	case x509.PureEd25519:
		return key.Sign(rand.Reader, msg, crypto.Hash(0))
	case x509.ECDSAWithSHA256, x509.SHA256WithRSA:
		h = crypto.SHA256
	case x509.ECDSAWithSHA384, x509.SHA384WithRSA:
		h = crypto.SHA384
	case x509.ECDSAWithSHA512, x509.SHA512WithRSA:
		h = crypto.SHA512
	case x509.SHA256WithRSAPSS:
		h, pss = crypto.SHA256, true
	case x509.SHA384WithRSAPSS:
		h, pss = crypto.SHA384, true
	case x509.SHA512WithRSAPSS:
		h, pss = crypto.SHA512, true
	default:
		return nil, fmt.Errorf("est: cannot sign with %v", alg)
	}
	d := h.New()
	d.Write(msg)
	var opts crypto.SignerOpts = h
	if pss {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	return key.Sign(rand.Reader, d.Sum(nil), opts)
}
