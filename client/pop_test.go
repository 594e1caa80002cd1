package client_test

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// startLinked runs estd with a label "linked" that requires PoP linking.
func startLinked(t *testing.T) *estdtest.Server {
	t.Helper()
	p := &ca.Profile{
		Name: "linked", Validity: 24 * time.Hour, KeyTypes: ca.DefaultKeyTypes,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SANs: []string{"dns"},
		Auth: []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}, ServerKeyGen: true, RequirePoPLink: true,
	}
	return estdtest.Start(t, estdtest.Options{Profiles: append(ca.DefaultProfiles(), p)})
}

func TestEstdLinked(t *testing.T) {
	t.Parallel()
	s := startLinked(t)
	for _, tc := range []struct {
		name    string
		version uint16
		proto   string // "h2" or "http/1.1"
	}{
		{"TLS1.2-h2", tls.VersionTLS12, "h2"},
		{"TLS1.3-h2", tls.VersionTLS13, "h2"},
		{"TLS1.2-http1", tls.VersionTLS12, "http/1.1"},
		{"TLS1.3-http1", tls.VersionTLS13, "http/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handshakes atomic.Int32
			cfg := &tls.Config{RootCAs: s.Roots(), MinVersion: tc.version, MaxVersion: tc.version, NextProtos: []string{tc.proto},
				VerifyConnection: func(cs tls.ConnectionState) error {
					handshakes.Add(1)
					return nil
				}}
			tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: tc.proto == "h2"}
			c := &client.Client{Server: s.Addr, Label: "linked", Username: s.User, Password: s.Password,
				HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
			key := testpki.Key(t, ca.P256)
			csr := testpki.CSR(t, key, "dev-"+tc.name, []string{"dev.example"}, nil)

			// Unlinked: refused, saying why.
			_, err := c.Enroll(ctx(t), csr)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.StatusCode != http.StatusBadRequest || !strings.Contains(ce.Message, "RFC 7030 3.5") {
				t.Fatalf("unlinked Enroll: %v", err)
			}

			before := handshakes.Load()
			res, err := c.EnrollLinked(ctx(t), csr, key)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Certificate.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
				t.Fatal("the certificate is not for the key")
			}
			if n := handshakes.Load() - before; n != 1 {
				t.Errorf("the linked request took %d TLS connections, want 1", n)
			}
			// The transport really spoke tc.proto.
			resp, err := (&http.Client{Transport: tr.Clone()}).Get(s.URL + est.Path("", est.OpCACerts))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := map[string]string{"h2": "HTTP/2.0", "http/1.1": "HTTP/1.1"}[tc.proto]
			if resp.Proto != want {
				t.Errorf("the transport spoke %s, want %s", resp.Proto, want)
			}

			// Serverkeygen and reenrollment link too.
			if _, err := c.ServerKeyGenLinked(ctx(t), csr, key); err != nil {
				t.Fatalf("ServerKeyGenLinked: %v", err)
			}
			renewer := &client.Client{Server: s.Addr, Label: "linked", TrustAnchors: s.Roots(), Certificate: res.TLSCertificate(key)}
			renewal, err := client.RenewalCSR(res.Certificate, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := renewer.Reenroll(ctx(t), renewal); err == nil {
				t.Fatal("an unlinked renewal was accepted")
			}
			if _, err := renewer.ReenrollLinked(ctx(t), renewal, key); err != nil {
				t.Fatalf("ReenrollLinked: %v", err)
			}
		})
	}
}

func TestEstdLinkedErrors(t *testing.T) {
	t.Parallel()
	s := startLinked(t)
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "dev", nil, nil)
	c := &client.Client{Server: s.Addr, Label: "linked", TrustAnchors: s.Roots(), Username: s.User, Password: s.Password}
	if _, err := c.EnrollLinked(ctx(t), csr, testpki.Key(t, ca.P256)); err == nil || !strings.Contains(err.Error(), "not the CSR's") {
		t.Errorf("linking with another key: %v", err)
	}
	c.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, errors.New("unused") })}
	if _, err := c.EnrollLinked(ctx(t), csr, key); err == nil || !strings.Contains(err.Error(), "*http.Transport") {
		t.Errorf("linking through a custom RoundTripper: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestEstdCSRAttrsAsksForLink(t *testing.T) {
	t.Parallel()
	s := startLinked(t)
	c := &client.Client{Server: s.Addr, TrustAnchors: s.Roots()}
	for label, want := range map[string]bool{"linked": true, "tls-client": false} {
		c.Label = label
		attrs, err := c.CSRAttrs(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if client.AsksForLink(attrs) != want {
			t.Errorf("%s: AsksForLink = %v", label, !want)
		}
	}
}

func TestEstdServerKeyGenEncrypted(t *testing.T) {
	t.Parallel()
	s, c := startEstd(t)
	c.Username, c.Password = s.User, s.Password
	kek := bytes.Repeat([]byte{0x24}, 16)
	id := []byte{0xd1, 0x5e}
	if err := os.WriteFile(filepath.Join(s.Dir, estd.KEKsFile), []byte("* "+hex.EncodeToString(id)+" "+hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Reload(s.ManufacturerFile, "", nil); err != nil {
		t.Fatal(err)
	}
	key := testpki.Key(t, ca.P256)
	csr, err := est.SetRequestAttributes(testpki.CSR(t, key, "sensor", nil, nil), key, est.KeyIDAttribute(est.OIDDecryptKeyID, id))
	if err != nil {
		t.Fatal(err)
	}
	// Without the key the result stays encrypted, for DecryptKey.
	res, err := c.ServerKeyGen(ctx(t), csr)
	if err != nil {
		t.Fatal(err)
	}
	if !res.KeyEncrypted || res.Key != nil {
		t.Fatal("a key the client cannot decrypt is not marked encrypted")
	}
	if err := res.DecryptKey(bytes.Repeat([]byte{1}, 16), nil, s.Roots()); err == nil {
		t.Fatal("decrypted with the wrong key")
	}
	if err := res.DecryptKey(kek, nil, x509.NewCertPool()); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("a key package signed by an untrusted CA: %v", err)
	}
	if err := res.DecryptKey(kek, nil, s.Roots()); err != nil || res.Key == nil || res.KeyEncrypted {
		t.Fatalf("DecryptKey: %v", err)
	}
	// With KeyEncryptionKey, ServerKeyGen decrypts.
	c.KeyEncryptionKey = kek
	res, err = c.ServerKeyGen(ctx(t), csr)
	if err != nil || res.KeyEncrypted || res.Key == nil {
		t.Fatalf("ServerKeyGen with the shared key: %v", err)
	}
	if !res.Certificate.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(res.Key.Public()) {
		t.Fatal("the decrypted key is not the certificate's")
	}

	// Asymmetric: to the key of the TLS client certificate.
	device, deviceKey := s.Manufacturer.Device(t, "SN-ENC-1", time.Now())
	tc := testpki.TLSCertificate(device, deviceKey)
	dc := &client.Client{Server: s.Addr, TrustAnchors: s.Roots(), Certificate: &tc}
	csr, err = est.SetRequestAttributes(testpki.CSR(t, key, "sensor-2", nil, nil), key, est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(device)))
	if err != nil {
		t.Fatal(err)
	}
	res, err = dc.ServerKeyGen(ctx(t), csr)
	if err != nil || res.KeyEncrypted || res.Key == nil {
		t.Fatalf("ServerKeyGen to the TLS certificate: %v", err)
	}
}
