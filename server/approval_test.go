package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// approvalProfiles are the default profiles plus "held", which needs an
// operator's approval and revokes renewed certificates.
func approvalProfiles() []*ca.Profile {
	ps := ca.DefaultProfiles()
	held := *ps[1]
	held.Name, held.ManualApproval, held.RevokeOnRenew = "held", true, true
	return append(ps, &held)
}

func TestManualApproval(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: approvalProfiles()})
	ctx := context.Background()
	approvals := s.Daemon.Store.(store.Approvals)
	basic := []string{s.User, s.Password}
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "held-1", nil, nil)
	post := func(op est.Operation, csr []byte) (int, http.Header, []byte) {
		return call(t, s.Client(), "POST", s.URL+est.Path("held", op), est.MediaPKCS10, est.EncodeBase64(csr), basic...)
	}

	// Pending: 202 with Retry-After, and a retry finds the same request.
	before := count(t, s)
	for range 2 {
		status, hdr, body := post(est.OpSimpleEnroll, csr)
		if status != http.StatusAccepted || hdr.Get("Retry-After") != "60" || !strings.Contains(string(body), "manual approval") {
			t.Fatalf("pending: %d Retry-After %q %q", status, hdr.Get("Retry-After"), body)
		}
	}
	pending, _, err := approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if err != nil || len(pending) != 1 || pending[0].Subject != "CN=held-1" || pending[0].Requester != s.User || pending[0].Label != "held" {
		t.Fatalf("pending requests: %d %v", len(pending), err)
	}
	if count(t, s) != before {
		t.Fatal("a pending request was issued a certificate")
	}

	// A restart keeps the request; approval then issues it, once.
	s.Restart(t)
	approvals = s.Daemon.Store.(store.Approvals)
	if err := approvals.Decide(ctx, pending[0].ID, store.RequestApproved, "alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	status, _, body := post(est.OpSimpleEnroll, csr)
	if status != 200 {
		t.Fatalf("approved: %d %s", status, body)
	}
	first := parseCertsOnly(t, body)
	req, err := approvals.Request(ctx, pending[0].ID)
	if err != nil || req.Status != store.RequestIssued || req.Serial.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("request after issuance: %+v %v", req, err)
	}
	// A retry after a lost response gets the same certificate, not a second one.
	status, _, body = post(est.OpSimpleEnroll, csr)
	if status != 200 || parseCertsOnly(t, body).SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("retry after issuance: %d, another certificate", status)
	}
	if got := count(t, s); got != before+1 {
		t.Fatalf("%d certificates issued for one approved request", got-before)
	}

	// Rejection: the retry gets 403 with the operator's reason.
	other := testpki.CSR(t, testpki.Key(t, ca.P256), "held-2", nil, nil)
	if status, _, _ := post(est.OpSimpleEnroll, other); status != 202 {
		t.Fatalf("second request: %d", status)
	}
	pending, _, _ = approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if len(pending) != 1 {
		t.Fatalf("%d pending", len(pending))
	}
	if err := approvals.Decide(ctx, pending[0].ID, store.RequestRejected, "bob", "unknown device", time.Now()); err != nil {
		t.Fatal(err)
	}
	if status, _, body := post(est.OpSimpleEnroll, other); status != 403 || !strings.Contains(string(body), "rejected by an operator: unknown device") {
		t.Fatalf("rejected: %d %q", status, body)
	}

	// Server-side key generation waits too; the key comes with the approval.
	kg := testpki.CSR(t, testpki.Key(t, ca.P256), "held-kg", nil, nil)
	if status, _, _ := post(est.OpServerKeyGen, kg); status != 202 {
		t.Fatalf("serverkeygen pending: %d", status)
	}
	pending, _, _ = approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	approvals.Decide(ctx, pending[0].ID, store.RequestApproved, "alice", "", time.Now())
	status, hdr, body := post(est.OpServerKeyGen, kg)
	if status != 200 {
		t.Fatalf("serverkeygen approved: %d %s", status, body)
	}
	if _, err := est.ParseServerKeyGen(hdr.Get("Content-Type"), body); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := post(est.OpServerKeyGen, kg); status != http.StatusConflict {
		t.Fatalf("serverkeygen retry after issuance: %d, want 409 (keys are not kept)", status)
	}

	// Renewal is not held, and revokes the renewed certificate on this label.
	e := enrollment{op: est.OpSimpleReenroll, label: "held", certs: []tls.Certificate{tlsCert(first, key)}, csr: csr}
	st, reason, renewed := e.do(t, s)
	if st != 200 {
		t.Fatalf("renewal: %d %s", st, reason)
	}
	old, err := s.Daemon.Store.BySerial(ctx, first.SerialNumber)
	if err != nil || !old.Revoked || old.RevocationReason != 4 {
		t.Fatalf("renewed certificate not revoked as superseded: %+v %v", old, err)
	}
	if rec, err := s.Daemon.Store.BySerial(ctx, renewed.SerialNumber); err != nil || rec.Revoked {
		t.Fatalf("renewal record: %v", err)
	}
	// The revoked certificate can no longer renew: asking again with the
	// same key gets the same certificate, another key nothing.
	if st, reason, again := e.do(t, s); st != 200 {
		t.Fatalf("renewal asked again: %d %q", st, reason)
	} else if !again.Equal(renewed) {
		t.Fatalf("renewal asked again: serial %x, want the renewal's %x", again.SerialNumber, renewed.SerialNumber)
	}
	e.csr = testpki.CSR(t, testpki.Key(t, ca.P256), first.Subject.CommonName, nil, nil)
	if st, reason, _ := e.do(t, s); st != 403 || !strings.Contains(reason, "revoked") {
		t.Fatalf("renewal by a revoked certificate: %d %q", st, reason)
	}
	// The approved request's certificate is revoked now: asking with its
	// CSR again gets 403, not the revoked certificate as a success.
	if status, _, body := post(est.OpSimpleEnroll, csr); status != 403 || !strings.Contains(string(body), "has been revoked") {
		t.Fatalf("the approved request asked again after its certificate was revoked: %d %q", status, body)
	}
}

