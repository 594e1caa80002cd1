package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/conformance"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// checkEnv runs est in process with the given EST_PASSWORD.
func checkEnv(password string) (*env, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &env{
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) (string, bool) {
			if k == "EST_PASSWORD" && password != "" {
				return password, true
			}
			return "", false
		},
	}, &stdout, &stderr
}

// checkInputs writes the files est check takes for a started estd and
// returns the flags naming them.
func checkInputs(t *testing.T, s *estdtest.Server) []string {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	files := map[string]string{}
	write := func(name string) func(*x509.Certificate, crypto.Signer) {
		return func(cert *x509.Certificate, key crypto.Signer) {
			files[name+"-cert"] = filepath.Join(dir, name+".pem")
			files[name+"-key"] = filepath.Join(dir, name+".key")
			testpki.WriteCerts(t, files[name+"-cert"], cert)
			testpki.WriteKey(t, files[name+"-key"], key)
		}
	}
	write("manufacturer")(s.Manufacturer.Device(t, "SN-4711", now))
	write("rogue")(testpki.Rogue(t, now).Device(t, "SN-4711", now))
	write("expired")(s.Manufacturer.Expired(t, "SN-old", now))
	args := []string{"-server", s.Addr, "-anchor", s.RootFile, "-user", s.User}
	for _, name := range []string{"manufacturer", "rogue", "expired"} {
		args = append(args, "-"+name+"-cert", files[name+"-cert"], "-"+name+"-key", files[name+"-key"])
	}
	return args
}

// jsonReport is what -json writes, as a consumer would read it.
type jsonReport struct {
	Server                  string `json:"server"`
	Passed, Failed, Skipped int
	Summary                 string `json:"summary"`
	Results                 []struct {
		ID, Group, Name, Status, Reason string
	} `json:"results"`
}

// junitReport is what -junit writes, as a CI system would read it.
type junitReport struct {
	XMLName  xml.Name `xml:"testsuites"`
	Tests    int      `xml:"tests,attr"`
	Failures int      `xml:"failures,attr"`
	Skipped  int      `xml:"skipped,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Skipped  int    `xml:"skipped,attr"`
		Cases    []struct {
			Name    string    `xml:"name,attr"`
			Failure *struct{} `xml:"failure"`
			Skip    *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func readJUnit(t *testing.T, path string) junitReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j junitReport
	if err := xml.Unmarshal(data, &j); err != nil {
		t.Fatalf("-junit wrote invalid XML: %v", err)
	}
	// The totals must agree with the suites and the test cases.
	var tests, failures, skipped, cases, failed, skips int
	for _, s := range j.Suites {
		tests, failures, skipped = tests+s.Tests, failures+s.Failures, skipped+s.Skipped
		for _, c := range s.Cases {
			cases++
			if c.Failure != nil {
				failed++
			}
			if c.Skip != nil {
				skips++
			}
		}
	}
	if tests != j.Tests || cases != j.Tests || failures != j.Failures || failed != j.Failures || skipped != j.Skipped || skips != j.Skipped {
		t.Fatalf("JUnit counts disagree: totals %d/%d/%d, suites %d/%d/%d, cases %d/%d/%d", j.Tests, j.Failures, j.Skipped, tests, failures, skipped, cases, failed, skips)
	}
	return j
}

// TestCheckPassesAgainstEstd: est check against a real estd, every input
// given, passes every check and skips none; the JSON and JUnit reports say so.
func TestCheckPassesAgainstEstd(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	junit := filepath.Join(t.TempDir(), "junit.xml")
	e, stdout, stderr := checkEnv(s.Password)
	args := append([]string{"check"}, checkInputs(t, s)...)
	if code := run(context.Background(), append(args, "-json", "-junit", junit), e); code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, stdout)
	}
	n := len(conformance.Checks())
	if rep.Passed != n || rep.Failed != 0 || rep.Skipped != 0 || len(rep.Results) != n || rep.Server != s.Addr {
		t.Fatalf("JSON report: server %q, %d passed, %d failed, %d skipped of %d results; want all %d passed", rep.Server, rep.Passed, rep.Failed, rep.Skipped, len(rep.Results), n)
	}
	for _, r := range rep.Results {
		if r.Status != "PASS" || r.ID == "" || r.Group == "" || r.Name == "" || r.Reason == "" {
			t.Errorf("result %+v", r)
		}
	}
	if rep.Summary != (conformance.Counts{Passed: n}).String() {
		t.Errorf("summary %q", rep.Summary)
	}
	if j := readJUnit(t, junit); j.Tests != n || j.Failures != 0 || j.Skipped != 0 {
		t.Errorf("JUnit: %d tests, %d failures, %d skipped; want %d, 0, 0", j.Tests, j.Failures, j.Skipped, n)
	}
}

// TestCheckReportsFailures: a check that fails makes the run fail, with
// the failure in the table, the JSON and the JUnit report; checks whose
// inputs are missing are SKIP and name the flag.
func TestCheckReportsFailures(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	dir := t.TempDir()
	// Another root as the anchor: the server's root is not it.
	wrongAnchor := filepath.Join(dir, "other-root.pem")
	testpki.WriteCerts(t, wrongAnchor, s.Manufacturer.Cert)
	junit := filepath.Join(dir, "junit.xml")

	e, stdout, stderr := checkEnv("")
	code := run(context.Background(), []string{"check", "-server", s.Addr, "-anchor", wrongAnchor, "-run", `^(cacerts\.|auth\.rogue$)`, "-junit", junit}, e)
	if code == exitOK {
		t.Fatalf("exit 0 with failing checks\n%s", stdout)
	}
	out := stdout.String()
	for _, want := range []string{
		"Normal operation / CA certificates",
		"FAIL  cacerts.chain",
		"FAIL  cacerts.anchor",
		"SKIP  auth.rogue",
		"pass -rogue-cert and -rogue-key",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^0 passed, 2 failed, 1 skipped$`).MatchString(out) {
		t.Errorf("no summary line '0 passed, 2 failed, 1 skipped':\n%s", out)
	}
	if !strings.Contains(stderr.String(), "est check: 2 of 3 checks failed") {
		t.Errorf("stderr %q", stderr)
	}
	if j := readJUnit(t, junit); j.Tests != 3 || j.Failures != 2 || j.Skipped != 1 {
		t.Errorf("JUnit: %d tests, %d failures, %d skipped; want 3, 2, 1", j.Tests, j.Failures, j.Skipped)
	}

	e, stdout, _ = checkEnv("")
	if code := run(context.Background(), []string{"check", "-server", s.Addr, "-anchor", wrongAnchor, "-run", `^cacerts\.chain$`, "-json"}, e); code == exitOK {
		t.Fatal("exit 0 with a failing check")
	}
	var rep jsonReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output does not parse: %v", err)
	}
	if rep.Failed != 1 || len(rep.Results) != 1 || rep.Results[0].Status != "FAIL" || !strings.Contains(rep.Results[0].Reason, "certificate") {
		t.Errorf("JSON report %+v", rep)
	}
}

