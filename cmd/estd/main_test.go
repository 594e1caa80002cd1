package main

import (
	"os"
	"testing"

	"github.com/estkit/estkit/internal/pgtest"
)

// TestMain shares one throw-away PostgreSQL cluster among the tests that ask
// for a database, and stops it at the end.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