func parseCertsOnly(t *testing.T, body []byte) *x509.Certificate {
	t.Helper()
	der, err := est.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

// TestApprovalRefusesWhatCannotBeIssued: a label held for an operator
// refuses at once what it could never issue, instead of queueing it, and
// holds what it would issue unheld: serverkeygen makes a key of its own,
// so the CSR's key type does not matter there.
func TestApprovalRefusesWhatCannotBeIssued(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: approvalProfiles()})
	approvals := s.Daemon.Store.(store.Approvals)
	basic := []string{s.User, s.Password}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	for _, tc := range []struct {
		name           string
		csr            []byte
		enroll, keygen int
	}{
		{"P-224 key", testpki.CSR(t, p224, "weak", nil, nil), http.StatusBadRequest, http.StatusAccepted},
		{"no name at all", testpki.CSR(t, testpki.Key(t, ca.P256), "", nil, nil), http.StatusBadRequest, http.StatusBadRequest},
		{"NUL in the name", testpki.CSR(t, testpki.Key(t, ca.P256), "dev\x00ice", nil, nil), http.StatusBadRequest, http.StatusBadRequest},
	} {
		for op, want := range map[est.Operation]int{est.OpSimpleEnroll: tc.enroll, est.OpServerKeyGen: tc.keygen} {
			st, _, body := call(t, s.Client(), "POST", s.URL+est.Path("held", op), est.MediaPKCS10, est.EncodeBase64(tc.csr), basic...)
			if st != want {
				t.Errorf("%s, %s: %d %s, want %d", tc.name, op, st, body, want)
			}
			// Unheld, the same request gets the same decision.
			unheld := want
			if unheld == http.StatusAccepted {
				unheld = http.StatusOK
			}
			if st, _, body := call(t, s.Client(), "POST", s.URL+est.Path("tls-client", op), est.MediaPKCS10, est.EncodeBase64(tc.csr), basic...); st != unheld {
				t.Errorf("%s, %s without approval: %d %s, want %d", tc.name, op, st, body, unheld)
			}
		}
	}
	if reqs, _, err := approvals.Requests(context.Background(), "", store.ListOptions{}); err != nil || len(reqs) != 1 {
		t.Errorf("%d requests held, %v; want the serverkeygen one", len(reqs), err)
	}
}

// TestPendingCap: a label holds at most max_pending requests for an
// operator; one more gets 503 with Retry-After and nothing is recorded,
// while a request already held is still answered 202, and a decision makes
// room.
func TestPendingCap(t *testing.T) {
	ps := approvalProfiles()
	ps[len(ps)-1].MaxPending = 2
	s := estdtest.Start(t, estdtest.Options{Profiles: ps})
	ctx := context.Background()
	approvals := s.Daemon.Store.(store.Approvals)
	basic := []string{s.User, s.Password}
	post := func(csr []byte) (int, http.Header, []byte) {
		return call(t, s.Client(), "POST", s.URL+est.Path("held", est.OpSimpleEnroll), est.MediaPKCS10, est.EncodeBase64(csr), basic...)
	}
	csrs := make([][]byte, 3)
	for i := range csrs {
		csrs[i] = testpki.CSR(t, testpki.Key(t, ca.P256), "capped", nil, nil)
	}
	for _, csr := range csrs[:2] {
		if status, _, body := post(csr); status != http.StatusAccepted {
			t.Fatalf("held: %d %s", status, body)
		}
	}
	status, hdr, body := post(csrs[2])
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") != "60" || !strings.Contains(string(body), "too many requests wait") {
		t.Fatalf("over the cap: %d Retry-After %q %q; want 503 with Retry-After 60", status, hdr.Get("Retry-After"), body)
	}
	if status, _, _ := post(csrs[0]); status != http.StatusAccepted {
		t.Errorf("a held request asked again at the cap: %d, want 202", status)
	}
	pending, _, err := approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending: %d, %v; want 2", len(pending), err)
	}
	if err := approvals.Decide(ctx, pending[0].ID, store.RequestRejected, "alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if status, _, body := post(csrs[2]); status != http.StatusAccepted {
		t.Errorf("after a decision: %d %s, want 202", status, body)
	}
}
