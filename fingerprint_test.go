package est

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestFingerprintMatchesOpenSSLForm(t *testing.T) {
	data, err := os.ReadFile("testdata/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fp := Fingerprint(cert)
	if len(fp) != 32*3-1 || strings.ToUpper(fp) != fp || strings.Count(fp, ":") != 31 {
		t.Fatalf("fingerprint %q is not 32 colon-separated upper-case hex bytes", fp)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		return // the form is checked; the value needs openssl
	}
	out, err := exec.Command("openssl", "x509", "-in", "testdata/ca.pem", "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "sha256 Fingerprint=")); fp != want {
		t.Fatalf("Fingerprint = %s, openssl says %s", fp, want)
	}
}
