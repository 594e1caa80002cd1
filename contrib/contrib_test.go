// Package contrib holds deployment files: a systemd unit and a Dockerfile.
// Its test checks the unit with systemd-analyze where that exists.
package contrib

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnitVerifies runs `systemd-analyze verify` on the unit, with
// ExecStart pointed at a stand-in binary (verify checks that it exists).
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit is checked where systemd is")
	}
	unit, err := os.ReadFile("estd.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "estd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/estd", bin)
	path := filepath.Join(dir, "estd.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	// User=estd may not exist here; every other complaint is a defect.
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.Contains(line, "estd.service:") && strings.Contains(line, "user") {
			continue
		}
		if strings.Contains(line, path) || strings.Contains(line, "estd.service") {
			problems = append(problems, line)
		}
	}
	if len(problems) > 0 {
		t.Fatalf("systemd-analyze verify (exit %v):\n%s", err, strings.Join(problems, "\n"))
	}
}

// TestDockerfileRunsAsNonRoot checks the Dockerfile's promises without a
// Docker engine: a non-root user and a static binary.
func TestDockerfileRunsAsNonRoot(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{"USER nonroot", "CGO_ENABLED=0", "distroless/static", "ENTRYPOINT"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
