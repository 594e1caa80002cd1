package main

import (
	"bytes"
	"crypto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeFile is the README whose commands are the contract of estd.
const readmeFile = "../../README.md"

// readmeBlocks returns the sh code blocks of the README section with the
// given heading, with their list indentation removed.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %q", readmeFile, heading)
	}
	sec := text[i+len(heading)+2:]
	if j := strings.Index(sec, "\n## "); j >= 0 {
		sec = sec[:j]
	}
	var blocks []string
	lines := strings.Split(sec, "\n")
	for k := 0; k < len(lines); k++ {
		fence := strings.TrimLeft(lines[k], " ")
		if fence != "```sh" {
			continue
		}
		indent := lines[k][:len(lines[k])-len(fence)]
		var b []string
		for k++; k < len(lines) && strings.TrimSpace(lines[k]) != "```"; k++ {
			b = append(b, strings.TrimPrefix(lines[k], indent))
		}
		if k == len(lines) {
			t.Fatalf("%s: unterminated code block in %q", readmeFile, heading)
		}
		blocks = append(blocks, strings.Join(b, "\n")+"\n")
	}
	return blocks
}

// basicFlagRE is curl's -u est, which makes curl prompt for the password.
var basicFlagRE = regexp.MustCompile(`(^|\s)-u est(\s)`)

// TestReadmeFiveMinutes runs the commands of the README section "Get a
// certificate in five minutes" (steps 2 and 3) with bash, curl and openssl
// against an estd started as step 1 says, changing only the address, the
// data directory and the password prompt.
func TestReadmeFiveMinutes(t *testing.T) {
	requireTools(t, "bash", "curl", "openssl", "base64")
	t.Parallel()
	blocks := readmeBlocks(t, "## Get a certificate in five minutes")
	if len(blocks) != 3 {
		t.Fatalf("README five-minute section: %d sh blocks, want 3 (start, enroll, renew)", len(blocks))
	}
	if !strings.Contains(blocks[0], "go run ./cmd/estd") {
		t.Fatalf("README step 1 no longer starts estd with go run ./cmd/estd:\n%s", blocks[0])
	}

	base := t.TempDir()
	d := startEstd(t, filepath.Join(base, "estd-data"))
	if d.password == "" {
		t.Fatalf("first start printed no bootstrap password:\n%s", d.stdout)
	}
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := curlConfig(t, base, "est", d.password)

	// localize adapts a README block to this estd; basic is how many times
	// it must use curl -u est.
	localize := func(step, block string, basic int) string {
		t.Helper()
		if !strings.Contains(block, "127.0.0.1:8443") || !strings.Contains(block, "estd-data/") {
			t.Fatalf("README step %s no longer names https://127.0.0.1:8443 and estd-data/:\n%s", step, block)
		}
		s := strings.ReplaceAll(block, "127.0.0.1:8443", d.addr)
		s = strings.ReplaceAll(s, "estd-data/", d.dir+"/")
		if n := len(basicFlagRE.FindAllString(s, -1)); n != basic {
			t.Fatalf("README step %s uses curl -u est %d times, want %d:\n%s", step, n, basic, block)
		}
		return basicFlagRE.ReplaceAllString(s, "${1}-K "+shellQuote(cfg)+"${2}")
	}
	step2 := localize("2", blocks[1], 1)
	step3 := localize("3", blocks[2], 0)
	if strings.Contains(step2+step3, d.password) {
		t.Fatal("the password ended up in a command line")
	}
	issuing := readPEMCert(t, d.issuingFile())
	sh := func(step, script string) string {
		t.Helper()
		out, errOut, err := execIn(work, nil, "bash", "-c", "set -eo pipefail\n"+script)
		if err != nil {
			t.Fatalf("README step %s failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s\nestd log:\n%s", step, err, script, out, errOut, d.stderr)
		}
		return out
	}

	// Step 2: enroll.
	out := sh("2", step2)
	device := filepath.Join(work, "device.pem")
	first := readPEMCert(t, device)
	if first.Subject.String() != "CN=device-1" {
		t.Errorf("enrolled subject %q, want CN=device-1", first.Subject)
	}
	if !bytes.Equal(first.RawIssuer, issuing.RawSubject) || first.CheckSignatureFrom(issuing) != nil {
		t.Errorf("device.pem is not issued by the issuing CA %q (issuer %q)", issuing.Subject, first.Issuer)
	}
	d.verifyChain(t, work, device, "sslclient")
	if !strings.Contains(out, "device-1") || !strings.Contains(out, "notAfter=") {
		t.Errorf("README step 2's openssl x509 printed no subject and end date:\n%s", out)
	}

	// Step 3: renew with the certificate itself.
	sh("3", step3)
	renewed := readPEMCert(t, device)
	if renewed.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatal("device.pem was not replaced by a renewed certificate")
	}
	if !bytes.Equal(renewed.RawSubject, first.RawSubject) {
		t.Errorf("renewed subject %q, want %q", renewed.Subject, first.Subject)
	}
	if renewed.CheckSignatureFrom(issuing) != nil {
		t.Errorf("renewed certificate not issued by %q", issuing.Subject)
	}
	if !renewed.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(first.PublicKey) {
		t.Error("README step 3 reuses device.key, but the renewed certificate has another key")
	}
	d.verifyChain(t, work, device, "sslclient")

	// The banner shows the same enrollment commands as README step 2.
	_, cmds, ok := strings.Cut(d.stdout.String(), "(curl asks for the password):\n")
	if !ok {
		t.Fatalf("banner without enrollment example:\n%s", d.stdout)
	}
	readme := strings.ReplaceAll(strings.ReplaceAll(blocks[1], "127.0.0.1:8443", d.addr), "estd-data/", d.dir+"/")
	if got, want := trimLines(cmds), trimLines(readme); !strings.HasPrefix(want, got) || got == "" {
		t.Errorf("banner example differs from README step 2\nbanner:\n%s\nREADME:\n%s", got, want)
	}
}

// trimLines trims every line of s and drops empty ones.
func trimLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
