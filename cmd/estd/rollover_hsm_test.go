package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/estkit/estkit/internal/estd"
	"github.com/estkit/estkit/internal/hsmtest"
)

// TestCARolloverInHSMResumes: an HSM rollover interrupted after it wrote
// the new key reference, before the new certificate, is finished by
// running the same command again: it takes the key the first run made in
// the token, and estd then starts with the new CA.
func TestCARolloverInHSMResumes(t *testing.T) {
	tok := hsmtest.NewToken(t, "estd-ca")
	dir := filepath.Join(t.TempDir(), "data")
	if code, out, errs := runCmd(t, "ca", "init", "-data", dir, "-hsm", tok.URI("issuing")); code != 0 {
		t.Fatalf("estd ca init: %d %s %s", code, out, errs)
	}
	oldPEM, _ := os.ReadFile(filepath.Join(dir, estd.IssuingCertFile))
	args := []string{"ca", "rollover", "-data", dir, "-hsm", tok.URI("issuing-2"), "-root-key", tok.URI("issuing-root")}
	if code, out, errs := runCmd(t, args...); code != 0 {
		t.Fatalf("estd ca rollover: %d %s %s", code, out, errs)
	}
	// The crash: the new certificate was never written.
	os.WriteFile(filepath.Join(dir, estd.IssuingCertFile), oldPEM, 0o644)
	code, out, errs := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("the same rollover again: %d %s%s", code, out, errs)
	}
	writeUsers(t, dir, "dev", "dev-password-1")
	n := startNode(t, []string{"SOFTHSM2_CONF=" + tok.Conf}, "-data", dir)
	n.stop(t)
}
