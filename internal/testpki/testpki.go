// Package testpki makes throw-away PKI for tests: roots, manufacturer CAs with
// device (factory) certificates, rogue CAs that look like a manufacturer but
// are not, expired certificates, and keys. Every time comes from the caller,
// so tests of expiry never sleep.
package testpki

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/estkit/estkit/ca"
)

// CA is a test certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewRoot returns a self-signed CA named cn, valid from a day before now for ten years.
func NewRoot(tb testing.TB, cn string, now time.Time) *CA {
	tb.Helper()
	key := Key(tb, ca.P256)
	cert, err := ca.NewRoot(key, pkix.Name{Organization: []string{"estkit test"}, CommonName: cn}, now.Add(-24*time.Hour), 10*365*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// Manufacturer returns a manufacturer root CA: what signs devices' factory certificates.
func Manufacturer(tb testing.TB, now time.Time) *CA {
	return NewRoot(tb, "Acme Devices Manufacturer CA", now)
}

// Rogue returns a CA with the same name as Manufacturer's but another key:
// what an attacker who copied the manufacturer's name would have.
func Rogue(tb testing.TB, now time.Time) *CA {
	return NewRoot(tb, "Acme Devices Manufacturer CA", now)
}

// Leaf describes an end-entity certificate to issue.
type Leaf struct {
	CN string
	// SerialNumber, if set, is the subject's serialNumber attribute, as
	// IEEE 802.1AR device identities carry it.
	SerialNumber string
	Key          crypto.Signer // nil: a new P-256 key
	NotBefore    time.Time
	NotAfter     time.Time
	EKU          []x509.ExtKeyUsage // nil: clientAuth
	DNS          []string
	IPs          []net.IP
}

// Issue signs a leaf certificate and returns it with its key.
func (c *CA) Issue(tb testing.TB, l Leaf) (*x509.Certificate, crypto.Signer) {
	tb.Helper()
	if l.Key == nil {
		l.Key = Key(tb, ca.P256)
	}
	if l.EKU == nil {
		l.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Acme Devices"}, CommonName: l.CN, SerialNumber: l.SerialNumber},
		NotBefore:             l.NotBefore,
		NotAfter:              l.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           l.EKU,
		BasicConstraintsValid: true,
		DNSNames:              l.DNS,
		IPAddresses:           l.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, l.Key.Public(), c.Key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return cert, l.Key
}

// Device returns a factory certificate for serial, valid a year around now.
func (c *CA) Device(tb testing.TB, serial string, now time.Time) (*x509.Certificate, crypto.Signer) {
	return c.Issue(tb, Leaf{CN: serial, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)})
}

// Expired returns a certificate for serial that expired an hour before now.
func (c *CA) Expired(tb testing.TB, serial string, now time.Time) (*x509.Certificate, crypto.Signer) {
	return c.Issue(tb, Leaf{CN: serial, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
}

var (
	keyMu   sync.Mutex
	rsaPool = map[ca.KeyType][]crypto.Signer{}
	rsaNext = map[ca.KeyType]int{}
)

// rsaPoolSize bounds how many distinct RSA keys of one size a test binary
// generates; RSA key generation is slow, so keys are handed out round robin.
const rsaPoolSize = 4

// Key returns a private key of type kt. EC and Ed25519 keys are always new;
// RSA keys come from a small per-process pool, so two consecutive calls give
// different keys but a long test run reuses them.
func Key(tb testing.TB, kt ca.KeyType) crypto.Signer {
	tb.Helper()
	switch kt {
	case ca.RSA2048, ca.RSA3072, ca.RSA4096:
	default:
		k, err := ca.GenerateKey(kt)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	keyMu.Lock()
	defer keyMu.Unlock()
	i := rsaNext[kt] % rsaPoolSize
	rsaNext[kt]++
	for len(rsaPool[kt]) <= i {
		k, err := ca.GenerateKey(kt)
		if err != nil {
			tb.Fatal(err)
		}
		rsaPool[kt] = append(rsaPool[kt], k)
	}
	return rsaPool[kt][i]
}

// CSR returns a DER PKCS#10 request for key with the given subject CN and names.
func CSR(tb testing.TB, key crypto.Signer, cn string, dns []string, ips []net.IP) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: cn},
		DNSNames:    dns,
		IPAddresses: ips,
	}, key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// TLSCertificate returns a tls.Certificate for cert and key with an optional chain.
func TLSCertificate(cert *x509.Certificate, key crypto.Signer, chain ...*x509.Certificate) tls.Certificate {
	tc := tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

// WriteCerts writes certs as PEM to path.
func WriteCerts(tb testing.TB, path string, certs ...*x509.Certificate) {
	tb.Helper()
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// WriteKey writes key as PEM PKCS#8 to path, mode 0600.
func WriteKey(tb testing.TB, path string, key crypto.Signer) {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(fmt.Errorf("testpki: %w", err))
	}
}

// IssuingCA returns an estd-style CA: an issuing CA whose key is of type kt,
// under a new P-256 root, valid from an hour ago.
func IssuingCA(tb testing.TB, kt ca.KeyType) *ca.CA {
	tb.Helper()
	now := time.Now()
	rootKey := Key(tb, ca.P256)
	root, err := ca.NewRoot(rootKey, pkix.Name{CommonName: "Test Root"}, now.Add(-time.Hour), 10*365*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	key := Key(tb, kt)
	sub, err := ca.NewSubCA(root, rootKey, key.Public(), pkix.Name{CommonName: "Test Issuing"}, now.Add(-time.Hour), 5*365*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ca.New(sub, key, []*x509.Certificate{sub, root})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// CRL returns a DER CRL of c, issued at thisUpdate and due for replacement
// at nextUpdate, that revokes certs (reason keyCompromise).
func (c *CA) CRL(tb testing.TB, number int64, thisUpdate, nextUpdate time.Time, certs ...*x509.Certificate) []byte {
	tb.Helper()
	var entries []x509.RevocationListEntry
	for _, r := range certs {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: r.SerialNumber, RevocationTime: thisUpdate, ReasonCode: 1})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedCertificateEntries: entries,
	}, c.Cert, c.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

// SubCA returns an estd-style issuing CA named cn under root, valid from
// notBefore for a year, with a P-256 key.
func SubCA(tb testing.TB, root *CA, cn string, notBefore time.Time) *ca.CA {
	tb.Helper()
	key := Key(tb, ca.P256)
	cert, err := ca.NewSubCA(root.Cert, root.Key, key.Public(), pkix.Name{CommonName: cn}, notBefore, 365*24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ca.New(cert, key, []*x509.Certificate{cert, root.Cert})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}
