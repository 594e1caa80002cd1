package main

// Helpers of the end-to-end tests: estd run in process through run(), and
// the real curl and openssl binaries driving it.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/testenv"
)

const (
	// startTimeout bounds how long estd may take to create its data
	// directory and listen (RSA CA keys under -race are the slow case).
	startTimeout = 90 * time.Second
	// stopTimeout bounds a graceful stop.
	stopTimeout = 45 * time.Second
	// cmdTimeout bounds one curl, openssl or bash run.
	cmdTimeout = 60 * time.Second
)

// requireTools makes the test need the named programs: a missing one fails
// the test under CI=true and skips it loudly elsewhere.
func requireTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		testenv.Command(t, n)
	}
}

// syncBuffer is an io.Writer safe for concurrent use whose content can be
// waited for without polling.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed (and dropped) by the next Write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitCount waits until s occurs at least n times in the buffer.
func (b *syncBuffer) waitCount(ctx context.Context, s string, n int) error {
	for {
		b.mu.Lock()
		if strings.Count(b.buf.String(), s) >= n {
			b.mu.Unlock()
			return nil
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d× %q: %w", n, s, ctx.Err())
		}
	}
}

// daemon is an estd started in process with run().
type daemon struct {
	dir            string // data directory
	addr           string // host:port it listens on
	stdout, stderr *syncBuffer
	hup            chan os.Signal
	cancel         context.CancelFunc
	done           chan int
	stopped        bool
	code           int

	// From the banner.
	password    string // "" when the banner shows none
	fingerprint string
}

var (
	passwordRE    = regexp.MustCompile(`bootstrap user "est", password (\S+)`)
	fingerprintRE = regexp.MustCompile(`root CA SHA-256 fingerprint ([0-9A-F:]+)`)
)

// startEstd runs estd in process on a loopback port with dataDir and extra
// flags, waits until it serves and parses its banner. It is stopped (and
// must exit 0) when the test ends.
func startEstd(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"-data", dataDir, "-listen", "127.0.0.1:0"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{
		dir:    dataDir,
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		hup:    make(chan os.Signal, 1),
		cancel: cancel,
		done:   make(chan int, 1),
	}
	ready := make(chan net.Addr, 1)
	e := env{stdin: strings.NewReader(""), stdout: d.stdout, stderr: d.stderr, hup: d.hup, ready: ready}
	go func() { d.done <- run(ctx, args, e) }()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case a := <-ready:
		d.addr = a.String()
	case code := <-d.done:
		cancel()
		t.Fatalf("estd %q exited with %d before serving\nstderr:\n%s", args, code, d.stderr)
	case <-timer.C:
		cancel()
		t.Fatalf("estd %q did not serve within %v\nstderr:\n%s", args, startTimeout, d.stderr)
	}
	t.Cleanup(func() {
		if code := d.stop(t); code != 0 {
			t.Errorf("estd exited with %d, want 0\nstderr:\n%s", code, d.stderr)
		}
	})
	// The banner is written before ready is sent.
	out := d.stdout.String()
	if m := passwordRE.FindStringSubmatch(out); m != nil {
		d.password = m[1]
	}
	m := fingerprintRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no root fingerprint in the banner:\n%s", out)
	}
	d.fingerprint = m[1]
	return d
}

// stop cancels run's context and returns its exit code; stopping twice
// returns the same code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	if d.stopped {
		return d.code
	}
	d.cancel()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case d.code = <-d.done:
	case <-timer.C:
		t.Fatalf("estd did not stop within %v\nstderr:\n%s", stopTimeout, d.stderr)
	}
	d.stopped = true
	return d.code
}

// reload does what SIGHUP does and waits until estd has reloaded.
func (d *daemon) reload(t *testing.T) {
	t.Helper()
	const msg = "reloaded users, manufacturer anchors and CRLs, and profiles"
	n := strings.Count(d.stderr.String(), msg)
	d.hup <- syscall.SIGHUP
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.stderr.waitCount(ctx, msg, n+1); err != nil {
		t.Fatalf("reload: %v\nstderr:\n%s", err, d.stderr)
	}
}

func (d *daemon) rootFile() string    { return filepath.Join(d.dir, estd.RootCertFile) }
func (d *daemon) issuingFile() string { return filepath.Join(d.dir, estd.IssuingCertFile) }

// curlConfig writes a curl configuration file (mode 0600) holding Basic
// credentials, so that the password never appears in a command line.
func curlConfig(t *testing.T, dir, user, password string) string {
	t.Helper()
	if strings.ContainsAny(user+password, "\"\\\n") {
		t.Fatalf("credentials %q would need escaping in a curl config", user)
	}
	f, err := os.CreateTemp(dir, "curl-*.cfg")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(f, "user = \"%s:%s\"\n", user, password); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// toolEnv is the environment of curl, openssl and bash: the test's, without
// proxies (estd is on loopback) and without the user's ~/.curlrc.
func toolEnv(home string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "no_proxy", "home", "curl_home":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+home, "CURL_HOME="+home, "NO_PROXY=*", "no_proxy=*")
}

