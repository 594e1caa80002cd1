package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"testing"
	"time"
)

// sameAsX509 checks that createCertificate makes the certificate
// x509.CreateCertificate makes: the same TBSCertificate and signature
// algorithm, and a signature by key that verifies.
func sameAsX509(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) {
	t.Helper()
	der, err := createCertificate(tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	signer := &x509.Certificate{PublicKey: key.Public()}
	if err := signer.CheckSignature(got.SignatureAlgorithm, got.RawTBSCertificate, got.Signature); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	wantDER, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := x509.ParseCertificate(wantDER)
	if !bytes.Equal(got.RawTBSCertificate, want.RawTBSCertificate) {
		t.Fatalf("TBSCertificate differs from x509.CreateCertificate's:\n got %x\nwant %x", got.RawTBSCertificate, want.RawTBSCertificate)
	}
	if got.SignatureAlgorithm != want.SignatureAlgorithm {
		t.Errorf("signature algorithm %v, want %v", got.SignatureAlgorithm, want.SignatureAlgorithm)
	}
	if _, ok := key.(ed25519.PrivateKey); ok && !bytes.Equal(der, wantDER) {
		t.Errorf("Ed25519 signatures are deterministic, yet the certificate differs from x509.CreateCertificate's")
	}
}

func rawName(t *testing.T, n pkix.Name) []byte {
	t.Helper()
	der, err := asn1.Marshal(n.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestCreateCertificateSameAsX509: for every CA key type, certificates with
// every field Issue sets, and some it does not, come out exactly as x509
// makes them.
func TestCreateCertificateSameAsX509(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	uri, _ := url.Parse("urn:dev:sensor-7")
	web, _ := url.Parse("https://device.example/id?x=1")
	subject := rawName(t, pkix.Name{CommonName: "device-2", Organization: []string{"Acme"}, SerialNumber: "SN-1"})
	templates := map[string]*x509.Certificate{
		"minimal": {SerialNumber: big.NewInt(1), RawSubject: rawName(t, pkix.Name{CommonName: "device-1"}), NotBefore: now, NotAfter: now.Add(time.Hour)},
		"issued": { // what Issue makes
			SerialNumber: new(big.Int).Lsh(big.NewInt(1), 142), RawSubject: subject, SubjectKeyId: []byte{1, 2, 3, 4},
			NotBefore: now, NotAfter: now.AddDate(0, 0, 90), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true,
		},
		"registration authority": { // EKU id-kp-cmcRA by OID (RFC 6402 2.10)
			SerialNumber: big.NewInt(12), RawSubject: subject, NotBefore: now, NotAfter: now.AddDate(0, 0, 90),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 28}},
		},
		"unknown EKU only": {
			SerialNumber: big.NewInt(13), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour),
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 2, 3, 4}, {2, 999, 1}},
		},
		"everything": {
			SerialNumber: new(big.Int).Lsh(big.NewInt(1), 143), RawSubject: subject,
			NotBefore: now, NotAfter: now.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true,
			SubjectKeyId: []byte{1, 2, 3, 4}, DNSNames: []string{"a.example", "b.example"}, IPAddresses: []net.IP{net.IPv4(192, 0, 2, 1), net.ParseIP("2001:db8::1")},
			EmailAddresses: []string{"ops@example.com"}, URIs: []*url.URL{uri, web},
			CRLDistributionPoints: []string{"http://pki.example/crl", "http://pki2.example/crl"}, OCSPServer: []string{"http://pki.example/ocsp"},
		},
		"empty subject": { // the SAN extension is then critical
			SerialNumber: big.NewInt(3), RawSubject: []byte{0x30, 0x00}, NotBefore: now, NotAfter: now.Add(time.Hour), DNSNames: []string{"c.example"},
		},
		"generalized time": {
			SerialNumber: big.NewInt(4), RawSubject: subject, NotBefore: time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), NotAfter: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC),
		},
		"utc boundary": {
			SerialNumber: big.NewInt(5), RawSubject: subject, NotBefore: time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2050, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600)),
		},
		"high key usage": {
			SerialNumber: big.NewInt(0xff), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDecipherOnly | x509.KeyUsageEncipherOnly | x509.KeyUsageCRLSign, BasicConstraintsValid: true, MaxPathLen: -1,
		},
		// Outside what marshalTBS encodes: x509.CreateCertificate makes them.
		"ca": {
			SerialNumber: big.NewInt(6), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		},
		"policies": {
			SerialNumber: big.NewInt(7), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour),
			Policies: []x509.OID{parseOID(t, "1.2.3.4")}, UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 2, 3}},
			IssuingCertificateURL: []string{"http://pki.example/ca"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageIPSECUser},
		},
		"subject not raw": {
			SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "cooked"}, NotBefore: now, NotAfter: now.Add(time.Hour),
		},
	}
	for _, kt := range []KeyType{P256, P384, RSA2048, Ed25519} {
		caKey, err := GenerateKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		parent, err := NewRoot(caKey, pkix.Name{CommonName: "Sign Test " + string(kt)}, now.Add(-time.Hour), 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		leafKey, _ := GenerateKey(P256)
		for name, tmpl := range templates {
			t.Run(string(kt)+"/"+name, func(t *testing.T) {
				sameAsX509(t, tmpl, parent, leafKey.Public(), caKey)
			})
		}
	}
	t.Run("p521 and self-signed", func(t *testing.T) {
		key, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		self := &x509.Certificate{SerialNumber: big.NewInt(9), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour),
			SubjectKeyId: []byte{9}, AuthorityKeyId: []byte{8}, PublicKey: key.Public()}
		sameAsX509(t, self, self, key.Public(), key)
	})
}

