package est

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
)

// maxCSRItems bounds the attributes, and the requested extensions, of a
// CSR: real requests carry a handful; thousands only burden every reader.
const maxCSRItems = 100

// ParseCSR parses a DER PKCS#10 request (RFC 2986) and verifies its
// self-signature. Errors are of kind ErrBadRequest.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed PKCS#10 request")
	}
	var tbs struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  asn1.RawValue
		Attributes []asn1.RawValue `asn1:"tag:0,optional"`
	}
	if _, err := asn1.Unmarshal(req.RawTBSCertificateRequest, &tbs); err == nil && len(tbs.Attributes) > maxCSRItems {
		return nil, Errorf(ErrBadRequest, "the CSR has %d attributes; at most %d are accepted", len(tbs.Attributes), maxCSRItems)
	}
	if len(req.Extensions) > maxCSRItems {
		return nil, Errorf(ErrBadRequest, "the CSR requests %d extensions; at most %d are accepted", len(req.Extensions), maxCSRItems)
	}
	if err := req.CheckSignature(); err != nil {
		if errors.Is(err, x509.ErrUnsupportedAlgorithm) {
			return nil, Wrap(ErrBadRequest, err, "unsupported CSR signature algorithm")
		}
		return nil, Wrap(ErrBadRequest, err, "the CSR's signature does not verify")
	}
	return req, nil
}
