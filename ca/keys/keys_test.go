package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estkit/estkit/internal/testenv"
)

func TestParsePEMFormats(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rk)
	cases := map[string][]byte{
		"PKCS#8": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		"SEC 1 after parameters": append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...),
		"PKCS#1": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}),
	}
	for name, data := range cases {
		s, err := ParsePEM(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if s.Public() == nil {
			t.Errorf("%s: no public key", name)
		}
	}
	for name, data := range map[string][]byte{
		"empty":     nil,
		"encrypted": pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}),
		"garbage":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"cert only": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}),
	} {
		if _, err := ParsePEM(data); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestLoadFileRoundTrip(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	b, err := MarshalPEM(ec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Public().(*ecdsa.PublicKey).Equal(ec.Public()) {
		t.Fatal("loaded a different key")
	}
	if _, err := LoadFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file loaded")
	}
}

const fixturePassphrase = "correct horse battery staple"

func samePublic(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func mustLoad(t *testing.T, path string) crypto.Signer {
	t.Helper()
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOpenSSLEncryptedKeys reads keys that OpenSSL encrypted (see
// testdata/README.md), with the passphrase from a file and from the
// environment.
func TestOpenSSLEncryptedKeys(t *testing.T) {
	t.Setenv("TEST_KEY_PASSPHRASE", fixturePassphrase)
	sources := map[string]Passphrase{
		"file":  PassphraseFromFile("testdata/passphrase.txt"),
		"env":   PassphraseFromEnv("TEST_KEY_PASSPHRASE"),
		"bytes": PassphraseBytes([]byte(fixturePassphrase)),
	}
	for enc, plain := range map[string]string{
		"p256-pkcs8-aes256.pem":        "p256.pem",
		"p256-pkcs8-aes256-sha512.pem": "p256.pem",
		"p256-pkcs8-aes128-sha1.pem":   "p256.pem",
		"rsa2048-pkcs8-aes128.pem":     "rsa2048.pem",
		"p384-genpkey-aes256.pem":      "p384.pem",
	} {
		want := mustLoad(t, filepath.Join("testdata", plain)).Public()
		for name, pass := range sources {
			s, err := LoadFileWithPassphrase(filepath.Join("testdata", enc), pass)
			if err != nil {
				t.Errorf("%s with passphrase from %s: %v", enc, name, err)
				continue
			}
			if !samePublic(s.Public(), want) {
				t.Errorf("%s: not the key of %s", enc, plain)
			}
		}
		_, err := LoadFile(filepath.Join("testdata", enc))
		if !errors.Is(err, ErrPassphraseRequired) {
			t.Errorf("%s without a passphrase: %v, want ErrPassphraseRequired", enc, err)
		}
		_, err = LoadFileWithPassphrase(filepath.Join("testdata", enc), PassphraseBytes([]byte("Correct horse battery staple")))
		if !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("%s with a wrong passphrase: %v, want ErrWrongPassphrase", enc, err)
		}
	}
}

func TestUnsupportedEncryption(t *testing.T) {
	pass := PassphraseBytes([]byte(fixturePassphrase))
	for file, want := range map[string]string{
		"p256-scrypt.pem":        "scrypt",
		"p256-pbes1.pem":         "PBES1",
		"p256-legacy-aes256.pem": "legacy PEM encryption",
	} {
		_, err := LoadFileWithPassphrase(filepath.Join("testdata", file), pass)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "openssl pkcs8 -topk8") {
			t.Errorf("%s: %v, want an error about %s with the openssl command that converts it", file, err, want)
		}
	}
}

func TestEncryptedRoundTrip(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, key := range []crypto.Signer{ec, rk} {
		b, err := marshalEncryptedPEM(key, []byte("s3cret"), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
			t.Fatalf("not an encrypted PKCS#8 PEM:\n%s", b)
		}
		s, err := ParsePEMWithPassphrase(b, PassphraseBytes([]byte("s3cret")))
		if err != nil {
			t.Fatal(err)
		}
		if !samePublic(s.Public(), key.Public()) {
			t.Fatal("round trip changed the key")
		}
		if _, err := ParsePEMWithPassphrase(b, PassphraseBytes([]byte("s3cret!"))); !errors.Is(err, ErrWrongPassphrase) {
			t.Fatalf("wrong passphrase: %v", err)
		}
	}
	if _, err := MarshalEncryptedPEM(ec, nil); err == nil {
		t.Fatal("encrypted with an empty passphrase")
	}
}

// TestMarshalEncryptedPEMOpenSSL checks that OpenSSL reads what
// MarshalEncryptedPEM writes, at the full iteration count.
func TestMarshalEncryptedPEMOpenSSL(t *testing.T) {
	openssl := testenv.Command(t, "openssl")
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	b, err := MarshalEncryptedPEM(ec, []byte(fixturePassphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc.pem")
	if err := os.WriteFile(enc, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "asn1parse", "-in", enc).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl asn1parse: %v\n%s", err, out)
	}
	for _, want := range []string{"PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc", "0927C0"} { // 0x0927C0 = 600000
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("openssl asn1parse does not show %s:\n%s", want, out)
		}
	}
	plain := filepath.Join(dir, "plain.pem")
	out, err = exec.Command(openssl, "pkey", "-in", enc, "-passin", "file:testdata/passphrase.txt", "-out", plain).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl pkey cannot decrypt MarshalEncryptedPEM's output: %v\n%s", err, out)
	}
	if s := mustLoad(t, plain); !samePublic(s.Public(), ec.Public()) {
		t.Fatal("openssl decrypted a different key")
	}
	// And the other way: the file loads with the passphrase from a file.
	s, err := LoadFileWithPassphrase(enc, PassphraseFromFile("testdata/passphrase.txt"))
	if err != nil || !samePublic(s.Public(), ec.Public()) {
		t.Fatalf("reload: %v", err)
	}
}

func TestPassphraseSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{
		"pass":        "pass",
		"pass\n":      "pass",
		"pass\r\n":    "pass",
		"pass\n\n":    "pass\n",
		" pass word ": " pass word ",
	} {
		got, err := PassphraseFromFile(write("p", content))()
		if err != nil || string(got) != want {
			t.Errorf("file %q: %q, %v; want %q", content, got, err, want)
		}
	}
	if _, err := PassphraseFromFile(write("empty", "\n"))(); err == nil {
		t.Error("empty passphrase file accepted")
	}
	if _, err := PassphraseFromFile(filepath.Join(dir, "missing"))(); err == nil {
		t.Error("missing passphrase file accepted")
	}
	t.Setenv("TEST_EMPTY_PASSPHRASE", "")
	for _, name := range []string{"TEST_EMPTY_PASSPHRASE", "TEST_UNSET_PASSPHRASE_4711"} {
		_, err := PassphraseFromEnv(name)()
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want an error naming the variable", name, err)
		}
	}
	// An unencrypted key never asks for the passphrase.
	called := false
	if _, err := LoadFileWithPassphrase("testdata/p256.pem", func() ([]byte, error) {
		called = true
		return nil, errors.New("unreachable")
	}); err != nil || called {
		t.Errorf("plain key: err %v, passphrase asked: %v", err, called)
	}
	// A failing source is reported.
	_, err := LoadFileWithPassphrase("testdata/p256-pkcs8-aes256.pem", PassphraseFromEnv("TEST_UNSET_PASSPHRASE_4711"))
	if err == nil || !strings.Contains(err.Error(), "TEST_UNSET_PASSPHRASE_4711") {
		t.Errorf("failing source: %v", err)
	}
}

func TestLoadFileRef(t *testing.T) {
	s, c, err := Load(context.Background(), "testdata/p256-pkcs8-aes256.pem", Options{Passphrase: PassphraseFromFile("testdata/passphrase.txt")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !samePublic(s.Public(), mustLoad(t, "testdata/p256.pem").Public()) {
		t.Fatal("wrong key")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Load(ctx, "testdata/p256.pem", Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v", err)
	}
}

func FuzzParsePEMWithPassphrase(f *testing.F) {
	for _, name := range []string{"p256-pkcs8-aes256.pem", "rsa2048-pkcs8-aes128.pem", "p256-scrypt.pem", "p256-pbes1.pem", "p256.pem"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	pass := PassphraseBytes([]byte(fixturePassphrase))
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, _ := pem.Decode(data); b != nil && b.Type == "ENCRYPTED PRIVATE KEY" {
			_, _ = decryptPKCS8(b.Bytes, []byte(fixturePassphrase))
		}
		_, _ = ParsePEMWithPassphrase(data, pass)
	})
}
