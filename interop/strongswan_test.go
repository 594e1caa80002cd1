package interop

// Interoperability with strongSwan's pki tool (pki --estca, pki --est), run
// for real against estd started in process.
//
// How strongSwan 5.9 speaks EST, as found by reading its source
// (src/pki/est/est_tls.c, src/pki/commands/est*.c) and probing estd:
//   - --url is the server's base URL: pki appends "/.well-known/est/<op>"
//     itself, so labels (/.well-known/est/<label>/...) cannot be addressed.
//   - It uses its own TLS stack and HTTP/1.1 client, not curl. A 200 must
//     carry Content-Length (chunked bodies are refused) and the base64 body is
//     decoded without skipping white space, so it must have no line breaks
//     (RFC 8951 section 3.1 with RFC 4648 section 3.1).
//   - It reads a response in at most two TLS reads (1 KiB, then the rest),
//     so the response must come in as few TLS records as possible: Go's
//     dynamic record sizing (small first records) makes it fail at random,
//     and so can a response over about 4 KiB (net/http flushes 4 KiB at a
//     time, one record each).
//   - --cert/--key switch pki --est from simpleenroll to simplereenroll and
//     present that certificate as the TLS client certificate.
//   - The Basic password is given with --userpass user:password, on argv or,
//     as here, in a file read with --options (whitespace-separated tokens,
//     "..." or '...' quoting): it never appears on a command line.
//   - pki negotiates at most TLS 1.2 unless strongswan.conf sets
//     pki.tls.version_max = 1.3.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/pemutil"
	"github.com/estkit/estkit/internal/testenv"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// cmdTimeout bounds one run of pki (key generation included).
const cmdTimeout = 60 * time.Second

// TestStrongSwanPKI gets the CA certificates with pki --estca, enrolls with
// pki --est and HTTP Basic, then reenrolls with the issued certificate.
func TestStrongSwanPKI(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s := estdtest.Start(t, estdtest.Options{})
	p.roundTrip(t, s)
}

// TestStrongSwanPKITLS13 does the same against an estd that accepts TLS 1.3
// only; pki must be told to offer it (pki.tls.version_max in strongswan.conf).
func TestStrongSwanPKITLS13(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	p.conf(t, "pki {\n  tls {\n    version_max = 1.3\n  }\n}\n")
	s := estdtest.Start(t, estdtest.Options{TLS: server.TLSPolicy{MinVersion: tls.VersionTLS13}})
	p.roundTrip(t, s)
}

// TestStrongSwanPKILargeCACerts gets a /cacerts body over 2 KiB (an RSA-4096
// chain, about 3.6 KiB): estd must still send it with a Content-Length, which
// pki requires, and in one TLS record. It is fetched several times because a
// response split across records fails only some of the time.
func TestStrongSwanPKILargeCACerts(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s := estdtest.Start(t, estdtest.Options{CAKeyType: ca.RSA4096})
	for range 20 {
		p.estca(t, s)
	}
}

// pki runs strongSwan's pki binary.
type pki struct {
	path string
	dir  string   // scratch directory of the test
	env  []string // extra environment, e.g. STRONGSWAN_CONF
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	return &pki{path: testenv.Command(t, "pki"), dir: t.TempDir()}
}

