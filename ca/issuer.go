// Package ca is the certificate authority behind estd: profiles (what a label
// may issue), certificate templates, time-ordered random serials, pre-sign
// checks, and signing with any crypto.Signer, so a key file and an HSM differ
// only in how the signer was loaded.
package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
)

// Issuer signs certificates for verified requests.
type Issuer interface {
	// Issue checks req against p and returns a signed certificate for it.
	// Policy refusals are *est.Error of kind ErrPolicy or ErrBadRequest.
	Issue(ctx context.Context, req *x509.CertificateRequest, p *Profile, who auth.Identity) (*x509.Certificate, error)
}

// Checker is implemented by issuers that can tell, without signing,
// whether they would issue for a request: what an enrollment held for an
// operator is checked with first, so that nobody is asked to approve what
// can never be issued.
type Checker interface {
	// Check returns the error Issue would return for req and p, short of
	// signing; nil if Issue would sign.
	Check(req *x509.CertificateRequest, p *Profile) error
}

// CA issues certificates with an issuing CA certificate and its key.
type CA struct {
	// Cert is the issuing CA certificate; Signer holds its private key.
	Cert   *x509.Certificate
	Signer crypto.Signer
	// Chain is what /cacerts serves: Cert first, then up to the root.
	Chain []*x509.Certificate
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Backdate is subtracted from NotBefore to absorb clock skew; 0 means 1 minute.
	Backdate time.Duration
	// CRLURLs and OCSPURLs, when set, go into issued certificates' CRL
	// Distribution Points and Authority Information Access extensions.
	CRLURLs, OCSPURLs []string
}

// New returns a CA for the issuing certificate and its signer, checking that
// they belong together and that the certificate may sign certificates.
func New(cert *x509.Certificate, signer crypto.Signer, chain []*x509.Certificate) (*CA, error) {
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("ca: %s is not a CA certificate allowed to sign certificates", cert.Subject)
	}
	if !est.SamePublicKey(cert.PublicKey, signer.Public()) {
		return nil, fmt.Errorf("ca: the key does not match the certificate of %s", cert.Subject)
	}
	return &CA{Cert: cert, Signer: signer, Chain: chain}, nil
}

func (c *CA) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// Serial numbers are 20 octets, RFC 5280's maximum: the issuance time in
// milliseconds since 1970 (6 octets, big-endian) followed by 112 random bits
// (CA/B BR 7.1 asks for at least 64 from a CSPRNG). The randomness makes
// them unpredictable; the time prefix makes serials issued close together
// sort next to each other, so the store's serial index grows at its end
// instead of dirtying a random page per certificate (the difference between
// one and eight index pages written per group commit, and between a hot and
// a cold index once it holds millions of serials).
const (
	serialTimeBytes   = 6
	serialRandomBytes = 14
)

// NewSerial returns a positive serial number: the current time in
// milliseconds followed by 112 random bits (see serialRandomBytes).
func NewSerial() (*big.Int, error) {
	return newSerial(time.Now())
}

func newSerial(now time.Time) (*big.Int, error) {
	var b [serialTimeBytes + serialRandomBytes]byte
	ms := uint64(max(now.UnixMilli(), 1)) & (1<<47 - 1) // top bit clear: positive in 20 octets
	for i := serialTimeBytes - 1; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[serialTimeBytes:]); err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b[:]), nil
}

// Issue implements Issuer.
func (c *CA) Issue(ctx context.Context, req *x509.CertificateRequest, p *Profile, who auth.Identity) (*x509.Certificate, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmpl, err := c.template(req, p)
	if err != nil {
		return nil, err
	}
	if err := lint(tmpl, c.Cert); err != nil {
		return nil, err
	}
	der, err := createCertificate(tmpl, c.Cert, req.PublicKey, c.Signer)
	if est.KindOf(err) == est.ErrUnavailable {
		return nil, err // the key is there but busy (keys.SessionWait): try again
	}
	if err != nil {
		return nil, est.Wrap(est.ErrInternal, err, "signing failed")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, est.Wrap(est.ErrInternal, err, "signing failed")
	}
	return cert, nil
}

// Check implements Checker.
func (c *CA) Check(req *x509.CertificateRequest, p *Profile) error {
	tmpl, err := c.template(req, p)
	if err != nil {
		return err
	}
	return lint(tmpl, c.Cert)
}

