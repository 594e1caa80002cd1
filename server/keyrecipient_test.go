package server_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// TestKeyRecipientRefusedFirst: a serverkeygen whose key would be encrypted
// to a certificate key that cannot take it (P-224, RSA-1024) gets 400
// before anything is issued, not a 500 after a certificate was recorded.
func TestKeyRecipientRefusedFirst(t *testing.T) {
	now := time.Now()
	st := newMemStore()
	p := newInProcess(t, st, ca.DefaultProfiles(), nil)
	mfr := testpki.Manufacturer(t, now)
	pool := x509.NewCertPool()
	pool.AddCert(mfr.Cert)
	p.verifier.SetManufacturers(pool, nil)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, key := range map[string]crypto.Signer{"P-224": p224, "RSA-1024": rsa1024} {
		device, _ := mfr.Issue(t, testpki.Leaf{CN: "SN-" + name, Key: key, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
		csrKey := testpki.Key(t, ca.P256)
		csr, err := est.SetRequestAttributes(testpki.CSR(t, csrKey, "sensor", nil, nil), csrKey, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(device)))
		if err != nil {
			t.Fatal(err)
		}
		if rec := p.send(context.Background(), est.OpServerKeyGen, csr, device); rec.Code != 400 || !strings.Contains(rec.Body.String(), "DecryptKeyIdentifier") {
			t.Errorf("%s: %d %q, want 400 with the reason", name, rec.Code, rec.Body)
		}
	}
	if recs, _, _ := st.List(context.Background(), store.ListOptions{}); len(recs) != 0 {
		t.Errorf("%d certificates recorded for refused requests", len(recs))
	}
}
