package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// newCA makes a root and an issuing CA valid for issuingValidity from t0.
func newCA(t *testing.T, issuingValidity time.Duration) *ca.CA {
	t.Helper()
	rootKey, _ := ca.GenerateKey(ca.P256)
	root, err := ca.NewRoot(rootKey, pkix.Name{CommonName: "Test Root"}, t0, 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	subKey, _ := ca.GenerateKey(ca.P256)
	sub, err := ca.NewSubCA(root, rootKey, subKey.Public(), pkix.Name{CommonName: "Test Issuing"}, t0, issuingValidity)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.New(sub, subKey, []*x509.Certificate{sub, root})
	if err != nil {
		t.Fatal(err)
	}
	c.Clock = func() time.Time { return t0.Add(time.Hour) }
	return c
}

func csr(t *testing.T, kt ca.KeyType, tmpl *x509.CertificateRequest) *x509.CertificateRequest {
	t.Helper()
	key, err := ca.GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	req, err := est.ParseCSR(der)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func profile(name string) *ca.Profile {
	for _, p := range ca.DefaultProfiles() {
		if p.Name == name {
			return p
		}
	}
	panic(name)
}

func TestIssueTemplate(t *testing.T) {
	c := newCA(t, 5*365*24*time.Hour)
	u, _ := url.Parse("urn:dev:ops:32473-Widget-1")
	req := csr(t, ca.RSA2048, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "widget-1", Organization: []string{"Acme"}},
		DNSNames:    []string{"widget-1.example"},
		IPAddresses: []net.IP{net.ParseIP("2001:db8::1")},
		URIs:        []*url.URL{u},
	})
	cert, err := c.Issue(context.Background(), req, profile(""), auth.Identity{Method: auth.Basic, Name: "est"})
	if err != nil {
		t.Fatal(err)
	}
	if string(cert.RawSubject) != string(req.RawSubject) {
		t.Error("subject not copied byte for byte")
	}
	if len(cert.DNSNames) != 1 || len(cert.IPAddresses) != 1 || len(cert.URIs) != 1 {
		t.Errorf("SANs %v %v %v", cert.DNSNames, cert.IPAddresses, cert.URIs)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("RSA key usage %v", cert.KeyUsage)
	}
	if want := t0.Add(time.Hour).Add(-time.Minute); !cert.NotBefore.Equal(want) {
		t.Errorf("NotBefore %v, want %v (one minute backdated)", cert.NotBefore, want)
	}
	if want := t0.Add(time.Hour).Add(90 * 24 * time.Hour); !cert.NotAfter.Equal(want) {
		t.Errorf("NotAfter %v, want %v", cert.NotAfter, want)
	}
	if err := cert.CheckSignatureFrom(c.Cert); err != nil {
		t.Error(err)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 159 {
		t.Errorf("serial %x: want positive, at most 159 bits (20 octets)", cert.SerialNumber)
	}
	// The serial's time prefix is the issuance time on the CA's clock.
	if ms, want := new(big.Int).Rsh(cert.SerialNumber, 112).Int64(), t0.Add(time.Hour).UnixMilli(); ms != want {
		t.Errorf("serial %x: time prefix %d, want %d (the CA's clock)", cert.SerialNumber, ms, want)
	}
	ecReq := csr(t, ca.P384, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ec"}})
	ec, err := c.Issue(context.Background(), ecReq, profile("tls-client"), auth.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	if ec.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("ECDSA key usage %v", ec.KeyUsage)
	}
}

func TestValidityCappedByIssuer(t *testing.T) {
	c := newCA(t, 30*24*time.Hour) // expires before the 90-day profile would
	cert, err := c.Issue(context.Background(), csr(t, ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}), profile(""), auth.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Equal(c.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want the issuer's %v", cert.NotAfter, c.Cert.NotAfter)
	}
	c.Clock = func() time.Time { return c.Cert.NotAfter.Add(time.Second) }
	_, err = c.Issue(context.Background(), csr(t, ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}}), profile(""), auth.Identity{})
	if !errors.Is(err, est.ErrUnavailable) {
		t.Errorf("issuing past the CA's expiry: %v, want ErrUnavailable", err)
	}
}

