package server_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

func TestCACerts(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	status, hdr, body := call(t, s.Client(), "GET", s.URL+"/.well-known/est/cacerts", "", nil)
	if status != 200 || hdr.Get("Content-Type") != est.MediaPKCS7 || hdr.Get("Content-Transfer-Encoding") != "base64" {
		t.Fatalf("cacerts: %d %v", status, hdr)
	}
	der, err := est.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[1].Equal(s.Root) || !certs[0].Equal(s.Daemon.CA.Cert) {
		t.Fatalf("cacerts returned %d certificates, want issuing CA then root", len(certs))
	}
	if err := certs[0].CheckSignatureFrom(certs[1]); err != nil {
		t.Fatalf("issuing CA not signed by root: %v", err)
	}
	// Every label serves the same chain, without authentication.
	for _, l := range []string{"tls-client", "tls-server"} {
		if st, _, b := call(t, s.Client(), "GET", s.URL+est.Path(l, est.OpCACerts), "", nil); st != 200 || string(b) != string(body) {
			t.Errorf("%s/cacerts: status %d", l, st)
		}
	}
}

// TestEnrollMatrix enrolls every key type under every shipped profile,
// authenticated by Basic and by a manufacturer certificate.
func TestEnrollMatrix(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	device, deviceKey := s.Manufacturer.Device(t, "SN-0001", time.Now())
	auths := map[string]enrollment{
		"basic":        {basic: []string{s.User, s.Password}},
		"manufacturer": {certs: []tls.Certificate{tlsCert(device, deviceKey)}},
	}
	labels := map[string]x509.ExtKeyUsage{"": x509.ExtKeyUsageClientAuth, "tls-client": x509.ExtKeyUsageClientAuth, "tls-server": x509.ExtKeyUsageServerAuth}
	for _, kt := range []ca.KeyType{ca.P256, ca.P384, ca.RSA2048, ca.Ed25519} {
		for label, eku := range labels {
			for how, e := range auths {
				t.Run(fmt.Sprintf("%s/%s/%s", kt, label, how), func(t *testing.T) {
					key := testpki.Key(t, kt)
					cn := fmt.Sprintf("dev-%s-%s-%s", kt, label, how)
					e := e
					e.op, e.label = est.OpSimpleEnroll, label
					e.csr = testpki.CSR(t, key, cn, []string{cn + ".example.net"}, localhost())
					status, reason, cert := e.do(t, s)
					if status != 200 {
						t.Fatalf("status %d: %s", status, reason)
					}
					verify(t, s, cert, eku)
					if cert.Subject.CommonName != cn || !slices.Equal(cert.DNSNames, []string{cn + ".example.net"}) || len(cert.IPAddresses) != 1 {
						t.Errorf("subject %s SANs %v %v: not what the CSR asked", cert.Subject, cert.DNSNames, cert.IPAddresses)
					}
					if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key.Public()) {
						t.Error("certificate is not for the CSR's key")
					}
					if cert.IsCA || len(cert.SubjectKeyId) == 0 || len(cert.AuthorityKeyId) == 0 {
						t.Error("certificate lacks end-entity basics (CA:false, SKI, AKI)")
					}
					if n := cert.SerialNumber.BitLen(); n < 128 {
						t.Errorf("serial has %d bits, want 128 or more", n)
					}
					rec, err := s.Daemon.Store.BySerial(context.Background(), cert.SerialNumber)
					if err != nil {
						t.Fatalf("issued certificate not recorded: %v", err)
					}
					wantAuth := map[string]string{"basic": "basic", "manufacturer": "manufacturer-cert"}[how]
					if string(rec.DER) != string(cert.Raw) || rec.Profile != label || rec.AuthMethod != wantAuth || rec.KeyAlgorithm != kt.Algorithm() || rec.Subject != cert.Subject.String() {
						t.Errorf("record %+v does not describe the issuance", rec)
					}
				})
			}
		}
	}
}

