package est

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAESKeyWrapRFC3394(t *testing.T) {
	// RFC 3394 section 4.1 and 4.6.
	for _, tc := range []struct{ kek, key, wrapped string }{
		{"000102030405060708090A0B0C0D0E0F", "00112233445566778899AABBCCDDEEFF", "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
	} {
		kek, _ := hex.DecodeString(tc.kek)
		key, _ := hex.DecodeString(tc.key)
		want, _ := hex.DecodeString(tc.wrapped)
		got, err := aesKeyWrap(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("wrap = %X, %v; want %X", got, err, want)
		}
		back, err := aesKeyUnwrap(kek, got)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("unwrap = %X, %v", back, err)
		}
		got[5] ^= 1
		if _, err := aesKeyUnwrap(kek, got); err == nil {
			t.Fatal("unwrap accepted a corrupted key")
		}
	}
}

// signerCA is a throw-away CA that signs key packages.
func signerCA(t *testing.T) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "key package signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return key, cert
}

// recipientCert returns a certificate for key, with a subject key
// identifier extension or without.
func recipientCert(t *testing.T, key crypto.Signer, ski bool) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	if ski {
		tmpl.SubjectKeyId = []byte{1, 2, 3, 4, 5, 6, 7, 8}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func TestServerKeyRoundTrip(t *testing.T) {
	signer, signerCert := signerCA(t)
	genKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(genKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	kek := bytes.Repeat([]byte{0x42}, 16)
	for _, tc := range []struct {
		name string
		r    KeyRecipient
		kek  []byte
		priv crypto.PrivateKey
	}{
		{"kekri", KeyRecipient{KeyID: []byte("kid-1"), KEK: kek}, kek, nil},
		{"ktri-rsa", KeyRecipient{Certificate: recipientCert(t, rsaKey, true)}, nil, rsaKey},
		{"ktri-rsa-issuer-serial", KeyRecipient{Certificate: recipientCert(t, rsaKey, false)}, nil, rsaKey},
		{"kari-p384", KeyRecipient{Certificate: recipientCert(t, ecKey, true)}, nil, ecKey},
		{"kari-p384-issuer-serial", KeyRecipient{Certificate: recipientCert(t, ecKey, false)}, nil, ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := EncryptServerKey(pkcs8, tc.r, signer, []*x509.Certificate{signerCert})
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(der, pkcs8[len(pkcs8)-32:]) {
				t.Fatal("the private key is in the clear")
			}
			got, err := DecryptServerKey(der, tc.kek, tc.priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Key, pkcs8) || !got.Signer.Equal(signerCert) {
				t.Fatalf("got key %x signed by %v", got.Key, got.Signer.Subject)
			}
			// The wrong key opens nothing.
			other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if _, err := DecryptServerKey(der, bytes.Repeat([]byte{1}, 16), other); err == nil {
				t.Fatal("decrypted with the wrong key")
			}
		})
	}
}

func TestServerKeyTampered(t *testing.T) {
	signer, signerCert := signerCA(t)
	kek := bytes.Repeat([]byte{7}, 32)
	r := KeyRecipient{KeyID: []byte("k"), KEK: kek}
	// Signing with a key that is not the certificate's is refused.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := EncryptServerKey([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, r, other, []*x509.Certificate{signerCert}); err == nil {
		t.Fatal("signed the key package with a key its certificate does not hold")
	}
	// A package whose signature was altered fails. The signature is the
	// SignedData's last field.
	signed, err := signKeyPackage([]byte{0x30, 0x03, 0x02, 0x01, 0x00}, signer, []*x509.Certificate{signerCert})
	if err != nil {
		t.Fatal(err)
	}
	signed[len(signed)-1] ^= 1
	der, err := envelope(signed, oidCMSSignedData, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecryptServerKey(der, kek, nil); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("an altered signature: %v", err)
	}
	for _, bad := range [][]byte{nil, {0x30, 0x00}, []byte("garbage")} {
		if _, err := DecryptServerKey(bad, kek, nil); KindOf(err) != ErrBadRequest {
			t.Errorf("DecryptServerKey(%x) = %v, want ErrBadRequest", bad, err)
		}
	}
}

