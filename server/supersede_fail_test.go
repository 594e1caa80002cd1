package server_test

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/syncbuf"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// supersedingStore is the in-memory store with store.Supersedes, whose
// hooks a test sets: afterPut runs once a record is put, revokeErr fails
// Supersede without revoking, and the next lostAnswers Supersedes revoke
// and then fail, as when a connection is lost after the commit.
type supersedingStore struct {
	*memStore
	afterPut    func()
	revokeErr   error
	lostAnswers int
}

func (s *supersedingStore) Put(ctx context.Context, rec *store.Record) error {
	err := s.memStore.Put(ctx, rec)
	if err == nil && s.afterPut != nil {
		s.afterPut()
	}
	return err
}

func (s *supersedingStore) Withdraw(ctx context.Context, successor, serial *big.Int, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.recs[serial.Text(16)]
	if !ok {
		return false, store.ErrNotFound
	}
	if old.SupersededBy != nil && old.SupersededBy.Cmp(successor) == 0 {
		return true, nil
	}
	if r, ok := s.recs[successor.Text(16)]; ok && !r.Revoked {
		r.Revoked, r.RevokedAt, r.RevocationReason = true, at, store.ReasonCessation
	}
	return false, nil
}

func (s *supersedingStore) Supersede(ctx context.Context, serial, successor *big.Int, at time.Time) (bool, error) {
	if s.revokeErr != nil {
		return false, s.revokeErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[serial.Text(16)]
	if !ok {
		return false, store.ErrNotFound
	}
	won := !r.Revoked
	if won {
		r.Revoked, r.RevokedAt, r.RevocationReason, r.SupersededBy = true, at, store.ReasonSuperseded, successor
	} else {
		won = r.SupersededBy != nil && r.SupersededBy.Cmp(successor) == 0
	}
	if s.lostAnswers > 0 {
		s.lostAnswers--
		return false, errors.New("connection reset")
	}
	return won, nil
}

// TestSupersedeFailures: when the old certificate of a renewal on a
// revoke_on_renew label cannot be revoked (the store fails), or the client
// has gone by then, the new certificate is withdrawn and the old one stays
// valid, so that the device can renew again.
func TestSupersedeFailures(t *testing.T) {
	st := &supersedingStore{memStore: newMemStore()}
	p := ca.DefaultProfiles()[0]
	p.RevokeOnRenew = true
	h := newInProcess(t, st, []*ca.Profile{p}, nil)
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "renewer", nil, nil)
	send := func(ctx context.Context, op est.Operation, peer *x509.Certificate) *httptest.ResponseRecorder {
		if peer == nil {
			return h.send(ctx, op, csr)
		}
		return h.send(ctx, op, csr, peer)
	}
	rec := send(context.Background(), est.OpSimpleEnroll, nil)
	if rec.Code != 200 {
		t.Fatalf("enroll: %d %s", rec.Code, rec.Body)
	}
	der, _ := est.DecodeBase64(rec.Body.Bytes())
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		t.Fatal(err)
	}
	old := certs[0]
	valid := func() (oldValid bool, newValid int) {
		recs, _, _ := st.List(context.Background(), store.ListOptions{})
		for _, r := range recs {
			switch {
			case r.Serial.Cmp(old.SerialNumber) == 0:
				oldValid = !r.Revoked
			case !r.Revoked:
				newValid++
			}
		}
		return
	}

	// The store cannot revoke the old certificate: 503, the new one withdrawn.
	st.revokeErr = errors.New("disk on fire")
	if rec := send(context.Background(), est.OpSimpleReenroll, old); rec.Code != 503 {
		t.Errorf("renewal with a failing store: %d %s, want 503", rec.Code, rec.Body)
	}
	if o, n := valid(); !o || n != 0 {
		t.Errorf("after a failed revocation: old valid %v, %d new valid; want the old only", o, n)
	}
	st.revokeErr = nil

	// The client goes away once the new certificate is recorded.
	ctx, cancel := context.WithCancel(context.Background())
	st.afterPut = cancel
	if rec := send(ctx, est.OpSimpleReenroll, old); rec.Code != 499 {
		t.Errorf("renewal whose client went away: %d %s, want 499", rec.Code, rec.Body)
	}
	st.afterPut = nil
	if o, n := valid(); !o || n != 0 {
		t.Errorf("after the client went away: old valid %v, %d new valid; want the old only", o, n)
	}

	// The revocation commits but its answer is lost: asked again,
	// Supersede reports it committed, and the renewal goes through, once.
	st.lostAnswers = 1
	if rec := send(context.Background(), est.OpSimpleReenroll, old); rec.Code != 200 {
		t.Fatalf("renewal whose revocation's answer was lost: %d %s", rec.Code, rec.Body)
	}
	if o, n := valid(); o || n != 1 {
		t.Errorf("after the renewal: old valid %v, %d new valid; want one successor", o, n)
	}
}

