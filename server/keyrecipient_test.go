package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// TestKeyRecipientRefusedFirst: a serverkeygen whose key would be encrypted
// to a certificate key that cannot take it (P-224, RSA-1024) gets 400
// before anything is issued, not a 500 after a certificate was recorded.
func TestKeyRecipientRefusedFirst(t *testing.T) {
	now := time.Now()
	issuer := testpki.IssuingCA(t, ca.P256)
	mfr := testpki.Manufacturer(t, now)
	st := newMemStore()
	v := &auth.Verifier{Issuing: issuer.Cert, Store: st}
	pool := x509.NewCertPool()
	pool.AddCert(mfr.Cert)
	v.SetManufacturers(pool, nil)
	h, err := server.New(server.Options{
		Issuer: issuer, CACerts: issuer.Chain, Profiles: ca.DefaultProfiles(), Verifier: v, Store: st,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: server.NewMetrics(prometheus.NewRegistry(), nil, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, key := range map[string]crypto.Signer{"P-224": p224, "RSA-1024": rsa1024} {
		device, _ := mfr.Issue(t, testpki.Leaf{CN: "SN-" + name, Key: key, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
		csrKey := testpki.Key(t, ca.P256)
		csr, err := est.SetRequestAttributes(testpki.CSR(t, csrKey, "sensor", nil, nil), csrKey, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(device)))
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("POST", "https://estd.example"+est.Path("", est.OpServerKeyGen), bytes.NewReader(est.EncodeBase64(csr)))
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12, PeerCertificates: []*x509.Certificate{device}}
		req.Header.Set("Content-Type", est.MediaPKCS10)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 400 || !strings.Contains(rec.Body.String(), "DecryptKeyIdentifier") {
			t.Errorf("%s: %d %q, want 400 with the reason", name, rec.Code, rec.Body)
		}
	}
	if recs, _, _ := st.List(t.Context(), store.ListOptions{}); len(recs) != 0 {
		t.Errorf("%d certificates recorded for refused requests", len(recs))
	}
}
