package est

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSetRequestAttributes(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		key crypto.Signer
		alg x509.SignatureAlgorithm
	}{
		{rsaKey, x509.SHA256WithRSA}, {rsaKey, x509.SHA384WithRSAPSS}, {ecKey, x509.ECDSAWithSHA384}, {edKey, x509.PureEd25519},
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
				Subject: pkix.Name{CommonName: "device-1"}, DNSNames: []string{"d1.example"}, SignatureAlgorithm: tc.alg,
			}, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			out, err := SetRequestAttributes(csr, tc.key, ChallengePasswordAttribute("first"), KeyIDAttribute(OIDDecryptKeyID, []byte{1, 2}))
			if err != nil {
				t.Fatal(err)
			}
			out, err = SetRequestAttributes(out, tc.key, ChallengePasswordAttribute("c2Vjb25k+/=="))
			if err != nil {
				t.Fatal(err)
			}
			req, err := ParseCSR(out) // checks the signature
			if err != nil {
				t.Fatal(err)
			}
			if req.SignatureAlgorithm != tc.alg || req.Subject.CommonName != "device-1" || len(req.DNSNames) != 1 {
				t.Fatalf("the request changed: %v %v %v", req.SignatureAlgorithm, req.Subject, req.DNSNames)
			}
			pw, ok, err := ChallengePassword(req)
			if err != nil || !ok || pw != "c2Vjb25k+/==" {
				t.Fatalf("challengePassword = %q, %v, %v", pw, ok, err)
			}
			id, ok, err := RequestKeyID(req, OIDDecryptKeyID)
			if err != nil || !ok || !bytes.Equal(id, []byte{1, 2}) {
				t.Fatalf("DecryptKeyIdentifier = %x, %v, %v", id, ok, err)
			}
			if _, ok, _ := RequestKeyID(req, OIDAsymmDecryptKeyID); ok {
				t.Fatal("found an AsymmetricDecryptKeyIdentifier that is not there")
			}
			attrs, _ := RequestAttributes(req)
			if len(attrs) != 3 { // extensionRequest, challengePassword, DecryptKeyIdentifier
				t.Fatalf("%d attributes, want 3", len(attrs))
			}
		})
	}
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, ecKey)
	if _, err := SetRequestAttributes(csr, rsaKey, ChallengePasswordAttribute("x")); err == nil {
		t.Fatal("re-signed a CSR with another key")
	}
}

// TestChallengePasswordOpenSSL checks that openssl reads the attribute and
// the signature, and that ChallengePassword reads openssl's.
func TestChallengePasswordOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}, key)
	csr, err := SetRequestAttributes(csr, key, ChallengePasswordAttribute("AbC+/="))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "req.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600)
	out, err := exec.Command("openssl", "req", "-in", path, "-verify", "-noout", "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "challengePassword") || !strings.Contains(string(out), "AbC+/=") {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	p8, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	cfg := "[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=y\n[attrs]\nchallengePassword=from openssl\n"
	os.WriteFile(filepath.Join(dir, "req.cnf"), []byte(cfg), 0o600)
	if out, err := exec.Command("openssl", "req", "-new", "-key", filepath.Join(dir, "key.pem"), "-config", filepath.Join(dir, "req.cnf"),
		"-outform", "DER", "-out", filepath.Join(dir, "o.der")).CombinedOutput(); err != nil {
		t.Fatalf("openssl req -new: %v\n%s", err, out)
	}
	der, _ := os.ReadFile(filepath.Join(dir, "o.der"))
	req, err := ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	if pw, ok, err := ChallengePassword(req); pw != "from openssl" || !ok || err != nil {
		t.Fatalf("ChallengePassword = %q, %v, %v", pw, ok, err)
	}
}

// TestChannelBinding checks that both ends of a TLS 1.2 and a TLS 1.3
// connection compute the same binding, and that two connections differ.
func TestChannelBinding(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "s"}, DNSNames: []string{"s"},
		NotBefore: nowMinusHour(), NotAfter: nowPlusHour()}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		var seen [][]byte
		for i := 0; i < 2; i++ {
			c1, c2 := net.Pipe()
			srv := tls.Server(c1, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: v, MaxVersion: v})
			cli := tls.Client(c2, &tls.Config{RootCAs: pool, ServerName: "s", MinVersion: v, MaxVersion: v})
			errc := make(chan error, 1)
			go func() { errc <- srv.Handshake() }()
			if err := cli.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			cs, ss := cli.ConnectionState(), srv.ConnectionState()
			a, err := ChannelBinding(&cs)
			if err != nil {
				t.Fatal(err)
			}
			b, err := ChannelBinding(&ss)
			if err != nil {
				t.Fatal(err)
			}
			want := 12 // tls-unique: a TLS 1.2 Finished
			if v == tls.VersionTLS13 {
				want = ExporterLength
			}
			if !bytes.Equal(a, b) || len(a) != want {
				t.Fatalf("TLS %x: client %x, server %x", v, a, b)
			}
			seen = append(seen, a)
			c1.Close() // not the TLS conns: their close_notify would block on the pipe
			c2.Close()
		}
		if bytes.Equal(seen[0], seen[1]) {
			t.Fatalf("TLS %x: two connections share the binding %x", v, seen[0])
		}
	}
	if _, err := ChannelBinding(nil); err == nil {
		t.Fatal("a binding without a connection")
	}
}

func bigOne() *big.Int        { return big.NewInt(1) }
func nowMinusHour() time.Time { return time.Now().Add(-time.Hour) }
func nowPlusHour() time.Time  { return time.Now().Add(time.Hour) }
