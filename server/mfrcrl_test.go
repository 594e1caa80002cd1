package server_test

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
)

// TestManufacturerCRL: with the manufacturer's CRL loaded (on reload, as
// SIGHUP does), a device it lists is refused with the reason;
// other devices enroll; a CRL not signed by the manufacturer bundle is
// refused and the previous state kept.
func TestManufacturerCRL(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{})
	now := time.Now()
	stolen, stolenKey := s.Manufacturer.Device(t, "SN-stolen", now)
	good, goodKey := s.Manufacturer.Device(t, "SN-good", now)
	enroll := func(cert tls.Certificate, cn string) (int, string) {
		t.Helper()
		e := enrollment{op: est.OpSimpleEnroll, certs: []tls.Certificate{cert}, csr: testpki.CSR(t, testpki.Key(t, ca.P256), cn, nil, nil)}
		st, reason, _ := e.do(t, s)
		return st, reason
	}
	if st, reason := enroll(tlsCert(stolen, stolenKey), "before"); st != http.StatusOK {
		t.Fatalf("before the CRL: %d %s", st, reason)
	}

	dir := t.TempDir()
	crl := filepath.Join(dir, "manufacturer.crl")
	pemCRL := pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: s.Manufacturer.CRL(t, 1, now.Add(-time.Minute), now.Add(24*time.Hour), stolen)})
	if err := os.WriteFile(crl, pemCRL, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Reload(s.ManufacturerFile, crl, nil); err != nil {
		t.Fatal(err)
	}
	next := now.Add(24 * time.Hour).Truncate(time.Second)
	if got := gauge(t, s, "estd_manufacturer_crl_next_update_timestamp_seconds"); got != float64(next.Unix()) {
		t.Errorf("CRL nextUpdate metric %v, want %d", got, next.Unix())
	}
	if got := gauge(t, s, "estd_manufacturer_crl_revoked"); got != 1 {
		t.Errorf("revoked metric %v, want 1", got)
	}
	if st, reason := enroll(tlsCert(stolen, stolenKey), "after"); st != http.StatusForbidden || !strings.Contains(reason, "revoked by its manufacturer") {
		t.Errorf("a revoked factory certificate: %d %q, want 403 saying it is revoked", st, reason)
	}
	if st, reason := enroll(tlsCert(good, goodKey), "good"); st != http.StatusOK {
		t.Errorf("another device: %d %s", st, reason)
	}

	// A CRL of another CA under the manufacturer's name: refused, and the
	// loaded CRL stays.
	rogue := testpki.Rogue(t, now)
	der := rogue.CRL(t, 2, now, now.Add(time.Hour))
	bad := filepath.Join(dir, "rogue.crl")
	if err := os.WriteFile(bad, der, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Daemon.Reload(s.ManufacturerFile, bad, nil); err == nil || !strings.Contains(err.Error(), "not signed by a certificate of the manufacturer bundle") {
		t.Errorf("a rogue CRL: %v", err)
	}
	if st, _ := enroll(tlsCert(stolen, stolenKey), "still"); st != http.StatusForbidden {
		t.Errorf("after a refused reload: %d, want 403 still", st)
	}

	// Without the CRL the device is back (an operator's decision).
	if err := s.Daemon.Reload(s.ManufacturerFile, "", nil); err != nil {
		t.Fatal(err)
	}
	if st, reason := enroll(tlsCert(stolen, stolenKey), "again"); st != http.StatusOK {
		t.Errorf("CRL removed: %d %s", st, reason)
	}
	if got := gauge(t, s, "estd_manufacturer_crl_next_update_timestamp_seconds"); got != 0 {
		t.Errorf("CRL nextUpdate metric without a CRL: %v, want 0", got)
	}
}

// gauge returns the value of estd's gauge name.
func gauge(t *testing.T, s *estdtest.Server, name string) float64 {
	t.Helper()
	mfs, err := s.Daemon.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}