// TestCheckFailedExitCode: a run with failed checks is an error carrying
// the documented exit status, distinct from the others.
func TestCheckFailedExitCode(t *testing.T) {
	var err error = &checkFailed{conformance.Counts{Passed: 3, Failed: 2}}
	var ec interface{ ExitCode() int }
	if !errors.As(err, &ec) || ec.ExitCode() != 6 || err.Error() != "2 of 5 checks failed" {
		t.Fatalf("%v", err)
	}
	for _, other := range []int{exitOK, exitFailure, exitUsage, exitAuth, exitRefused, exitTrust} {
		if other == exitCheckFailed {
			t.Fatalf("exit status %d is taken", other)
		}
	}
}

func TestCheckUsage(t *testing.T) {
	dir := t.TempDir()
	cert, _ := testpki.Manufacturer(t, time.Now()).Device(t, "x", time.Now())
	certFile, otherKey := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	testpki.WriteCerts(t, certFile, cert)
	testpki.WriteKey(t, otherKey, testpki.Key(t, ca.P256))
	cases := []struct {
		args []string
		want string
	}{
		{nil, "-server is required"},
		{[]string{"-server", "http://example.net"}, "HTTPS only"},
		{[]string{"-self", "-server", "example.net:443"}, "takes no -server"},
		{[]string{"-self", "-user", "est"}, "takes no -user"},
		{[]string{"-server", "x:1", "-rogue-cert", certFile}, "-rogue-cert and -rogue-key go together"},
		{[]string{"-server", "x:1", "-manufacturer-cert", certFile, "-manufacturer-key", otherKey}, "-manufacturer-key does not match"},
		{[]string{"-server", "x:1", "-run", "("}, "-run"},
		{[]string{"-server", "x:1", "-client-label", "a/b"}, "not a valid CA label"},
		{[]string{"-server", "x:1", "-timeout", "0s"}, "-timeout"},
		{[]string{"-server", "x:1", "extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		e, _, stderr := checkEnv("")
		if code := run(context.Background(), append([]string{"check"}, c.args...), e); code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("est check %v: exit %d, stderr %q; want %d mentioning %q", c.args, code, stderr, exitUsage, c.want)
		}
	}
	e, stdout, _ := checkEnv("")
	if code := run(context.Background(), []string{"check", "-list"}, e); code != exitOK || strings.Count(stdout.String(), "\n") != len(conformance.Checks()) {
		t.Errorf("-list: exit %d:\n%s", code, stdout)
	}
	e, _, stderr := checkEnv("")
	if code := run(context.Background(), []string{"help", "check"}, e); code != exitOK || !strings.Contains(stderr.String(), "Exit status") || !strings.Contains(stderr.String(), "-manufacturer-cert") {
		t.Errorf("help check: exit %d:\n%s", code, stderr)
	}
}

// TestSelfPKI: the test PKI of -self is what the checks need: a device
// certificate from the manufacturer CA, a look-alike from another CA with
// the same name, and an expired one.
func TestSelfPKI(t *testing.T) {
	now := time.Now()
	p, err := newSelfPKI(now)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.manufacturer)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := p.device.Leaf.Verify(opts); err != nil {
		t.Errorf("device certificate: %v", err)
	}
	if _, err := p.rogue.Leaf.Verify(opts); err == nil {
		t.Error("the rogue certificate verifies against the manufacturer CA")
	}
	if p.rogue.Leaf.Issuer.String() != p.device.Leaf.Issuer.String() || p.rogue.Leaf.Subject.String() != p.device.Leaf.Subject.String() {
		t.Error("the rogue certificate does not look like the device certificate")
	}
	if _, err := p.expired.Leaf.Verify(opts); err == nil || !now.After(p.expired.Leaf.NotAfter) {
		t.Errorf("the expired certificate is not expired: %v", err)
	}
}
