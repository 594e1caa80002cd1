package server_test

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// linkedProfiles are a label that requires PoP linking, one that also lets
// registration authorities through, and one that requires nothing.
func linkedProfiles() []*ca.Profile {
	base := func(name string) *ca.Profile {
		return &ca.Profile{
			Name: name, Validity: 24 * time.Hour, KeyTypes: ca.DefaultKeyTypes,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SANs: []string{"dns"},
			Auth: []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}, ServerKeyGen: true,
		}
	}
	linked, ra, plain := base("linked"), base("linked-ra"), base("")
	linked.RequirePoPLink = true
	ra.RequirePoPLink, ra.AllowRA = true, true
	linked.CSRAttrs = est.CSRAttrs{{OID: est.OIDECDSAWithSHA256}}
	return []*ca.Profile{plain, linked, ra}
}

// tlsConn is one TLS connection to estd on which HTTP/1.1 requests are sent
// by hand, so a test knows which connection a request goes on.
type tlsConn struct {
	t    *testing.T
	conn *tls.Conn
	br   *bufio.Reader
	host string
}

func dialTLS(t *testing.T, s *estdtest.Server, version uint16, certs ...tls.Certificate) *tlsConn {
	t.Helper()
	conn, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: s.Roots(), Certificates: certs, MinVersion: version, MaxVersion: version, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &tlsConn{t: t, conn: conn, br: bufio.NewReader(conn), host: s.Addr}
}

// link returns the challengePassword that links a CSR to c.
func (c *tlsConn) link() string {
	cs := c.conn.ConnectionState()
	v, err := est.LinkValue(&cs)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// post sends a CSR to label's op on c and returns the status and body.
func (c *tlsConn) post(label string, op est.Operation, csr []byte, basic ...string) (int, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", "https://"+c.host+est.Path(label, op), bytes.NewReader(est.EncodeBase64(csr)))
	req.Header.Set("Content-Type", est.MediaPKCS10)
	if len(basic) == 2 {
		req.SetBasicAuth(basic[0], basic[1])
	}
	if err := req.Write(c.conn); err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// linkedCSR returns a CSR for key with challengePassword pw ("" for none).
func linkedCSR(t *testing.T, key crypto.Signer, cn, pw string) []byte {
	t.Helper()
	csr := testpki.CSR(t, key, cn, []string{cn + ".example"}, nil)
	if pw == "" {
		return csr
	}
	csr, err := est.SetRequestAttributes(csr, key, est.ChallengePasswordAttribute(pw))
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestPoPLink(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: linkedProfiles()})
	basic := []string{s.User, s.Password}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := map[uint16]string{tls.VersionTLS12: "TLS1.2", tls.VersionTLS13: "TLS1.3"}[v]
		t.Run(name, func(t *testing.T) {
			key := testpki.Key(t, ca.P256)
			c := dialTLS(t, s, v)
			for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
				if st, body := c.post("linked", op, linkedCSR(t, key, "dev", c.link()), basic...); st != http.StatusOK {
					t.Fatalf("%s linked to its connection: %d %s", op, st, body)
				}
			}
			// Linked to another connection: refused, whichever way round.
			other := dialTLS(t, s, v)
			st, body := c.post("linked", est.OpSimpleEnroll, linkedCSR(t, key, "dev", other.link()), basic...)
			if st != http.StatusBadRequest || !strings.Contains(body, "does not match this TLS connection") {
				t.Fatalf("CSR linked to another connection: %d %s", st, body)
			}
			// Not linked, or not a link at all.
			for _, pw := range []string{"", "secret", base64.StdEncoding.EncodeToString(make([]byte, 32))} {
				st, body := c.post("linked", est.OpSimpleEnroll, linkedCSR(t, key, "dev", pw), basic...)
				if st != http.StatusBadRequest {
					t.Fatalf("challengePassword %q: %d %s", pw, st, body)
				}
				if pw == "" && !strings.Contains(body, "RFC 7030 3.5") {
					t.Fatalf("the refusal does not say what is missing: %s", body)
				}
			}
			// A label that does not ask ignores the link.
			if st, body := c.post("", est.OpSimpleEnroll, linkedCSR(t, key, "dev", other.link()), basic...); st != http.StatusOK {
				t.Fatalf("unlinked label: %d %s", st, body)
			}
			// Reenrollment is linked too.
			st, body = c.post("linked", est.OpSimpleEnroll, linkedCSR(t, key, "dev", c.link()), basic...)
			if st != http.StatusOK {
				t.Fatalf("enroll: %d %s", st, body)
			}
			der, _ := est.DecodeBase64([]byte(body))
			certs, _ := est.ParseCertsOnly(der)
			renewer := dialTLS(t, s, v, tlsCert(certs[0], key))
			renewal, err := est.SetRequestAttributes(renewalCSR(t, certs[0], key), key, est.ChallengePasswordAttribute(renewer.link()))
			if err != nil {
				t.Fatal(err)
			}
			if st, body := renewer.post("linked", est.OpSimpleReenroll, renewal); st != http.StatusOK {
				t.Fatalf("linked reenroll: %d %s", st, body)
			}
			if st, body := renewer.post("linked", est.OpSimpleReenroll, renewalCSR(t, certs[0], key)); st != http.StatusBadRequest {
				t.Fatalf("unlinked reenroll: %d %s", st, body)
			}
		})
	}
}