func TestTLSServerProfileNeedsSAN(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	e := enrollment{op: est.OpSimpleEnroll, label: "tls-server", basic: []string{s.User, s.Password},
		csr: testpki.CSR(t, testpki.Key(t, ca.P256), "no-san", nil, nil)}
	if status, reason, _ := e.do(t, s); status != 400 || !strings.Contains(reason, "subjectAltName") {
		t.Fatalf("tls-server without SAN: %d %q, want 400 naming subjectAltName", status, reason)
	}
}

func TestReenroll(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	key := testpki.Key(t, ca.P256)
	first := enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, s.Password}, csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, nil)}
	_, _, cert := first.do(t, s)
	if cert == nil {
		t.Fatal("enrollment failed")
	}
	client := []tls.Certificate{tlsCert(cert, key)}

	t.Run("same key", func(t *testing.T) {
		e := enrollment{op: est.OpSimpleReenroll, certs: client, csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, nil)}
		status, reason, got := e.do(t, s)
		if status != 200 {
			t.Fatalf("%d %s", status, reason)
		}
		if !est.SameName(got.RawSubject, cert.RawSubject) || !slices.Equal(got.DNSNames, cert.DNSNames) || got.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			t.Error("renewed certificate differs in subject/SAN or reuses the serial")
		}
		rec, err := s.Daemon.Store.BySerial(context.Background(), got.SerialNumber)
		if err != nil || rec.AuthMethod != "issued-cert" {
			t.Errorf("renewal record: %+v %v", rec, err)
		}
	})
	t.Run("new key", func(t *testing.T) {
		newKey := testpki.Key(t, ca.RSA2048)
		e := enrollment{op: est.OpSimpleReenroll, certs: client, csr: testpki.CSR(t, newKey, "renew-me", []string{"renew-me.example"}, nil)}
		status, reason, got := e.do(t, s)
		if status != 200 {
			t.Fatalf("%d %s", status, reason)
		}
		if !got.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(newKey.Public()) {
			t.Error("rekeyed certificate is not for the new key")
		}
	})
	refusals := []struct {
		name  string
		e     enrollment
		want  int
		words string
	}{
		{"changed subject", enrollment{certs: client, csr: testpki.CSR(t, key, "someone-else", []string{"renew-me.example"}, nil)}, 403, "subject"},
		{"changed SAN", enrollment{certs: client, csr: testpki.CSR(t, key, "renew-me", []string{"other.example"}, nil)}, 403, "subjectAltName"},
		{"added SAN", enrollment{certs: client, csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, localhost())}, 403, "subjectAltName"},
		{"basic only", enrollment{basic: []string{s.User, s.Password}, csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, nil)}, 403, "certificate being renewed"},
		{"no credentials", enrollment{csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, nil)}, 403, "TLS client certificate is required"},
		{"other label", enrollment{label: "tls-server", certs: client, csr: testpki.CSR(t, key, "renew-me", []string{"renew-me.example"}, nil)}, 403, "issued under label"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before := count(t, s)
			r.e.op = est.OpSimpleReenroll
			status, reason, _ := r.e.do(t, s)
			if status != r.want || !strings.Contains(reason, r.words) {
				t.Fatalf("got %d %q, want %d mentioning %q", status, reason, r.want, r.words)
			}
			if after := count(t, s); after != before {
				t.Fatalf("a refused reenrollment recorded %d certificates", after-before)
			}
		})
	}
	t.Run("manufacturer certificate cannot reenroll", func(t *testing.T) {
		dev, devKey := s.Manufacturer.Device(t, "SN-renew", time.Now())
		e := enrollment{op: est.OpSimpleReenroll, certs: []tls.Certificate{tlsCert(dev, devKey)}, csr: testpki.CSR(t, devKey, "SN-renew", nil, nil)}
		if status, _, _ := e.do(t, s); status != 403 {
			t.Fatalf("got %d, want 403", status)
		}
	})
	t.Run("revoked certificate refused", func(t *testing.T) {
		k := testpki.Key(t, ca.P256)
		_, _, c := enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, s.Password}, csr: testpki.CSR(t, k, "to-revoke", nil, nil)}.do(t, s)
		if err := s.Daemon.Store.Revoke(context.Background(), c.SerialNumber, 1, time.Now()); err != nil {
			t.Fatal(err)
		}
		e := enrollment{op: est.OpSimpleReenroll, certs: []tls.Certificate{tlsCert(c, k)}, csr: testpki.CSR(t, k, "to-revoke", nil, nil)}
		if status, reason, _ := e.do(t, s); status != 403 || !strings.Contains(reason, "revoked") {
			t.Fatalf("got %d %q, want 403 revoked", status, reason)
		}
	})
}

