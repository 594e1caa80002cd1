package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/hsmtest"
	"github.com/estkit/estkit/internal/pgtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store/postgres"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// estdBinary builds estd once per test run.
func estdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "estd-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "estd")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// node is an estd running as its own process.
type node struct {
	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

var listenRE = regexp.MustCompile(`serving EST on https://([^/\s]+)/`)

// startNode runs the estd binary with args and waits for its banner.
func startNode(t *testing.T, env []string, args ...string) *node {
	t.Helper()
	cmd := exec.Command(estdBinary(t), append([]string{"-listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, out: &stderr}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case a, ok := <-found:
		if !ok {
			cmd.Wait()
			t.Fatalf("estd %v exited before serving:\n%s", args, stderr.String())
		}
		n.addr = a
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("estd %v did not start:\n%s", args, stderr.String())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			t.Errorf("estd did not stop on SIGINT")
		}
	})
	return n
}

// stop interrupts n and waits for it to exit.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- n.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		n.cmd.Process.Kill()
		t.Fatalf("estd did not stop on SIGINT")
	}
}

// enrollAt sends one enrollment request to n and returns status and certificate.
func enrollAt(t *testing.T, n *node, roots *x509.CertPool, op est.Operation, csr []byte, basic []string, certs ...tls.Certificate) (int, *x509.Certificate, string) {
	t.Helper()
	return sendAt(t, n, roots, "", op, csr, basic, certs...)
}

// enrollAtLabel is a simpleenroll on a label.
func enrollAtLabel(t *testing.T, n *node, roots *x509.CertPool, label string, csr []byte, basic []string) (int, *x509.Certificate, string) {
	t.Helper()
	return sendAt(t, n, roots, label, est.OpSimpleEnroll, csr, basic)
}

func sendAt(t *testing.T, n *node, roots *x509.CertPool, label string, op est.Operation, csr []byte, basic []string, certs ...tls.Certificate) (int, *x509.Certificate, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	req, _ := http.NewRequest("POST", "https://"+n.addr+est.Path(label, op), bytes.NewReader(est.EncodeBase64(csr)))
	req.Header.Set("Content-Type", est.MediaPKCS10)
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("%s at %s: %v", op, n.addr, err)
		return 0, nil, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, string(body)
	}
	der, _ := est.DecodeBase64(body)
	got, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Errorf("%s: %v", op, err)
		return resp.StatusCode, nil, ""
	}
	return resp.StatusCode, got[0], ""
}

