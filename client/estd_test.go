package client_test

// Tests against a real estd, started in process.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// startEstd runs estd for the test and returns a client that trusts its root.
func startEstd(t *testing.T) (*estdtest.Server, *client.Client) {
	t.Helper()
	s := estdtest.Start(t, estdtest.Options{})
	return s, &client.Client{Server: s.Addr, TrustAnchors: s.Roots()}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEstdCACerts(t *testing.T) {
	t.Parallel()
	s, c := startEstd(t)
	c.Server = s.URL // the URL form works as well as host:port
	certs, err := c.CACerts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(s.Daemon.CA.Cert) || !certs[1].Equal(s.Root) {
		t.Fatalf("got %d certificates, want the issuing CA then the root", len(certs))
	}
	// Labels serve the same chain.
	c.Label = "tls-server"
	if certs, err := c.CACerts(ctx(t)); err != nil || len(certs) != 2 {
		t.Fatalf("tls-server/cacerts: %d certificates, %v", len(certs), err)
	}
}

func TestEstdBootstrap(t *testing.T) {
	t.Parallel()
	s := estdtest.Start(t, estdtest.Options{})
	c := &client.Client{Server: s.Addr}

	// Without an anchor the server is not trusted: the system roots do not hold estd's.
	_, err := c.CACerts(ctx(t))
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("CACerts without an anchor: %v, want an unknown authority error", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("TLS failure %T is not the wrapped *url.Error", err)
	}

	res, err := c.Bootstrap(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(s.Root.Raw)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))
	if got := strings.ReplaceAll(res.Fingerprint, ":", ""); got != want {
		t.Fatalf("fingerprint %s, want the root's SHA-256 %s", res.Fingerprint, want)
	}
	if res.Fingerprint != est.Fingerprint(s.Root) {
		t.Errorf("fingerprint %s, estd prints %s", res.Fingerprint, est.Fingerprint(s.Root))
	}
	if !res.Root.Equal(s.Root) || len(res.Certs) != 2 {
		t.Fatalf("bootstrap root/certs wrong: %d certs", len(res.Certs))
	}
	if !res.Matches(strings.ToLower(want)) || !res.Matches("sha256 Fingerprint="+est.Fingerprint(s.Root)) {
		t.Error("Matches refuses the right fingerprint in another spelling")
	}
	if res.Matches(est.Fingerprint(s.Daemon.CA.Cert)) || res.Matches("") {
		t.Error("Matches accepts a wrong fingerprint")
	}

	// Once the fingerprint is checked, the root authenticates the server.
	c.TrustAnchors = res.Anchors()
	if _, err := c.CACerts(ctx(t)); err != nil {
		t.Fatalf("CACerts after bootstrap: %v", err)
	}
}

