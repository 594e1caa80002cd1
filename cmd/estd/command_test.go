package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/estd"
)

// TestFirstStartAndRestart: the first start creates the data directory with
// private files, prints the fingerprint and the bootstrap password once; a
// restart prints no password, keeps the CA, the users and the records, and
// reissues the TLS certificate when the host names change.
func TestFirstStartAndRestart(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	base := t.TempDir()
	dataDir := filepath.Join(base, "estd-data")
	d := startEstd(t, dataDir)

	out := d.stdout.String()
	if !strings.Contains(out, "created a new CA in "+dataDir) {
		t.Errorf("first start does not say it created a CA:\n%s", out)
	}
	if !strings.Contains(out, "root CA key "+filepath.Join(dataDir, "root-ca.key")+" while it serves; keep it offline") {
		t.Errorf("first start does not say the root key can go offline:\n%s", out)
	}
	if len(d.password) < 16 {
		t.Fatalf("bootstrap password %q missing or short:\n%s", d.password, out)
	}
	if n := strings.Count(out, d.password); n != 1 {
		t.Errorf("the bootstrap password is shown %d times, want once", n)
	}
	if strings.Contains(d.stderr.String(), d.password) {
		t.Error("the bootstrap password is in the log")
	}
	if fp := opensslFingerprint(t, base, d.rootFile()); fp != d.fingerprint {
		t.Errorf("banner fingerprint %s, openssl says %s", d.fingerprint, fp)
	}

	// Modes: the directory is private, keys, users and database 0600.
	if fi, err := os.Stat(dataDir); err != nil || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("data directory: %v %v, want a directory of mode 0700", fi.Mode(), err)
	}
	keys, _ := filepath.Glob(filepath.Join(dataDir, "*.key"))
	for _, k := range []string{estd.RootKeyFile, estd.IssuingKeyFile, estd.TLSKeyFile} {
		if !slices.Contains(keys, filepath.Join(dataDir, k)) {
			t.Errorf("no %s in %s (keys: %v)", k, dataDir, keys)
		}
	}
	dbs, _ := filepath.Glob(filepath.Join(dataDir, estd.DBFile+"*"))
	private := slices.Concat(keys, dbs, []string{filepath.Join(dataDir, estd.UsersFile), filepath.Join(dataDir, estd.DBFile)})
	for _, f := range private {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", filepath.Base(f), modeOf(fi), err)
		}
	}
	if users, _ := os.ReadFile(filepath.Join(dataDir, estd.UsersFile)); bytes.Contains(users, []byte(d.password)) || !bytes.Contains(users, []byte("est:$2")) {
		t.Errorf("users file should hold a bcrypt hash for est and no password:\n%s", users)
	}

	work := t.TempDir()
	basic := []string{"-K", curlConfig(t, base, "est", d.password)}
	key := genKey(t, work, "dev", "p256")
	first := d.enroll(t, work, "first", "simpleenroll", makeCSR(t, work, "first", key, "/CN=survivor", ""), 200, basic...)
	firstSerial := readPEMCert(t, first).SerialNumber
	rootPEM := readFile(t, d.rootFile())
	usersPEM := readFile(t, filepath.Join(dataDir, estd.UsersFile))
	issuingPEM := readFile(t, d.issuingFile())
	tlsBefore := readPEMCerts(t, filepath.Join(dataDir, estd.TLSCertFile))[0]
	if code := d.stop(t); code != 0 {
		t.Fatalf("estd exited with %d\nstderr:\n%s", code, d.stderr)
	}

	// Restart with an extra TLS name, and the root key taken offline as
	// the first start advised.
	offline := filepath.Join(t.TempDir(), estd.RootKeyFile)
	if err := os.Rename(filepath.Join(dataDir, estd.RootKeyFile), offline); err != nil {
		t.Fatal(err)
	}
	d2 := startEstd(t, dataDir, "-hostname", "estd.example.net")
	out2 := d2.stdout.String()
	if d2.password != "" || strings.Contains(out2, d.password) || strings.Contains(out2, "created a new CA") {
		t.Errorf("restart printed a password or created a CA:\n%s", out2)
	}
	if d2.fingerprint != d.fingerprint || !bytes.Equal(readFile(t, d.rootFile()), rootPEM) || !bytes.Equal(readFile(t, d.issuingFile()), issuingPEM) {
		t.Errorf("restart changed the CA: fingerprint %s, was %s", d2.fingerprint, d.fingerprint)
	}
	// The renewal needs the record of the certificate issued before the restart.
	renewed := d2.enroll(t, work, "renewed", "simplereenroll", makeCSR(t, work, "renew", key, "/CN=survivor", ""), 200, "--cert", first, "--key", key)
	renewedSerial := readPEMCert(t, renewed).SerialNumber
	// The users survive too (checked on the file: a Basic login would cost
	// another cost-12 bcrypt, seconds under -race).
	if code, out, _ := userCmdRun(t, "", "list", "-data", dataDir); code != 0 || out != "est\n" || !bytes.Equal(readFile(t, filepath.Join(dataDir, estd.UsersFile)), usersPEM) {
		t.Errorf("restart changed the users: list %q", out)
	}
	tlsAfter := readPEMCerts(t, filepath.Join(dataDir, estd.TLSCertFile))[0]
	if tlsAfter.SerialNumber.Cmp(tlsBefore.SerialNumber) == 0 || !slices.Contains(tlsAfter.DNSNames, "estd.example.net") {
		t.Errorf("TLS certificate not reissued for the new name: DNS %v", tlsAfter.DNSNames)
	}
	if code := d2.stop(t); code != 0 {
		t.Fatalf("estd exited with %d\nstderr:\n%s", code, d2.stderr)
	}

	// Both records are in the database.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dm, err := estd.Open(ctx, estd.Options{DataDir: dataDir, Hostnames: []string{"estd.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Close()
	if dm.Created || dm.BootstrapPassword != "" {
		t.Error("reopening the data directory created a CA or a bootstrap user")
	}
	for _, serial := range []*big.Int{firstSerial, renewedSerial} {
		rec, err := dm.Store.BySerial(ctx, serial)
		if err != nil {
			t.Errorf("serial %x: %v", serial, err)
			continue
		}
		if rec.Subject != "CN=survivor" {
			t.Errorf("serial %x: record for %q, want CN=survivor", serial, rec.Subject)
		}
	}
}

