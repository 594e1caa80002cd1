package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/testpki"
)

// TestCurlOpenSSL drives estd with the real curl and openssl: cacerts,
// enrollment for every default label with RSA and ECDSA keys by Basic and by
// a manufacturer device certificate, reenrollment, refusals, serverkeygen,
// csrattrs and the TLS floor.
func TestCurlOpenSSL(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	now := time.Now()
	base := t.TempDir()

	mfr := testpki.Manufacturer(t, now)
	mfrFile := filepath.Join(base, "manufacturer-ca.pem")
	testpki.WriteCerts(t, mfrFile, mfr.Cert)
	// clientCert writes a client certificate and its key and returns the curl
	// flags presenting them.
	clientCert := func(t *testing.T, dir, name string, cert *x509.Certificate, key crypto.Signer) []string {
		t.Helper()
		cp, kp := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
		testpki.WriteCerts(t, cp, cert)
		testpki.WriteKey(t, kp, key)
		return []string{"--cert", cp, "--key", kp}
	}
	devCert, devKey := mfr.Device(t, "SN-0001", now)
	byDevice := clientCert(t, base, "device", devCert, devKey)
	// A device its manufacturer revoked, on a CRL openssl makes.
	revokedCert, revokedKey := mfr.Device(t, "SN-revoked", now)
	crlFile := opensslCRL(t, base, mfr, revokedCert)

	dataDir := filepath.Join(base, "estd-data")
	const password = "e2e-password-1"
	writeUsers(t, dataDir, "est", password)
	d := startEstd(t, dataDir, "-manufacturer-ca", mfrFile, "-manufacturer-crl", crlFile)
	byBasic := []string{"-K", curlConfig(t, base, "est", password)}

	t.Run("cacerts", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		code, ctype := d.curl(t, dir, "cacerts.b64", "cacerts")
		if code != 200 || !strings.HasPrefix(ctype, "application/pkcs7-mime") {
			t.Fatalf("GET cacerts: %d %q, want 200 application/pkcs7-mime", code, ctype)
		}
		chain := p7ToPEM(t, dir, "cacerts.b64", "cacerts")
		if data, _ := os.ReadFile(chain); bytes.Count(data, []byte("-----BEGIN CERTIFICATE-----")) != 2 {
			t.Fatalf("openssl pkcs7 -print_certs found not 2 certificates:\n%s", data)
		}
		certs := readPEMCerts(t, chain)
		issuing, root := readPEMCert(t, d.issuingFile()), readPEMCert(t, d.rootFile())
		var gotRoot, gotIssuing bool
		for i, c := range certs {
			switch {
			case c.Equal(root):
				gotRoot = true
				f := filepath.Join(dir, fmt.Sprintf("cacert-%d.pem", i))
				testpki.WriteCerts(t, f, c)
				fp := opensslFingerprint(t, dir, f)
				if fp != d.fingerprint {
					t.Errorf("root fingerprint by openssl %s, banner %s", fp, d.fingerprint)
				}
				if data := opensslFingerprint(t, dir, d.rootFile()); data != fp {
					t.Errorf("fingerprint of %s is %s, of the root in cacerts %s", d.rootFile(), data, fp)
				}
			case c.Equal(issuing):
				gotIssuing = true
			}
		}
		if !gotRoot || !gotIssuing {
			t.Errorf("cacerts lacks the root (%v) or the issuing CA (%v)", gotRoot, gotIssuing)
		}
	})

	for _, kt := range []string{"rsa2048", "p256"} {
		for _, label := range []string{"", "tls-client", "tls-server"} {
			for _, how := range []struct {
				name string
				args []string
			}{{"basic", byBasic}, {"device-cert", byDevice}} {
				name := label
				if name == "" {
					name = "default"
				}
				t.Run(fmt.Sprintf("enroll/%s/%s/%s", name, kt, how.name), func(t *testing.T) {
					t.Parallel()
					dir := t.TempDir()
					key := genKey(t, dir, "k", kt)
					cn := fmt.Sprintf("e2e-%s-%s-%s", name, kt, how.name)
					san, eku, notEKU, purpose := "", "TLS Web Client Authentication", "TLS Web Server Authentication", "sslclient"
					if label == "tls-server" {
						san, purpose = "DNS:device.example.net,IP:192.0.2.7", "sslserver"
						eku, notEKU = notEKU, eku
					}
					csr := makeCSR(t, dir, "k", key, "/CN="+cn, san)
					cert := d.enroll(t, dir, "cert", estPath(label, "simpleenroll"), csr, 200, how.args...)

					ext := openssl(t, dir, "x509", "-in", cert, "-noout", "-ext", "extendedKeyUsage")
					if !strings.Contains(ext, eku) || strings.Contains(ext, notEKU) {
						t.Errorf("extendedKeyUsage %q, want %s only", strings.TrimSpace(ext), eku)
					}
					if san != "" {
						ext := openssl(t, dir, "x509", "-in", cert, "-noout", "-ext", "subjectAltName")
						if !strings.Contains(ext, "DNS:device.example.net") || !strings.Contains(ext, "IP Address:192.0.2.7") {
							t.Errorf("subjectAltName %q, want the CSR's", strings.TrimSpace(ext))
						}
					}
					if c := readPEMCert(t, cert); c.Subject.CommonName != cn {
						t.Errorf("subject %q, want CN=%s", c.Subject, cn)
					}
					if pubkeyOfCert(t, dir, cert) != pubkeyOfKey(t, dir, key) {
						t.Error("the certificate's key is not the CSR's")
					}
					d.verifyChain(t, dir, cert, purpose)
				})
			}
		}
	}

	t.Run("reenroll", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		const subject = "/CN=renew-me"
		key := genKey(t, dir, "old", "p256")
		cert := d.enroll(t, dir, "old", "simpleenroll", makeCSR(t, dir, "old", key, subject, ""), 200, byBasic...)
		orig := readPEMCert(t, cert)
		byCert := []string{"--cert", cert, "--key", key}

		check := func(t *testing.T, renewedFile, key string) {
			t.Helper()
			renewed := readPEMCert(t, renewedFile)
			if !bytes.Equal(renewed.RawSubject, orig.RawSubject) || renewed.SerialNumber.Cmp(orig.SerialNumber) == 0 {
				t.Errorf("renewal: subject %q serial %x, want subject %q and a new serial", renewed.Subject, renewed.SerialNumber, orig.Subject)
			}
			if pubkeyOfCert(t, dir, renewedFile) != pubkeyOfKey(t, dir, key) {
				t.Error("renewal: the certificate's key is not the CSR's")
			}
			d.verifyChain(t, dir, renewedFile, "sslclient")
		}
		sameKey := makeCSR(t, dir, "same", key, subject, "")
		check(t, d.enroll(t, dir, "same", "simplereenroll", sameKey, 200, byCert...), key)

		newKey := genKey(t, dir, "new", "rsa2048")
		renewed := d.enroll(t, dir, "new", "simplereenroll", makeCSR(t, dir, "new", newKey, subject, ""), 200, byCert...)
		check(t, renewed, newKey)
		// The renewed certificate is on record and renews itself.
		d.enroll(t, dir, "again", "simplereenroll", makeCSR(t, dir, "again", newKey, subject, ""), 200, "--cert", renewed, "--key", newKey)

		// RFC 7030 4.2.2: the subject must stay; a renewal needs the
		// certificate being renewed, not a password or a factory certificate.
		d.enroll(t, dir, "other", "simplereenroll", makeCSR(t, dir, "other", key, "/CN=someone-else", ""), 403, byCert...)
		d.enroll(t, dir, "basic", "simplereenroll", sameKey, 403, byBasic...)
		d.enroll(t, dir, "factory", "simplereenroll", sameKey, 403, byDevice...)
	})

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key := genKey(t, dir, "k", "p256")
		csr := makeCSR(t, dir, "k", key, "/CN=refused", "")
		rogueCert, rogueKey := testpki.Rogue(t, now).Device(t, "SN-0001", now)
		expiredCert, expiredKey := mfr.Expired(t, "SN-0002", now)
		for name, args := range map[string][]string{
			"rogue manufacturer": clientCert(t, dir, "rogue", rogueCert, rogueKey),
			"expired device":     clientCert(t, dir, "expired", expiredCert, expiredKey),
			"revoked device":     clientCert(t, dir, "revoked", revokedCert, revokedKey),
		} {
			out := strings.ReplaceAll(name, " ", "-") + ".txt"
			if code := d.post(t, dir, out, "simpleenroll", csr, args...); code != 403 {
				t.Errorf("%s certificate: status %d, want 403", name, code)
			}
			if msg, _ := os.ReadFile(filepath.Join(dir, out)); bytes.Count(msg, []byte("\n")) != 1 || !bytes.Contains(msg, []byte("client certificate refused")) {
				t.Errorf("%s certificate: body %q, want a one-line reason", name, msg)
			}
		}
		// No credentials: 401 with a Basic challenge.
		if code := d.post(t, dir, "anon.txt", "simpleenroll", csr, "-D", "anon.hdr"); code != 401 {
			t.Errorf("no credentials: status %d, want 401", code)
		}
		if hdr, _ := os.ReadFile(filepath.Join(dir, "anon.hdr")); !bytes.Contains(bytes.ToLower(hdr), []byte("www-authenticate: basic")) {
			t.Errorf("401 without a Basic challenge:\n%s", hdr)
		}
	})

	t.Run("serverkeygen", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		key := genKey(t, dir, "csr", "p256")
		csr := makeCSR(t, dir, "csr", key, "/CN=keygen-1", "DNS:keygen.example.net")
		args := append([]string{"-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr, "-D", "skg.hdr"}, byBasic...)
		code, ctype := d.curl(t, dir, "skg.body", "tls-server/serverkeygen", args...)
		if code != 200 {
			t.Fatalf("serverkeygen: status %d", code)
		}
		if hdr, _ := os.ReadFile(filepath.Join(dir, "skg.hdr")); !bytes.Contains(bytes.ToLower(hdr), []byte("cache-control: no-store")) {
			t.Errorf("serverkeygen answer without Cache-Control: no-store:\n%s", hdr)
		}
		splitMultipart(t, dir, ctype, "skg.body", map[string]string{
			"application/pkcs8":      "key.b64",
			"application/pkcs7-mime": "cert.b64",
		})
		openssl(t, dir, "base64", "-d", "-A", "-in", "key.b64", "-out", "key.der")
		cert := p7ToPEM(t, dir, "cert.b64", "cert")
		keyPub := pubkeyOfKey(t, dir, "key.der", "-inform", "DER")
		if keyPub != pubkeyOfCert(t, dir, cert) {
			t.Error("the serverkeygen private key does not match its certificate")
		}
		if keyPub == pubkeyOfKey(t, dir, key) {
			t.Error("serverkeygen returned the CSR's key instead of a new one")
		}
		if text := openssl(t, dir, "pkey", "-inform", "DER", "-in", "key.der", "-noout", "-text"); !strings.Contains(text, "prime256v1") {
			t.Errorf("serverkeygen key is not P-256 like the CSR's:\n%s", text)
		}
		c := readPEMCert(t, cert)
		if c.Subject.CommonName != "keygen-1" || len(c.DNSNames) != 1 || c.DNSNames[0] != "keygen.example.net" {
			t.Errorf("serverkeygen certificate for %q %v, want the CSR's names", c.Subject, c.DNSNames)
		}
		d.verifyChain(t, dir, cert, "sslserver")
	})

	t.Run("csrattrs", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		code, ctype := d.curl(t, dir, "srv.b64", "tls-server/csrattrs")
		if code != 200 || ctype != "application/csrattrs" {
			t.Fatalf("tls-server csrattrs: %d %q, want 200 application/csrattrs", code, ctype)
		}
		openssl(t, dir, "base64", "-d", "-A", "-in", "srv.b64", "-out", "srv.der")
		asn := openssl(t, dir, "asn1parse", "-inform", "DER", "-in", "srv.der")
		for _, want := range []string{"SEQUENCE", "ecdsa-with-SHA256", "id-ecPublicKey", "SET", "prime256v1"} {
			if !strings.Contains(asn, want) {
				t.Errorf("openssl asn1parse of tls-server csrattrs lacks %s:\n%s", want, asn)
			}
		}
		if code, _ := d.curl(t, dir, "default.b64", "csrattrs"); code != 204 {
			t.Errorf("default csrattrs: status %d, want 204", code)
		}
		if data, err := os.ReadFile(filepath.Join(dir, "default.b64")); err == nil && len(data) > 0 {
			t.Errorf("204 with a body: %q", data)
		}
	})

	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		sClient := func(args ...string) (string, error) {
			out, errOut, err := execIn(dir, nil, "openssl", append([]string{"s_client", "-connect", d.addr}, args...)...)
			return out + errOut, err
		}
		// SECLEVEL=0 so that openssl itself offers TLS 1.1 and the server
		// is the one refusing.
		out, err := sClient("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")
		if err == nil || strings.Contains(out, "no protocols available") || !strings.Contains(out, "alert protocol version") {
			t.Errorf("TLS 1.1: want the server to refuse with a protocol_version alert (err %v):\n%s", err, out)
		}
		// AES128-SHA (RSA key exchange, CBC) alone cannot tell much, since
		// estd's TLS key is ECDSA; ECDHE-ECDSA-AES128-SHA (ECDHE, CBC) could
		// be negotiated if estd allowed CBC.
		for _, suite := range []string{"AES128-SHA", "ECDHE-ECDSA-AES128-SHA"} {
			out, err = sClient("-tls1_2", "-cipher", suite)
			if err == nil || !strings.Contains(out, "alert handshake failure") {
				t.Errorf("TLS 1.2 with %s: want a handshake_failure alert (err %v):\n%s", suite, err, out)
			}
		}
		out, err = sClient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256",
			"-CAfile", d.rootFile(), "-verify_return_error", "-verify_ip", "127.0.0.1")
		if err != nil || !strings.Contains(out, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256") || !strings.Contains(out, "Verify return code: 0 (ok)") {
			t.Errorf("TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256: want a verified handshake (err %v):\n%s", err, out)
		}
	})
}