// execIn runs a program in dir with a bounded time and returns its outputs.
func execIn(dir string, stdin io.Reader, name string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = toolEnv(dir)
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustExec runs a program in dir and fails the test if it fails.
func mustExec(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, errOut, err := execIn(dir, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return mustExec(t, dir, "openssl", args...)
}

// curl requests https://ADDR/.well-known/est/PATH with curl, trusting only
// estd's root, writes the body to dir/out and returns the HTTP status and
// Content-Type. A transport or TLS failure fails the test.
func (d *daemon) curl(t *testing.T, dir, out, path string, args ...string) (code int, contentType string) {
	t.Helper()
	a := []string{"-sS", "--max-time", "30", "--cacert", d.rootFile(), "-o", out, "-w", `%{http_code}\n%{content_type}`}
	a = append(a, args...)
	a = append(a, "https://"+d.addr+"/.well-known/est/"+path)
	res := mustExec(t, dir, "curl", a...)
	status, ctype, _ := strings.Cut(res, "\n")
	code, err := strconv.Atoi(strings.TrimSpace(status))
	if err != nil {
		t.Fatalf("curl %s: no status in %q", path, res)
	}
	return code, strings.TrimSpace(ctype)
}

// post sends the base64 CSR file csr to PATH and returns the status; the
// body is in dir/out.
func (d *daemon) post(t *testing.T, dir, out, path, csr string, auth ...string) int {
	t.Helper()
	args := append([]string{"-H", "Content-Type: application/pkcs10", "--data-binary", "@" + csr}, auth...)
	code, _ := d.curl(t, dir, out, path, args...)
	return code
}

// enroll posts csr to PATH, expects want and on 200 converts the certs-only
// PKCS#7 answer with openssl into dir/name.pem, which it returns.
func (d *daemon) enroll(t *testing.T, dir, name, path, csr string, want int, auth ...string) string {
	t.Helper()
	body := name + ".b64"
	if code := d.post(t, dir, body, path, csr, auth...); code != want {
		msg, _ := os.ReadFile(filepath.Join(dir, body))
		t.Fatalf("POST %s: status %d, want %d: %s", path, code, want, bytes.TrimSpace(msg))
	}
	if want != 200 {
		return ""
	}
	return p7ToPEM(t, dir, body, name)
}

// p7ToPEM decodes a base64 certs-only PKCS#7 file with openssl and writes
// its certificates to dir/name.pem.
func p7ToPEM(t *testing.T, dir, b64, name string) string {
	t.Helper()
	openssl(t, dir, "base64", "-d", "-A", "-in", b64, "-out", name+".p7")
	openssl(t, dir, "pkcs7", "-inform", "DER", "-in", name+".p7", "-print_certs", "-out", name+".pem")
	return filepath.Join(dir, name+".pem")
}

// genKey makes a private key with openssl: "rsa2048" or "p256".
func genKey(t *testing.T, dir, name, kt string) string {
	t.Helper()
	path := filepath.Join(dir, name+".key")
	switch kt {
	case "rsa2048":
		openssl(t, dir, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
	case "p256":
		openssl(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
	default:
		t.Fatalf("genKey: unknown key type %q", kt)
	}
	return path
}

// makeCSR makes a base64 DER PKCS#10 request with openssl for key, with the
// subject and an optional subjectAltName (openssl syntax, "DNS:x,IP:y").
func makeCSR(t *testing.T, dir, name, key, subject, san string) string {
	t.Helper()
	args := []string{"req", "-new", "-key", key, "-subj", subject, "-outform", "DER", "-out", name + ".csr.der"}
	if san != "" {
		args = append(args, "-addext", "subjectAltName="+san)
	}
	openssl(t, dir, args...)
	openssl(t, dir, "base64", "-in", name+".csr.der", "-out", name+".csr")
	return filepath.Join(dir, name+".csr")
}

// readPEMCerts parses every certificate of a PEM file (text around the
// blocks, as openssl -print_certs writes, is ignored).
func readPEMCerts(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no certificate", path)
	}
	return out
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	certs := readPEMCerts(t, path)
	if len(certs) != 1 {
		t.Fatalf("%s: %d certificates, want 1", path, len(certs))
	}
	return certs[0]
}

// pubkeyOfCert and pubkeyOfKey return the PEM public key openssl extracts.
func pubkeyOfCert(t *testing.T, dir, cert string) string {
	t.Helper()
	return openssl(t, dir, "x509", "-in", cert, "-noout", "-pubkey")
}

func pubkeyOfKey(t *testing.T, dir, key string, extra ...string) string {
	t.Helper()
	return openssl(t, dir, append([]string{"pkey", "-in", key, "-pubout"}, extra...)...)
}

// verifyChain checks cert with openssl verify against estd's root and
// issuing CA for the given purpose (sslclient, sslserver).
func (d *daemon) verifyChain(t *testing.T, dir, cert, purpose string) {
	t.Helper()
	out := openssl(t, dir, "verify", "-CAfile", d.rootFile(), "-untrusted", d.issuingFile(), "-purpose", purpose, cert)
	if !strings.Contains(out, ": OK") {
		t.Errorf("openssl verify %s: %s", cert, out)
	}
}

// writeUsers creates dataDir with a users file for the given name and
// password pairs, hashed at bcrypt's minimum cost: a test that is not about
// the bootstrap user then pays neither the cost-12 hash of a first start
// nor cost-12 verifications (seconds each under -race).
func writeUsers(t *testing.T, dataDir string, namePassword ...string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := 0; i+1 < len(namePassword); i += 2 {
		h, err := bcrypt.GenerateFromPassword([]byte(namePassword[i+1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", namePassword[i], h)
	}
	if err := os.WriteFile(filepath.Join(dataDir, estd.UsersFile), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