// conf makes pki read a strongswan.conf holding extra after the system one.
func (p *pki) conf(t *testing.T, extra string) {
	t.Helper()
	var b strings.Builder
	if _, err := os.Stat("/etc/strongswan.conf"); err == nil {
		b.WriteString("include /etc/strongswan.conf\n")
	}
	b.WriteString(extra)
	path := p.file("strongswan.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p.env = append(p.env, "STRONGSWAN_CONF="+path)
}

func (p *pki) file(name string) string { return filepath.Join(p.dir, name) }

// run runs pki with args and returns its stdout; a failure ends the test
// with pki's stderr.
func (p *pki) run(t *testing.T, args ...string) []byte {
	t.Helper()
	out, stderr, err := p.try(t, args...)
	if err != nil {
		t.Fatalf("pki %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// try runs pki with args, within cmdTimeout.
func (p *pki) try(t *testing.T, args ...string) (stdout []byte, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.path, args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), p.env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, cmdTimeout)
	}
	return o.Bytes(), e.String(), err
}

// newRequest makes an ECDSA P-256 key and a PKCS#10 request for dn and sans
// with pki --gen and pki --req; it returns the key's and the request's paths.
func (p *pki) newRequest(t *testing.T, name, dn string, sans ...string) (keyFile, reqFile string) {
	t.Helper()
	keyFile, reqFile = p.file(name+".key"), p.file(name+".csr")
	key := p.run(t, "--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--req", "--in", keyFile, "--type", "ecdsa", "--dn", dn, "--outform", "der"}
	for _, san := range sans {
		args = append(args, "--san", san)
	}
	if err := os.WriteFile(reqFile, p.run(t, args...), 0o600); err != nil {
		t.Fatal(err)
	}
	return keyFile, reqFile
}

// userpassOptions writes an --options file giving --userpass user:password,
// readable by the owner only, so the password is on no command line.
func (p *pki) userpassOptions(t *testing.T, user, password string) string {
	t.Helper()
	token := user + ":" + password
	quote := `"`
	if strings.Contains(token, quote) {
		quote = `'`
	}
	if strings.Contains(token, quote) || strings.ContainsAny(token, "\r\n") {
		t.Fatalf("credentials cannot be quoted in a pki options file")
	}
	path := p.file("userpass.opt")
	if err := os.WriteFile(path, []byte("--userpass "+quote+token+quote+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// estca runs pki --estca, checks that it saved exactly estd's chain and
// returns the paths of the saved root and issuing CA certificates.
func (p *pki) estca(t *testing.T, s *estdtest.Server) (rootFile, issuingFile string) {
	t.Helper()
	caout := p.file("cacert.pem")
	p.run(t, "--estca", "--url", s.URL, "--cacert", s.RootFile, "--caout", caout, "--outform", "pem", "--force")
	// pki names the root after --caout and numbers the others: cacert-1.pem.
	rootFile, issuingFile = caout, p.file("cacert-1.pem")
	got := map[string][]*x509.Certificate{}
	for _, f := range []string{rootFile, issuingFile} {
		certs, err := pemutil.ReadCerts(f)
		if err != nil {
			t.Fatalf("pki --estca did not save %s: %v", filepath.Base(f), err)
		}
		got[f] = certs
	}
	want := map[string]*x509.Certificate{rootFile: s.Root, issuingFile: s.Daemon.CA.Cert}
	for f, w := range want {
		if len(got[f]) != 1 || !got[f][0].Equal(w) {
			t.Errorf("pki --estca saved in %s %s; want %s", filepath.Base(f), subjects(got[f]), w.Subject)
		}
	}
	if matches, _ := filepath.Glob(p.file("cacert*")); len(matches) != 2 {
		t.Errorf("pki --estca saved %v; want the root and the issuing CA only", matches)
	}
	return rootFile, issuingFile
}

// roundTrip is estca, enroll with Basic, then reenroll with the issued
// certificate.
func (p *pki) roundTrip(t *testing.T, s *estdtest.Server) {
	t.Helper()
	rootFile, issuingFile := p.estca(t, s)
	trust := []string{"--cacert", rootFile, "--cacert", issuingFile}

	// simpleenroll, HTTP Basic.
	const dn = "CN=strongswan-client, O=estkit interop"
	const san = "strongswan-client.example.test"
	key1, req1 := p.newRequest(t, "client1", dn, san, "192.0.2.7")
	opts := p.userpassOptions(t, s.User, s.Password)
	args := append([]string{"--est", "--url", s.URL, "--in", req1, "--options", opts, "--outform", "pem"}, trust...)
	out, stderr, err := p.try(t, args...)
	if err != nil {
		t.Fatalf("pki --est (simpleenroll): %v\nstderr:\n%s", err, stderr)
	}
	requireTrusted(t, "simpleenroll", stderr)
	cert1 := parseCert(t, "simpleenroll", out)
	csr1 := parseCSR(t, req1)
	checkIssued(t, s, cert1, csr1)
	if got := cert1.Subject.String(); got != "CN=strongswan-client,O=estkit interop" {
		t.Errorf("subject %q; want CN=strongswan-client,O=estkit interop", got)
	}
	if len(cert1.DNSNames) != 1 || cert1.DNSNames[0] != san ||
		len(cert1.IPAddresses) != 1 || !cert1.IPAddresses[0].Equal(net.ParseIP("192.0.2.7")) {
		t.Errorf("subjectAltName DNS %v IP %v; want %s and 192.0.2.7", cert1.DNSNames, cert1.IPAddresses, san)
	}
	checkRecord(t, s, cert1, "basic", s.User)
	cert1File := p.file("client1.pem")
	if err := os.WriteFile(cert1File, out, 0o600); err != nil {
		t.Fatal(err)
	}

	// simplereenroll: --cert/--key make pki renew over TLS client authentication.
	_, req2 := p.newRequest(t, "client2", dn, san, "192.0.2.7")
	args = append([]string{"--est", "--url", s.URL, "--in", req2, "--cert", cert1File, "--key", key1, "--outform", "pem"}, trust...)
	out, stderr, err = p.try(t, args...)
	if err != nil {
		t.Fatalf("pki --est --cert --key (simplereenroll): %v\nstderr:\n%s", err, stderr)
	}
	requireTrusted(t, "simplereenroll", stderr)
	cert2 := parseCert(t, "simplereenroll", out)
	checkIssued(t, s, cert2, parseCSR(t, req2))
	if !bytes.Equal(cert2.RawSubject, cert1.RawSubject) {
		t.Errorf("renewed subject %s; want %s", cert2.Subject, cert1.Subject)
	}
	if cert2.SerialNumber.Cmp(cert1.SerialNumber) == 0 {
		t.Errorf("renewed certificate has the old serial %x", cert1.SerialNumber)
	}
	if pubEqual(cert2.PublicKey, cert1.PublicKey) {
		t.Errorf("renewed certificate certifies the old key")
	}
	checkRecord(t, s, cert2, "issued-cert", cert1.Subject.String())
	// The first certificate is still recorded as it was.
	checkRecord(t, s, cert1, "basic", s.User)
}

// requireTrusted checks that pki verified the issued certificate against
// the CA certificates it was given.
func requireTrusted(t *testing.T, op, stderr string) {
	t.Helper()
	if !strings.Contains(strings.ToLower(stderr), "issued certificate is trusted") {
		t.Errorf("%s: pki did not find the issued certificate trusted; stderr:\n%s", op, stderr)
	}
}

// parseCert parses the single PEM certificate pki --est wrote to stdout.
func parseCert(t *testing.T, op string, out []byte) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode(out)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: pki --est wrote %q; want one PEM certificate", op, out)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return c
}

func parseCSR(t *testing.T, path string) *x509.CertificateRequest {
	t.Helper()
	der, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("pki --req wrote a request Go cannot parse: %v", err)
	}
	return csr
}

// checkIssued checks that cert was issued by estd's issuing CA for csr: its
// subject and key, chaining to estd's root for client authentication.
func checkIssued(t *testing.T, s *estdtest.Server, cert *x509.Certificate, csr *x509.CertificateRequest) {
	t.Helper()
	issuing := s.Daemon.CA.Cert
	if err := cert.CheckSignatureFrom(issuing); err != nil {
		t.Errorf("%s is not signed by estd's issuing CA %s: %v", cert.Subject, issuing.Subject, err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(issuing)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:         s.Roots(),
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("%s does not chain to estd's root: %v", cert.Subject, err)
	}
	if !est.SameName(cert.RawSubject, csr.RawSubject) {
		t.Errorf("subject %s; the request asked for %s", cert.Subject, csr.Subject)
	}
	if !pubEqual(cert.PublicKey, csr.PublicKey) {
		t.Errorf("%s does not certify the requested key", cert.Subject)
	}
}

// checkRecord checks that estd recorded cert as issued to requester by method.
func checkRecord(t *testing.T, s *estdtest.Server, cert *x509.Certificate, method, requester string) {
	t.Helper()
	rec, err := s.Daemon.Store.BySerial(t.Context(), cert.SerialNumber)
	if errors.Is(err, store.ErrNotFound) {
		t.Errorf("serial %x is not in estd's store", cert.SerialNumber)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.DER, cert.Raw) {
		t.Errorf("serial %x: the store holds a different certificate", cert.SerialNumber)
	}
	if rec.Profile != "" || rec.AuthMethod != method || rec.Requester != requester {
		t.Errorf("serial %x recorded as profile %q, auth %q, requester %q; want \"\", %q, %q",
			cert.SerialNumber, rec.Profile, rec.AuthMethod, rec.Requester, method, requester)
	}
}

// pubEqual reports whether two public keys are the same key.
func pubEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

func subjects(certs []*x509.Certificate) string {
	var s []string
	for _, c := range certs {
		s = append(s, c.Subject.String())
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// TestStrongSwanPKIAfterRollover: after `estd ca rollover`, pki --estca
// saves the root and both issuing CAs, and a certificate pki enrolled from
// the retired CA renews with pki --est, the renewal trusted under the new
// issuing CA.
func TestStrongSwanPKIAfterRollover(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	s := estdtest.Start(t, estdtest.Options{})
	rootFile, oldIssuingFile := p.estca(t, s)
	const dn = "CN=rollover-client, O=estkit interop"
	key1, req1 := p.newRequest(t, "client1", dn)
	args := []string{"--est", "--url", s.URL, "--in", req1, "--options", p.userpassOptions(t, s.User, s.Password), "--outform", "pem",
		"--cacert", rootFile, "--cacert", oldIssuingFile}
	out, stderr, err := p.try(t, args...)
	if err != nil {
		t.Fatalf("pki --est (simpleenroll): %v\nstderr:\n%s", err, stderr)
	}
	cert1 := parseCert(t, "simpleenroll", out)
	cert1File := p.file("client1.pem")
	if err := os.WriteFile(cert1File, out, 0o600); err != nil {
		t.Fatal(err)
	}

	s.Stop(t)
	if _, err := estd.RolloverCA(context.Background(), s.Dir, estd.RolloverOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)

	caout := p.file("after.pem")
	p.run(t, "--estca", "--url", s.URL, "--cacert", s.RootFile, "--caout", caout, "--outform", "pem", "--force")
	saved, _ := filepath.Glob(p.file("after*"))
	var trust []string
	found := map[string]bool{}
	for _, f := range saved {
		certs, err := pemutil.ReadCerts(f)
		if err != nil || len(certs) != 1 {
			t.Fatalf("pki --estca saved %s: %v", f, err)
		}
		for name, c := range map[string]*x509.Certificate{"root": s.Root, "new": s.Daemon.CA.Cert, "retired": retiredIssuerOf(t, s, cert1)} {
			if certs[0].Equal(c) {
				found[name] = true
			}
		}
		trust = append(trust, "--cacert", f)
	}
	if len(saved) != 3 || !found["root"] || !found["new"] || !found["retired"] {
		t.Fatalf("pki --estca after the rollover saved %v (%v); want the root and both issuing CAs", saved, found)
	}

	_, req2 := p.newRequest(t, "client2", dn)
	args = append([]string{"--est", "--url", s.URL, "--in", req2, "--cert", cert1File, "--key", key1, "--outform", "pem"}, trust...)
	out, stderr, err = p.try(t, args...)
	if err != nil {
		t.Fatalf("pki --est --cert --key (simplereenroll) with a certificate of the retired CA: %v\nstderr:\n%s", err, stderr)
	}
	requireTrusted(t, "simplereenroll", stderr)
	cert2 := parseCert(t, "simplereenroll", out)
	if err := cert2.CheckSignatureFrom(s.Daemon.CA.Cert); err != nil {
		t.Errorf("the renewal is not signed by the new issuing CA: %v", err)
	}
}

// retiredIssuerOf returns the retired issuing CA that signed cert.
func retiredIssuerOf(t *testing.T, s *estdtest.Server, cert *x509.Certificate) *x509.Certificate {
	t.Helper()
	for _, r := range s.Daemon.Retired {
		if cert.CheckSignatureFrom(r.Cert) == nil {
			return r.Cert
		}
	}
	t.Fatal("no retired CA signed the first certificate")
	return nil
}
