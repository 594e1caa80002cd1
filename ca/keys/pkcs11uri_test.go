package keys

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const softhsm = "/usr/lib/softhsm/libsofthsm2.so"

func TestParsePKCS11URI(t *testing.T) {
	slot := uint(42)
	for in, want := range map[string]PKCS11URI{
		"pkcs11:token=estd;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/estd/pin": {
			Token: "estd", Object: "issuing-ca", ModulePath: softhsm, PINSource: "file:/etc/estd/pin",
		},
		// Percent-encoding in names, ids as bytes, paths with spaces.
		"pkcs11:token=My%20Token%3B1;id=%01%02%FF;type=private?module-path=/opt/my%20hsm/lib.so&pin-value=12%2634": {
			Token: "My Token;1", ID: []byte{1, 2, 0xff}, Type: "private", ModulePath: "/opt/my hsm/lib.so", PINValue: "12&34",
		},
		// Everything a copied p11tool URL has, a literal '&' in a path value,
		// '/' and '?' in a query value, upper-case scheme.
		"PKCS11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=4d5c1e6a0b2c3d4e;token=a&b;slot-id=42;slot-description=SoftHSM%20slot%20ID%200x2a;slot-manufacturer=SoftHSM%20project;library-manufacturer=SoftHSM;library-description=Implementation%20of%20PKCS11;library-version=2.6;object=k?module-name=softhsm2&module-path=/lib/x?.so": {
			Model: "SoftHSM v2", Manufacturer: "SoftHSM project", Serial: "4d5c1e6a0b2c3d4e", Token: "a&b", SlotID: &slot,
			SlotDescription: "SoftHSM slot ID 0x2a", SlotManufacturer: "SoftHSM project",
			LibraryManufacturer: "SoftHSM", LibraryDescription: "Implementation of PKCS11", LibraryVersion: "2.6",
			Object: "k", ModulePath: "/lib/x?.so",
		},
		"pkcs11:object=k?module-path=/m.so": {Object: "k", ModulePath: "/m.so"},
		// '+' is a literal, not a space.
		"pkcs11:object=a+b?module-path=/m.so": {Object: "a+b", ModulePath: "/m.so"},
	} {
		got, err := ParsePKCS11URI(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", in, *got, want)
		}
		// String is a URI that parses to the same thing, pin-value aside.
		again, err := ParsePKCS11URI(got.String())
		if err != nil {
			t.Errorf("%s: String() = %s does not parse: %v", in, got.String(), err)
			continue
		}
		if want.PINValue != "" {
			if again.PINValue != "REDACTED" || strings.Contains(got.String(), want.PINValue) {
				t.Errorf("%s: String() = %s does not redact the PIN", in, got.String())
			}
			again.PINValue = want.PINValue
		}
		if !reflect.DeepEqual(again, got) {
			t.Errorf("%s: String() = %s parses to %+v", in, got.String(), *again)
		}
	}
}

func TestParsePKCS11URIErrors(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/estd/key.pem":                                           "not a PKCS#11 URI",
		"pkcs11:token=t;object=k":                                     "module-path",
		"pkcs11:token=t;object=k?module-name=softhsm2":                "module-name is not supported",
		"pkcs11:token=t?module-path=/m.so":                            "names no key",
		"pkcs11:token=t;object=k;colour=blue?module-path=/m.so":       `unknown path attribute "colour"`,
		"pkcs11:object=k?module-path=/m.so&x-vendor=1":                `unknown query attribute "x-vendor"`,
		"pkcs11:object=k;module-path=/m.so":                           "wrong part",
		"pkcs11:object=k?module-path=/m.so&token=t":                   "wrong part",
		"pkcs11:object=k;object=j?module-path=/m.so":                  "appears twice",
		"pkcs11:object=k%zz?module-path=/m.so":                        "percent-encoding",
		"pkcs11:object=k%4?module-path=/m.so":                         "percent-encoding",
		"pkcs11:object?module-path=/m.so":                             "no '='",
		"pkcs11:object=?module-path=/m.so":                            "empty",
		"pkcs11:object=k;slot-id=0x2a?module-path=/m.so":              "slot-id",
		"pkcs11:object=k;library-version=two?module-path=/m.so":       "library-version",
		"pkcs11:object=k;type=cert?module-path=/m.so":                 "type=cert",
		"pkcs11:object=k?module-path=/m.so&pin-value=1&pin-source=/p": "not both",
		"pkcs11:object=k?module-path=/m.so#frag":                      "fragment",
		"pkcs11:object=k;?module-path=/m.so":                          "no '='",
	} {
		u, err := ParsePKCS11URI(in)
		if err == nil {
			t.Errorf("%s: parsed as %+v", in, u)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %q", in, err, want)
		}
	}
	// A PIN never appears in an error.
	_, err := ParsePKCS11URI("pkcs11:object=k;bogus=1?module-path=/m.so&pin-value=topsecret")
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("error leaks the PIN: %v", err)
	}
}

