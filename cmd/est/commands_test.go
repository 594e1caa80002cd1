package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// TestCertPath: the chain written with a certificate is the path from its
// issuer to the root, not every CA certificate /cacerts returned (after a
// rollover it returns the retired issuing CA as well).
func TestCertPath(t *testing.T) {
	now := time.Now()
	root := testpki.NewRoot(t, "Root", now)
	sub := func(cn string) *testpki.CA {
		key := testpki.Key(t, ca.P256)
		cert, err := ca.NewSubCA(root.Cert, root.Key, key.Public(), pkix.Name{CommonName: cn}, now.Add(-time.Hour), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return &testpki.CA{Cert: cert, Key: key}
	}
	g1, g2 := sub("Issuing"), sub("Issuing G2")
	leaf1, _ := g1.Issue(t, testpki.Leaf{CN: "one", NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	leaf2, _ := g2.Issue(t, testpki.Leaf{CN: "two", NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	cacerts := []*x509.Certificate{g2.Cert, g1.Cert, root.Cert}
	for _, c := range []struct {
		leaf *x509.Certificate
		cas  []*x509.Certificate
		want []*x509.Certificate
	}{
		{leaf2, cacerts, []*x509.Certificate{g2.Cert, root.Cert}},
		{leaf1, cacerts, []*x509.Certificate{g1.Cert, root.Cert}},
		{leaf2, []*x509.Certificate{g1.Cert, root.Cert}, []*x509.Certificate{g1.Cert, root.Cert}}, // no issuer: all of them
		{leaf2, []*x509.Certificate{g1.Cert, g2.Cert}, []*x509.Certificate{g2.Cert}},              // no root: as far as it goes
	} {
		got := certPath(c.leaf, c.cas)
		if len(got) != len(c.want) {
			t.Errorf("certPath(%s) = %d certificates, want %d", c.leaf.Subject.CommonName, len(got), len(c.want))
			continue
		}
		for i := range got {
			if !got[i].Equal(c.want[i]) {
				t.Errorf("certPath(%s)[%d] = %s, want %s", c.leaf.Subject.CommonName, i, got[i].Subject, c.want[i].Subject)
			}
		}
	}
}
