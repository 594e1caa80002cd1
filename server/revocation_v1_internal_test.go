package server

import (
	"bytes"
	"crypto/x509"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/testpki"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// TestAuthorityKeyIDv1: a v1 certificate (no version field) that carries
// an extensions field all the same has no authority key identifier, for
// authorityKeyID as for crypto/x509, which reads extensions of v3 only.
func TestAuthorityKeyIDv1(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "Root", now)
	leaf, _ := root.Issue(t, testpki.Leaf{CN: "x", NotBefore: now, NotAfter: now.Add(time.Hour)})
	in := cryptobyte.String(leaf.Raw)
	var cert, tbs cryptobyte.String
	in.ReadASN1(&cert, cbasn1.SEQUENCE)
	var tbsElem cryptobyte.String
	cert.ReadASN1Element(&tbsElem, cbasn1.SEQUENCE)
	tbsCopy := tbsElem
	tbsCopy.ReadASN1(&tbs, cbasn1.SEQUENCE)
	tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) // drop the version: v1
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(tbs) })
		b.AddBytes(cert) // signatureAlgorithm, signature
	})
	der := b.BytesOrPanic()
	got := authorityKeyID(der)
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Skipf("crypto/x509 rejects it: %v", err)
	}
	if !bytes.Equal(got, parsed.AuthorityKeyId) {
		t.Errorf("authorityKeyID = %x, crypto/x509 %x (version %d)", got, parsed.AuthorityKeyId, parsed.Version)
	}
}
