package dashboard

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/estkit/estkit"
)

// certInfo is what the detail page shows of a decoded certificate.
type certInfo struct {
	Subject, Issuer     string
	Serial              string // colon-separated hex, as openssl prints it
	NotBefore, NotAfter time.Time
	DNS, IPs, Emails    []string
	URIs                []string
	KeyUsage            []string
	ExtKeyUsage         []string
	PublicKey           string
	Signature           string
	IsCA                bool
	SubjectKeyID        string
	AuthorityKeyID      string
	CRL, OCSP           []string
	Fingerprint         string // SHA-256 of the DER
}

func decodeCert(der []byte) (*certInfo, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("the stored certificate does not parse: %v", err)
	}
	ci := &certInfo{
		Subject:        c.Subject.String(),
		Issuer:         c.Issuer.String(),
		Serial:         colonHex(c.SerialNumber.Bytes()),
		NotBefore:      c.NotBefore,
		NotAfter:       c.NotAfter,
		DNS:            c.DNSNames,
		Emails:         c.EmailAddresses,
		KeyUsage:       keyUsageNames(c.KeyUsage),
		ExtKeyUsage:    extKeyUsageNames(c.ExtKeyUsage, len(c.UnknownExtKeyUsage)),
		PublicKey:      publicKeyName(c.PublicKey),
		Signature:      c.SignatureAlgorithm.String(),
		IsCA:           c.IsCA,
		SubjectKeyID:   colonHex(c.SubjectKeyId),
		AuthorityKeyID: colonHex(c.AuthorityKeyId),
		CRL:            c.CRLDistributionPoints,
		OCSP:           c.OCSPServer,
		Fingerprint:    est.Fingerprint(c),
	}
	for _, ip := range c.IPAddresses {
		ci.IPs = append(ci.IPs, ip.String())
	}
	for _, u := range c.URIs {
		ci.URIs = append(ci.URIs, u.String())
	}
	return ci, nil
}

// csrInfo is what the request page shows of a decoded CSR.
type csrInfo struct {
	Subject          string
	DNS, IPs, Emails []string
	URIs             []string
	PublicKey        string
	Signature        string
	SignatureOK      bool
}

func decodeCSR(der []byte) (*csrInfo, error) {
	c, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("the stored CSR does not parse: %v", err)
	}
	ci := &csrInfo{
		Subject:     c.Subject.String(),
		DNS:         c.DNSNames,
		Emails:      c.EmailAddresses,
		PublicKey:   publicKeyName(c.PublicKey),
		Signature:   c.SignatureAlgorithm.String(),
		SignatureOK: c.CheckSignature() == nil,
	}
	for _, ip := range c.IPAddresses {
		ci.IPs = append(ci.IPs, ip.String())
	}
	for _, u := range c.URIs {
		ci.URIs = append(ci.URIs, u.String())
	}
	return ci, nil
}

func colonHex(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := strings.ToUpper(hex.EncodeToString(b))
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(':')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}

func publicKeyName(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

var keyUsages = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "contentCommitment"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsageNames(ku x509.KeyUsage) []string {
	var out []string
	for _, u := range keyUsages {
		if ku&u.bit != 0 {
			out = append(out, u.name)
		}
	}
	return out
}

var extKeyUsages = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageIPSECEndSystem:  "ipsecEndSystem",
	x509.ExtKeyUsageIPSECTunnel:     "ipsecTunnel",
	x509.ExtKeyUsageIPSECUser:       "ipsecUser",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

func extKeyUsageNames(ekus []x509.ExtKeyUsage, unknown int) []string {
	var out []string
	for _, e := range ekus {
		if n, ok := extKeyUsages[e]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("eku-%d", e))
		}
	}
	if unknown > 0 {
		out = append(out, fmt.Sprintf("%d other", unknown))
	}
	return out
}
