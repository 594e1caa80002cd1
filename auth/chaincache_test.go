package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// testCert signs a certificate (self-signed when parent is nil).
func testCert(t *testing.T, cn string, isCA bool, notBefore, notAfter time.Time, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: isCA,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		tmpl.ExtKeyUsage = nil
	}
	signer := parentKey
	if parent == nil { // self-signed
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestChainCache(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	root, rootKey := testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	inter, interKey := testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour), root, rootKey)
	device, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), inter, interKey)
	other, _ := testCert(t, "device-2", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), inter, interKey)

	now := t0
	v := &Verifier{Clock: func() time.Time { return now }}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	v.SetManufacturers(pool, nil)
	ctx := context.Background()
	auth := func(peers ...*x509.Certificate) error {
		_, err := v.certificate(ctx, peers, true, false)
		return err
	}
	full := func() int64 { return v.verifications.Load() }

	if err := auth(device, inter); err != nil {
		t.Fatal(err)
	}
	if err := auth(device, inter); err != nil || full() != 1 {
		t.Fatalf("the same chain again: %v, %d full verifications, want 1", err, full())
	}
	// Another chain (another leaf, or the leaf without its intermediate) is
	// verified in full.
	if err := auth(other, inter); err != nil || full() != 2 {
		t.Fatalf("another leaf: %v, %d full verifications, want 2", err, full())
	}
	if err := auth(device); err == nil || full() != 3 {
		t.Fatalf("the leaf without its intermediate: %v (%d full verifications), want refused after a full one", err, full())
	}
	// A remembered chain is still refused once it expires, and before it
	// is valid.
	now = t0.Add(25 * time.Hour)
	if err := auth(device, inter); err == nil {
		t.Fatal("an expired chain was accepted from the cache")
	}
	now = t0.Add(-2 * time.Hour)
	if err := auth(device, inter); err == nil {
		t.Fatal("a chain not yet valid was accepted from the cache")
	}
	// New trust anchors: what the old ones verified counts no more.
	now = t0
	v.SetManufacturers(x509.NewCertPool(), nil)
	if err := auth(device, inter); err == nil {
		t.Fatal("a chain of a removed trust anchor was accepted from the cache")
	}
	v.SetManufacturers(pool, nil)
	if n := len(v.chains.m); n != 0 {
		t.Fatalf("%d chains still cached after new trust anchors, want none (the old pools stay reachable)", n)
	}
	before := full()
	if err := auth(device, inter); err != nil || full() != before+1 {
		t.Fatalf("the trust anchor back: %v, %d full verifications, want %d", err, full(), before+1)
	}
}

func TestChainCacheBounded(t *testing.T) {
	var c chainCache
	for i := range maxCachedChains + 10 {
		var k chainKey
		k.sum[0], k.sum[1] = byte(i), byte(i>>8)
		c.put(k, verified{})
	}
	if n := len(c.m); n > maxCachedChains {
		t.Errorf("%d cached chains, want at most %d", n, maxCachedChains)
	}
}