func TestPKCS11PIN(t *testing.T) {
	dir := t.TempDir()
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte("1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts := Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), PIN: PassphraseBytes([]byte("from-options"))}
	for src, want := range map[string]string{
		"file:" + pinFile:            "1234",
		"file://" + pinFile:          "1234",
		"file://localhost" + pinFile: "1234",
		pinFile:                      "1234",
	} {
		u := &PKCS11URI{PINSource: src}
		got, err := u.pin(opts)
		if err != nil || got != want {
			t.Errorf("pin-source=%s: %q, %v", src, got, err)
		}
	}
	for _, src := range []string{"file://otherhost/etc/pin", "file:relative", "|/usr/bin/pinentry", "https://example.com/pin", "file:" + filepath.Join(dir, "missing")} {
		if got, err := (&PKCS11URI{PINSource: src}).pin(opts); err == nil {
			t.Errorf("pin-source=%s accepted: %q", src, got)
		}
	}
	if got, err := (&PKCS11URI{PINValue: "5678"}).pin(opts); err != nil || got != "5678" {
		t.Errorf("pin-value: %q, %v", got, err)
	}
	if !strings.Contains(logs.String(), "pin-value") || strings.Contains(logs.String(), "5678") {
		t.Errorf("pin-value warning missing or leaks the PIN: %s", logs.String())
	}
	if got, err := (&PKCS11URI{}).pin(opts); err != nil || got != "from-options" {
		t.Errorf("Options.PIN: %q, %v", got, err)
	}
	if _, err := (&PKCS11URI{Object: "k", ModulePath: "/m.so"}).pin(Options{}); err == nil || !strings.Contains(err.Error(), "pin-source") {
		t.Errorf("no PIN: %v", err)
	}
}

func TestLoadBadURI(t *testing.T) {
	// URI errors come before any module is touched, with or without cgo.
	_, _, err := Load(context.Background(), "pkcs11:object=k", Options{})
	if err == nil || !strings.Contains(err.Error(), "module-path") {
		t.Fatalf("Load: %v", err)
	}
	_, _, err = Generate(context.Background(), "pkcs11:object=k?module-path=/m.so", "ed25519", Options{})
	if err == nil || !strings.Contains(err.Error(), "ed25519") {
		t.Fatalf("Generate ed25519: %v", err)
	}
}

func FuzzParsePKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=estd;object=issuing-ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/estd/pin")
	f.Add("pkcs11:token=My%20Token;id=%01%02;type=private;slot-id=3;library-version=2.6?module-path=/m.so&pin-value=1%262")
	f.Add("pkcs11:object=a&b?module-path=/x?y")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParsePKCS11URI(s)
		if err != nil {
			return
		}
		again, err := ParsePKCS11URI(u.String())
		if err != nil {
			t.Fatalf("String() = %q of %q does not parse: %v", u.String(), s, err)
		}
		if u.PINValue != "" {
			again.PINValue = u.PINValue
		}
		if !reflect.DeepEqual(u, again) {
			t.Fatalf("%q: String() = %q parses to %+v, not %+v", s, u.String(), again, u)
		}
	})
}
