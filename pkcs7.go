package est

import (
	"crypto/x509"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// EncodeCertsOnly returns the DER of a certs-only (degenerate) PKCS#7
// SignedData holding certs in order (RFC 7030 4.1.3 and 4.2.3, RFC 5652 5.1):
// no signers, no content.
func EncodeCertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("est: certs-only PKCS#7 needs at least one certificate")
	}
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	return pkcs7.DegenerateCertificate(raw)
}

// ParseCertsOnly parses a certs-only PKCS#7 and returns its certificates in the
// order they appear. It tolerates BER and extra certificates; it refuses a
// structure that holds none. Errors are of kind ErrBadRequest.
func ParseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed PKCS#7")
	}
	if len(p7.Certificates) == 0 {
		return nil, Errorf(ErrBadRequest, "PKCS#7 holds no certificate")
	}
	return p7.Certificates, nil
}
