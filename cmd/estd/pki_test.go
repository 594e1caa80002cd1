package main

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRevocationAndMetrics: a revoked certificate shows in the CRL and in
// OCSP answers, both checked by openssl; issued certificates point at both;
// the metrics listener reports requests, handshake failures and readiness.
func TestRevocationAndMetrics(t *testing.T) {
	requireTools(t, "curl", "openssl")
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	d := startEstd(t, dir, "-pki-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0",
		"-crl-url", "http://pki.example.invalid/estd.crl", "-ocsp-url", "http://pki.example.invalid/ocsp")
	out := d.stdout.String()
	pki := regexp.MustCompile(`serving CRL and OCSP on http://(\S+)/`).FindStringSubmatch(out)
	metrics := regexp.MustCompile(`serving metrics on http://(\S+)/`).FindStringSubmatch(out)
	if pki == nil || metrics == nil {
		t.Fatalf("banner lacks the PKI or metrics address:\n%s", out)
	}
	auth := []string{"-K", curlConfig(t, tmp, "dev", "dev-password-1")}
	var certs []string
	for _, name := range []string{"keep", "revoke"} {
		key := genKey(t, tmp, name, "p256")
		csr := makeCSR(t, tmp, name, key, "/CN="+name, "")
		certs = append(certs, d.enroll(t, tmp, name, "simpleenroll", csr, 200, auth...))
	}
	// The certificates point at the CRL and the OCSP responder.
	ext := openssl(t, tmp, "x509", "-in", certs[0], "-noout", "-ext", "crlDistributionPoints,authorityInfoAccess")
	if !strings.Contains(ext, "http://pki.example.invalid/estd.crl") || !strings.Contains(ext, "OCSP - URI:http://pki.example.invalid/ocsp") {
		t.Fatalf("extensions:\n%s", ext)
	}
	serial := strings.TrimPrefix(strings.TrimSpace(openssl(t, tmp, "x509", "-in", certs[1], "-noout", "-serial")), "serial=")
	if code, _, errs := adminRun(t, dir, "revoke", "-by", "test", "-reason", "keyCompromise", serial); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}

	// What the listener turns away is logged.
	if resp, err := http.Post("http://"+pki[1]+"/ocsp", "text/plain", strings.NewReader("junk")); err == nil {
		resp.Body.Close()
	}
	if resp, err := http.Get("http://" + pki[1] + "/nothing-here"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("an unknown path: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if logs := d.stderr.String(); !strings.Contains(logs, "revocation listener: refused") || !strings.Contains(logs, "/nothing-here") {
		t.Errorf("refused revocation requests not logged:\n%s", logs)
	}

	// CRL: signed by the issuing CA, lists the revoked serial with its reason.
	get(t, "http://"+pki[1]+"/crl", filepath.Join(tmp, "crl.der"))
	crl := openssl(t, tmp, "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", d.issuingFile(), "-noout", "-text")
	if !strings.Contains(crl, "Serial Number: "+strings.ToUpper(serial)) || !strings.Contains(crl, "Key Compromise") {
		t.Fatalf("CRL does not list %s:\n%s", serial, crl)
	}
	if o := mustExecCombined(t, tmp, "openssl", "crl", "-inform", "DER", "-in", "crl.der", "-CAfile", d.issuingFile(), "-noout"); !strings.Contains(o, "verify OK") {
		t.Fatalf("CRL signature: %s", o)
	}

	// OCSP: revoked and good, each response verified by openssl.
	chain := filepath.Join(tmp, "chain.pem")
	issuing, _ := os.ReadFile(d.issuingFile())
	root, _ := os.ReadFile(d.rootFile())
	os.WriteFile(chain, append(issuing, root...), 0o644)
	for i, want := range []string{": good", ": revoked"} {
		o := mustExecCombined(t, tmp, "openssl", "ocsp", "-issuer", d.issuingFile(), "-cert", certs[i],
			"-url", "http://"+pki[1]+"/ocsp", "-CAfile", chain, "-no_nonce")
		if !strings.Contains(o, "Response verify OK") || !strings.Contains(o, want) {
			t.Fatalf("openssl ocsp for %s:\n%s", certs[i], o)
		}
	}

	// A refused TLS 1.1 handshake is counted.
	if c, err := tls.Dial("tcp", d.addr, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true}); err == nil {
		c.Close()
		t.Fatal("TLS 1.1 accepted")
	}
	for _, probe := range []struct{ path, want string }{{"/healthz", "ok"}, {"/readyz", "ready"}} {
		if body := get(t, "http://"+metrics[1]+probe.path, ""); strings.TrimSpace(body) != probe.want {
			t.Fatalf("%s: %q", probe.path, body)
		}
	}
	m := get(t, "http://"+metrics[1]+"/metrics", "")
	for _, want := range []string{
		`estd_requests_total{label="",operation="simpleenroll",status="200"} 2`,
		`estd_issuance_seconds_count{label=""} 2`,
		`estd_tls_handshake_failures_total{reason="protocol_version"} 1`,
		`estd_pending_approvals 0`,
		`estd_ca_certificate_not_after_timestamp_seconds{role="issuing",subject="CN=estd Issuing CA`,
		`estd_ca_certificate_not_after_timestamp_seconds{role="root",subject="CN=estd Root CA`,
		`estd_tls_certificate_not_after_timestamp_seconds `,
		`estd_store_commit_records_total 3`, // the two enrollments and estd's own TLS certificate
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// get fetches url over plain HTTP, writes the body to path when given, and returns it.
func get(t *testing.T, url, path string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if path != "" {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return string(b)
}

// mustExecCombined runs a program and returns stdout and stderr together.
func mustExecCombined(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	stdout, stderr, err := execIn(dir, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout + stderr
}
