package server_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// keygen sends a serverkeygen request and returns the status and, on 200,
// the parsed response; on error the reason.
func keygen(t *testing.T, s *estdtest.Server, csr []byte, certs []tls.Certificate, basic ...string) (int, *est.ServerKeyGenResponse, string) {
	t.Helper()
	st, hdr, body := call(t, s.Client(certs...), "POST", s.URL+est.Path("", est.OpServerKeyGen), est.MediaPKCS10, est.EncodeBase64(csr), basic...)
	if st != http.StatusOK {
		return st, nil, strings.TrimSpace(string(body))
	}
	resp, err := est.ParseServerKeyGen(hdr.Get("Content-Type"), body)
	if err != nil {
		t.Fatal(err)
	}
	return st, resp, ""
}

// withAttr returns a CSR for a new key that carries attr.
func withAttr(t *testing.T, attr est.Attribute) []byte {
	t.Helper()
	key := testpki.Key(t, ca.P256)
	csr, err := est.SetRequestAttributes(testpki.CSR(t, key, "sensor-7", nil, nil), key, attr)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// checkKey decrypts resp's key and checks it is the certificate's and
// signed by estd's issuing CA.
func checkKey(t *testing.T, s *estdtest.Server, resp *est.ServerKeyGenResponse, kek []byte, priv crypto.PrivateKey) {
	t.Helper()
	if !resp.KeyEncrypted {
		t.Fatal("the key came back in the clear")
	}
	dk, err := est.DecryptServerKey(resp.Key, kek, priv)
	if err != nil {
		t.Fatal(err)
	}
	if !dk.Signer.Equal(s.Daemon.CA.Cert) {
		t.Errorf("the key package is signed by %s, not the issuing CA", dk.Signer.Subject)
	}
	key, err := x509.ParsePKCS8PrivateKey(dk.Key)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(resp.Certs)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(certs[0].PublicKey) {
		t.Error("the decrypted key is not the certificate's")
	}
}

// opensslDecrypt has openssl decrypt the key part and verify the
// SignedData in it against estd's root; it returns the key package.
func opensslDecrypt(t *testing.T, s *estdtest.Server, part []byte, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	in, sd, p7, pkg := filepath.Join(dir, "key.p7"), filepath.Join(dir, "sd.der"), filepath.Join(dir, "sd.p7"), filepath.Join(dir, "pkg.der")
	os.WriteFile(in, part, 0o600)
	args = append([]string{"cms", "-decrypt", "-inform", "DER", "-in", in, "-out", sd}, args...)
	if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	der, _ := os.ReadFile(sd)
	ci, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p7, ci, 0o600)
	vargs := []string{"cms", "-verify", "-inform", "DER", "-in", p7, "-CAfile", s.RootFile, "-purpose", "any", "-out", pkg}
	if out, err := exec.Command("openssl", vargs...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(vargs, " "), err, out)
	}
	b, _ := os.ReadFile(pkg)
	return b
}

