package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net"
	"net/url"

	"github.com/estkit/estkit"
)

// subject is what a CSR names, from flags or from a certificate.
type subject struct {
	cn, o, ou, serial string
	dns, ips, emails  listFlag
	uris              listFlag
	raw               []byte // a DER Name to copy as is (reenroll), overriding the fields
}

// template returns the CSR template for s.
func (s *subject) template() (*x509.CertificateRequest, error) {
	t := &x509.CertificateRequest{DNSNames: s.dns, EmailAddresses: s.emails}
	if s.raw != nil {
		t.RawSubject = s.raw
	} else {
		t.Subject = pkix.Name{CommonName: s.cn, SerialNumber: s.serial}
		if s.o != "" {
			t.Subject.Organization = []string{s.o}
		}
		if s.ou != "" {
			t.Subject.OrganizationalUnit = []string{s.ou}
		}
	}
	for _, ip := range s.ips {
		p := net.ParseIP(ip)
		if p == nil {
			return nil, usageErrorf("-ip: %q is not an IP address", ip)
		}
		t.IPAddresses = append(t.IPAddresses, p)
	}
	for _, u := range s.uris {
		p, err := url.Parse(u)
		if err != nil || !p.IsAbs() {
			return nil, usageErrorf("-uri: %q is not an absolute URI", u)
		}
		t.URIs = append(t.URIs, p)
	}
	if s.raw == nil && s.cn == "" && len(s.dns)+len(s.ips)+len(s.emails)+len(s.uris) == 0 {
		return nil, usageErrorf("name the subject: -cn, or at least one of -dns, -ip, -email, -uri")
	}
	return t, nil
}

// makeCSR signs a CSR for key. sigAlg may be x509.UnknownSignatureAlgorithm
// for the key's default.
func makeCSR(t *x509.CertificateRequest, key crypto.Signer, sigAlg x509.SignatureAlgorithm) ([]byte, error) {
	t.SignatureAlgorithm = sigAlg
	return x509.CreateCertificateRequest(rand.Reader, t, key)
}

// wanted is what a server's csrattrs asks for, as far as a CSR made here
// can follow it (RFC 7030 4.5.2, RFC 9908).
type wanted struct {
	keyType string // "" when the server does not say
	sigAlg  x509.SignatureAlgorithm
	// unsupported lists OIDs the server asked for that this tool does not fill in.
	unsupported []string
	// link: the server asks for challengePassword, a CSR linked to its TLS
	// connection (RFC 7030 3.5).
	link bool
}

// fromCSRAttrs reads a server's csrattrs.
func fromCSRAttrs(attrs est.CSRAttrs) wanted {
	var w wanted
	for _, it := range attrs {
		switch {
		case it.Attribute != nil && it.Attribute.Type.Equal(est.OIDECPublicKey):
			w.keyType = "p256"
			for _, v := range it.Attribute.Values {
				var curve asn1.ObjectIdentifier
				if _, err := asn1.Unmarshal(v.FullBytes, &curve); err == nil && curve.Equal(est.OIDCurveP384) {
					w.keyType = "p384"
				}
			}
		case it.Attribute != nil && it.Attribute.Type.Equal(est.OIDRSAEncryption):
			w.keyType = "rsa2048"
			for _, v := range it.Attribute.Values {
				var bits int
				if _, err := asn1.Unmarshal(v.FullBytes, &bits); err == nil && (bits == 3072 || bits == 4096) {
					w.keyType = fmt.Sprintf("rsa%d", bits)
				}
			}
		case it.OID.Equal(est.OIDECPublicKey):
			w.keyType = "p256"
		case it.OID.Equal(est.OIDRSAEncryption):
			w.keyType = "rsa2048"
		case it.OID.Equal(est.OIDEd25519):
			w.keyType = "ed25519"
		case it.OID.Equal(est.OIDECDSAWithSHA256):
			w.sigAlg = x509.ECDSAWithSHA256
		case it.OID.Equal(est.OIDECDSAWithSHA384):
			w.sigAlg = x509.ECDSAWithSHA384
		case it.OID.Equal(est.OIDSHA256WithRSA):
			w.sigAlg = x509.SHA256WithRSA
		case it.OID.Equal(est.OIDChallengePassword), it.Attribute != nil && it.Attribute.Type.Equal(est.OIDChallengePassword):
			w.link = true
		default:
			oid := it.OID
			if it.Attribute != nil {
				oid = it.Attribute.Type
			}
			w.unsupported = append(w.unsupported, oid.String())
		}
	}
	return w
}

// sigAlgFits returns alg when key can make it, else the key's default: a
// server asking for ECDSA signatures gets them only from an EC key.
func sigAlgFits(alg x509.SignatureAlgorithm, key crypto.Signer) x509.SignatureAlgorithm {
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		if alg == x509.ECDSAWithSHA256 || alg == x509.ECDSAWithSHA384 {
			return alg
		}
	case *rsa.PublicKey:
		if alg == x509.SHA256WithRSA {
			return alg
		}
	}
	return x509.UnknownSignatureAlgorithm
}
