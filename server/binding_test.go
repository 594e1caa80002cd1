package server_test

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// csrFor returns a CSR for key with exactly the subject name and the DNS
// and URI subjectAltNames given.
func csrFor(t *testing.T, key crypto.Signer, name pkix.Name, sans ...string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: name}
	for _, s := range sans {
		if u, err := url.Parse(s); err == nil && u.Scheme != "" {
			tmpl.URIs = append(tmpl.URIs, u)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestManufacturerBindingHoles: what a bound device might try besides
// another subject: subjectAltNames its factory certificate does not have,
// its operational certificate (issued here) to enroll again in another
// name, and a factory certificate with an empty subject.
func TestManufacturerBindingHoles(t *testing.T) {
	profile := func(name string, b ca.Binding) *ca.Profile {
		return &ca.Profile{
			Name: name, Validity: 24 * time.Hour, KeyTypes: ca.DefaultKeyTypes,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, SANs: []string{"dns", "uri"},
			Auth: []auth.Method{auth.Manufacturer, auth.Issued}, ServerKeyGen: true, ManufacturerBinding: b,
		}
	}
	open, mixed := profile("open", ca.BindNone), profile("by-serial-basic", ca.BindSerialNumber)
	open.Auth = []auth.Method{auth.Basic}
	mixed.Auth = []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}
	s := estdtest.Start(t, estdtest.Options{Profiles: []*ca.Profile{profile("by-subject", ca.BindSubject), profile("by-serial", ca.BindSerialNumber), open, mixed}})
	now := time.Now()
	device, deviceKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "Sensor", SerialNumber: "SN-4711", DNS: []string{"sn-4711.devices.example"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	factory := []tls.Certificate{tlsCert(device, deviceKey)}
	key := testpki.Key(t, ca.P256)
	own := pkix.Name{CommonName: "sensor", SerialNumber: "SN-4711"}
	other := pkix.Name{CommonName: "sensor", SerialNumber: "SN-0815"}

	// subjectAltNames: only the factory certificate's.
	for _, tc := range []struct {
		name string
		sans []string
		want int
	}{
		{"its own DNS name", []string{"SN-4711.devices.example"}, http.StatusOK},
		{"another DNS name", []string{"sn-0815.devices.example"}, http.StatusForbidden},
		{"a URI it does not have", []string{"urn:dev:serial:SN-0815"}, http.StatusForbidden},
	} {
		e := enrollment{op: est.OpSimpleEnroll, label: "by-serial", certs: factory, csr: csrFor(t, key, own, tc.sans...)}
		if st, reason, _ := e.do(t, s); st != tc.want || (st != http.StatusOK && !strings.Contains(reason, "subjectAltNames")) {
			t.Errorf("%s: %d %q, want %d", tc.name, st, reason, tc.want)
		}
	}

	// The operational certificate, issued here under its own serial
	// number, enrolls again only for that serial number.
	e := enrollment{op: est.OpSimpleEnroll, label: "by-serial", certs: factory, csr: csrFor(t, key, own)}
	st, reason, ldevid := e.do(t, s)
	if st != http.StatusOK {
		t.Fatalf("first enrollment: %d %s", st, reason)
	}
	issued := []tls.Certificate{tlsCert(ldevid, key)}
	for _, tc := range []struct {
		name string
		subj pkix.Name
		want int
	}{
		{"by its operational certificate, its own serial number", own, http.StatusOK},
		{"by its operational certificate, another serial number", other, http.StatusForbidden},
	} {
		for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
			csr := est.EncodeBase64(csrFor(t, testpki.Key(t, ca.P256), tc.subj))
			if st, _, body := call(t, s.Client(issued...), "POST", s.URL+est.Path("by-serial", op), est.MediaPKCS10, csr); st != tc.want {
				t.Errorf("%s, %s: %d %s, want %d", tc.name, op, st, body, tc.want)
			}
		}
	}

	// A certificate of another label proves no identity here: a password
	// user may have asked for any serial number there.
	basic := []string{s.User, s.Password}
	victim := pkix.Name{CommonName: "sensor", SerialNumber: "SN-VICTIM"}
	e = enrollment{op: est.OpSimpleEnroll, label: "open", basic: basic, csr: csrFor(t, key, victim)}
	st, reason, foreign := e.do(t, s)
	if st != http.StatusOK {
		t.Fatalf("enrolling on the open label: %d %s", st, reason)
	}
	e = enrollment{op: est.OpSimpleEnroll, label: "by-serial", certs: []tls.Certificate{tlsCert(foreign, key)}, csr: csrFor(t, testpki.Key(t, ca.P256), victim)}
	if st, reason, _ := e.do(t, s); st != http.StatusForbidden || !strings.Contains(reason, `issued under label "open"`) {
		t.Errorf("a certificate of another label on a bound label: %d %q, want 403", st, reason)
	}

	// A renewal is not bound again: a password user's certificate on a
	// bound label without a serialNumber renews (its subject stays).
	printer := pkix.Name{CommonName: "printer"}
	e = enrollment{op: est.OpSimpleEnroll, label: "by-serial-basic", basic: basic, csr: csrFor(t, key, printer)}
	st, reason, pc := e.do(t, s)
	if st != http.StatusOK {
		t.Fatalf("a password user on the mixed label: %d %s", st, reason)
	}
	e = enrollment{op: est.OpSimpleReenroll, label: "by-serial-basic", certs: []tls.Certificate{tlsCert(pc, key)}, csr: csrFor(t, key, printer)}
	if st, reason, _ := e.do(t, s); st != http.StatusOK {
		t.Errorf("renewing it: %d %s, want 200", st, reason)
	}

	// A factory certificate with an empty subject binds nothing, so it
	// gets nothing on a label bound by subject.
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		URIs: []*url.URL{{Scheme: "urn", Opaque: "dev:serial:SN-empty"}},
	}
	emptyKey := testpki.Key(t, ca.P256)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.Manufacturer.Cert, emptyKey.Public(), s.Manufacturer.Key)
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := x509.ParseCertificate(der)
	e = enrollment{op: est.OpSimpleEnroll, label: "by-subject", certs: []tls.Certificate{tlsCert(empty, emptyKey)}, csr: csrFor(t, key, pkix.Name{}, "urn:dev:serial:SN-empty")}
	if st, reason, _ := e.do(t, s); st != http.StatusForbidden || !strings.Contains(reason, "empty") {
		t.Errorf("an empty factory subject: %d %q, want 403", st, reason)
	}
}

