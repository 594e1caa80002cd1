//go:build !cgo

package keys

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testenv"
)

// TestPKCS11NeedsCgo keeps CI from passing without the SoftHSM2 tests: the
// go command turns cgo off by itself when it finds no C compiler, and then
// those tests are not even compiled. An explicit CGO_ENABLED=0 (checking
// the stub) is fine.
func TestPKCS11NeedsCgo(t *testing.T) {
	if os.Getenv("CGO_ENABLED") != "0" {
		testenv.Missing(t, "cgo (a C compiler, e.g. Debian package gcc) for the PKCS#11 tests against SoftHSM2")
	}
}

func TestNoCgo(t *testing.T) {
	uri := "pkcs11:token=estd;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/nonexistent"
	if _, _, err := Load(context.Background(), uri, Options{}); !errors.Is(err, ErrNoPKCS11) {
		t.Errorf("Load: %v, want ErrNoPKCS11", err)
	}
	if _, _, err := Generate(context.Background(), uri, ca.P256, Options{}); !errors.Is(err, ErrNoPKCS11) {
		t.Errorf("Generate: %v, want ErrNoPKCS11", err)
	}
	if ErrNoPKCS11.Error() != "estd was built without cgo; PKCS#11 needs cgo" {
		t.Errorf("ErrNoPKCS11 = %q", ErrNoPKCS11)
	}
	// Key files still load.
	if _, c, err := Load(context.Background(), "testdata/p256.pem", Options{}); err != nil {
		t.Errorf("key file: %v", err)
	} else {
		c.Close()
	}
}
