package server_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// TestClientWentAway: a request whose client closed the connection while it
// was served (its context canceled) is no internal error: logged as 499 at
// Info, not 500 at Error, and nothing is recorded.
func TestClientWentAway(t *testing.T) {
	st := newMemStore()
	var logs bytes.Buffer
	p := newInProcess(t, st, ca.DefaultProfiles(), &logs)
	for _, op := range []est.Operation{est.OpSimpleEnroll, est.OpServerKeyGen} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if rec := p.send(ctx, op, testpki.CSR(t, testpki.Key(t, ca.P256), "gone", nil, nil)); rec.Code != 499 {
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
