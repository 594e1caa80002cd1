package estd

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estkit/estkit/internal/testenv"
)

// TestRolloverResumesAfterInterruption: a rollover interrupted after it
// wrote the new key but before the new certificate leaves the old
// certificate with the new key: estd says to run the rollover again, and
// that run takes the current key back from the retired copy instead of
// retiring the new one in its place.
func TestRolloverResumesAfterInterruption(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := openAt(t, data, nil)
	d.Close()
	g1 := d.CA.Cert
	oldKey, _ := os.ReadFile(filepath.Join(data, IssuingKeyFile))
	oldPEM, _ := os.ReadFile(filepath.Join(data, IssuingCertFile))
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err != nil {
		t.Fatal(err)
	}
	// The crash: the new certificate never replaced the old one.
	if err := os.WriteFile(filepath.Join(data, IssuingCertFile), oldPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{DataDir: data}); err == nil || !strings.Contains(err.Error(), "run 'estd ca rollover' again") {
		t.Fatalf("estd after the interruption: %v; want a pointer to the rollover", err)
	}
	r, err := RolloverCA(context.Background(), data, RolloverOptions{})
	if err != nil {
		t.Fatalf("the rollover again: %v", err)
	}
	retiredKey := filepath.Join(data, RetiredDir, "issuing-ca-"+g1.SerialNumber.Text(16)+".key")
	if b, _ := os.ReadFile(retiredKey); !bytes.Equal(b, oldKey) {
		t.Fatal("the retired CA's key was replaced")
	}
	if !strings.HasSuffix(r.Issuing.Subject.CommonName, " G2") {
		t.Errorf("the resumed rollover made %q, want generation 2", r.Issuing.Subject.CommonName)
	}
	d2 := openAt(t, data, nil)
	if len(d2.Retired) != 1 || !d2.Retired[0].Cert.Equal(g1) {
		t.Fatalf("after the resumed rollover: %d retired CAs", len(d2.Retired))
	}
}

// TestRolloverGenerationNames: a generation follows the current one's, and
// never takes a name a retired CA has; deleting an expired retired CA does
// not make the next rollover reuse a name.
func TestRolloverGenerationNames(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := openAt(t, data, nil)
	d.Close()
	g1 := d.CA.Cert
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err != nil {
		t.Fatal(err)
	}
	r3, err := RolloverCA(context.Background(), data, RolloverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(data, RetiredDir, "issuing-ca-"+g1.SerialNumber.Text(16))
	os.Remove(base + ".pem")
	os.Remove(base + ".key")
	r4, err := RolloverCA(context.Background(), data, RolloverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r3.Issuing.Subject.CommonName, " G3") || !strings.HasSuffix(r4.Issuing.Subject.CommonName, " G4") {
		t.Errorf("generations named %q and %q, want G3 and G4", r3.Issuing.Subject.CommonName, r4.Issuing.Subject.CommonName)
	}
}

// TestRolloverEncryptedKey: an issuing key kept encrypted is followed by a
// new one encrypted with the same passphrase, which estd loads with it; a
// root key encrypted with a passphrase of its own is opened with that.
func TestRolloverEncryptedKey(t *testing.T) {
	t.Setenv("ESTD_CA_KEY_PASSPHRASE", "")
	t.Setenv("ESTD_ROOT_KEY_PASSPHRASE", "")
	openssl := testenv.Command(t, "openssl")
	data := filepath.Join(t.TempDir(), "data")
	d := openAt(t, data, nil)
	d.Close()
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("s3cret-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rootPass := filepath.Join(t.TempDir(), "root-pass")
	if err := os.WriteFile(rootPass, []byte("another-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for f, pf := range map[string]string{IssuingKeyFile: pass, RootKeyFile: rootPass} {
		p := filepath.Join(data, f)
		if out, err := exec.Command(openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", p, "-out", p+".enc", "-passout", "file:"+pf).CombinedOutput(); err != nil {
			t.Fatalf("%s: %s", err, out)
		}
		if err := os.Rename(p+".enc", p); err != nil {
			t.Fatal(err)
		}
	}
	ko := KeyOptions{PassphraseFile: pass}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err == nil {
		t.Fatal("a rollover without the passphrase of an encrypted key succeeded")
	}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{Key: ko}); err == nil || !strings.Contains(err.Error(), "root key") {
		t.Fatalf("a rollover without the root key's own passphrase: %v", err)
	}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{Key: ko, RootPassphraseFile: rootPass}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(data, IssuingKeyFile))
	if !bytes.HasPrefix(b, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----")) {
		t.Fatalf("the new issuing key is not encrypted: %.40q", b)
	}
	d2, err := Open(context.Background(), Options{DataDir: data, Key: ko, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
}

// TestRolloverWithCAKeyElsewhere: with ca_key outside the data directory,
// the rollover asks for the key there first; afterwards estd, still given
// the old ca_key, says to remove it.
func TestRolloverWithCAKeyElsewhere(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	d := openAt(t, data, nil)
	d.Close()
	ext := filepath.Join(t.TempDir(), "issuing.key")
	if err := os.Rename(filepath.Join(data, IssuingKeyFile), ext); err != nil {
		t.Fatal(err)
	}
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err == nil || !strings.Contains(err.Error(), "ca_key") {
		t.Fatalf("rollover without the key in the data directory: %v", err)
	}
	copyFile(t, ext, filepath.Join(data, IssuingKeyFile))
	if _, err := RolloverCA(context.Background(), data, RolloverOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{DataDir: data, Key: KeyOptions{Ref: ext}, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "remove ca_key") {
		t.Fatalf("estd with the old ca_key after the rollover: %v", err)
	}
	openAt(t, data, nil) // without it, estd starts
}

// TestCRLURL: the CRL of a CA after the first is at crl_url/ID, whatever
// crl_url ends with.
func TestCRLURL(t *testing.T) {
	for _, c := range []struct{ base, path, want string }{
		{"http://pki.example.com/crl", "/crl", "http://pki.example.com/crl"},
		{"http://pki.example.com/crl", "/crl/ab01", "http://pki.example.com/crl/ab01"},
		{"http://pki.example.com/crl/", "/crl/ab01", "http://pki.example.com/crl/ab01"},
		{"http://pki.example.com/estd.crl?ca=x", "/crl/ab01", "http://pki.example.com/estd.crl/ab01?ca=x"},
	} {
		if got := crlURL(c.base, c.path); got != c.want {
			t.Errorf("crlURL(%q, %q) = %q, want %q", c.base, c.path, got, c.want)
		}
	}
}
