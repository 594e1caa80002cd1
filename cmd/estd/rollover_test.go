package main

import (
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/hsmtest"
	"github.com/estkit/estkit/internal/testpki"
)

// TestCARollover: `estd ca rollover` gives estd a new issuing CA. After a
// restart, certificates from the retired CA still renew (with curl), and
// renewals come from the new CA; /cacerts carries both; a certificate of
// the retired CA revoked afterwards is on the retired CA's CRL at /crl and
// in its OCSP answers, each checked by openssl, while the new CA has its
// own CRL at /crl/ID, which its certificates name.
func TestCARollover(t *testing.T) {
	requireTools(t, "curl", "openssl")
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	writeUsers(t, dir, "dev", "dev-password-1")
	args := []string{"-pki-listen", "127.0.0.1:0", "-crl-url", "http://pki.example.invalid/crl", "-ocsp-url", "http://pki.example.invalid/ocsp"}
	d := startEstd(t, dir, args...)
	auth := []string{"-K", curlConfig(t, tmp, "dev", "dev-password-1")}
	oldIssuing := readPEMCert(t, d.issuingFile())
	var certs, keys []string
	for _, name := range []string{"renew", "revoke"} {
		key := genKey(t, tmp, name, "p256")
		keys = append(keys, key)
		certs = append(certs, d.enroll(t, tmp, name, "simpleenroll", makeCSR(t, tmp, name, key, "/CN="+name, ""), 200, auth...))
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("estd exited with %d", code)
	}

	code, out, errs := runCmd(t, "ca", "rollover", "-data", dir)
	if code != 0 || !strings.Contains(out, "new issuing CA") {
		t.Fatalf("estd ca rollover: %d\n%s%s", code, out, errs)
	}
	newIssuing := readPEMCert(t, filepath.Join(dir, estd.IssuingCertFile))
	if newIssuing.Equal(oldIssuing) || !strings.HasSuffix(newIssuing.Subject.CommonName, " G2") || newIssuing.CheckSignatureFrom(readPEMCert(t, d.rootFile())) != nil {
		t.Fatalf("new issuing CA %q: not a new CA under the root", newIssuing.Subject)
	}
	retiredFile := filepath.Join(dir, estd.RetiredDir, "issuing-ca-"+oldIssuing.SerialNumber.Text(16)+".pem")
	if !readPEMCert(t, retiredFile).Equal(oldIssuing) {
		t.Fatalf("%s is not the retired CA", retiredFile)
	}
	if fi, err := os.Stat(strings.TrimSuffix(retiredFile, ".pem") + ".key"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("retired key: %v %v", fi, err)
	}

	d = startEstd(t, dir, args...)
	pki := regexp.MustCompile(`serving CRL and OCSP on http://(\S+)/`).FindStringSubmatch(d.stdout.String())
	if pki == nil {
		t.Fatalf("banner lacks the PKI address:\n%s", d.stdout)
	}
	// /cacerts: the new issuing CA, the retired one and the root.
	if code, _ := d.curl(t, tmp, "cacerts.b64", "cacerts"); code != 200 {
		t.Fatalf("cacerts: %d", code)
	}
	chain := readPEMCerts(t, p7ToPEM(t, tmp, "cacerts.b64", "cacerts"))
	if len(chain) != 3 || !chain[0].Equal(newIssuing) || !chain[1].Equal(oldIssuing) {
		t.Fatalf("cacerts: %d certificates, want the new issuing CA, the retired one and the root", len(chain))
	}

	// A certificate of the retired CA renews; the renewal is the new CA's
	// and names the new CA's CRL.
	renewed := d.enroll(t, tmp, "renewed", "simplereenroll", makeCSR(t, tmp, "renewed", keys[0], "/CN=renew", ""), 200, "--cert", certs[0], "--key", keys[0])
	if c := readPEMCert(t, renewed); c.CheckSignatureFrom(newIssuing) != nil {
		t.Fatalf("the renewal is not signed by the new issuing CA: issuer %q", c.Issuer)
	}
	d.verifyChain(t, tmp, renewed, "sslclient")
	newID := hex.EncodeToString(newIssuing.SubjectKeyId)
	if ext := openssl(t, tmp, "x509", "-in", renewed, "-noout", "-ext", "crlDistributionPoints"); !strings.Contains(ext, "http://pki.example.invalid/crl/"+newID) {
		t.Fatalf("the renewal's CRL distribution point:\n%s", ext)
	}

	// Revoke a certificate of the retired CA: its CRL and OCSP say so.
	serial := strings.TrimPrefix(strings.TrimSpace(openssl(t, tmp, "x509", "-in", certs[1], "-noout", "-serial")), "serial=")
	if code, _, errs := adminRun(t, dir, "revoke", "-by", "test", "-reason", "keyCompromise", serial); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}
	get(t, "http://"+pki[1]+"/crl", filepath.Join(tmp, "old.crl"))
	if o := mustExecCombined(t, tmp, "openssl", "crl", "-inform", "DER", "-in", "old.crl", "-CAfile", retiredFile, "-noout", "-text"); !strings.Contains(o, "verify OK") || !strings.Contains(o, "Serial Number: "+strings.ToUpper(serial)) {
		t.Fatalf("the retired CA's CRL at /crl:\n%s", o)
	}
	get(t, "http://"+pki[1]+"/crl/"+newID, filepath.Join(tmp, "new.crl"))
	if o := mustExecCombined(t, tmp, "openssl", "crl", "-inform", "DER", "-in", "new.crl", "-CAfile", d.issuingFile(), "-noout", "-text"); !strings.Contains(o, "verify OK") || strings.Contains(o, "Serial Number: "+strings.ToUpper(serial)) {
		t.Fatalf("the new CA's CRL at /crl/%s:\n%s", newID, o)
	}
	ocspChain := filepath.Join(tmp, "ocsp-chain.pem")
	retired, _ := os.ReadFile(retiredFile)
	root, _ := os.ReadFile(d.rootFile())
	os.WriteFile(ocspChain, append(retired, root...), 0o644)
	for _, c := range []struct{ cert, issuer, chain, want string }{
		{certs[1], retiredFile, ocspChain, ": revoked"},
		{certs[0], retiredFile, ocspChain, ": good"},
		{renewed, d.issuingFile(), "", ": good"},
	} {
		chainFile := c.chain
		if chainFile == "" {
			chainFile = filepath.Join(tmp, "new-chain.pem")
			issuing, _ := os.ReadFile(d.issuingFile())
			os.WriteFile(chainFile, append(issuing, root...), 0o644)
		}
		o := mustExecCombined(t, tmp, "openssl", "ocsp", "-issuer", c.issuer, "-cert", c.cert,
			"-url", "http://"+pki[1]+"/ocsp", "-CAfile", chainFile, "-no_nonce")
		if !strings.Contains(o, "Response verify OK") || !strings.Contains(o, c.want) {
			t.Fatalf("openssl ocsp for %s:\n%s", c.cert, o)
		}
	}
	// Asked about a certificate of one CA under the other (a request whose
	// issuer name and key are of different CAs), OCSP does not answer.
	stdout, stderr, _ := execIn(tmp, nil, "openssl", "ocsp", "-issuer", d.issuingFile(), "-cert", certs[1],
		"-url", "http://"+pki[1]+"/ocsp", "-CAfile", filepath.Join(tmp, "new-chain.pem"), "-no_nonce")
	if o := stdout + stderr; !strings.Contains(o, "unauthorized") {
		t.Fatalf("openssl ocsp for a retired CA's certificate under the new CA:\n%s", o)
	}
}

