package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
)

// TestWaitsOn202: a server that answers 202 Accepted with Retry-After is
// polled again after the delay, and est says what it waits for and how long.
func TestWaitsOn202(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	issuer := testpki.NewRoot(t, "Pending CA", now)
	var calls atomic.Int32
	issuing, err := ca.New(issuer.Cert, issuer.Key, []*x509.Certificate{issuer.Cert})
	if err != nil {
		t.Fatal(err)
	}
	issuing.Clock = func() time.Time { return now }
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != est.Path("", est.OpSimpleEnroll) {
			w.WriteHeader(http.StatusNoContent) // csrattrs: none
			return
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "90")
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte("waiting for manual approval"))
			return
		}
		csr, _ := est.DecodeBase64(readAll(r))
		req, err := est.ParseCSR(csr)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		cert, err := issuing.Issue(r.Context(), req, ca.DefaultProfiles()[0], auth.Identity{})
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p7, _ := est.EncodeCertsOnly(cert)
		w.Header().Set("Content-Type", est.MediaCertsOnly)
		w.Write(est.EncodeBase64(p7))
	}))
	defer srv.Close()
	dir := t.TempDir()
	anchor := filepath.Join(dir, "anchor.pem")
	testpki.WriteCerts(t, anchor, srv.Certificate())

	var slept []time.Duration
	var stderr bytes.Buffer
	e := &env{
		stdout: &bytes.Buffer{}, stderr: &stderr,
		getenv: func(k string) (string, bool) { return map[string]string{"EST_PASSWORD": "pw"}[k], k == "EST_PASSWORD" },
		sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			now = now.Add(d)
			return nil
		},
		now: func() time.Time { return now },
	}
	code := run(context.Background(), []string{"enroll", "-server", strings.TrimPrefix(srv.URL, "https://"), "-anchor", anchor,
		"-user", "u", "-cn", "pending-1", "-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "c.pem")}, e)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if len(slept) != 1 || slept[0] != 90*time.Second {
		t.Fatalf("slept %v, want one wait of 90s", slept)
	}
	if !strings.Contains(stderr.String(), "waiting 1m30s (until 12:01:30)") {
		t.Fatalf("stderr does not say what est waits for and how long:\n%s", stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "c.pem")); err != nil {
		t.Fatal(err)
	}
}

func readAll(r *http.Request) []byte {
	var b bytes.Buffer
	b.ReadFrom(r.Body)
	return b.Bytes()
}
