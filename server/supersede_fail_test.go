package server_test

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// supersedingStore is the in-memory store with RevokeIfValid, whose hooks a
// test sets: afterPut runs once a record is put, revokeErr fails
// RevokeIfValid.
type supersedingStore struct {
	*memStore
	afterPut  func()
	revokeErr error
}

func (s *supersedingStore) Put(ctx context.Context, rec *store.Record) error {
	err := s.memStore.Put(ctx, rec)
	if err == nil && s.afterPut != nil {
		s.afterPut()
	}
	return err
}

func (s *supersedingStore) RevokeIfValid(ctx context.Context, serial *big.Int, reason int, at time.Time) (bool, error) {
	if s.revokeErr != nil {
		return false, s.revokeErr
	}
	r, err := s.BySerial(ctx, serial)
	if err != nil {
		return false, err
	}
	if r.Revoked {
		return false, nil
	}
	return true, s.Revoke(ctx, serial, reason, at)
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

	// And then the renewal goes through, once.
	if rec := send(context.Background(), est.OpSimpleReenroll, old); rec.Code != 200 {
		t.Fatalf("renewal: %d %s", rec.Code, rec.Body)
	}
	if o, n := valid(); o || n != 1 {
		t.Errorf("after the renewal: old valid %v, %d new valid; want one successor", o, n)
	}
}