// estPath is the path of op under label, relative to /.well-known/est/.
func estPath(label, op string) string {
	if label == "" {
		return op
	}
	return label + "/" + op
}

// opensslFingerprint returns the SHA-256 fingerprint openssl prints for a
// PEM certificate, as uppercase colon-separated hex.
func opensslFingerprint(t *testing.T, dir, cert string) string {
	t.Helper()
	out := strings.TrimSpace(openssl(t, dir, "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"))
	_, fp, ok := strings.Cut(out, "=")
	if !ok || !strings.HasPrefix(strings.ToLower(out), "sha256 fingerprint=") {
		t.Fatalf("openssl -fingerprint printed %q", out)
	}
	return strings.ToUpper(fp)
}

// splitMultipart splits the multipart/mixed body in dir/body and writes
// each part's (base64) content to the file named for its media type.
func splitMultipart(t *testing.T, dir, contentType, body string, files map[string]string) {
	t.Helper()
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/mixed" || params["boundary"] == "" {
		t.Fatalf("Content-Type %q, want multipart/mixed with a boundary", contentType)
	}
	data, err := os.ReadFile(filepath.Join(dir, body))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(bytes.NewReader(data), params["boundary"])
	seen := map[string]bool{}
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type %q: %v", p.Header.Get("Content-Type"), err)
		}
		content, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		name, ok := files[pt]
		if !ok {
			t.Fatalf("unexpected part %q", p.Header.Get("Content-Type"))
		}
		if seen[pt] {
			t.Fatalf("two %s parts", pt)
		}
		seen[pt] = true
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(files) {
		t.Fatalf("multipart body has parts %v, want %v", seen, files)
	}
}