// TestCAKeyTypes: -ca-key-type chooses the key of a new root and issuing CA.
func TestCAKeyTypes(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	for _, tc := range []struct {
		kt, text string
		ok       func(any) bool
	}{
		{"rsa2048", "Public-Key: (2048 bit)", func(k any) bool {
			r, ok := k.(*rsa.PublicKey)
			return ok && r.N.BitLen() == 2048
		}},
		{"p384", "NIST CURVE: P-384", func(k any) bool {
			e, ok := k.(*ecdsa.PublicKey)
			return ok && e.Curve == elliptic.P384()
		}},
	} {
		t.Run(tc.kt, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "estd-data")
			writeUsers(t, dataDir, "est", "not-used-here")
			d := startEstd(t, dataDir, "-ca-key-type", tc.kt)
			for _, f := range []string{d.rootFile(), d.issuingFile()} {
				if c := readPEMCert(t, f); !tc.ok(c.PublicKey) {
					t.Errorf("%s: %T key, want %s", filepath.Base(f), c.PublicKey, tc.kt)
				}
				if text := openssl(t, t.TempDir(), "x509", "-in", f, "-noout", "-text"); !strings.Contains(text, tc.text) {
					t.Errorf("openssl x509 -text of %s lacks %q", filepath.Base(f), tc.text)
				}
			}
			// curl verifies the TLS chain up to that root.
			if code, _ := d.curl(t, t.TempDir(), "cacerts.b64", "cacerts"); code != 200 {
				t.Errorf("GET cacerts: %d", code)
			}
		})
	}
}

// TestBadCAKeyType: an unknown or unsuitable -ca-key-type is a usage error
// (exit 2) reported before anything is created.
func TestBadCAKeyType(t *testing.T) {
	t.Parallel()
	for _, kt := range []string{"ed25519", "rsa1024", "P-256k"} {
		dataDir := filepath.Join(t.TempDir(), "estd-data")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var stdout, stderr syncBuffer
		code := run(ctx, []string{"-data", dataDir, "-listen", "127.0.0.1:0", "-ca-key-type", kt},
			env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, ready: make(chan net.Addr, 1)})
		cancel()
		if code != 2 {
			t.Errorf("-ca-key-type %s: exit %d, want 2", kt, code)
		}
		if !strings.Contains(stderr.String(), fmt.Sprintf("%q", kt)) || !strings.Contains(stderr.String(), "p256") {
			t.Errorf("-ca-key-type %s: stderr should name the value and the valid ones:\n%s", kt, stderr.String())
		}
		if _, err := os.Stat(dataDir); err == nil {
			t.Errorf("-ca-key-type %s: the data directory was created", kt)
		}
	}
}

// TestHostnames: -hostname adds DNS names and addresses to the TLS
// certificate, beside localhost and the loopback addresses.
func TestHostnames(t *testing.T) {
	requireTools(t, "curl", "openssl")
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "estd-data")
	writeUsers(t, dataDir, "est", "not-used-here")
	d := startEstd(t, dataDir, "-hostname", "estd.example.net", "-hostname", "192.0.2.10")
	work := t.TempDir()
	tlsFile := filepath.Join(dataDir, estd.TLSCertFile)
	san := openssl(t, work, "x509", "-in", tlsFile, "-noout", "-ext", "subjectAltName")
	for _, want := range []string{"DNS:localhost", "DNS:estd.example.net", "IP Address:127.0.0.1", "IP Address:192.0.2.10"} {
		if !strings.Contains(san, want) {
			t.Errorf("%s subjectAltName lacks %s:\n%s", estd.TLSCertFile, want, san)
		}
	}
	leaf := readPEMCerts(t, tlsFile)[0]
	if !slices.ContainsFunc(leaf.IPAddresses, net.ParseIP("192.0.2.10").Equal) || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("TLS certificate: IPs %v EKU %v", leaf.IPAddresses, leaf.ExtKeyUsage)
	}
	// curl reaches estd by the new name, resolved to loopback by curl itself.
	_, port, _ := net.SplitHostPort(d.addr)
	res := mustExec(t, work, "curl", "-sS", "--max-time", "30", "--cacert", d.rootFile(),
		"--resolve", "estd.example.net:"+port+":127.0.0.1", "-o", "cacerts.b64", "-w", "%{http_code}",
		"https://estd.example.net:"+port+"/.well-known/est/cacerts")
	if res != "200" {
		t.Errorf("GET cacerts by name: %s", res)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func modeOf(fi fs.FileInfo) fs.FileMode {
	if fi == nil {
		return 0
	}
	return fi.Mode()
}