func TestIssuePolicyRefusals(t *testing.T) {
	c := newCA(t, 365*24*time.Hour)
	p256only := &ca.Profile{Name: "p", Validity: time.Hour, KeyTypes: []ca.KeyType{ca.P256}, SANs: []string{"dns"}, Auth: []auth.Method{auth.Basic}}
	cases := map[string]struct {
		kt  ca.KeyType
		req *x509.CertificateRequest
		p   *ca.Profile
	}{
		"key type not allowed":   {ca.P384, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}}, p256only},
		"SAN kind not allowed":   {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, EmailAddresses: []string{"a@example.com"}}, p256only},
		"tls-server without SAN": {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}}, profile("tls-server")},
		"tls-server email only":  {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, EmailAddresses: []string{"a@example.com"}}, profile("tls-server")},
		"empty subject, no SAN":  {ca.P256, &x509.CertificateRequest{}, profile("")},
		"wildcard DNS":           {ca.P256, &x509.CertificateRequest{DNSNames: []string{"*.example.com"}}, profile("tls-server")},
		"DNS with space":         {ca.P256, &x509.CertificateRequest{DNSNames: []string{"bad name.example"}}, profile("tls-server")},
		"DNS like an IP":         {ca.P256, &x509.CertificateRequest{DNSNames: []string{"10.0.0.1"}}, profile("tls-server")},
		"email with name":        {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, EmailAddresses: []string{"Bob <bob@example.com>"}}, profile("")},
		"relative URI":           {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, URIs: []*url.URL{{Path: "relative"}}}, profile("")},
		"NUL in the subject":     {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev\x00ice"}}, profile("")},
		"line separator":         {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev\u2028ice"}}, profile("")},
		"right-to-left mark":     {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev\u200fice"}}, profile("")},
		"bidi override":          {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev\u202eeci"}}, profile("")},
		"newline in the subject": {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a", Organization: []string{"Acme\nEvil"}}}, profile("")},
		"otherName SAN":          {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectAltName, Value: sanExt(t, 0)}}}, profile("")},
		"directoryName SAN":      {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectAltName, Value: sanExt(t, 4)}}}, profile("")},
		"registeredID SAN":       {ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}, ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectAltName, Value: sanExt(t, 8)}}}, profile("")},
	}
	for name, tc := range cases {
		req := csr(t, tc.kt, tc.req)
		_, err := c.Issue(context.Background(), req, tc.p, auth.Identity{})
		if !errors.Is(err, est.ErrPolicy) {
			t.Errorf("%s: %v, want ErrPolicy", name, err)
		}
		// Check, short of signing, says the same.
		if cerr := c.Check(req, tc.p); cerr == nil || cerr.Error() != err.Error() {
			t.Errorf("%s: Check %v, Issue %v", name, cerr, err)
		}
	}
	if err := c.Check(csr(t, ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "fine"}, DNSNames: []string{"fine.example"}}), profile("")); err != nil {
		t.Errorf("Check of an ordinary CSR: %v", err)
	}
	// A CSR signed with SHA-1 is refused: its signature is the proof of possession.
	rk, _ := ca.GenerateKey(ca.RSA2048)
	sha1DER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sha1"}, SignatureAlgorithm: x509.SHA1WithRSA}, rk)
	if err != nil {
		t.Fatal(err)
	}
	sha1Req, _ := x509.ParseCertificateRequest(sha1DER)
	if _, err := c.Issue(context.Background(), sha1Req, profile(""), auth.Identity{}); !errors.Is(err, est.ErrPolicy) || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("SHA-1 CSR: %v, want ErrPolicy naming SHA-256", err)
	}
	// A P-224 key is refused whatever the profile says.
	k, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "weak"}}, k)
	req, _ := x509.ParseCertificateRequest(der)
	if _, err := c.Issue(context.Background(), req, profile(""), auth.Identity{}); !errors.Is(err, est.ErrPolicy) {
		t.Errorf("P-224: %v, want ErrPolicy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Issue(ctx, csr(t, ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "a"}}), profile(""), auth.Identity{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestNewRefusesMismatch(t *testing.T) {
	c := newCA(t, time.Hour*24)
	other, _ := ca.GenerateKey(ca.P256)
	if _, err := ca.New(c.Cert, other, nil); err == nil {
		t.Error("CA accepted a key that does not match its certificate")
	}
	leaf, err := c.Issue(context.Background(), csr(t, ca.P256, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "leaf"}}), profile(""), auth.Identity{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.New(leaf, other, nil); err == nil {
		t.Error("CA accepted an end-entity certificate")
	}
}

func TestKeyTypes(t *testing.T) {
	for in, want := range map[string]ca.KeyType{"p256": ca.P256, "P-384": ca.P384, "ecdsa-p256": ca.P256, "RSA-2048": ca.RSA2048, "rsa4096": ca.RSA4096, "Ed25519": ca.Ed25519} {
		if got, err := ca.ParseKeyType(in); err != nil || got != want {
			t.Errorf("ParseKeyType(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ca.ParseKeyType("dsa"); err == nil {
		t.Error("dsa parsed")
	}
	for _, kt := range []ca.KeyType{ca.P256, ca.P384, ca.Ed25519, ca.RSA2048} {
		k, err := ca.GenerateKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ca.KeyTypeOf(k.Public()); err != nil || got != kt {
			t.Errorf("KeyTypeOf(%s key) = %s, %v", kt, got, err)
		}
	}
}

func TestProfileCheck(t *testing.T) {
	for _, p := range ca.DefaultProfiles() {
		if err := p.Check(); err != nil {
			t.Errorf("default profile %q: %v", p.Name, err)
		}
	}
	bad := []*ca.Profile{
		{Name: "cacerts", Validity: time.Hour, KeyTypes: ca.DefaultKeyTypes},
		{Name: "a", Validity: time.Second, KeyTypes: ca.DefaultKeyTypes},
		{Name: "a", Validity: time.Hour},
		{Name: "a", Validity: time.Hour, KeyTypes: ca.DefaultKeyTypes, SANs: []string{"x400"}},
		{Name: "a", Validity: time.Hour, KeyTypes: ca.DefaultKeyTypes, RequireSAN: []string{"dns"}},
		{Name: "a", Validity: time.Hour, KeyTypes: ca.DefaultKeyTypes, Auth: []auth.Method{"magic"}},
	}
	for i, p := range bad {
		if err := p.Check(); err == nil {
			t.Errorf("bad profile %d passed Check", i)
		}
	}
}

// sanExt is a subjectAltName extension value with one GeneralName of the
// given context tag (0 otherName, 4 directoryName, 8 registeredID) next to
// a DNS name.
func sanExt(t *testing.T, tag int) []byte {
	t.Helper()
	var inner asn1.RawValue
	switch tag {
	case 0: // otherName: type-id and [0] value
		oid, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1})
		val, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x0c, 0x01, 'x'}})
		inner = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, val...)}
	case 4: // directoryName: [4] Name
		name, _ := asn1.Marshal(pkix.Name{CommonName: "dir"}.ToRDNSequence())
		inner = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: name}
	case 8: // registeredID: [8] OBJECT IDENTIFIER contents
		oid, _ := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 3})
		inner = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 8, Bytes: oid[2:]}
	}
	dns := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte("a.example")}
	der, err := asn1.Marshal([]asn1.RawValue{dns, inner})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
