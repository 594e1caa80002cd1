package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
)

// TestClientWentAway: a request whose client closed the connection while it
// was served (its context canceled) is no internal error: logged as 499 at
// Info, not 500 at Error, and nothing is recorded.
func TestClientWentAway(t *testing.T) {
	issuer := testpki.IssuingCA(t, ca.P256)
	st := newMemStore()
	users := auth.NewUsers()
	if err := users.Set("op", "op-password"); err != nil {
		t.Fatal(err)
	}
	v := &auth.Verifier{Issuing: issuer.Cert, Store: st}
	v.SetUsers(users)
	var logs bytes.Buffer
	h, err := server.New(server.Options{
		Issuer: issuer, CACerts: issuer.Chain, Profiles: ca.DefaultProfiles(), Verifier: v, Store: st,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Metrics: server.NewMetrics(prometheus.NewRegistry(), nil, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		body := est.EncodeBase64(testpki.CSR(t, testpki.Key(t, ca.P256), "gone", nil, nil))
		req := httptest.NewRequestWithContext(ctx, "POST", "https://estd.example"+est.Path("", op), bytes.NewReader(body))
		req.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
		req.Header.Set("Content-Type", est.MediaPKCS10)
		req.SetBasicAuth("op", "op-password")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 499 {
			t.Errorf("%s: %d %s, want 499", op, rec.Code, rec.Body)
		}
	}
	if strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "client went away") {
		t.Errorf("logs:\n%s", logs.String())
	}
	if recs, _, _ := st.List(context.Background(), store.ListOptions{}); len(recs) != 0 {
		t.Errorf("%d certificates recorded for clients that went away", len(recs))
	}
}
