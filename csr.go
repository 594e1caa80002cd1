package est

import (
	"crypto/x509"
	"errors"
)

// ParseCSR parses a DER PKCS#10 request (RFC 2986) and verifies its
// self-signature. Errors are of kind ErrBadRequest.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed PKCS#10 request")
	}
	if err := req.CheckSignature(); err != nil {
		if errors.Is(err, x509.ErrUnsupportedAlgorithm) {
			return nil, Wrap(ErrBadRequest, err, "unsupported CSR signature algorithm")
		}
		return nil, Wrap(ErrBadRequest, err, "the CSR's signature does not verify")
	}
	return req, nil
}