// TestRenewalAskedAgain: a device whose renewal was answered, on a label
// that revokes what it renews, but whose answer was lost, has only its old,
// revoked certificate. Asking again with the same key gets it the
// certificate it was issued, with nothing new signed or recorded; asking
// with another key, or after the successor was revoked, gets 403.
func TestRenewalAskedAgain(t *testing.T) {
	st := &supersedingStore{memStore: newMemStore()}
	p := ca.DefaultProfiles()[0]
	p.RevokeOnRenew = true
	var logs syncbuf.Buffer
	h := newInProcess(t, st, []*ca.Profile{p}, &logs)
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "device-7", nil, nil)
	certOf := func(rec *httptest.ResponseRecorder) *x509.Certificate { t.Helper(); return certOf(t, rec) }
	old := certOf(h.send(context.Background(), est.OpSimpleEnroll, csr))
	renewed := certOf(h.send(context.Background(), est.OpSimpleReenroll, csr, old))
	records := len(st.seq)

	again := certOf(h.send(context.Background(), est.OpSimpleReenroll, csr, old))
	if !again.Equal(renewed) {
		t.Fatalf("asked again: serial %x, want the renewal's %x", again.SerialNumber, renewed.SerialNumber)
	}
	if len(st.seq) != records {
		t.Errorf("asking again recorded %d certificates", len(st.seq)-records)
	}
	if !strings.Contains(logs.String(), "msg=\"sent again\"") {
		t.Errorf("no audit line for the certificate sent again:\n%s", logs.String())
	}

	// Another key: the old certificate renews nothing more.
	other := testpki.CSR(t, testpki.Key(t, ca.P256), "device-7", nil, nil)
	if rec := h.send(context.Background(), est.OpSimpleReenroll, other, old); rec.Code != 403 || !strings.Contains(rec.Body.String(), "renewed already") {
		t.Errorf("asked again with another key: %d %s, want 403", rec.Code, rec.Body)
	}
	// Another subject with the same key: checkRenewal refuses it.
	renamed := testpki.CSR(t, key, "device-8", nil, nil)
	if rec := h.send(context.Background(), est.OpSimpleReenroll, renamed, old); rec.Code != 403 {
		t.Errorf("asked again for another subject: %d %s, want 403", rec.Code, rec.Body)
	}
	// simpleenroll with the revoked certificate gets nothing either.
	if rec := h.send(context.Background(), est.OpSimpleEnroll, csr, old); rec.Code != 403 {
		t.Errorf("simpleenroll with the superseded certificate: %d %s, want 403", rec.Code, rec.Body)
	}
	// The successor revoked: nothing to send again.
	if err := st.Revoke(context.Background(), renewed.SerialNumber, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if rec := h.send(context.Background(), est.OpSimpleReenroll, csr, old); rec.Code != 403 {
		t.Errorf("asked again after the successor was revoked: %d %s, want 403", rec.Code, rec.Body)
	}
	if len(st.seq) != records {
		t.Errorf("refusals recorded %d certificates", len(st.seq)-records)
	}
}

