package server_test

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/sqlite"
)

// crlFixture is a revocation listener for two issuing CAs under one root
// (g1, the first generation, and g2) on an SQLite store, with a clock the
// test moves and a switch that fails the store's reads.
type crlFixture struct {
	st        *sqlite.Store
	g1, g2    *ca.CA
	h         *server.Revocation
	clock     *atomic.Int64
	issueBy   func(c *ca.CA, cn string) *x509.Certificate
	get       func(path string) (int, *x509.RevocationList)
	pathG1    string
	pathG2    string
	failReads *atomic.Bool
}

type flakyStore struct {
	*sqlite.Store
	fail *atomic.Bool
}

func (f flakyStore) Revoked(ctx context.Context, now time.Time) ([]*store.Record, error) {
	if f.fail.Load() {
		return nil, errors.New("store unreachable")
	}
	return f.Store.Revoked(ctx, now)
}

func newCRLFixture(t *testing.T) *crlFixture {
	ctx := context.Background()
	now := time.Now()
	f := &crlFixture{clock: new(atomic.Int64), failReads: new(atomic.Bool)}
	f.clock.Store(now.UnixNano())
	root := testpki.NewRoot(t, "Root", now)
	f.g1, f.g2 = testpki.SubCA(t, root, "Issuing", now.Add(-time.Hour)), testpki.SubCA(t, root, "Issuing G2", now.Add(-time.Hour))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "estd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	p := ca.DefaultProfiles()[0]
	f.issueBy = func(c *ca.CA, cn string) *x509.Certificate {
		req, _ := x509.ParseCertificateRequest(testpki.CSR(t, testpki.Key(t, ca.P256), cn, nil, nil))
		cert, err := c.Issue(ctx, req, p, auth.Identity{Method: auth.Basic, Name: "op"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, server.Record(cert, "", auth.Identity{Method: auth.Basic, Name: "op"}, now)); err != nil {
			t.Fatal(err)
		}
		return cert
	}
	cas := []server.IssuingCA{{Cert: f.g2.Cert, Signer: f.g2.Signer}, {Cert: f.g1.Cert, Signer: f.g1.Signer}}
	f.h, err = server.NewRevocation(cas, flakyStore{st, f.failReads}, func() time.Time { return time.Unix(0, f.clock.Load()) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.pathG1 = "/crl"
	f.pathG2 = "/crl/" + hex.EncodeToString(f.g2.Cert.SubjectKeyId)
	f.get = func(path string) (int, *x509.RevocationList) {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest("GET", "http://pki.example"+path, nil))
		if rec.Code != 200 {
			return rec.Code, nil
		}
		crl, err := x509.ParseRevocationList(rec.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return rec.Code, crl
	}
	return f
}

// TestCRLThisUpdateIsTheReading: a CRL signed from a reading of the store
// made earlier (shared by the CAs) is dated by that reading, not by its
// signing, so it never claims to be current as of a moment when a
// revocation it does not list had happened; and a revocation reaches the
// CRLs within a minute.
func TestCRLThisUpdateIsTheReading(t *testing.T) {
	f := newCRLFixture(t)
	t0 := time.Unix(0, f.clock.Load())
	victim := f.issueBy(f.g2, "victim")
	if code, _ := f.get(f.pathG1); code != 200 { // reads the store at t0 for every CA
		t.Fatal(code)
	}
	revokedAt := t0.Add(time.Second)
	if err := f.st.Revoke(context.Background(), victim.SerialNumber, 1, revokedAt); err != nil {
		t.Fatal(err)
	}
	f.clock.Store(t0.Add(59 * time.Second).UnixNano())
	_, crl := f.get(f.pathG2)
	listed := false
	for _, e := range crl.RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Cmp(victim.SerialNumber) == 0
	}
	if !listed && crl.ThisUpdate.After(revokedAt) {
		t.Errorf("CRL thisUpdate %v is after the revocation at %v, yet the CRL does not list it (the reading it was signed from dates from %v)",
			crl.ThisUpdate.Format(time.TimeOnly), revokedAt.Format(time.TimeOnly), t0.Format(time.TimeOnly))
	}
	f.clock.Store(t0.Add(61 * time.Second).UnixNano())
	_, crl = f.get(f.pathG2)
	if len(crl.RevokedCertificateEntries) != 1 {
		t.Errorf("a revocation is not on the CRL 60 s after it")
	}
}

// TestCRLStoreOutage: while the store cannot be read, a CA's last CRL is
// served as long as it is valid.
func TestCRLStoreOutage(t *testing.T) {
	f := newCRLFixture(t)
	t0 := time.Unix(0, f.clock.Load())
	if code, _ := f.get(f.pathG2); code != 200 {
		t.Fatal(code)
	}
	f.failReads.Store(true)
	f.clock.Store(t0.Add(2 * time.Minute).UnixNano())
	if code, _ := f.get(f.pathG2); code != 200 {
		t.Errorf("store unreachable 2 min after a CRL valid for 24 h was signed: %d (the cached CRL is dropped)", code)
	}
}

// TestCRLConcurrent: CRLs of two CAs fetched concurrently while revocations
// land and the clock moves (the package runs with -race).
func TestCRLConcurrent(t *testing.T) {
	f := newCRLFixture(t)
	var certs []*x509.Certificate
	for i := range 20 {
		c := f.g1
		if i%2 == 0 {
			c = f.g2
		}
		certs = append(certs, f.issueBy(c, "c"))
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				p := f.pathG1
				if (i+j)%2 == 0 {
					p = f.pathG2
				}
				if code, _ := f.get(p); code != 200 {
					t.Errorf("%s: %d", p, code)
					return
				}
				if j%10 == 0 {
					f.clock.Add(int64(30 * time.Second))
				}
			}
		})
	}
	for _, c := range certs {
		f.st.Revoke(context.Background(), c.SerialNumber, 1, time.Unix(0, f.clock.Load()))
	}
	wg.Wait()
}
