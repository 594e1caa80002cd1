// Package testenv lets tests require real external components (curl,
// openssl, PostgreSQL, ...). On a developer's machine a missing component
// skips the test with a loud message; under CI=true it fails the test, so CI
// never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test under CI and skips it elsewhere, loudly.
func Missing(tb testing.TB, what string) {
	tb.Helper()
	if CI() {
		tb.Fatalf("MISSING COMPONENT under CI=true: %s (make test installs it; see scripts/deps.sh)", what)
	}
	tb.Skipf("SKIPPING: %s is missing on this machine; run 'make test' as root to install it", what)
}

// Command returns the path of the named program or calls Missing.
func Command(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, "the program "+name)
	}
	return p
}