// TestSupersedeAnswersLost: the revocation of the renewed certificate
// commits, and neither its answer nor the retry's arrives. The renewal
// then withdraws its certificate only if the old one does not name it:
// here it does, so the renewal succeeds, and the device is not left with a
// revoked certificate and a withdrawn one.
func TestSupersedeAnswersLost(t *testing.T) {
	st := &supersedingStore{memStore: newMemStore()}
	p := ca.DefaultProfiles()[0]
	p.RevokeOnRenew = true
	h := newInProcess(t, st, []*ca.Profile{p}, nil)
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "device-9", nil, nil)
	old := certOf(t, h.send(context.Background(), est.OpSimpleEnroll, csr))
	st.lostAnswers = 2
	renewed := certOf(t, h.send(context.Background(), est.OpSimpleReenroll, csr, old))
	o, _ := st.BySerial(context.Background(), old.SerialNumber)
	n, _ := st.BySerial(context.Background(), renewed.SerialNumber)
	if !o.Revoked || o.SupersededBy == nil || o.SupersededBy.Cmp(renewed.SerialNumber) != 0 || n.Revoked {
		t.Fatalf("old revoked %v superseded by %v, renewal revoked %v; want the renewal valid and named", o.Revoked, o.SupersededBy, n.Revoked)
	}

	// When the revocation did not commit, the renewal is withdrawn and the
	// old certificate renews again.
	other := certOf(t, h.send(context.Background(), est.OpSimpleEnroll, testpki.CSR(t, testpki.Key(t, ca.P256), "device-10", nil, nil)))
	st.revokeErr = errors.New("connection reset")
	csr2 := testpki.CSR(t, testpki.Key(t, ca.P256), "device-10", nil, nil)
	if rec := h.send(context.Background(), est.OpSimpleReenroll, csr2, other); rec.Code != 503 {
		t.Fatalf("renewal whose revocation failed: %d %s, want 503", rec.Code, rec.Body)
	}
	st.revokeErr = nil
	certOf(t, h.send(context.Background(), est.OpSimpleReenroll, csr2, other))
}

// TestSupersededRateLimited: a superseded certificate asking again counts
// as a failed authentication, as any revoked certificate does: past the
// limit it gets 429 before its request is read.
func TestSupersededRateLimited(t *testing.T) {
	st := &supersedingStore{memStore: newMemStore()}
	p := ca.DefaultProfiles()[0]
	p.RevokeOnRenew = true
	h := newInProcess(t, st, []*ca.Profile{p}, nil)
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "device-1", nil, nil)
	old := certOf(t, h.send(context.Background(), est.OpSimpleEnroll, csr))
	certOf(t, h.send(context.Background(), est.OpSimpleReenroll, csr, old))
	other := testpki.CSR(t, testpki.Key(t, ca.P256), "device-1", nil, nil)
	codes := map[int]int{}
	for range 30 {
		codes[h.send(context.Background(), est.OpSimpleReenroll, other, old).Code]++
	}
	if codes[429] == 0 || codes[403] > 10 {
		t.Errorf("30 requests of a superseded certificate: %v; want 429 after the burst of 10", codes)
	}
}

// TestRenewalRetryOverlaps: a client that gave up waiting asks again with
// the same CSR while its first request is still served. Whichever loses
// the race for the old certificate gets the winner's certificate, not 403,
// and the old certificate has one valid successor.
func TestRenewalRetryOverlaps(t *testing.T) {
	st := &supersedingStore{memStore: newMemStore()}
	p := ca.DefaultProfiles()[0]
	p.RevokeOnRenew = true
	h := newInProcess(t, st, []*ca.Profile{p}, nil)
	csr := testpki.CSR(t, testpki.Key(t, ca.P256), "device-3", nil, nil)
	old := certOf(t, h.send(context.Background(), est.OpSimpleEnroll, csr))
	var first *httptest.ResponseRecorder
	st.afterPut = func() {
		st.afterPut = nil
		// The first request, which authenticated before the retry revokes
		// the old certificate, is served to its end in the meantime.
		first = h.send(context.Background(), est.OpSimpleReenroll, csr, old)
	}
	retry := h.send(context.Background(), est.OpSimpleReenroll, csr, old)
	a, b := certOf(t, first), certOf(t, retry)
	if !a.Equal(b) {
		t.Fatalf("the overlapping requests got serials %x and %x, want the same certificate", a.SerialNumber, b.SerialNumber)
	}
	valid := 0
	for _, r := range st.seq {
		if r.Subject == old.Subject.String() && !r.Revoked {
			valid++
		}
	}
	if valid != 1 {
		t.Errorf("%d valid certificates for the device, want 1", valid)
	}
}

// certOf returns the certificate of a 200 answer.
func certOf(t *testing.T, rec *httptest.ResponseRecorder) *x509.Certificate {
	t.Helper()
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	return parseCertsOnly(t, rec.Body.Bytes())
}
