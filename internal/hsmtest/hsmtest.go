// Package hsmtest makes throw-away SoftHSM2 tokens for tests that keep CA
// keys in PKCS#11.
//
// NewToken points SoftHSM2 at a fresh token directory through the
// SOFTHSM2_CONF environment variable, set with tb.Setenv for the whole
// process. So a test that uses it (and its parent tests) must not call
// t.Parallel, and only one token is usable at a time. SoftHSM2 reads
// SOFTHSM2_CONF when the module is initialised, which crypto11 does on the
// first open and undoes when the last signer of the module is closed:
// close every signer (the io.Closer of keys.Load / keys.Generate) before
// the test ends, e.g. with tb.Cleanup. Child processes (estd started by a
// test) inherit SOFTHSM2_CONF and see the same token.
package hsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/estkit/estkit/internal/testenv"
)

// modulePaths are where distributions install the SoftHSM2 PKCS#11 module;
// SOFTHSM2_MODULE, when set, comes first.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",                   // Debian, Ubuntu
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",  // Debian multiarch
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", // Debian multiarch
	"/usr/lib64/pkcs11/libsofthsm2.so",                  // Fedora
	"/usr/lib/pkcs11/libsofthsm2.so",                    // Arch, Alpine
	"/usr/local/lib/softhsm/libsofthsm2.so",             // source install, Homebrew
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",          // Homebrew on arm64
}

// Token is an initialised SoftHSM2 token that lives as long as the test.
type Token struct {
	// Module is the path of the SoftHSM2 PKCS#11 library (module-path).
	Module string
	// Label is the token label (token= in a PKCS#11 URI).
	Label string
	// PIN is the user PIN; PINFile holds it (mode 0600, no newline).
	PIN     string
	PINFile string
	// SOPIN is the security officer PIN.
	SOPIN string
	// Dir holds the token files; Conf is the softhsm2.conf that SOFTHSM2_CONF names.
	Dir  string
	Conf string
}

// Module returns the path of the SoftHSM2 PKCS#11 module, or calls
// testenv.Missing when SoftHSM2 is not installed.
func Module(tb testing.TB) string {
	tb.Helper()
	paths := modulePaths
	if m := os.Getenv("SOFTHSM2_MODULE"); m != "" {
		paths = append([]string{m}, paths...)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Missing(tb, "SoftHSM2 (Debian package softhsm2)")
	return ""
}

// NewToken initialises a SoftHSM2 token labelled label in a temporary
// directory and points SOFTHSM2_CONF at it (tb.Setenv: no t.Parallel). It
// calls testenv.Missing when SoftHSM2 is not installed.
func NewToken(tb testing.TB, label string) *Token {
	tb.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		testenv.Missing(tb, "SoftHSM2 (Debian package softhsm2)")
	}
	module := Module(tb)
	dir := tb.TempDir()
	t := &Token{
		Module:  module,
		Label:   label,
		PIN:     secret(tb),
		SOPIN:   secret(tb),
		Dir:     filepath.Join(dir, "tokens"),
		Conf:    filepath.Join(dir, "softhsm2.conf"),
		PINFile: filepath.Join(dir, "pin"),
	}
	if err := os.Mkdir(t.Dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", t.Dir)
	if err := os.WriteFile(t.Conf, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(t.PINFile, []byte(t.PIN), 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("SOFTHSM2_CONF", t.Conf)
	cmd := exec.Command(util, "--init-token", "--free", "--label", label, "--so-pin", t.SOPIN, "--pin", t.PIN)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return t
}

func secret(tb testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// URI returns the RFC 7512 URI of the key labelled object in the token,
// with module-path and the PIN file as pin-source.
func (t *Token) URI(object string) string {
	return "pkcs11:token=" + escape(t.Label, false) + ";object=" + escape(object, false) +
		"?module-path=" + escape(t.Module, true) + "&pin-source=file:" + escape(t.PINFile, true)
}

// escape percent-encodes an RFC 7512 path (pk11-pchar) or query
// (pk11-qchar) attribute value.
func escape(v string, query bool) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~:[]@!$'()*+,=", c) >= 0,
			!query && c == '&',
			query && strings.IndexByte("/?|", c) >= 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
