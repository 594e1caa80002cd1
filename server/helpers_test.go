package server_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// call sends one request and returns the status, headers and body.
func call(t *testing.T, c *http.Client, method, url, ctype string, body []byte, basic ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// enrollment is a request to one enrollment operation.
type enrollment struct {
	op    est.Operation
	label string
	csr   []byte            // DER
	certs []tls.Certificate // TLS client certificate
	basic []string          // user, password
}

// do sends e and returns the status and body; on 200 it also parses the certificate.
func (e enrollment) do(t *testing.T, s *estdtest.Server) (int, string, *x509.Certificate) {
	t.Helper()
	status, hdr, body := call(t, s.Client(e.certs...), "POST", s.URL+est.Path(e.label, e.op), est.MediaPKCS10, est.EncodeBase64(e.csr), e.basic...)
	if status != http.StatusOK {
		if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("error response Content-Type %q, want text/plain", ct)
		}
		if n := strings.Count(strings.TrimSpace(string(body)), "\n"); n != 0 {
			t.Errorf("error response has %d lines, want one: %q", n+1, body)
		}
		return status, strings.TrimSpace(string(body)), nil
	}
	if e.op == est.OpServerKeyGen {
		return status, string(body), nil
	}
	if ct := hdr.Get("Content-Type"); ct != est.MediaCertsOnly {
		t.Errorf("Content-Type %q, want %q", ct, est.MediaCertsOnly)
	}
	if cte := hdr.Get("Content-Transfer-Encoding"); cte != "base64" {
		t.Errorf("Content-Transfer-Encoding %q, want base64", cte)
	}
	der, err := est.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("got %d certificates, want 1", len(certs))
	}
	return status, "", certs[0]
}

// verify checks that cert chains to s's root for usage.
func verify(t *testing.T, s *estdtest.Server, cert *x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	inter := x509.NewCertPool()
	inter.AddCert(s.Daemon.CA.Cert)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: s.Roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		t.Errorf("issued certificate does not verify for %v: %v", usage, err)
	}
}

// tlsCert pairs an issued certificate with its key for TLS client auth.
func tlsCert(cert *x509.Certificate, key crypto.Signer) tls.Certificate {
	return testpki.TLSCertificate(cert, key)
}

func localhost() []net.IP { return []net.IP{net.IPv4(127, 0, 0, 1)} }