// TestManufacturerBinding: on a label with a manufacturer binding, a device
// authenticated by its factory certificate enrolls only for that
// certificate's identity; Basic users and registration authorities are not
// bound.
func TestManufacturerBinding(t *testing.T) {
	profile := func(name string, b ca.Binding) *ca.Profile {
		return &ca.Profile{
			Name: name, Validity: 24 * time.Hour, KeyTypes: ca.DefaultKeyTypes,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			Auth:        []auth.Method{auth.Basic, auth.Manufacturer, auth.Issued}, ServerKeyGen: true, FullCMC: true,
			AllowRA: true, ManufacturerBinding: b,
		}
	}
	s := estdtest.Start(t, estdtest.Options{Profiles: []*ca.Profile{
		profile("", ca.BindNone), profile("by-subject", ca.BindSubject), profile("by-serial", ca.BindSerialNumber),
	}})
	now := time.Now()
	device, deviceKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "Sensor", SerialNumber: "SN-4711", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	bare, bareKey := s.Manufacturer.Device(t, "SN-bare", now) // no serialNumber attribute
	ra, raKey := raCert(t, s.Manufacturer)
	mfr := []tls.Certificate{tlsCert(device, deviceKey)}
	key := testpki.Key(t, ca.P256)

	own := device.Subject
	own.Names, own.ExtraNames = nil, nil
	ownSerial := pkix.Name{CommonName: "sensor-4711.example", SerialNumber: "SN-4711"}
	other := pkix.Name{CommonName: "Sensor", Organization: []string{"Acme Devices"}, SerialNumber: "SN-0815"}
	noSerial := pkix.Name{CommonName: "Sensor"}

	for _, tc := range []struct {
		name  string
		label string
		who   enrollment
		subj  pkix.Name
		want  int
	}{
		{"unbound label", "", enrollment{certs: mfr}, other, http.StatusOK},
		{"own subject", "by-subject", enrollment{certs: mfr}, own, http.StatusOK},
		{"another subject", "by-subject", enrollment{certs: mfr}, other, http.StatusForbidden},
		{"own serialNumber", "by-serial", enrollment{certs: mfr}, ownSerial, http.StatusOK},
		{"another serialNumber", "by-serial", enrollment{certs: mfr}, other, http.StatusForbidden},
		{"no serialNumber", "by-serial", enrollment{certs: mfr}, noSerial, http.StatusForbidden},
		{"factory certificate without serialNumber", "by-serial", enrollment{certs: []tls.Certificate{tlsCert(bare, bareKey)}}, ownSerial, http.StatusForbidden},
		{"Basic is not bound", "by-serial", enrollment{basic: []string{s.User, s.Password}}, other, http.StatusOK},
		{"a registration authority is not bound", "by-subject", enrollment{certs: []tls.Certificate{tlsCert(ra, raKey)}}, other, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.who
			e.op, e.label, e.csr = est.OpSimpleEnroll, tc.label, csrFor(t, key, tc.subj)
			status, reason, cert := e.do(t, s)
			if status != tc.want {
				t.Fatalf("simpleenroll: %d %s, want %d", status, reason, tc.want)
			}
			if status == http.StatusOK && !est.SameName(cert.RawSubject, mustRawSubject(t, e.csr)) {
				t.Errorf("issued for %s, not the CSR's subject", cert.Subject)
			}
			if status != http.StatusOK && !strings.Contains(reason, "factory certificate") {
				t.Errorf("reason %q does not say what was wrong", reason)
			}
			// serverkeygen takes the same decision.
			st, _, body := call(t, s.Client(e.certs...), "POST", s.URL+est.Path(tc.label, est.OpServerKeyGen), est.MediaPKCS10, est.EncodeBase64(e.csr), e.basic...)
			if st != tc.want {
				t.Errorf("serverkeygen: %d %s, want %d", st, body, tc.want)
			}
		})
	}
}