// opensslCRL has openssl ca make a CRL of c (PEM) revoking certs, and
// returns its path.
func opensslCRL(t *testing.T, dir string, c *testpki.CA, certs ...*x509.Certificate) string {
	t.Helper()
	dir = filepath.Join(dir, "openssl-ca")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteCerts(t, filepath.Join(dir, "ca.pem"), c.Cert)
	testpki.WriteKey(t, filepath.Join(dir, "ca.key"), c.Key)
	var index strings.Builder
	for _, r := range certs {
		// openssl ca wants whole octets: an even number of hex digits.
		fmt.Fprintf(&index, "R\t%s\t%s,keyCompromise\t%X\tunknown\t/CN=%s\n",
			r.NotAfter.UTC().Format("060102150405Z"), time.Now().UTC().Add(-time.Minute).Format("060102150405Z"), r.SerialNumber.Bytes(), r.Subject.CommonName)
	}
	files := map[string]string{
		"index.txt": index.String(),
		"crlnumber": "1000\n",
		"ca.cnf": `[ ca ]
default_ca = mfr
[ mfr ]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 1
certificate = ca.pem
private_key = ca.key
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openssl(t, dir, "ca", "-gencrl", "-config", "ca.cnf", "-out", "ca.crl")
	return filepath.Join(dir, "ca.crl")
}

// TestCurlRenewalAskedAgain: on a label that revokes what it renews, a
// device (here curl and openssl) whose renewal answer was lost asks again
// with its old certificate and the same CSR and gets the same certificate;
// with another key it gets 403; the renewed certificate renews on.
func TestCurlRenewalAskedAgain(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	base := t.TempDir()
	dataDir := filepath.Join(base, "estd-data")
	const password = "e2e-password-2"
	writeUsers(t, dataDir, "est", password)
	cfg := filepath.Join(base, "estd.yaml")
	if err := os.WriteFile(cfg, []byte(`
profiles:
  - label: ""
    ext_key_usage: [clientAuth]
    auth: [basic]
  - label: fleet
    ext_key_usage: [clientAuth]
    auth: [basic, issued-cert]
    revoke_on_renew: true
`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startEstd(t, dataDir, "-config", cfg)
	byBasic := []string{"-K", curlConfig(t, base, "est", password)}
	dir := t.TempDir()
	const subject = "/CN=fleet-7"
	path := estPath("fleet", "simplereenroll")

	key := genKey(t, dir, "old", "p256")
	old := d.enroll(t, dir, "old", estPath("fleet", "simpleenroll"), makeCSR(t, dir, "old", key, subject, ""), 200, byBasic...)
	byOld := []string{"--cert", old, "--key", key}
	newKey := genKey(t, dir, "new", "p256")
	csr := makeCSR(t, dir, "new", newKey, subject, "")
	first := readPEMCert(t, d.enroll(t, dir, "renewed", path, csr, 200, byOld...))
	again := d.enroll(t, dir, "again", path, csr, 200, byOld...)
	if got := readPEMCert(t, again); !got.Equal(first) {
		t.Fatalf("asked again: serial %x, want the renewal's %x", got.SerialNumber, first.SerialNumber)
	}
	d.verifyChain(t, dir, again, "sslclient")
	otherKey := genKey(t, dir, "other", "p256")
	d.enroll(t, dir, "other", path, makeCSR(t, dir, "other", otherKey, subject, ""), 403, byOld...)
	// The successor renews on, and its own predecessor stays revoked.
	d.enroll(t, dir, "next", path, makeCSR(t, dir, "next", otherKey, subject, ""), 200, "--cert", again, "--key", newKey)
}