// TestServerKeyOpenSSL has openssl decrypt and verify what
// EncryptServerKey makes, for each kind of recipient.
func TestServerKeyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	signer, signerCert := signerCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", signerCert.Raw)
	genKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(genKey)
	kek := bytes.Repeat([]byte{0x5a}, 32)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		r    KeyRecipient
		priv crypto.Signer
	}{
		{"kekri", KeyRecipient{KeyID: []byte("device-42"), KEK: kek}, nil},
		{"ktri-rsa", KeyRecipient{Certificate: recipientCert(t, rsaKey, true)}, rsaKey},
		{"ktri-rsa-issuer-serial", KeyRecipient{Certificate: recipientCert(t, rsaKey, false)}, rsaKey},
		{"kari-p256", KeyRecipient{Certificate: recipientCert(t, ecKey, true)}, ecKey},
		{"kari-p256-issuer-serial", KeyRecipient{Certificate: recipientCert(t, ecKey, false)}, ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"cms", "-decrypt", "-inform", "DER", "-in", filepath.Join(dir, tc.name+".der"), "-out", filepath.Join(dir, tc.name+".sd")}
			if tc.priv != nil {
				writePEM(t, filepath.Join(dir, tc.name+"-cert.pem"), "CERTIFICATE", tc.r.Certificate.Raw)
				p8, _ := x509.MarshalPKCS8PrivateKey(tc.priv)
				writePEM(t, filepath.Join(dir, tc.name+"-key.pem"), "PRIVATE KEY", p8)
				args = append(args, "-recip", filepath.Join(dir, tc.name+"-cert.pem"), "-inkey", filepath.Join(dir, tc.name+"-key.pem"))
			} else {
				args = append(args, "-secretkey", hex.EncodeToString(kek), "-secretkeyid", hex.EncodeToString([]byte("device-42")))
			}
			der, err := EncryptServerKey(pkcs8, tc.r, signer, []*x509.Certificate{signerCert})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.name+".der"), der, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			sd, err := os.ReadFile(filepath.Join(dir, tc.name+".sd"))
			if err != nil {
				t.Fatal(err)
			}
			// openssl verifies the SignedData, wrapped in a ContentInfo.
			ci := append([]byte{0x30, 0x82, 0, 0, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x82, byte(len(sd) >> 8), byte(len(sd))}, sd...)
			ci[2], ci[3] = byte((len(ci)-4)>>8), byte(len(ci)-4)
			if err := os.WriteFile(filepath.Join(dir, tc.name+".p7"), ci, 0o600); err != nil {
				t.Fatal(err)
			}
			vargs := []string{"cms", "-verify", "-inform", "DER", "-in", filepath.Join(dir, tc.name+".p7"), "-CAfile", filepath.Join(dir, "ca.pem"), "-purpose", "any", "-out", filepath.Join(dir, tc.name+".pkg")}
			if out, err := exec.Command("openssl", vargs...).CombinedOutput(); err != nil {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(vargs, " "), err, out)
			}
			pkg, err := os.ReadFile(filepath.Join(dir, tc.name+".pkg"))
			if err != nil {
				t.Fatal(err)
			}
			// AsymmetricKeyPackage: SEQUENCE { the PKCS#8 key }
			if !bytes.HasSuffix(pkg, pkcs8) || pkg[0] != 0x30 {
				t.Fatalf("openssl's content is not the key package: %x", pkg)
			}
		})
	}
}

// TestServerKeyFromOpenSSL decrypts what openssl encrypts: the client side
// opens other servers' envelopes (AES-128-CBC, PKCS #1 v1.5 key transport,
// openssl's default ECDH KDF) too.
func TestServerKeyFromOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	signer, signerCert := signerCA(t)
	writePEM(t, filepath.Join(dir, "signer.pem"), "CERTIFICATE", signerCert.Raw)
	sp8, _ := x509.MarshalPKCS8PrivateKey(signer)
	writePEM(t, filepath.Join(dir, "signer.key"), "PRIVATE KEY", sp8)
	genKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(genKey)
	pkg, err := asn1.Marshal([]asn1.RawValue{{FullBytes: pkcs8}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pkg.der"), pkg, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("cms", "-sign", "-binary", "-nodetach", "-nosmimecap", "-econtent_type", OIDKeyPackage.String(), "-in", filepath.Join(dir, "pkg.der"),
		"-signer", filepath.Join(dir, "signer.pem"), "-inkey", filepath.Join(dir, "signer.key"), "-outform", "DER", "-out", filepath.Join(dir, "signed.der"))
	// openssl writes a ContentInfo; the envelope holds the SignedData in it.
	var signedCI []byte
	signedCI, err = os.ReadFile(filepath.Join(dir, "signed.der"))
	if err != nil {
		t.Fatal(err)
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(signedCI, &ci); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sd.der"), ci.Content.Bytes, 0o600); err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kek := bytes.Repeat([]byte{0x11}, 16)
	for _, tc := range []struct {
		name string
		args []string
		kek  []byte
		priv crypto.Signer
	}{
		{"kekri", []string{"-aes128", "-secretkey", hex.EncodeToString(kek), "-secretkeyid", "0102"}, kek, nil},
		{"ktri", []string{"-aes256"}, nil, rsaKey},
		{"kari", []string{"-aes192"}, nil, ecKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"cms", "-encrypt", "-binary", "-econtent_type", "pkcs7-signedData", "-in", filepath.Join(dir, "sd.der"), "-outform", "DER", "-out", filepath.Join(dir, tc.name+".der")}
			args = append(args, tc.args...)
			if tc.priv != nil {
				cert := recipientCert(t, tc.priv, true)
				writePEM(t, filepath.Join(dir, tc.name+".pem"), "CERTIFICATE", cert.Raw)
				args = append(args, filepath.Join(dir, tc.name+".pem"))
			}
			run(args...)
			der, err := os.ReadFile(filepath.Join(dir, tc.name+".der"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecryptServerKey(der, tc.kek, tc.priv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Key, pkcs8) {
				t.Fatalf("key %x, want %x", got.Key, pkcs8)
			}
		})
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