// TestSameSubjectTwoKeys: a subject may hold certificates for an ECDSA and an
// RSA key at once; issuing the second revokes nothing.
func TestSameSubjectTwoKeys(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	var certs []*x509.Certificate
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048} {
		e := enrollment{op: est.OpSimpleEnroll, label: "tls-server", basic: []string{s.User, s.Password},
			csr: testpki.CSR(t, testpki.Key(t, kt), "dual.example", []string{"dual.example"}, nil)}
		status, reason, c := e.do(t, s)
		if status != 200 {
			t.Fatalf("%s: %d %s", kt, status, reason)
		}
		certs = append(certs, c)
	}
	recs, err := s.Daemon.Store.BySubject(context.Background(), certs[0].Subject.String())
	if err != nil || len(recs) != 2 {
		t.Fatalf("BySubject: %d records, %v", len(recs), err)
	}
	for i, c := range certs {
		verify(t, s, c, x509.ExtKeyUsageServerAuth)
		if recs[i].Revoked {
			t.Errorf("certificate %d revoked", i)
		}
	}
}

func TestAuthenticationRefusals(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	now := time.Now()
	rogue := testpki.Rogue(t, now)
	rogueCert, rogueKey := rogue.Device(t, "SN-0001", now)
	expired, expiredKey := s.Manufacturer.Expired(t, "SN-old", now)
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "SN-0001", nil, nil)
	cases := []struct {
		name   string
		e      enrollment
		status int
		words  string
	}{
		{"no credentials", enrollment{}, 401, "authentication required"},
		{"wrong password", enrollment{basic: []string{s.User, "wrong-password"}}, 401, "invalid user name or password"},
		{"unknown user", enrollment{basic: []string{"nobody", s.Password}}, 401, "invalid user name or password"},
		{"rogue manufacturer", enrollment{certs: []tls.Certificate{tlsCert(rogueCert, rogueKey)}}, 403, "not issued by a trusted CA"},
		{"expired manufacturer certificate", enrollment{certs: []tls.Certificate{tlsCert(expired, expiredKey)}}, 403, "expired"},
	}
	for _, c := range cases {
		for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
			t.Run(c.name+"/"+string(op), func(t *testing.T) {
				before := count(t, s)
				c.e.op, c.e.csr = op, csr
				status, reason, _ := c.e.do(t, s)
				if status != c.status || !strings.Contains(reason, c.words) {
					t.Fatalf("got %d %q, want %d mentioning %q", status, reason, c.status, c.words)
				}
				if after := count(t, s); after != before {
					t.Fatal("a refused request was issued a certificate")
				}
			})
		}
	}
	t.Run("401 carries WWW-Authenticate", func(t *testing.T) {
		_, hdr, _ := call(t, s.Client(), "POST", s.URL+"/.well-known/est/simpleenroll", est.MediaPKCS10, est.EncodeBase64(csr))
		if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Fatalf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
		}
	})
}