func writeFilePEM(t *testing.T, path, typ string, der []byte) string {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServerKeyGenSymmetric(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	basic := []string{s.User, s.Password}
	kek := bytes.Repeat([]byte{0x3c}, 32)
	id := []byte("sensor-fleet-1")
	keys := "# label key-id key\n- " + hex.EncodeToString(id) + " " + hex.EncodeToString(kek) + "\n" +
		"tls-client 01 000102030405060708090a0b0c0d0e0f\n"
	path := filepath.Join(s.Dir, estd.KEKsFile)
	if err := os.WriteFile(path, []byte(keys), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Reload(s.ManufacturerFile, "", nil); err != nil {
		t.Fatal(err)
	}
	st, resp, reason := keygen(t, s, withAttr(t, est.KeyIDAttribute(est.OIDDecryptKeyID, id)), nil, basic...)
	if st != http.StatusOK {
		t.Fatalf("serverkeygen with DecryptKeyIdentifier: %d %s", st, reason)
	}
	checkKey(t, s, resp, kek, nil)
	pkg := opensslDecrypt(t, s, resp.Key, "-secretkey", hex.EncodeToString(kek), "-secretkeyid", hex.EncodeToString(id))
	dk, _ := est.DecryptServerKey(resp.Key, kek, nil)
	if !bytes.HasSuffix(pkg, dk.Key) {
		t.Error("openssl's key package does not hold the key")
	}

	// A key ID of another label, an unknown one, and both kinds at once.
	for _, csr := range [][]byte{
		withAttr(t, est.KeyIDAttribute(est.OIDDecryptKeyID, []byte{1})),
		withAttr(t, est.KeyIDAttribute(est.OIDDecryptKeyID, []byte("nope"))),
	} {
		if st, _, reason := keygen(t, s, csr, nil, basic...); st != http.StatusBadRequest || !strings.Contains(reason, "DecryptKeyIdentifier") {
			t.Errorf("unknown key ID: %d %s", st, reason)
		}
	}
	key := testpki.Key(t, ca.P256)
	both, _ := est.SetRequestAttributes(testpki.CSR(t, key, "x", nil, nil), key,
		est.KeyIDAttribute(est.OIDDecryptKeyID, id), est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, []byte{1}))
	if st, _, reason := keygen(t, s, both, nil, basic...); st != http.StatusBadRequest {
		t.Errorf("both attributes: %d %s", st, reason)
	}
	// Without the attribute the key is plain PKCS#8, as before.
	if st, resp, reason := keygen(t, s, testpki.CSR(t, key, "plain", nil, nil), nil, basic...); st != http.StatusOK || resp.KeyEncrypted {
		t.Errorf("plain serverkeygen: %d %s", st, reason)
	}

	// A keys file others may read is refused, and the keys in force stay.
	os.Chmod(path, 0o644)
	if err := s.Daemon.Reload(s.ManufacturerFile, "", nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("reload with a readable keys file: %v", err)
	}
	if st, _, reason := keygen(t, s, withAttr(t, est.KeyIDAttribute(est.OIDDecryptKeyID, id)), nil, basic...); st != http.StatusOK {
		t.Errorf("after a failed reload: %d %s", st, reason)
	}
}

func TestServerKeyGenAsymmetric(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	now := time.Now()
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			device, deviceKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-" + string(kt), Key: testpki.Key(t, kt), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
			certs := []tls.Certificate{tlsCert(device, deviceKey)}
			csr := withAttr(t, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(device)))
			st, resp, reason := keygen(t, s, csr, certs)
			if st != http.StatusOK {
				t.Fatalf("serverkeygen with AsymmetricDecryptKeyIdentifier: %d %s", st, reason)
			}
			checkKey(t, s, resp, nil, deviceKey)
			dir := t.TempDir()
			p8, _ := x509.MarshalPKCS8PrivateKey(deviceKey)
			opensslDecrypt(t, s, resp.Key,
				"-recip", writeFilePEM(t, filepath.Join(dir, "device.pem"), "CERTIFICATE", device.Raw),
				"-inkey", writeFilePEM(t, filepath.Join(dir, "device.key"), "PRIVATE KEY", p8))

			// The identifier must be the TLS certificate's.
			if st, _, reason := keygen(t, s, withAttr(t, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, []byte{9, 9})), certs); st != http.StatusBadRequest || !strings.Contains(reason, "subject key identifier") {
				t.Errorf("another key identifier: %d %s", st, reason)
			}
			// Without a TLS client certificate there is nothing to encrypt to.
			if st, _, reason := keygen(t, s, csr, nil, s.User, s.Password); st != http.StatusBadRequest || !strings.Contains(reason, "TLS client certificate") {
				t.Errorf("Basic only: %d %s", st, reason)
			}
		})
	}
	// An Ed25519 certificate cannot be encrypted to.
	device, deviceKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-ed", Key: testpki.Key(t, ca.Ed25519), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	csr := withAttr(t, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(device)))
	if st, _, reason := keygen(t, s, csr, []tls.Certificate{tlsCert(device, deviceKey)}); st != http.StatusBadRequest || !strings.Contains(reason, "Ed25519") {
		t.Errorf("Ed25519: %d %s", st, reason)
	}
}

func TestParseKEKs(t *testing.T) {
	k, err := server.ParseKEKs([]byte("# c\n\n* aa 000102030405060708090a0b0c0d0e0f\nlbl bb 000102030405060708090a0b0c0d0e0f1011121314151617\n"))
	if err != nil || k.Len() != 2 {
		t.Fatalf("ParseKEKs: %v, %d keys", err, k.Len())
	}
	if _, ok := k.Lookup("anything", []byte{0xaa}); !ok {
		t.Error("* does not match every label")
	}
	if _, ok := k.Lookup("", []byte{0xbb}); ok {
		t.Error("a label's key found for another label")
	}
	for _, bad := range []string{"x aa", "-- aa 00", "- zz 000102030405060708090a0b0c0d0e0f", "- aa 0001", "- aa 000102030405060708090a0b0c0d0e0f\n- AA 000102030405060708090a0b0c0d0e0f"} {
		if _, err := server.ParseKEKs([]byte(bad)); err == nil {
			t.Errorf("ParseKEKs(%q) accepted it", bad)
		}
	}
}
