package conformance_test

import (
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit/auth"
)

func TestMain(m *testing.M) {
	auth.BcryptCost = bcrypt.MinCost // hashing strength is tested in package auth
	os.Exit(m.Run())
}