func TestServerKeyGen(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	for _, kt := range []ca.KeyType{ca.P256, ca.RSA2048, ca.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			csr := testpki.CSR(t, testpki.Key(t, kt), "keygen-"+string(kt), []string{"kg.example"}, nil)
			status, hdr, body := call(t, s.Client(), "POST", s.URL+"/.well-known/est/tls-server/serverkeygen", est.MediaPKCS10, est.EncodeBase64(csr), s.User, s.Password)
			if status != 200 {
				t.Fatalf("%d %s", status, body)
			}
			resp, err := est.ParseServerKeyGen(hdr.Get("Content-Type"), body)
			if err != nil {
				t.Fatal(err)
			}
			key, err := x509.ParsePKCS8PrivateKey(resp.Key)
			if err != nil {
				t.Fatal(err)
			}
			p7, err := est.ParseCertsOnly(resp.Certs)
			if err != nil {
				t.Fatal(err)
			}
			cert := p7[0]
			pub := key.(interface{ Public() crypto.PublicKey }).Public()
			if !cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
				t.Fatal("the returned key does not match the certificate")
			}
			if got, _ := ca.KeyTypeOf(pub); got != kt {
				t.Errorf("server generated %s, want %s like the CSR's key", got, kt)
			}
			if cert.Subject.CommonName != "keygen-"+string(kt) || !slices.Equal(cert.DNSNames, []string{"kg.example"}) {
				t.Errorf("certificate %s %v does not carry the CSR's names", cert.Subject, cert.DNSNames)
			}
			verify(t, s, cert, x509.ExtKeyUsageServerAuth)
		})
	}
	// The CSR's own signature algorithm is held to the same policy as on
	// simpleenroll, though the certificate is for the server's key.
	sha1, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "keygen-sha1"}, DNSNames: []string{"kg.example"}, SignatureAlgorithm: x509.SHA1WithRSA,
	}, testpki.Key(t, ca.RSA2048))
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := call(t, s.Client(), "POST", s.URL+"/.well-known/est/tls-server/serverkeygen", est.MediaPKCS10, est.EncodeBase64(sha1), s.User, s.Password)
	if status != 400 || !strings.Contains(string(body), "SHA-256") {
		t.Errorf("serverkeygen with a SHA-1 signed CSR: %d %s, want 400 naming SHA-256", status, body)
	}
}

func TestCSRAttrs(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	status, hdr, body := call(t, s.Client(), "GET", s.URL+"/.well-known/est/tls-server/csrattrs", "", nil)
	if status != 200 || hdr.Get("Content-Type") != est.MediaCSRAttrs {
		t.Fatalf("%d %v", status, hdr)
	}
	der, err := est.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := est.ParseCSRAttrs(der)
	if err != nil {
		t.Fatal(err)
	}
	if oids := attrs.OIDs(); len(oids) != 2 || !oids[0].Equal(est.OIDECDSAWithSHA256) || !oids[1].Equal(est.OIDECPublicKey) {
		t.Errorf("tls-server csrattrs = %v", oids)
	}
	if status, _, body := call(t, s.Client(), "GET", s.URL+"/.well-known/est/csrattrs", "", nil); status != 204 || len(body) != 0 {
		t.Errorf("default csrattrs: %d %q, want 204 and no body", status, body)
	}
}

func TestRestartKeepsCAAndRecords(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	_, _, cert := enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, s.Password}, csr: testpki.CSR(t, testpki.Key(t, ca.P256), "persist", nil, nil)}.do(t, s)
	root, password := s.Root, s.Password
	s.Restart(t)
	if !s.Daemon.Root.Equal(root) || s.Daemon.Created || s.Daemon.BootstrapPassword != "" {
		t.Fatal("restart created a new CA or users file")
	}
	if _, err := s.Daemon.Store.BySerial(context.Background(), cert.SerialNumber); err != nil {
		t.Fatalf("record lost across restart: %v", err)
	}
	// The old password still works and the CA still issues.
	if status, reason, _ := (enrollment{op: est.OpSimpleEnroll, basic: []string{s.User, password}, csr: testpki.CSR(t, testpki.Key(t, ca.P256), "persist-2", nil, nil)}).do(t, s); status != 200 {
		t.Fatalf("after restart: %d %s", status, reason)
	}
}

func TestUnknownLabel(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	for _, p := range []string{"/.well-known/est/nope/cacerts", "/.well-known/est/nope/simpleenroll"} {
		if status, _, _ := call(t, s.Client(), "GET", s.URL+p, "", nil); status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, status)
		}
	}
}

// count returns how many certificates the store holds.
func count(t *testing.T, s *estdtest.Server) int {
	t.Helper()
	n, after := 0, ""
	for {
		recs, next, err := s.Daemon.Store.List(context.Background(), store.ListOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n += len(recs)
		if next == "" {
			return n
		}
		after = next
	}
}
