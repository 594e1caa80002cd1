package server_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// TestBadInput sends every kind of malformed request: each gets its 4xx with
// a one-line reason, nothing is issued, and the server keeps serving.
func TestBadInput(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{MaxBody: 8 << 10})
	good := testpki.CSR(t, testpki.Key(t, ca.P256), "bad-input", nil, nil)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-5] ^= 0xff // inside the signature
	enroll := s.URL + "/.well-known/est/simpleenroll"
	cases := []struct {
		name, method, url, ctype string
		body                     []byte
		status                   int
		words                    string
	}{
		{"malformed base64", "POST", enroll, est.MediaPKCS10, []byte("MII*not base64*"), 400, "malformed base64"},
		{"empty body", "POST", enroll, est.MediaPKCS10, nil, 400, "empty body"},
		{"not a CSR", "POST", enroll, est.MediaPKCS10, est.EncodeBase64([]byte("hello, world")), 400, "malformed PKCS#10"},
		{"truncated CSR", "POST", enroll, est.MediaPKCS10, est.EncodeBase64(good[:len(good)/2]), 400, "malformed PKCS#10"},
		{"bad CSR signature", "POST", enroll, est.MediaPKCS10, est.EncodeBase64(badSig), 400, "signature"},
		{"wrong Content-Type", "POST", enroll, "application/json", est.EncodeBase64(good), 415, "Content-Type"},
		{"no Content-Type", "POST", enroll, "", est.EncodeBase64(good), 415, "Content-Type"},
		{"GET simpleenroll", "GET", enroll, "", nil, 405, "needs POST"},
		{"POST cacerts", "POST", s.URL + "/.well-known/est/cacerts", est.MediaPKCS10, est.EncodeBase64(good), 405, "needs GET"},
		{"PUT csrattrs", "PUT", s.URL + "/.well-known/est/csrattrs", "", nil, 405, "needs GET"},
		{"body over the limit", "POST", enroll, est.MediaPKCS10, bytes.Repeat([]byte("QUFB"), 4<<10), 413, "body over"},
		{"unknown operation", "POST", s.URL + "/.well-known/est/simpleenrol", est.MediaPKCS10, est.EncodeBase64(good), 404, "unknown operation"},
		{"unknown label", "POST", s.URL + "/.well-known/est/nolabel/simpleenroll", est.MediaPKCS10, est.EncodeBase64(good), 404, "unknown label"},
		{"too deep", "GET", s.URL + "/.well-known/est/a/b/cacerts", "", nil, 404, "not an EST path"},
		{"outside EST", "GET", s.URL + "/", "", nil, 404, "not an EST path"},
		{"PKCS#10 to fullcmc", "POST", s.URL + "/.well-known/est/fullcmc", est.MediaPKCS10, est.EncodeBase64(good), 415, "Content-Type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := count(t, s)
			status, hdr, body := call(t, s.Client(), c.method, c.url, c.ctype, c.body, s.User, s.Password)
			reason := string(body)
			if status != c.status || !strings.Contains(reason, c.words) {
				t.Fatalf("got %d %q, want %d mentioning %q", status, reason, c.status, c.words)
			}
			if !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || strings.Count(reason, "\n") != 1 {
				t.Errorf("reason is not one plain-text line: %q (%s)", reason, hdr.Get("Content-Type"))
			}
			if c.status == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if after := count(t, s); after != before {
				t.Fatal("bad input was issued a certificate")
			}
			if st, _, _ := call(t, s.Client(), "GET", s.URL+"/.well-known/est/cacerts", "", nil); st != 200 {
				t.Fatalf("server stopped serving after %s: cacerts %d", c.name, st)
			}
		})
	}
	t.Run("base64 without line breaks accepted", func(t *testing.T) {
		flat := bytes.ReplaceAll(est.EncodeBase64(good), []byte("\n"), nil)
		if status, _, body := call(t, s.Client(), "POST", enroll, est.MediaPKCS10, flat, s.User, s.Password); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("Content-Transfer-Encoding ignored", func(t *testing.T) {
		req, _ := http.NewRequest("POST", enroll, bytes.NewReader(est.EncodeBase64(good)))
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.Header.Set("Content-Transfer-Encoding", "binary")
		req.SetBasicAuth(s.User, s.Password)
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

// TestTLSPolicy: TLS 1.2 is the floor, TLS 1.2 suites are ECDHE+AEAD only,
// and plain HTTP is not served.
func TestTLSPolicy(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	dial := func(cfg *tls.Config) error {
		cfg.RootCAs = s.Roots()
		c, err := tls.Dial("tcp", s.Addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(&tls.Config{MinVersion: tls.VersionTLS13}); err != nil {
		t.Errorf("TLS 1.3 refused: %v", err)
	}
	if err := dial(&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err != nil {
		t.Errorf("TLS 1.2 with ECDHE-ECDSA-AES128-GCM refused: %v", err)
	}
	refused := map[string]*tls.Config{
		"TLS 1.1":          {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		"TLS 1.0":          {MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
		"CBC suites only":  {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}},
		"RSA key exchange": {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384}},
		"3DES":             {MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA}},
	}
	for name, cfg := range refused {
		if err := dial(cfg); err == nil {
			t.Errorf("%s: handshake succeeded, want refused", name)
		}
	}
	resp, err := http.Get("http://" + s.Addr + "/.well-known/est/cacerts")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served cacerts")
		}
	}
}

// TestTLSPolicyNarrowed: a configured TLS 1.3 floor refuses TLS 1.2.
func TestTLSPolicyNarrowed(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{TLS: server.TLSPolicy{MinVersion: tls.VersionTLS13}})
	if c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.Roots(), MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Fatal("TLS 1.2 accepted with a TLS 1.3 floor")
	}
	c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := (server.TLSPolicy{MinVersion: tls.VersionTLS11}).Check(); err == nil {
		t.Error("a TLS 1.1 floor passed Check")
	}
	if err := (server.TLSPolicy{CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}).Check(); err == nil {
		t.Error("a non-ECDHE CBC suite passed Check")
	}
}

// TestSlowClientsCutOff: a client that never finishes its headers, or its
// body, is disconnected after the configured timeout; others are served.
func TestSlowClientsCutOff(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Timeouts: server.Timeouts{ReadHeader: 1500 * time.Millisecond, Read: 3 * time.Second}})
	slow := map[string]string{
		"headers never end": "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\n",
		"body never comes":  "POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/pkcs10\r\nContent-Length: 1000\r\n\r\nMIIB",
	}
	for name, partial := range slow {
		t.Run(name, func(t *testing.T) {
			c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.Roots(), NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(partial)); err != nil {
				t.Fatal(err)
			}
			// The server must hang up long before this deadline.
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			start := time.Now()
			_, err = io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("server kept a stalled connection open for %v", time.Since(start))
			}
		})
	}
	// An authenticated request whose body stops coming is told so: 408.
	t.Run("authenticated body stalls", func(t *testing.T) {
		c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.Roots(), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		auth := base64.StdEncoding.EncodeToString([]byte(s.User + ":" + s.Password))
		if _, err := c.Write([]byte("POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + auth +
			"\r\nContent-Type: application/pkcs10\r\nContent-Length: 1000\r\n\r\nMIIB")); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		answer, _ := io.ReadAll(c)
		if !bytes.HasPrefix(answer, []byte("HTTP/1.1 408 ")) || !bytes.Contains(answer, []byte("did not arrive in time")) {
			t.Fatalf("a stalled body got:\n%s", answer)
		}
	})
	if st, _, _ := call(t, s.Client(), "GET", s.URL+"/.well-known/est/cacerts", "", nil); st != 200 {
		t.Fatalf("cacerts after slow clients: %d", st)
	}
}
