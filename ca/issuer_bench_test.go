package ca_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/cputime"
	"github.com/estkit/estkit/internal/testpki"
)

// benchCSR is the DER of a CSR for a new key of type kt with a CN and a DNS name,
// as est bench sends.
func benchCSR(b *testing.B, kt ca.KeyType) []byte {
	b.Helper()
	key, err := ca.GenerateKey(kt)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "bench-device-0001"},
		DNSNames: []string{"bench-device-0001.example.net"},
	}, key)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

var benchKeyTypes = []ca.KeyType{ca.P256, ca.RSA2048}

// BenchmarkCryptoFloor is what no implementation of an enrollment can
// avoid: verify the CSR's self-signature and sign one certificate (hash and
// sign its TBSCertificate) with the CA key. make bench compares estd's CPU
// per enrollment with it.
func BenchmarkCryptoFloor(b *testing.B) {
	for _, caKT := range benchKeyTypes {
		for _, csrKT := range benchKeyTypes {
			b.Run(fmt.Sprintf("ca=%s/csr=%s", caKT, csrKT), func(b *testing.B) {
				c := testpki.IssuingCA(b, caKT)
				req, err := x509.ParseCertificateRequest(benchCSR(b, csrKT))
				if err != nil {
					b.Fatal(err)
				}
				cert, err := c.Issue(context.Background(), req, ca.DefaultProfiles()[0], auth.Identity{Method: auth.Basic, Name: "bench"})
				if err != nil {
					b.Fatal(err)
				}
				tbs := cert.RawTBSCertificate
				b.ReportAllocs()
				b.ResetTimer()
				start := cputime.Process()
				for b.Loop() {
					if err := req.CheckSignature(); err != nil {
						b.Fatal(err)
					}
					if _, err := crypto.SignMessage(c.Signer, rand.Reader, tbs, crypto.SHA256); err != nil {
						b.Fatal(err)
					}
				}
				cputime.Report(b, start)
			})
		}
	}
}

// BenchmarkIssue is the issuer alone: template, lint, sign, encode.
func BenchmarkIssue(b *testing.B) {
	for _, caKT := range benchKeyTypes {
		b.Run("ca="+string(caKT), func(b *testing.B) {
			c := testpki.IssuingCA(b, caKT)
			req, err := est.ParseCSR(benchCSR(b, ca.P256))
			if err != nil {
				b.Fatal(err)
			}
			p := ca.DefaultProfiles()[0]
			who := auth.Identity{Method: auth.Basic, Name: "bench"}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := cputime.Process()
			for b.Loop() {
				if _, err := c.Issue(ctx, req, p, who); err != nil {
					b.Fatal(err)
				}
			}
			cputime.Report(b, start)
		})
	}
}
