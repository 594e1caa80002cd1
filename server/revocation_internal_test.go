package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// authorityKeyIDSamples are certificates of every shape estd meets: issued
// (P-256, RSA), a root (no authority key identifier), a manufacturer's
// device certificate.
func authorityKeyIDSamples(t testing.TB) [][]byte {
	now := time.Now()
	var out [][]byte
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048} {
		c := testpki.IssuingCA(t, kt)
		req, _ := x509.ParseCertificateRequest(testpki.CSR(t, testpki.Key(t, ca.P256), "leaf", []string{"leaf.example"}, nil))
		p := ca.DefaultProfiles()[0]
		p.SANs = []string{"dns"}
		cert, err := c.Issue(context.Background(), req, p, auth.Identity{Method: auth.Basic, Name: "op"})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cert.Raw, c.Cert.Raw, c.Chain[len(c.Chain)-1].Raw)
	}
	mfr := testpki.Manufacturer(t, now)
	dev, _ := mfr.Device(t, "SN-1", now)
	return append(out, dev.Raw, mfr.Cert.Raw)
}

// TestAuthorityKeyID: the authority key identifier read without parsing
// the certificate is what crypto/x509 reads.
func TestAuthorityKeyID(t *testing.T) {
	for i, der := range authorityKeyIDSamples(t) {
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if got := authorityKeyID(der); !bytes.Equal(got, cert.AuthorityKeyId) {
			t.Errorf("sample %d: authorityKeyID = %x, crypto/x509 %x", i, got, cert.AuthorityKeyId)
		}
	}
}

// FuzzAuthorityKeyID: any input is read without a panic, and whenever
// crypto/x509 parses it, both agree.
func FuzzAuthorityKeyID(f *testing.F) {
	for _, der := range authorityKeyIDSamples(f) {
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		got := authorityKeyID(der)
		if cert, err := x509.ParseCertificate(der); err == nil && !bytes.Equal(got, cert.AuthorityKeyId) {
			t.Errorf("authorityKeyID = %x, crypto/x509 %x", got, cert.AuthorityKeyId)
		}
	})
}
