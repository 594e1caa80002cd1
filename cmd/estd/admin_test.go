package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

const heldConfig = `
profiles:
  - label: ""
    ext_key_usage: [clientAuth]
    sans: [dns, ip, email, uri]
    auth: [basic, manufacturer-cert, issued-cert]
  - label: held
    ext_key_usage: [clientAuth]
    auth: [basic, issued-cert]
    manual_approval: true
`

// adminRun runs `estd admin ARGS -data DIR` and returns exit code and output.
func adminRun(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"admin", args[0], "-data", dir}, args[1:]...)
	code := run(context.Background(), full, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestAdminCommand(t *testing.T) {
	tmp := t.TempDir()
	cfg := filepath.Join(tmp, "estd.yaml")
	if err := os.WriteFile(cfg, []byte(heldConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	d := startEstd(t, dir, "-config", cfg)
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, d.rootFile()))
	post := func(label string, csr []byte, certs ...tls.Certificate) (int, []byte) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
		req, _ := http.NewRequest("POST", "https://"+d.addr+est.Path(label, map[bool]est.Operation{true: est.OpSimpleReenroll, false: est.OpSimpleEnroll}[len(certs) > 0]), bytes.NewReader(est.EncodeBase64(csr)))
		req.Header.Set("Content-Type", est.MediaPKCS10)
		if len(certs) == 0 {
			req.SetBasicAuth("dev", "dev-password-1")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "held-device", nil, nil)
	if code, _ := post("held", csr); code != 202 {
		t.Fatalf("enroll on held: %d, want 202", code)
	}
	code, out, _ := adminRun(t, dir, "list", "-pending")
	m := regexp.MustCompile(`(?m)^([0-9a-f]{32})\s.*CN=held-device\s+dev\s+basic`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("admin list -pending: %d\n%s", code, out)
	}
	id := m[1]
	if code, out, _ := adminRun(t, dir, "show", id); code != 0 || !strings.Contains(out, "status:      pending") {
		t.Fatalf("admin show request: %d\n%s", code, out)
	}
	if code, _, errs := adminRun(t, dir, "approve", "-by", "alice", id); code != 0 || !strings.Contains(errs, "approved "+id) {
		t.Fatalf("admin approve: %d %s", code, errs)
	}
	if code, _, _ := adminRun(t, dir, "approve", "-by", "alice", id); code != 1 {
		t.Fatalf("approving twice: exit %d, want 1", code)
	}
	code, body := post("held", csr)
	if code != 200 {
		t.Fatalf("after approval: %d %s", code, body)
	}
	der, _ := est.DecodeBase64(body)
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	serial := certs[0].SerialNumber.Text(16)

	code, out, _ = adminRun(t, dir, "list", "-search", "held-dev")
	if code != 0 || !strings.Contains(out, serial) || !strings.Contains(out, "valid") {
		t.Fatalf("admin list -search: %d\n%s", code, out)
	}
	if code, out, _ := adminRun(t, dir, "show", serial); code != 0 || !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "held-device") {
		t.Fatalf("admin show certificate: %d\n%s", code, out)
	}
	if code, _, errs := adminRun(t, dir, "revoke", "-reason", "nonsense", serial); code != 1 || !strings.Contains(errs, "keyCompromise") {
		t.Fatalf("revoke with an unknown reason: %d %s", code, errs)
	}
	if code, _, errs := adminRun(t, dir, "revoke", "-by", "alice", "-reason", "keyCompromise", serial); code != 0 {
		t.Fatalf("admin revoke: %d %s", code, errs)
	}
	if code, _, errs := adminRun(t, dir, "revoke", "-by", "alice", serial); code != 1 || !strings.Contains(errs, "revoked already") {
		t.Fatalf("revoking twice: %d %s", code, errs)
	}
	if code, out, _ := adminRun(t, dir, "list"); code != 0 || !strings.Contains(out, "revoked (keyCompromise)") {
		t.Fatalf("admin list after revoke:\n%s", out)
	}
	// The revoked certificate cannot renew.
	if code, body := post("held", csr, testpki.TLSCertificate(certs[0], key)); code != 403 || !strings.Contains(string(body), "revoked") {
		t.Fatalf("renewal by a revoked certificate: %d %s", code, body)
	}

	// Rejection needs a reason, which the requester then sees.
	other := testpki.CSR(t, testpki.Key(t, ca.P256), "unwanted", nil, nil)
	post("held", other)
	_, out, _ = adminRun(t, dir, "list", "-pending")
	m = regexp.MustCompile(`(?m)^([0-9a-f]{32})\s.*CN=unwanted`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("second request not listed:\n%s", out)
	}
	if code, _, _ := adminRun(t, dir, "reject", m[1]); code != 2 {
		t.Fatalf("reject without -reason: exit %d, want 2", code)
	}
	if code, _, errs := adminRun(t, dir, "reject", "-reason", "not one of ours", m[1]); code != 0 {
		t.Fatalf("admin reject: %d %s", code, errs)
	}
	if code, body := post("held", other); code != 403 || !strings.Contains(string(body), "not one of ours") {
		t.Fatalf("after rejection: %d %s", code, body)
	}
	if code, _, _ := adminRun(t, dir, "show", "ffffffffffffffffffff"); code != 3 {
		t.Fatalf("show unknown: exit %d, want 3", code)
	}
	if code, _, _ := adminRun(t, dir, "frobnicate"); code != 2 {
		t.Fatalf("unknown admin subcommand: exit %d, want 2", code)
	}
}
