package server_test

// Review 6 scratch (not for commit): /fullcmc on a held label answers a
// retried request whose certificate was revoked with that certificate, as
// a success; /simpleenroll answers 403 since b62763e.

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// TestFullCMCRevokedIssued: a held fullcmc request whose certificate was
// revoked after it was issued gets a failure when asked again, not that
// certificate as a success.
func TestFullCMCRevokedIssued(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: cmcProfiles()})
	ctx := context.Background()
	approvals := s.Daemon.Store.(store.Approvals)
	basic := []string{s.User, s.Password}
	key := testpki.Key(t, ca.P256)
	csr, ski := cmcCSR(t, key, "held-revoked")
	der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
	if a := postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...); a.status != http.StatusAccepted {
		t.Fatalf("pending: %d", a.status)
	}
	pending, _, _ := approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if err := approvals.Decide(ctx, pending[0].ID, store.RequestApproved, "alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	a := postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...)
	if a.status != 200 {
		t.Fatalf("approved: %d", a.status)
	}
	first := a.cert(t, key.Public())
	// An operator revokes it (keyCompromise).
	if err := s.Daemon.Store.Revoke(ctx, first.SerialNumber, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	der2, nonce2, tid2 := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
	a = postCMC(t, s, s.Client(), "held", der2, nonce2, tid2, basic...)
	if a.status != http.StatusForbidden || a.st == nil || a.st.Status != est.CMCFailed {
		t.Fatalf("fullcmc retry after revocation: HTTP %d, status %+v; want 403 and a CMC failure", a.status, a.st)
	}
}