func parseOID(t *testing.T, s string) x509.OID {
	t.Helper()
	oid, err := x509.ParseOID(s)
	if err != nil {
		t.Fatal(err)
	}
	return oid
}

// TestCreateCertificateRandomTemplates compares with x509 over random
// combinations of what Issue can put in a certificate.
func TestCreateCertificateRandomTemplates(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	caKey, _ := GenerateKey(P256)
	root, err := NewRoot(caKey, pkix.Name{CommonName: "Random Root"}, now.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leafKeys := []crypto.Signer{caKey}
	for _, kt := range []KeyType{P256, P384, RSA2048, Ed25519} {
		k, _ := GenerateKey(kt)
		leafKeys = append(leafKeys, k)
	}
	ekus := []x509.ExtKeyUsage{x509.ExtKeyUsageAny, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning,
		x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageTimeStamping, x509.ExtKeyUsageOCSPSigning}
	pick := func(n int, f func(i int) string) []string {
		var out []string
		for i := range rng.IntN(n + 1) {
			out = append(out, f(i))
		}
		return out
	}
	for i := range 300 {
		serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(1+rng.IntN(159))))
		if err != nil {
			t.Fatal(err)
		}
		serial.Add(serial, big.NewInt(1))
		tmpl := &x509.Certificate{
			SerialNumber:          serial,
			RawSubject:            rawName(t, pkix.Name{CommonName: fmt.Sprintf("dev-%d", i), Organization: pick(2, func(j int) string { return fmt.Sprint("O", j) })}),
			NotBefore:             now.Add(-time.Duration(rng.IntN(1e6)) * time.Second),
			NotAfter:              now.Add(time.Duration(rng.Int64N(1e10)) * time.Second),
			KeyUsage:              x509.KeyUsage(rng.IntN(1 << 9)),
			BasicConstraintsValid: rng.IntN(2) == 0,
			DNSNames:              pick(3, func(j int) string { return fmt.Sprintf("d%d-%d.example", i, j) }),
			EmailAddresses:        pick(2, func(j int) string { return fmt.Sprintf("e%d@example.com", j) }),
			CRLDistributionPoints: pick(2, func(j int) string { return fmt.Sprintf("http://crl%d.example/ca.crl", j) }),
			OCSPServer:            pick(2, func(j int) string { return fmt.Sprintf("http://ocsp%d.example", j) }),
		}
		if rng.IntN(4) == 0 {
			tmpl.RawSubject = []byte{0x30, 0x00}
		}
		if rng.IntN(2) == 0 {
			tmpl.SubjectKeyId = []byte(fmt.Sprint("skid", i))
		}
		for range rng.IntN(3) {
			tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, ekus[rng.IntN(len(ekus))])
		}
		for range rng.IntN(3) {
			ip := make(net.IP, []int{4, 16}[rng.IntN(2)])
			rand.Read(ip)
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
		for j := range rng.IntN(2) {
			u, _ := url.Parse(fmt.Sprintf("urn:dev:%d:%d", i, j))
			tmpl.URIs = append(tmpl.URIs, u)
		}
		sameAsX509(t, tmpl, root, leafKeys[rng.IntN(len(leafKeys))].Public(), caKey)
	}
}