// template checks req against p and builds the certificate to sign.
func (c *CA) template(req *x509.CertificateRequest, p *Profile) (*x509.Certificate, error) {
	kt, err := KeyTypeOf(req.PublicKey)
	if err != nil {
		return nil, est.Errorf(est.ErrPolicy, "%v", err)
	}
	if !slices.Contains(p.KeyTypes, kt) {
		return nil, est.Errorf(est.ErrPolicy, "key type %s is not allowed for this label", kt.Algorithm())
	}
	switch req.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.MD5WithRSA, x509.DSAWithSHA1, x509.DSAWithSHA256:
		return nil, est.Errorf(est.ErrPolicy, "the CSR is signed with %s; sign it with SHA-256 or better", req.SignatureAlgorithm)
	}
	if kind := unissuedSANKind(req); kind != "" {
		return nil, est.Errorf(est.ErrPolicy, "subjectAltName of kind %s is not issued; this CA copies dns, ip, email and uri names", kind)
	}
	for _, a := range req.Subject.Names {
		if v, ok := a.Value.(string); ok && strings.ContainsFunc(v, isControlOrBidi) {
			return nil, est.Errorf(est.ErrPolicy, "the CSR's subject attribute %v holds a control or bidirectional-override character", a.Type)
		}
	}
	sans := SANKinds(req)
	for kind := range sans {
		if !slices.Contains(p.SANs, kind) {
			return nil, est.Errorf(est.ErrPolicy, "subjectAltName of kind %s is not allowed for this label", kind)
		}
	}
	if len(p.RequireSAN) > 0 && !slices.ContainsFunc(p.RequireSAN, func(k string) bool { return sans[k] }) {
		return nil, est.Errorf(est.ErrPolicy, "this label needs a subjectAltName of kind %v in the CSR", p.RequireSAN)
	}
	if len(req.Subject.Names) == 0 && len(sans) == 0 {
		return nil, est.Errorf(est.ErrPolicy, "the CSR names neither a subject nor a subjectAltName")
	}
	now := c.now()
	serial, err := newSerial(now)
	if err != nil {
		return nil, est.Wrap(est.ErrInternal, err, "no serial")
	}
	backdate := c.Backdate
	if backdate == 0 {
		backdate = time.Minute
	}
	notBefore := now.Add(-backdate).Truncate(time.Second)
	notAfter := now.Add(p.Validity).Truncate(time.Second)
	if notAfter.After(c.Cert.NotAfter) {
		notAfter = c.Cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, est.Errorf(est.ErrUnavailable, "the issuing CA certificate has expired")
	}
	ku := p.KeyUsage
	if ku == 0 {
		ku = x509.KeyUsageDigitalSignature
		if kt == RSA2048 || kt == RSA3072 || kt == RSA4096 {
			ku |= x509.KeyUsageKeyEncipherment
		}
	}
	skid, err := subjectKeyID(req.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, est.Wrap(est.ErrBadRequest, err, "malformed subject public key")
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		SubjectKeyId:          skid,
		RawSubject:            req.RawSubject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              ku,
		ExtKeyUsage:           p.ExtKeyUsage,
		UnknownExtKeyUsage:    p.ExtKeyUsageOIDs,
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		EmailAddresses:        req.EmailAddresses,
		URIs:                  req.URIs,
		CRLDistributionPoints: c.CRLURLs,
		OCSPServer:            c.OCSPURLs,
	}, nil
}

// isControlOrBidi reports a control character, a line or paragraph
// separator, or a bidirectional control (an embedding, override, isolate or
// direction mark) that reorders the text around it when shown: a subject
// must read as what it is, on one line.
func isControlOrBidi(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control)
}

// GeneralName kinds (RFC 5280 4.2.1.6) that SANKinds does not know: a CSR
// asking for one is refused rather than issued without it.
var unissuedSANKinds = map[int]string{0: "otherName", 3: "x400Address", 4: "directoryName", 5: "ediPartyName", 8: "registeredID"}

// unissuedSANKind returns the first kind of subjectAltName req asks for that
// is not dns, ip, email or uri, or "".
func unissuedSANKind(req *x509.CertificateRequest) string {
	for _, e := range req.Extensions {
		if !e.Id.Equal(est.OIDSubjectAltName) {
			continue
		}
		in := cryptobyte.String(e.Value)
		var names cryptobyte.String
		if !in.ReadASN1(&names, cbasn1.SEQUENCE) {
			return "" // malformed: x509.ParseCertificateRequest refused it already
		}
		for !names.Empty() {
			var name cryptobyte.String
			var tag cbasn1.Tag
			if !names.ReadAnyASN1(&name, &tag) {
				return ""
			}
			if kind, ok := unissuedSANKinds[int(tag&0x1f)]; ok {
				return kind
			}
		}
	}
	return ""
}

// SANKinds returns the kinds of subjectAltName req asks for.
func SANKinds(req *x509.CertificateRequest) map[string]bool {
	m := map[string]bool{}
	if len(req.DNSNames) > 0 {
		m["dns"] = true
	}
	if len(req.IPAddresses) > 0 {
		m["ip"] = true
	}
	if len(req.EmailAddresses) > 0 {
		m["email"] = true
	}
	if len(req.URIs) > 0 {
		m["uri"] = true
	}
	return m
}

// NewRoot returns a self-signed root CA certificate for signer.
func NewRoot(signer crypto.Signer, subject pkix.Name, notBefore time.Time, validity time.Duration) (*x509.Certificate, error) {
	tmpl, err := caTemplate(subject, notBefore, validity, -1)
	if err != nil {
		return nil, err
	}
	return sign(tmpl, tmpl, signer.Public(), signer)
}

// NewSubCA returns an issuing CA certificate for pub signed by parent, with
// path length 0: it can sign end-entity certificates only.
func NewSubCA(parent *x509.Certificate, parentKey crypto.Signer, pub crypto.PublicKey, subject pkix.Name, notBefore time.Time, validity time.Duration) (*x509.Certificate, error) {
	tmpl, err := caTemplate(subject, notBefore, validity, 0)
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(parent.NotAfter) {
		tmpl.NotAfter = parent.NotAfter
	}
	return sign(tmpl, parent, pub, parentKey)
}

func caTemplate(subject pkix.Name, notBefore time.Time, validity time.Duration, maxPath int) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             notBefore.Truncate(time.Second),
		NotAfter:              notBefore.Add(validity).Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            max(maxPath, 0),
		MaxPathLenZero:        maxPath == 0,
	}, nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// subjectKeyID is the subject key identifier of RFC 7093 section 2 method 1:
// the leftmost 160 bits of the SHA-256 of the subjectPublicKey bits.
func subjectKeyID(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, fmt.Errorf("trailing data after the public key")
	}
	sum := sha256.Sum256(info.PublicKey.Bytes)
	return sum[:20], nil
}