// TestManufacturerBindingFullCMC: a Full PKI Request from a device is bound
// as a simple enrollment is.
func TestManufacturerBindingFullCMC(t *testing.T) {
	p := ca.DefaultProfiles()[0]
	p.Name, p.ManufacturerBinding = "by-subject", ca.BindSubject
	s := estdtest.Start(t, estdtest.Options{Profiles: []*ca.Profile{p}})
	dev, devKey := s.Manufacturer.Issue(t, testpki.Leaf{CN: "SN-CMC-B", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)})
	c := s.Client(tlsCert(dev, devKey))

	key := testpki.Key(t, ca.P256)
	csr, ski := cmcCSR(t, key, "SN-CMC-B") // CN only: not the device's subject
	der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
	a := postCMC(t, s, c, "by-subject", der, nonce, tid)
	a.failed(t, http.StatusForbidden, est.FailBadRequest, 3)
	if !strings.Contains(a.st.StatusString, "factory certificate") {
		t.Errorf("statusString %q does not say why", a.st.StatusString)
	}

	own, ski := cmcCSRNamed(t, key, dev.Subject)
	der, nonce, tid = cmcMessage{csr: own, key: key, ski: ski}.encode(t)
	if a := postCMC(t, s, c, "by-subject", der, nonce, tid); a.status != http.StatusOK {
		t.Fatalf("the device's own subject: %d %q %v", a.status, a.text, a.st)
	}
}

func mustRawSubject(t *testing.T, csr []byte) []byte {
	t.Helper()
	req, err := x509.ParseCertificateRequest(csr)
	if err != nil {
		t.Fatal(err)
	}
	return req.RawSubject
}

// TestManufacturerBindingCheck: the profile refuses an unknown binding, and
// a binding on a label that takes no factory certificates.
func TestManufacturerBindingCheck(t *testing.T) {
	p := &ca.Profile{Name: "x", Validity: time.Hour, KeyTypes: ca.DefaultKeyTypes, Auth: []auth.Method{auth.Manufacturer}}
	for b, ok := range map[ca.Binding]bool{ca.BindNone: true, ca.BindSubject: true, ca.BindSerialNumber: true, "serial": false, "SUBJECT": false} {
		p.ManufacturerBinding = b
		if err := p.Check(); (err == nil) != ok {
			t.Errorf("binding %q: Check() = %v", b, err)
		}
	}
	p.Auth, p.ManufacturerBinding = []auth.Method{auth.Basic}, ca.BindSubject
	if err := p.Check(); err == nil || !strings.Contains(err.Error(), "manufacturer-cert") {
		t.Errorf("a binding without manufacturer-cert authentication: Check() = %v", err)
	}
}

// TestNoCredentials: without credentials, a label that takes passwords
// answers 401 with a Basic challenge; one that takes only certificates has
// no scheme to challenge for (RFC 9110 15.5.2) and answers 403 saying a
// client certificate is needed.
func TestNoCredentials(t *testing.T) {
	certOnly := ca.DefaultProfiles()[0]
	certOnly.Name, certOnly.Auth = "devices", []auth.Method{auth.Manufacturer, auth.Issued}
	s := estdtest.Start(t, estdtest.Options{Profiles: []*ca.Profile{ca.DefaultProfiles()[0], certOnly}})
	csr := est.EncodeBase64(testpki.CSR(t, testpki.Key(t, ca.P256), "anonymous", nil, nil))
	for _, tc := range []struct {
		label     string
		want      int
		challenge bool
		words     string
	}{
		{"", http.StatusUnauthorized, true, "authentication required"},
		{"devices", http.StatusForbidden, false, "TLS client certificate is required"},
	} {
		for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
			st, hdr, body := call(t, s.Client(), "POST", s.URL+est.Path(tc.label, op), est.MediaPKCS10, csr)
			if st != tc.want || (hdr.Get("WWW-Authenticate") != "") != tc.challenge || !strings.Contains(string(body), tc.words) {
				t.Errorf("label %q %s: %d, WWW-Authenticate %q, %q; want %d, challenge %v, %q",
					tc.label, op, st, hdr.Get("WWW-Authenticate"), body, tc.want, tc.challenge, tc.words)
			}
		}
	}
}
