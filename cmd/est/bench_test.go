package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// runBenchCmd runs est bench in process against s with the bootstrap
// user's password in EST_PASSWORD.
func runBenchCmd(t *testing.T, s *estdtest.Server, args ...string) (int, string, string) {
	t.Helper()
	e, stdout, stderr := checkEnv(s.Password)
	code := run(t.Context(), append([]string{"bench", "-server", s.Addr, "-anchor", s.RootFile}, args...), e)
	return code, stdout.String(), stderr.String()
}

func decodeBench(t *testing.T, out string) benchResult {
	t.Helper()
	var r benchResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, out)
	}
	return r
}

func countRecords(t *testing.T, s *estdtest.Server) int {
	t.Helper()
	n, next := 0, ""
	for {
		recs, nx, err := s.Daemon.Store.List(t.Context(), store.ListOptions{After: next, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n += len(recs)
		if nx == "" {
			return n
		}
		next = nx
	}
}

// TestBenchEnroll: -n requests are sent by -c clients, each answered with
// a certificate the server recorded, and -json reports them.
func TestBenchEnroll(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	before := countRecords(t, s)
	code, out, stderr := runBenchCmd(t, s, "-user", s.User, "-op", "enroll", "-c", "3", "-n", "7", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeBench(t, out)
	if r.Operation != string(est.OpSimpleEnroll) || r.Concurrency != 3 || r.Conn != connKeepAlive || r.KeyType != "p256" {
		t.Errorf("result describes %+v", r)
	}
	if r.Requests != 7 || r.OK != 7 || len(r.Errors) != 0 {
		t.Fatalf("requests %d ok %d errors %v, want 7 7 none", r.Requests, r.OK, r.Errors)
	}
	l := r.Latency
	if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) || r.RequestsPerSecond <= 0 || r.Seconds <= 0 {
		t.Errorf("implausible figures: %+v", r)
	}
	if got := countRecords(t, s) - before; got != 7 {
		t.Errorf("the store holds %d new certificates, want 7", got)
	}
	if !strings.Contains(stderr, "making 7 p256 keys and CSRs") {
		t.Errorf("stderr does not say the CSRs are made beforehand:\n%s", stderr)
	}
}

// TestBenchReenrollResume: reenroll enrolls one certificate per client
// first, then renews it presenting it; with -conn resume every connection
// after a client's first resumes its TLS session.
func TestBenchReenrollResume(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	code, out, stderr := runBenchCmd(t, s, "-user", s.User, "-op", "reenroll", "-c", "2", "-n", "6", "-conn", "resume", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeBench(t, out)
	if r.OK != 6 || r.Operation != string(est.OpSimpleReenroll) {
		t.Fatalf("%+v", r)
	}
	if r.TLSResumed < 1 {
		t.Errorf("no TLS session was resumed in %d requests on new connections", r.OK)
	}
	if !strings.Contains(stderr, "enrolling 2 certificates to renew") {
		t.Errorf("stderr: %s", stderr)
	}
}

// TestBenchCACertsNewConnections: the text report, for cacerts over a new
// connection per request, without credentials.
func TestBenchCACertsNewConnections(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	code, out, stderr := runBenchCmd(t, s, "-op", "cacerts", "-c", "2", "-n", "5", "-conn", "new")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"est bench: cacerts, 2 clients, new connections", "requests    5 ok, 0 failed", "requests/s", "p50 ", "p99 ", "client CPU"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchManufacturerAndKeyType: -cert/-key authenticate with a device
// certificate (-key is then the key file), -key-type picks the CSRs' key,
// and serverkeygen is measured too.
func TestBenchManufacturerAndKeyType(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	dir := t.TempDir()
	cert, key := s.Manufacturer.Device(t, "SN-BENCH", time.Now())
	certFile, keyFile := filepath.Join(dir, "dev.pem"), filepath.Join(dir, "dev.key")
	testpki.WriteCerts(t, certFile, cert)
	testpki.WriteKey(t, keyFile, key)
	code, out, stderr := runBenchCmd(t, s, "-cert", certFile, "-key", keyFile, "-key-type", "p384", "-op", "serverkeygen", "-n", "2", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r := decodeBench(t, out); r.OK != 2 || r.KeyType != "p384" || r.Operation != string(est.OpServerKeyGen) {
		t.Fatalf("%+v", r)
	}
	// Without -cert, -key names the key type.
	code, out, stderr = runBenchCmd(t, s, "-user", s.User, "-key", "ed25519", "-n", "2", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r := decodeBench(t, out); r.OK != 2 || r.KeyType != "ed25519" {
		t.Fatalf("-key ed25519: %+v", r)
	}
}

// TestBenchErrorsCounted: refused requests are counted by status, the
// first reason is shown, and est bench exits non-zero.
func TestBenchErrorsCounted(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	e, stdout, stderr := checkEnv("wrong password")
	code := run(t.Context(), []string{"bench", "-server", s.Addr, "-anchor", s.RootFile, "-user", s.User, "-n", "3", "-json"}, e)
	if code != exitFailure {
		t.Fatalf("exit %d, want %d: %s", code, exitFailure, stderr)
	}
	r := decodeBench(t, stdout.String())
	if r.OK != 0 || r.Requests != 3 || r.Errors["401"] != 3 {
		t.Fatalf("%+v", r)
	}
	if !strings.Contains(r.FirstError, "401") || !strings.Contains(stderr.String(), "3 of 3 requests failed") {
		t.Errorf("first error %q, stderr %q", r.FirstError, stderr)
	}
}

func TestBenchDuration(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	code, out, stderr := runBenchCmd(t, s, "-op", "csrattrs", "-label", "tls-server", "-d", "300ms", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if r := decodeBench(t, out); r.OK == 0 || r.Seconds < 0.3 || r.Label != "tls-server" {
		t.Fatalf("%+v", r)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-op", "bogus"},
		{"-n", "3", "-d", "1s"},
		{"-c", "0"},
		{"-conn", "sometimes"},
		{"-key-type", "dsa"},
		{"-key", "p256", "-key-type", "p384"},
		{"-n", "-1"},
		{"-label", "not a label", "-n", "1"},
		{"extra"},
	} {
		e, _, stderr := checkEnv("x")
		if code := run(t.Context(), append([]string{"bench", "-server", "127.0.0.1:1", "-insecure"}, args...), e); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitUsage, stderr)
		}
	}
}

func TestCheckBenchDefaults(t *testing.T) {
	cfg, err := checkBench(benchConfig{concurrency: 4}, "enroll", "")
	if err != nil || cfg.duration != 10*time.Second || cfg.keyType != "p256" || cfg.pool != 256 {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	cfg, _ = checkBench(benchConfig{concurrency: 4, count: 10}, "enroll", "rsa2048")
	if cfg.pool != 10 {
		t.Errorf("pool %d for -n 10, want 10", cfg.pool)
	}
	cfg, _ = checkBench(benchConfig{concurrency: 4}, "enroll", "rsa2048")
	if cfg.pool != 64 {
		t.Errorf("RSA pool %d, want 64", cfg.pool)
	}
	cfg, _ = checkBench(benchConfig{concurrency: 5, count: 100}, "reenroll", "")
	if cfg.pool != 5 || cfg.op != est.OpSimpleReenroll {
		t.Errorf("reenroll: %+v", cfg)
	}
}

func TestBenchURL(t *testing.T) {
	for _, tc := range []struct{ server, label, want string }{
		{"est.example:8443", "", "https://est.example:8443/.well-known/est/simpleenroll"},
		{"https://est.example/", "tls-server", "https://est.example/.well-known/est/tls-server/simpleenroll"},
		{"https://proxy.example/ca1", "", "https://proxy.example/ca1/.well-known/est/simpleenroll"},
	} {
		if got, err := benchURL(tc.server, tc.label, est.OpSimpleEnroll); err != nil || got != tc.want {
			t.Errorf("benchURL(%q, %q) = %q, %v; want %q", tc.server, tc.label, got, err, tc.want)
		}
	}
}

func TestLatencies(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	got := latencies(lat)
	want := latencyStats{Mean: 50.5, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("latencies = %+v, want %+v", got, want)
	}
	if (latencies(nil) != latencyStats{}) {
		t.Error("no latencies should give zeros")
	}
	if got := latencies([]time.Duration{3 * time.Millisecond}); got.P50 != 3 || got.P99 != 3 || got.Max != 3 {
		t.Errorf("one latency: %+v", got)
	}
}

// TestProgress: the progress line is rewritten in place, and cleared at
// the end so the report starts on a clean line.
func TestProgress(t *testing.T) {
	if got := progressLine(2500*time.Millisecond, 40, 1, 16); got != "\r\x1b[K   2.5s  40 done  1 errors  16 requests/s" {
		t.Errorf("progressLine = %q", got)
	}
	var (
		buf          syncbuf.Buffer
		done, failed atomic.Int64
		finished     = make(chan struct{})
		returned     = make(chan struct{})
	)
	done.Store(12)
	go func() {
		showProgress(&buf, time.Now(), time.Millisecond, &done, &failed, finished)
		close(returned)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "12 done") {
		if time.Now().After(deadline) {
			t.Fatal("no progress line")
		}
		runtime.Gosched()
	}
	close(finished)
	<-returned
	if out := buf.String(); !strings.HasSuffix(out, "\r\x1b[K") {
		t.Errorf("progress not cleared at the end: %q", out)
	}
}

func TestIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a file is not a terminal")
	}
}
