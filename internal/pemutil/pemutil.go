// Package pemutil reads PEM certificate bundles and CRLs.
package pemutil

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ReadCerts reads every certificate of a PEM file; a file with none is an error.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCerts parses every CERTIFICATE block of data, skipping other blocks.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}

// EncodeCerts returns certs as concatenated PEM blocks.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ReadCRLs reads the CRLs of a file: PEM ("X509 CRL" blocks) or one DER
// CRL; a PEM file may also hold CERTIFICATE blocks (intermediates that sign
// some of the CRLs), returned apart. A file without a CRL is an error.
func ReadCRLs(path string) ([]*x509.RevocationList, []*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	crls, certs, err := ParseCRLs(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return crls, certs, nil
}

// ParseCRLs parses every X509 CRL and CERTIFICATE block of data, skipping
// other blocks; data without PEM is parsed as one DER CRL.
func ParseCRLs(data []byte) ([]*x509.RevocationList, []*x509.Certificate, error) {
	if len(data) > 0 && data[0] == 0x30 {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, nil, err
		}
		return []*x509.RevocationList{crl}, nil, nil
	}
	var crls []*x509.RevocationList
	var certs []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "X509 CRL":
			crl, err := x509.ParseRevocationList(b.Bytes)
			if err != nil {
				return nil, nil, err
			}
			crls = append(crls, crl)
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, err
			}
			certs = append(certs, c)
		}
	}
	if len(crls) == 0 {
		return nil, nil, fmt.Errorf("no CRL (PEM X509 CRL blocks or one DER CRL)")
	}
	return crls, certs, nil
}
