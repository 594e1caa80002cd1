package config

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

func TestExampleValidates(t *testing.T) {
	c, err := Load(filepath.Join("..", "estd.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("estd.example.yaml does not validate:\n%v", err)
	}
	ps, err := c.CAProfiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 5 {
		t.Fatalf("%d profiles, want 5", len(ps))
	}
	if l := ps[3]; l.Name != "devices" || l.ManufacturerBinding != ca.BindSerialNumber {
		t.Errorf("devices profile decoded as %+v", l)
	}
	if l := ps[4]; l.Name != "linked" || !l.RequirePoPLink || !l.AllowRA {
		t.Errorf("linked profile decoded as %+v", l)
	}
	srv := ps[2]
	if srv.Name != "tls-server" || srv.KeyUsage != x509.KeyUsageDigitalSignature ||
		!reflect.DeepEqual(srv.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) ||
		len(srv.CSRAttrs) != 2 || srv.Validity != 90*24*time.Hour {
		t.Errorf("tls-server profile decoded as %+v", srv)
	}
	// The example's built-in labels say what DefaultProfiles does.
	def := ca.DefaultProfiles()
	for i := range 3 {
		a, b := ps[i], def[i]
		if a.Name != b.Name || !reflect.DeepEqual(a.ExtKeyUsage, b.ExtKeyUsage) || !reflect.DeepEqual(a.SANs, b.SANs) || !reflect.DeepEqual(a.Auth, b.Auth) || a.Validity != b.Validity {
			t.Errorf("example profile %q differs from the built-in one", a.Name)
		}
	}
	dev := ps[3]
	if dev.Accepts(auth.Basic) || !dev.Accepts(auth.Manufacturer) {
		t.Errorf("devices profile auth = %v", dev.Auth)
	}
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
	ps, err := Default().CAProfiles()
	if err != nil || len(ps) != 3 {
		t.Fatalf("default profiles: %d, %v", len(ps), err)
	}
}

func TestStrictDecoding(t *testing.T) {
	bad := map[string]string{
		"unknown top-level key": "listen: 127.0.0.1:1\nlisen: x\n",
		"unknown profile key":   "profiles:\n  - label: a\n    ext_key_usage: [clientAuth]\n    auth: [basic]\n    colour: red\n",
		"wrong type":            "max_body: lots\n",
		"two documents":         "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n",
		"bad duration":          "profiles:\n  - label: a\n    validity: forever\n",
	}
	for name, y := range bad {
		if _, err := Decode(strings.NewReader(y)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestValidateFindsEveryProblem(t *testing.T) {
	cases := map[string]string{
		"listen":             "listen: nowhere\n",
		"ca_key_type":        "ca_key_type: dsa1024\n",
		"log_format":         "log_format: xml\n",
		"max_body":           "max_body: 10\n",
		"hostnames":          "hostnames: [\"bad host\"]\n",
		"manufacturer_ca":    "manufacturer_ca: /does/not/exist.pem\n",
		"key_types":          "profiles:\n  - {label: a, key_types: [rsa1024], ext_key_usage: [clientAuth], auth: [basic]}\n",
		"ext_key_usage":      "profiles:\n  - {label: a, ext_key_usage: [everything], auth: [basic]}\n",
		"auth: name":         "profiles:\n  - {label: a, ext_key_usage: [clientAuth]}\n",
		"authentication":     "profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [kerberos]}\n",
		"SAN kind":           "profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], sans: [dn]}\n",
		"not a valid label":  "profiles:\n  - {label: simpleenroll, ext_key_usage: [clientAuth], auth: [basic]}\n",
		"defined twice":      "profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic]}\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic]}\n",
		"csrattrs":           "profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], csrattrs: [{oid: not.an.oid}]}\n",
		"tls.min_version":    "tls: {min_version: \"1.1\"}\n",
		"tls.cipher_suites":  "tls: {cipher_suites: [TLS_RSA_WITH_AES_128_GCM_SHA256]}\n",
		"timeouts.read":      "timeouts: {read: 1ms}\n",
		"store.driver":       "store: {driver: mysql}\n",
		"holds a password":   "store: {driver: postgres, dsn: \"postgres://estd:secret@db/estd\"}\n",
		"store.dsn":          "store: {dsn: \"postgres://db/estd\"}\n",
		"at least one value": "profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], csrattrs: [{attribute: ecPublicKey}]}\n",
	}
	for want, y := range cases {
		c, err := Decode(strings.NewReader(y))
		if err != nil {
			t.Errorf("%s: decode: %v", want, err)
			continue
		}
		err = c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: Validate() = %v, want an error naming %q", strings.TrimSpace(y), err, want)
		}
	}
}

func TestParseOID(t *testing.T) {
	for in, want := range map[string]string{"1.2.840.10045.4.3.2": "1.2.840.10045.4.3.2", "secp384r1": "1.3.132.0.34"} {
		oid, err := ParseOID(in)
		if err != nil || oid.String() != want {
			t.Errorf("ParseOID(%q) = %v, %v", in, oid, err)
		}
	}
	for _, in := range []string{"", "1", "1.x", "3.1", "1.40", "-1.2"} {
		if _, err := ParseOID(in); err == nil {
			t.Errorf("ParseOID(%q) succeeded", in)
		}
	}
}

func TestManufacturerFileChecked(t *testing.T) {
	f := filepath.Join(t.TempDir(), "m.pem")
	if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.ManufacturerCA = f
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "manufacturer_ca: "+f+": no PEM certificate") {
		t.Fatalf("a file without certificates validated: %v", err)
	}
}

func TestManufacturerCRLChecked(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mfr, rogue := testpki.Manufacturer(t, now), testpki.Rogue(t, now)
	caFile := filepath.Join(dir, "m.pem")
	testpki.WriteCerts(t, caFile, mfr.Cert)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.crl", mfr.CRL(t, 1, now, now.Add(time.Hour)))
	for _, tc := range []struct {
		ca, crl, want string // want: "" for valid, else part of the error
	}{
		{caFile, good, ""},
		{"", good, "manufacturer_crl: needs manufacturer_ca"},
		{caFile, write("rogue.crl", rogue.CRL(t, 1, now, now.Add(time.Hour))), "manufacturer_crl: the CRL of"},
		{caFile, write("junk.crl", []byte("junk")), "manufacturer_crl: "},
	} {
		c := Default()
		c.ManufacturerCA, c.ManufacturerCRL = tc.ca, tc.crl
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("manufacturer_ca %q, manufacturer_crl %q: %v, want %q", tc.ca, tc.crl, err, tc.want)
		}
	}
}

func TestTLSPolicy(t *testing.T) {
	c, err := Decode(strings.NewReader("tls: {min_version: \"1.3\", cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.TLS.Policy()
	if err != nil || p.MinVersion != tls.VersionTLS13 || len(p.CipherSuites) != 1 || p.CipherSuites[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Fatalf("policy %+v, %v", p, err)
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestTLSPostQuantum(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		noPQ bool
	}{
		{"tls: {}\n", false},
		{"tls: {post_quantum: true}\n", false},
		{"tls: {post_quantum: false}\n", true},
	} {
		c, err := Decode(strings.NewReader(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.TLS.Policy()
		if err != nil || p.NoPostQuantum != tc.noPQ {
			t.Errorf("%q: NoPostQuantum %v (%v), want %v", tc.yaml, p.NoPostQuantum, err, tc.noPQ)
		}
	}
}
