package hsmtest_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/estkit/estkit/ca/keys"
	"github.com/estkit/estkit/internal/hsmtest"
)

func TestNewToken(t *testing.T) {
	tok := hsmtest.NewToken(t, "estd test;1")
	if got := os.Getenv("SOFTHSM2_CONF"); got != tok.Conf {
		t.Fatalf("SOFTHSM2_CONF = %q, want %q", got, tok.Conf)
	}
	out, err := exec.Command("softhsm2-util", "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --show-slots: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "estd test;1") {
		t.Fatalf("the token is not in --show-slots:\n%s", out)
	}
	fi, err := os.Stat(tok.PINFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("PIN file mode %v, want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(tok.PINFile); string(b) != tok.PIN || tok.PIN == "" {
		t.Errorf("PIN file holds %q, want %q", b, tok.PIN)
	}
	u, err := keys.ParsePKCS11URI(tok.URI("issuing CA/1"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != tok.Label || u.Object != "issuing CA/1" || u.ModulePath != tok.Module || u.PINSource != "file:"+tok.PINFile {
		t.Errorf("URI %s parses to %+v", tok.URI("issuing CA/1"), u)
	}
}