func renewalCSR(t *testing.T, cert *x509.Certificate, key crypto.Signer) []byte {
	t.Helper()
	req := &x509.CertificateRequest{RawSubject: cert.RawSubject}
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(est.OIDSubjectAltName) {
			req.ExtraExtensions = append(req.ExtraExtensions, ext)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, req, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// raCert returns a manufacturer certificate with EKU id-kp-cmcRA.
func raCert(t *testing.T, m *testpki.CA) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := testpki.Key(t, ca.P256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "Acme RA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 28}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.Cert, key.Public(), m.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func TestPoPLinkRA(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: linkedProfiles()})
	ra, raKey := raCert(t, s.Manufacturer)
	device, deviceKey := s.Manufacturer.Device(t, "SN-RA-1", time.Now())
	// The RA submits a CSR a device made: no link to the RA's connection.
	csr := linkedCSR(t, testpki.Key(t, ca.P256), "dev-behind-ra", "")
	for _, tc := range []struct {
		label string
		cert  tls.Certificate
		want  int
	}{
		{"linked-ra", tlsCert(ra, raKey), http.StatusOK},
		{"linked", tlsCert(ra, raKey), http.StatusBadRequest},            // the label does not allow RAs
		{"linked-ra", tlsCert(device, deviceKey), http.StatusBadRequest}, // not an RA
	} {
		c := dialTLS(t, s, tls.VersionTLS13, tc.cert)
		if st, body := c.post(tc.label, est.OpSimpleEnroll, csr); st != tc.want {
			t.Errorf("%s by %s: %d %s, want %d", tc.label, tc.cert.Leaf.Subject.CommonName, st, body, tc.want)
		}
	}
	// An RA that is not authenticated as one (Basic) gets no exemption.
	c := dialTLS(t, s, tls.VersionTLS13)
	if st, body := c.post("linked-ra", est.OpSimpleEnroll, csr, s.User, s.Password); st != http.StatusBadRequest {
		t.Errorf("Basic on an RA label: %d %s", st, body)
	}
}

func TestPoPLinkCSRAttrs(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: linkedProfiles()})
	for label, want := range map[string][]string{
		"linked":    {est.OIDECDSAWithSHA256.String(), est.OIDChallengePassword.String()},
		"linked-ra": {est.OIDChallengePassword.String()},
	} {
		st, _, body := call(t, s.Client(), "GET", s.URL+est.Path(label, est.OpCSRAttrs), "", nil)
		if st != http.StatusOK {
			t.Fatalf("%s/csrattrs: %d", label, st)
		}
		der, _ := est.DecodeBase64(body)
		attrs, err := est.ParseCSRAttrs(der)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, oid := range attrs.OIDs() {
			got = append(got, oid.String())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s/csrattrs = %v, want %v", label, got, want)
		}
	}
	if st, _, _ := call(t, s.Client(), "GET", s.URL+est.Path("", est.OpCSRAttrs), "", nil); st != http.StatusNoContent {
		t.Errorf("an unlinked label without attributes answers %d, want 204", st)
	}
}

func TestPoPLinkProfileCheck(t *testing.T) {
	p := linkedProfiles()[1]
	p.ManualApproval = true
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "manual approval") {
		t.Errorf("linking with manual approval: %v", err)
	}
	p = linkedProfiles()[2]
	p.Auth = []auth.Method{auth.Basic}
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "registration authority") {
		t.Errorf("an RA label without certificate authentication: %v", err)
	}
}
