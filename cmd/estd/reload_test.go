package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// TestReloadProfiles: SIGHUP reads the configuration again and serves new
// labels; a configuration that does not validate is refused with a log line
// and the running one stays.
func TestReloadProfiles(t *testing.T) {
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "estd.yaml")
	write := func(y string) {
		if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const base = "profiles:\n  - {label: \"\", ext_key_usage: [clientAuth], auth: [basic]}\n"
	write(base)
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	d := startEstd(t, dir, "-config", cfg)
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, d.rootFile()))
	enroll := func(label string) int {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		csr := testpki.CSR(t, testpki.Key(t, ca.P256), "reloaded", nil, nil)
		req, _ := http.NewRequest("POST", "https://"+d.addr+est.Path(label, est.OpSimpleEnroll), strings.NewReader(string(est.EncodeBase64(csr))))
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.SetBasicAuth("dev", "dev-password-1")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := enroll("extra"); code != 404 {
		t.Fatalf("label before reload: %d, want 404", code)
	}
	write(base + "  - {label: extra, ext_key_usage: [serverAuth, clientAuth], auth: [basic]}\n")
	d.reload(t)
	if code := enroll("extra"); code != 200 {
		t.Fatalf("label after reload: %d, want 200", code)
	}
	// A broken file is refused; the labels in force stay.
	write(base + "  - {label: extra, ext_key_usage: [everything], auth: [basic]}\n")
	n := strings.Count(d.stderr.String(), "reload failed")
	d.hup <- syscall.SIGHUP
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.stderr.waitCount(ctx, "reload failed; keeping the previous configuration", n+1); err != nil {
		t.Fatalf("no refusal logged: %v\n%s", err, d.stderr)
	}
	if !strings.Contains(d.stderr.String(), "ext_key_usage: unknown") {
		t.Fatalf("the refusal does not say why:\n%s", d.stderr)
	}
	if code := enroll("extra"); code != 200 {
		t.Fatalf("label after a refused reload: %d, want 200", code)
	}
}