// TestCARolloverInHSM: with the CA keys in a token (estd ca init -hsm),
// `estd ca rollover -hsm` makes the new issuing key in the token too,
// signed by the root key there; no key file ever exists, the retired CA
// keeps its key reference, and after a restart the node issues from the
// new key while a certificate of the retired CA still renews.
func TestCARolloverInHSM(t *testing.T) {
	tok := hsmtest.NewToken(t, "estd-ca")
	dir := filepath.Join(t.TempDir(), "data")
	if code, out, errs := runCmd(t, "ca", "init", "-data", dir, "-hsm", tok.URI("issuing")); code != 0 {
		t.Fatalf("estd ca init: %d %s %s", code, out, errs)
	}
	writeUsers(t, dir, "dev", "dev-password-1")
	env := []string{"SOFTHSM2_CONF=" + tok.Conf}
	n := startNode(t, env, "-data", dir)
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, filepath.Join(dir, estd.RootCertFile)))
	basic := []string{"dev", "dev-password-1"}
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "hsm-device", nil, nil)
	code, first, msg := enrollAt(t, n, roots, est.OpSimpleEnroll, csr, basic)
	if code != 200 {
		t.Fatalf("enroll: %d %s", code, msg)
	}
	n.stop(t)
	oldIssuing := readPEMCert(t, filepath.Join(dir, estd.IssuingCertFile))

	// Without the root key's reference, the rollover says where to give it.
	if code, _, errs := runCmd(t, "ca", "rollover", "-data", dir, "-hsm", tok.URI("issuing-2")); code != 1 || !strings.Contains(errs, "-root-key") {
		t.Fatalf("rollover without the root key: %d %s", code, errs)
	}
	if code, out, errs := runCmd(t, "ca", "rollover", "-data", dir, "-hsm", tok.URI("issuing-2"), "-root-key", tok.URI("issuing-root")); code != 0 {
		t.Fatalf("estd ca rollover: %d %s %s", code, out, errs)
	}
	for _, f := range []string{estd.IssuingKeyFile, estd.RootKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("%s exists: a key left the token", f)
		}
	}
	retired := filepath.Join(dir, estd.RetiredDir, "issuing-ca-"+oldIssuing.SerialNumber.Text(16))
	if ref, err := os.ReadFile(retired + ".keyref"); err != nil || !strings.Contains(string(ref), "object=issuing;") && !strings.Contains(string(ref), "object=issuing?") {
		t.Fatalf("the retired CA's key reference: %q, %v", ref, err)
	}
	n = startNode(t, env, "-data", dir)
	newIssuing := readPEMCert(t, filepath.Join(dir, estd.IssuingCertFile))
	code, renewed, msg := enrollAt(t, n, roots, est.OpSimpleReenroll, csr, nil, testpki.TLSCertificate(first, key))
	if code != 200 {
		t.Fatalf("renewal of a certificate of the retired CA: %d %s", code, msg)
	}
	if err := renewed.CheckSignatureFrom(newIssuing); err != nil {
		t.Fatalf("the renewal is not signed by the new issuing key: %v", err)
	}
}