// TestTwoNodesOnePostgres: two estd processes sharing one PostgreSQL
// database and one CA act as one service.
func TestTwoNodesOnePostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	tmp := t.TempDir()
	dirA, dirB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	writeUsers(t, dirA, "dev", "dev-password-1")
	basic := []string{"dev", "dev-password-1"}

	// Operators migrate once; then the nodes start.
	latest := postgres.LatestSchemaVersion()
	if code, out, errs := runCmd(t, "migrate", "-store", dsn); code != 0 || !strings.Contains(out, fmt.Sprintf("from version 0 to %d\n", latest)) {
		t.Fatalf("estd migrate: %d %s %s", code, out, errs)
	}
	if code, out, _ := runCmd(t, "-validate", "-data", dirA, "-store", dsn); code != 0 || !strings.Contains(out, fmt.Sprintf("schema version %d of %d", latest, latest)) {
		t.Fatalf("estd -validate: %d %s", code, out)
	}
	// Node A creates the CA; node B gets a copy of the data directory (the
	// CA certificates, key, TLS certificate and users), nothing else. Both
	// serve a label whose enrollments wait for an operator.
	cfg := filepath.Join(tmp, "estd.yaml")
	if err := os.WriteFile(cfg, []byte(heldConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, nil, "-config", cfg, "-data", dirA, "-store", dsn)
	copyDir(t, dirA, dirB)
	os.Remove(filepath.Join(dirB, "estd.db"))
	b := startNode(t, nil, "-config", cfg, "-data", dirB, "-store", dsn)
	roots := x509.NewCertPool()
	roots.AddCert(readPEMCert(t, filepath.Join(dirA, "root-ca.pem")))

	// Enroll at A, renew at B, with the certificate A issued.
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "roaming", nil, nil)
	code, cert, msg := enrollAt(t, a, roots, est.OpSimpleEnroll, csr, basic)
	if code != 200 {
		t.Fatalf("enroll at A: %d %s", code, msg)
	}
	code, renewed, msg := enrollAt(t, b, roots, est.OpSimpleReenroll, csr, nil, testpki.TLSCertificate(cert, key))
	if code != 200 {
		t.Fatalf("reenroll at B with A's certificate: %d %s", code, msg)
	}
	// Revoked through the shared database: neither node lets it renew.
	if code, _, errs := runCmd(t, "admin", "revoke", "-store", dsn, "-by", "test", "-reason", "keyCompromise", renewed.SerialNumber.Text(16)); code != 0 {
		t.Fatalf("revoke: %s", errs)
	}
	for _, n := range []*node{a, b} {
		if code, _, msg := enrollAt(t, n, roots, est.OpSimpleReenroll, csr, nil, testpki.TLSCertificate(renewed, key)); code != 403 || !strings.Contains(msg, "revoked") {
			t.Fatalf("renewal of a revoked certificate at %s: %d %s", n.addr, code, msg)
		}
	}

	// Manual approval across nodes: held at A, approved by an operator,
	// collected at B; A then hands out the same certificate.
	held := testpki.CSR(t, testpki.Key(t, ca.P256), "held-roaming", nil, nil)
	if code, _, msg := enrollAtLabel(t, a, roots, "held", held, basic); code != 202 {
		t.Fatalf("held enroll at A: %d %s", code, msg)
	}
	_, list, _ := runCmd(t, "admin", "list", "-pending", "-store", dsn)
	id := regexp.MustCompile(`(?m)^([0-9a-f]{32})\s.*CN=held-roaming`).FindStringSubmatch(list)
	if id == nil {
		t.Fatalf("pending request not listed:\n%s", list)
	}
	if code, _, errs := runCmd(t, "admin", "approve", "-store", dsn, "-by", "test", id[1]); code != 0 {
		t.Fatalf("approve: %s", errs)
	}
	codeB, certB, msg := enrollAtLabel(t, b, roots, "held", held, basic)
	codeA, certA, _ := enrollAtLabel(t, a, roots, "held", held, basic)
	if codeB != 200 || codeA != 200 || certA.SerialNumber.Cmp(certB.SerialNumber) != 0 {
		t.Fatalf("approved request: B %d (%s), A %d; want one certificate from both", codeB, msg, codeA)
	}

	// Concurrent enrollments across both nodes: no serial twice, all recorded.
	const perNode = 15
	var mu sync.Mutex
	var issued []*x509.Certificate
	var wg sync.WaitGroup
	for i := range 2 * perNode {
		n := []*node{a, b}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, c, msg := enrollAt(t, n, roots, est.OpSimpleEnroll, testpki.CSR(t, testpki.Key(t, ca.P256), fmt.Sprintf("load-%d", i), nil, nil), basic)
			if code != 200 {
				t.Errorf("concurrent enroll %d: %d %s", i, code, msg)
				return
			}
			mu.Lock()
			issued = append(issued, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seen := map[string]bool{}
	for _, c := range issued {
		s := c.SerialNumber.Text(16)
		if seen[s] {
			t.Fatalf("serial %s issued twice", s)
		}
		seen[s] = true
		rec, err := st.BySerial(context.Background(), c.SerialNumber)
		if err != nil || !bytes.Equal(rec.DER, c.Raw) {
			t.Fatalf("certificate %s not in the store: %v", s, err)
		}
	}
	if len(issued) != 2*perNode {
		t.Fatalf("%d of %d enrollments succeeded", len(issued), 2*perNode)
	}
}

// TestCAKeyInHSM: `estd ca init -hsm` makes the CA keys inside a SoftHSM2
// token; estd then issues through the token, and the key file never exists.
func TestCAKeyInHSM(t *testing.T) {
	tok := hsmtest.NewToken(t, "estd-ca")
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errs := runCmd(t, "ca", "init", "-data", dir, "-hsm", tok.URI("issuing"), "-key-type", "p384")
	if code != 0 || !strings.Contains(out, "never exported") {
		t.Fatalf("estd ca init: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCmd(t, "ca", "init", "-data", dir, "-hsm", tok.URI("issuing")); code != 1 || !strings.Contains(errs, "already holds a CA") {
		t.Fatalf("second ca init: %d %s", code, errs)
	}
	for _, f := range []string{"issuing-ca.key", "root-ca.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Fatalf("%s exists: the key left the token", f)
		}
	}
	writeUsers(t, dir, "dev", "dev-password-1")
	n := startNode(t, []string{"SOFTHSM2_CONF=" + tok.Conf}, "-data", dir)
	roots := x509.NewCertPool()
	root := readPEMCert(t, filepath.Join(dir, "root-ca.pem"))
	roots.AddCert(root)
	code, cert, msg := enrollAt(t, n, roots, est.OpSimpleEnroll, testpki.CSR(t, testpki.Key(t, ca.RSA2048), "hsm-issued", nil, nil), []string{"dev", "dev-password-1"})
	if code != 200 {
		t.Fatalf("enroll: %d %s", code, msg)
	}
	issuing := readPEMCert(t, filepath.Join(dir, "issuing-ca.pem"))
	if err := cert.CheckSignatureFrom(issuing); err != nil {
		t.Fatalf("certificate not signed by the token's issuing key: %v", err)
	}
	if kt, _ := ca.KeyTypeOf(issuing.PublicKey); kt != ca.P384 {
		t.Fatalf("issuing key is %s, want p384", kt)
	}
	inter := x509.NewCertPool()
	inter.AddCert(issuing)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
}

// runCmd runs estd's run in process with args.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
