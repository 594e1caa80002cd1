package server_test

import (
	"os"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/internal/pgtest"
)

func TestMain(m *testing.M) {
	auth.BcryptCost = bcrypt.MinCost // hashing strength is tested in package auth
	// PostgreSQL starts only if a benchmark asks for it (BenchmarkEnroll).
	os.Exit(pgtest.Main(m))
}