func TestEstdCSRAttrs(t *testing.T) {
	t.Parallel()
	_, c := startEstd(t)
	c.Label = "tls-server"
	attrs, err := c.CSRAttrs(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if oids := attrs.OIDs(); len(oids) != 2 || !oids[0].Equal(est.OIDECDSAWithSHA256) || !oids[1].Equal(est.OIDECPublicKey) {
		t.Errorf("tls-server csrattrs: %v", oids)
	}
	c.Label = ""
	attrs, err = c.CSRAttrs(ctx(t))
	if err != nil || len(attrs) != 0 {
		t.Errorf("default label (204): %v, %v; want empty, nil", attrs, err)
	}
}

func TestEstdEnroll(t *testing.T) {
	t.Parallel()
	s, base := startEstd(t)
	inter := x509.NewCertPool()
	inter.AddCert(s.Daemon.CA.Cert)
	check := func(t *testing.T, e *client.Enrollment, key any, cn string) {
		t.Helper()
		if e.Certificate.Subject.CommonName != cn || !samePublic(e.Certificate.PublicKey, key) {
			t.Errorf("issued %s for another key or name", e.Certificate.Subject)
		}
		if _, err := e.Certificate.Verify(x509.VerifyOptions{Roots: s.Roots(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("issued certificate does not verify: %v", err)
		}
		if len(e.Extra) != 0 || e.Key != nil {
			t.Errorf("enrollment has %d extra certificates and key %T", len(e.Extra), e.Key)
		}
	}
	t.Run("basic", func(t *testing.T) {
		c := &client.Client{Server: base.Server, TrustAnchors: base.TrustAnchors, Username: s.User, Password: s.Password}
		key := ecKey(t)
		e, err := c.Enroll(ctx(t), csr(t, key, "basic-device"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, e, key.Public(), "basic-device")
	})
	t.Run("manufacturer certificate", func(t *testing.T) {
		dev, devKey := s.Manufacturer.Device(t, "SN-4711", time.Now())
		tc := testpki.TLSCertificate(dev, devKey)
		c := &client.Client{Server: base.Server, TrustAnchors: base.TrustAnchors, Certificate: &tc}
		key := ecKey(t)
		e, err := c.Enroll(ctx(t), csr(t, key, "SN-4711"))
		if err != nil {
			t.Fatal(err)
		}
		check(t, e, key.Public(), "SN-4711")
		rec, err := s.Daemon.Store.BySerial(context.Background(), e.Certificate.SerialNumber)
		if err != nil || rec.AuthMethod != "manufacturer-cert" {
			t.Errorf("record %+v, %v: want authenticated by the manufacturer certificate", rec, err)
		}
	})
}

func TestEstdReenroll(t *testing.T) {
	t.Parallel()
	s, base := startEstd(t)
	c := &client.Client{Server: base.Server, TrustAnchors: base.TrustAnchors, Username: s.User, Password: s.Password}
	key := ecKey(t)
	first, err := c.Enroll(ctx(t), csr(t, key, "renew-me", "renew-me.example"))
	if err != nil {
		t.Fatal(err)
	}

	// Renewal is authenticated by the certificate being renewed, not Basic.
	r := &client.Client{Server: base.Server, TrustAnchors: base.TrustAnchors, Certificate: first.TLSCertificate(key)}
	t.Run("same key", func(t *testing.T) {
		got, err := r.Reenroll(ctx(t), csr(t, key, "renew-me", "renew-me.example"))
		if err != nil {
			t.Fatal(err)
		}
		if !samePublic(got.Certificate.PublicKey, key.Public()) || got.Certificate.SerialNumber.Cmp(first.Certificate.SerialNumber) == 0 {
			t.Error("renewal: wrong key or the same serial")
		}
		rec, err := s.Daemon.Store.BySerial(context.Background(), got.Certificate.SerialNumber)
		if err != nil || rec.AuthMethod != "issued-cert" {
			t.Errorf("record %+v, %v: want authenticated by the issued certificate", rec, err)
		}
	})
	t.Run("new key", func(t *testing.T) {
		newKey := rsaKey()
		req, err := client.RenewalCSR(first.Certificate, newKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Reenroll(ctx(t), req)
		if err != nil {
			t.Fatal(err)
		}
		if !samePublic(got.Certificate.PublicKey, newKey.Public()) {
			t.Error("rekey: certificate is not for the new key")
		}
	})
	t.Run("changed subject refused", func(t *testing.T) {
		_, err := r.Reenroll(ctx(t), csr(t, key, "someone-else", "renew-me.example"))
		if !errors.Is(err, est.ErrForbidden) || !strings.Contains(err.Error(), "subject") {
			t.Fatalf("got %v, want 403 about the subject", err)
		}
	})
}

func TestEstdServerKeyGen(t *testing.T) {
	t.Parallel()
	s, c := startEstd(t)
	c.Username, c.Password, c.Label = s.User, s.Password, "tls-server"
	for _, tc := range []struct {
		name string
		key  func() crypto.Signer
	}{
		{"ec", func() crypto.Signer { return ecKey(t) }},
		{"rsa", func() crypto.Signer { return rsaKey() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der := csr(t, tc.key(), "kg-"+tc.name, "kg.example")
			e, err := c.ServerKeyGen(ctx(t), der)
			if err != nil {
				t.Fatal(err)
			}
			if e.Key == nil || e.KeyEncrypted || len(e.KeyDER) == 0 {
				t.Fatal("no key returned")
			}
			if !samePublic(e.Certificate.PublicKey, e.Key.Public()) {
				t.Fatal("the key does not match the certificate")
			}
			var wantType bool
			switch e.Key.(type) {
			case *ecdsa.PrivateKey:
				wantType = tc.name == "ec"
			case *rsa.PrivateKey:
				wantType = tc.name == "rsa"
			}
			if !wantType {
				t.Errorf("server generated a %T for a %s request", e.Key, tc.name)
			}
			if e.Certificate.Subject.CommonName != "kg-"+tc.name || len(e.Certificate.DNSNames) != 1 {
				t.Errorf("certificate %s %v lacks the request's names", e.Certificate.Subject, e.Certificate.DNSNames)
			}
		})
	}
}

func TestEstdErrors(t *testing.T) {
	t.Parallel()
	s, base := startEstd(t)
	now := time.Now()
	rogueCert, rogueKey := testpki.Rogue(t, now).Device(t, "SN-0001", now)
	rogue := testpki.TLSCertificate(rogueCert, rogueKey)
	good := csr(t, ecKey(t), "SN-0001")
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-5] ^= 0xff // inside the signature: parses, does not verify

	cases := []struct {
		name   string
		c      client.Client
		label  string
		csr    []byte
		status int
		kind   *est.Kind
		words  string
	}{
		{"no credentials", client.Client{}, "", good, 401, est.ErrUnauthorized, "authentication required"},
		{"wrong password", client.Client{Username: s.User, Password: "wrong"}, "", good, 401, est.ErrUnauthorized, "invalid user name or password"},
		{"rogue certificate", client.Client{Certificate: &rogue}, "", good, 403, est.ErrForbidden, "not issued by a trusted CA"},
		{"policy: tls-server without SAN", client.Client{Username: s.User, Password: s.Password}, "tls-server", good, 400, est.ErrBadRequest, "subjectAltName"},
		{"bad request: CSR signature", client.Client{Username: s.User, Password: s.Password}, "", badSig, 400, est.ErrBadRequest, "signature"},
		{"unknown label", client.Client{Username: s.User, Password: s.Password}, "no-such-label", good, 404, est.ErrNotFound, "unknown label"},
	}
	for i := range cases {
		tc := &cases[i]
		t.Run(tc.name, func(t *testing.T) {
			c := &tc.c
			c.Server, c.TrustAnchors, c.Label = base.Server, base.TrustAnchors, tc.label
			_, err := c.Enroll(ctx(t), tc.csr)
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("got %T %v, want *client.Error", err, err)
			}
			if e.StatusCode != tc.status || e.Op != est.OpSimpleEnroll || !strings.Contains(e.Message, tc.words) {
				t.Fatalf("got %d %q (%s), want %d mentioning %q", e.StatusCode, e.Message, e.Op, tc.status, tc.words)
			}
			if !errors.Is(err, tc.kind) || !errors.Is(err, client.ErrRejected) || errors.Is(err, client.ErrServerFailure) {
				t.Errorf("%v: errors.Is does not classify it as %v and 4xx", err, tc.kind)
			}
			for _, k := range []*est.Kind{est.ErrUnauthorized, est.ErrForbidden, est.ErrBadRequest, est.ErrNotFound} {
				if k != tc.kind && errors.Is(err, k) {
					t.Errorf("%v also matches %v", err, k)
				}
			}
			if strings.Contains(e.Message, "\n") {
				t.Errorf("message %q is not one line", e.Message)
			}
		})
	}
	t.Run("network failure", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		c := &client.Client{Server: addr, TrustAnchors: base.TrustAnchors}
		_, err = c.CACerts(ctx(t))
		var e *client.Error
		var op *net.OpError
		if err == nil || errors.As(err, &e) || !errors.As(err, &op) {
			t.Fatalf("got %T %v, want a wrapped *net.OpError", err, err)
		}
		if errors.Is(err, client.ErrRejected) || errors.Is(err, client.ErrServerFailure) {
			t.Errorf("a network failure classified as an HTTP status: %v", err)
		}
	})
	t.Run("unparsable CSR is not sent", func(t *testing.T) {
		c := &client.Client{Server: base.Server, TrustAnchors: base.TrustAnchors}
		_, err := c.Enroll(ctx(t), []byte("not a CSR"))
		var e *client.Error
		if err == nil || errors.As(err, &e) {
			t.Fatalf("got %v, want a local error", err)
		}
	})
}
