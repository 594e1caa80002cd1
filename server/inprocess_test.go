package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// inProcess is a Handler on its own P-256 issuing CA and the store st, with
// the Basic user "op" (password "op-password"), called without a network:
// for tests that need a store or a context no real server gives them.
type inProcess struct {
	h        *server.Handler
	issuer   *ca.CA
	verifier *auth.Verifier
}

func newInProcess(t *testing.T, st store.Store, profiles []*ca.Profile, logs io.Writer) *inProcess {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	p := &inProcess{issuer: testpki.IssuingCA(t, ca.P256)}
	users := auth.NewUsers()
	if err := users.Set("op", "op-password"); err != nil {
		t.Fatal(err)
	}
	p.verifier = &auth.Verifier{Issuing: p.issuer.Cert, Store: st}
	p.verifier.SetUsers(users)
	var err error
	p.h, err = server.New(server.Options{
		Issuer: p.issuer, CACerts: p.issuer.Chain, Profiles: profiles, Verifier: p.verifier, Store: st,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Metrics: server.NewMetrics(prometheus.NewRegistry(), nil, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send posts the DER CSR csr to op of the unlabeled profile over a TLS 1.3
// connection that presented peers, or, without peers, as the Basic user.
func (p *inProcess) send(ctx context.Context, op est.Operation, csr []byte, peers ...*x509.Certificate) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, "POST", "https://estd.example"+est.Path("", op), bytes.NewReader(est.EncodeBase64(csr)))
	req.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13, PeerCertificates: peers}
	if len(peers) == 0 {
		req.SetBasicAuth("op", "op-password")
	}
	req.Header.Set("Content-Type", est.MediaPKCS10)
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	return rec
}
