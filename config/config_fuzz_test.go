package config

// FuzzDecode runs arbitrary bytes through what `estd -config` and `estd
// -validate` do with a configuration file. Crashers go to
// testdata/fuzz/FuzzDecode/ and run with plain go test.
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 30s ./config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/estkit/estkit/server"
)

// FuzzDecode decodes and validates arbitrary YAML: nothing panics or hangs,
// and a configuration Validate accepts is one estd can start with: its
// profiles pass server.CheckProfiles and its TLS policy passes Check.
// Paths to files are cleared before Validate, which would otherwise read
// whatever file the input names.
func FuzzDecode(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "estd.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, s := range []string{
		"", "{}", "---\n", "listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", "max_body: lots\n",
		"profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], validity: 90d}\n",
		"profiles:\n  - {label: a, key_types: [P-256, rsa-3072], key_usage: [digitalSignature], ext_key_usage: [serverAuth], auth: [basic, manufacturer-cert, issued-cert], sans: [dns, ip], require_san: [dns], serverkeygen: true, revoke_on_renew: true, manual_approval: true}\n",
		"profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], csrattrs: [{oid: challengePassword}, {attribute: ecPublicKey, values: [secp384r1]}, {oid: 1.2.3.4}]}\n",
		"profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], validity: 2562047h}\n",
		"profiles:\n  - {label: a, ext_key_usage: [clientAuth], auth: [basic], validity: 99999999999d}\n",
		"tls: {min_version: \"1.3\", cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]}\n",
		"timeouts: {read_header: 1s, read: 1m, write: 1h, idle: 100ms}\n",
		"store: {driver: postgres, dsn: \"postgres://estd@db/estd\"}\n",
		"hostnames: [est.example, 192.0.2.1, \"::1\", \"-bad-\"]\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\n",
		"crl_url: http://[::1\n", "listen: \"\\xff\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		c.ManufacturerCA, c.ManufacturerCRL, c.CAKeyPassphraseFile = "", "", ""
		if err := c.Validate(); err != nil {
			if !utf8.ValidString(err.Error()) && utf8.Valid(data) {
				t.Fatalf("Validate error %q is not valid UTF-8", err)
			}
			return
		}
		profiles, err := c.CAProfiles()
		if err != nil {
			t.Fatalf("Validate passed but CAProfiles: %v", err)
		}
		if err := server.CheckProfiles(profiles); err != nil {
			t.Fatalf("Validate passed but the profiles are refused: %v", err)
		}
		p, err := c.TLS.Policy()
		if err != nil {
			t.Fatalf("Validate passed but TLS.Policy: %v", err)
		}
		if err := p.Check(); err != nil {
			t.Fatalf("Validate passed but the TLS policy is refused: %v", err)
		}
	})
}
