package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/fsutil"
	"github.com/estkit/estkit/internal/pemutil"
)

// format is how -out and -keyout are written.
type format string

const (
	formatPEM format = "pem"
	formatDER format = "der"
)

func parseFormat(s string) (format, error) {
	switch strings.ToLower(s) {
	case "pem", "":
		return formatPEM, nil
	case "der":
		return formatDER, nil
	}
	return "", usageErrorf("-outform: want pem or der, got %q", s)
}

// writeKey writes a private key, PKCS#8, mode 0600.
func writeKey(path string, key crypto.PrivateKey, f format) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if f == formatPEM {
		der = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	return fsutil.WriteFileAtomic(path, der, 0o600)
}

// readKey reads a private key file: PEM (PKCS#8, SEC 1, PKCS#1) or DER PKCS#8.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if s, err := keys.ParsePEM(data); err == nil {
		return s, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PEM or DER private key", path)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: key of type %T cannot sign", path, k)
	}
	return s, nil
}

// readCerts reads a certificate file: PEM (one or more) or DER (one).
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if certs, err := pemutil.ParseCerts(data); err == nil {
		return certs, nil
	}
	c, err := x509.ParseCertificate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PEM or DER certificate", path)
	}
	return []*x509.Certificate{c}, nil
}

// newKey generates a key of the named type.
func newKey(name string) (crypto.Signer, error) {
	kt, err := ca.ParseKeyType(name)
	if err != nil {
		return nil, usageErrorf("-key-type: %v", err)
	}
	return ca.GenerateKey(kt)
}

// keyTypeName names the type of key as -key-type spells it.
func keyTypeName(key crypto.Signer) string {
	kt, err := ca.KeyTypeOf(key.Public())
	if err != nil {
		return "p256"
	}
	return string(kt)
}
