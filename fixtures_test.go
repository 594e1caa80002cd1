package est

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update rewrites the golden files of testdata/ from the fixed inputs there
// (go test -run Golden -update). The fixtures themselves (keys, certificates,
// CSRs, the openssl PKCS#7) are never rewritten; testdata/README.md says how
// they were made.
var update = flag.Bool("update", false, "rewrite golden files")

// readTestdata returns the content of testdata/name.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pemBlock returns the DER of the only PEM block of testdata/name, which must
// be of type typ.
func pemBlock(tb testing.TB, name, typ string) []byte {
	tb.Helper()
	b, rest := pem.Decode(readTestdata(tb, name))
	if b == nil || b.Type != typ || len(bytes.TrimSpace(rest)) != 0 {
		tb.Fatalf("testdata/%s: want one PEM block of type %s", name, typ)
	}
	return b.Bytes
}

func fixtureCert(tb testing.TB, name string) *x509.Certificate {
	tb.Helper()
	c, err := x509.ParseCertificate(pemBlock(tb, name, "CERTIFICATE"))
	if err != nil {
		tb.Fatalf("testdata/%s: %v", name, err)
	}
	return c
}

// fixtureKey returns the PKCS#8 DER of a private key and the parsed key.
func fixtureKey(tb testing.TB, name string) ([]byte, any) {
	tb.Helper()
	der := pemBlock(tb, name, "PRIVATE KEY")
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		tb.Fatalf("testdata/%s: %v", name, err)
	}
	return der, k
}

// checkGolden compares got with testdata/name, or rewrites the file under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it if the change is intended)\ngot:\n%s\nwant:\n%s",
			path, EncodeBase64(got), EncodeBase64(want))
	}
}
