package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// failingStore refuses every Put, as a full disk or a lost database would.
type failingStore struct{ store.Store }

func (failingStore) Put(context.Context, *store.Record) error { return errors.New("disk full") }

// TestNoRecordNoCertificate: when the store cannot record a certificate, the
// requester gets a 503 with Retry-After and no certificate, and the internal
// cause does not leak.
func TestNoRecordNoCertificate(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	h, err := server.New(server.Options{
		Issuer:   s.Daemon.CA,
		CACerts:  s.Daemon.CA.Chain,
		Profiles: ca.DefaultProfiles(),
		Verifier: s.Daemon.Verifier,
		Store:    failingStore{s.Daemon.Store},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
		csr := testpki.CSR(t, testpki.Key(t, ca.P256), "unrecorded", nil, nil)
		req := httptest.NewRequest("POST", est.Path("", op), bytes.NewReader(est.EncodeBase64(csr)))
		req.TLS = &tls.ConnectionState{}
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.SetBasicAuth(s.User, s.Password)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("%s: status %d Retry-After %q, want 503 with Retry-After", op, rec.Code, rec.Header().Get("Retry-After"))
		}
		if strings.Contains(body, "disk full") || strings.Contains(body, "CERTIFICATE") || strings.Contains(body, "MII") {
			t.Fatalf("%s: response leaks the cause or a certificate: %q", op, body)
		}
	}
}