// badSigner is a signer that is not a standard-library key and returns
// garbage, as a broken HSM would.
type badSigner struct{ crypto.Signer }

func (b badSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := b.Signer.Sign(r, digest, opts)
	if err == nil {
		sig[len(sig)-1] ^= 1
	}
	return sig, err
}

// TestCreateCertificateOtherSignersChecked: a signer other than the
// standard library's keys keeps x509's verification of its signature.
func TestCreateCertificateOtherSignersChecked(t *testing.T) {
	now := time.Now()
	caKey, _ := GenerateKey(P256)
	parent, err := NewRoot(caKey, pkix.Name{CommonName: "Sign Test"}, now.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "x"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
	if _, err := createCertificate(tmpl, parent, caKey.Public(), badSigner{caKey}); err == nil {
		t.Fatal("a bad signature from a non-standard signer was accepted")
	}
	if _, err := createCertificate(tmpl, parent, caKey.Public(), struct{ crypto.Signer }{caKey}); err != nil {
		t.Fatalf("wrapped good signer: %v", err)
	}
}

// TestCreateCertificateRefusals: what x509 refuses is still refused.
func TestCreateCertificateRefusals(t *testing.T) {
	now := time.Now()
	caKey, _ := GenerateKey(P256)
	parent, err := NewRoot(caKey, pkix.Name{CommonName: "Sign Test"}, now.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := GenerateKey(P256)
	subject := rawName(t, pkix.Name{CommonName: "x"})
	for name, tc := range map[string]struct {
		tmpl *x509.Certificate
		key  crypto.Signer
	}{
		"key not the parent's": {&x509.Certificate{SerialNumber: big.NewInt(9), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour)}, otherKey},
		"negative serial":      {&x509.Certificate{SerialNumber: big.NewInt(-1), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour)}, caKey},
		"invalid EKU OID":      {&x509.Certificate{SerialNumber: big.NewInt(9), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour), UnknownExtKeyUsage: []asn1.ObjectIdentifier{{7}}}, caKey},
		"non-ASCII DNS name":   {&x509.Certificate{SerialNumber: big.NewInt(9), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour), DNSNames: []string{"bücher.example"}}, caKey},
		"path length, not CA":  {&x509.Certificate{SerialNumber: big.NewInt(9), RawSubject: subject, NotBefore: now, NotAfter: now.Add(time.Hour), BasicConstraintsValid: true, MaxPathLen: 2}, caKey},
	} {
		if _, err := createCertificate(tc.tmpl, parent, caKey.Public(), tc.key); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestKeyUsageBits(t *testing.T) {
	for ku := x509.KeyUsage(1); ku < 1<<9; ku++ {
		a := [2]byte{reverseBits(byte(ku)), reverseBits(byte(ku >> 8))}
		bs := asn1.BitString{Bytes: a[:1], BitLength: 8}
		if a[1] != 0 {
			bs.Bytes = a[:2]
		}
		bs.BitLength = len(bs.Bytes) * 8
		for bs.BitLength > 0 && bs.At(bs.BitLength-1) == 0 {
			bs.BitLength--
		}
		want, err := asn1.Marshal(bs)
		if err != nil {
			t.Fatal(err)
		}
		if got := keyUsageBits(ku); !bytes.Equal(got, want) {
			t.Fatalf("keyUsageBits(%#x) = %x, want %x", ku, got, want)
		}
	}
}
