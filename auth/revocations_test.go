package auth

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
)

func testCRL(t *testing.T, issuer *x509.Certificate, key crypto.Signer, thisUpdate, nextUpdate time.Time, reason int, revoked ...*x509.Certificate) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: thisUpdate, ReasonCode: reason})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(thisUpdate.Unix()), ThisUpdate: thisUpdate, NextUpdate: nextUpdate, RevokedCertificateEntries: entries,
	}, issuer, key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

func TestRevocations(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	root, rootKey := testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	inter, interKey := testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour), root, rootKey)
	stolen, _ := testCert(t, "device-stolen", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), inter, interKey)
	good, _ := testCert(t, "device-good", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), inter, interKey)
	rogue, rogueKey := testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(24*time.Hour), nil, nil) // same name, other key
	bundle := []*x509.Certificate{root, inter}
	day := 24 * time.Hour

	r, warnings, err := NewRevocations([]*x509.RevocationList{testCRL(t, inter, interKey, t0, t0.Add(day), 1, stolen)}, bundle, t0)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("NewRevocations: %v %v", err, warnings)
	}
	if !r.Revoked(stolen) || r.Revoked(good) || r.Revoked(inter) || r.Len() != 1 || r.CRLs() != 1 {
		t.Errorf("revoked: stolen %v good %v inter %v, %d entries", r.Revoked(stolen), r.Revoked(good), r.Revoked(inter), r.Len())
	}
	// The same serial from another issuer is another certificate.
	if twin := (&x509.Certificate{RawIssuer: root.RawSubject, SerialNumber: stolen.SerialNumber}); r.Revoked(twin) {
		t.Error("a serial revoked by the intermediate is revoked for the root's certificates too")
	}

	// A CRL signed by a key outside the bundle is refused, even under a
	// bundle certificate's name.
	if _, _, err := NewRevocations([]*x509.RevocationList{testCRL(t, rogue, rogueKey, t0, t0.Add(day), 1, good)}, bundle, t0); err == nil {
		t.Error("a CRL not signed by the bundle was accepted")
	}

	// Of two CRLs of one issuer, the newer counts, whichever comes first;
	// removeFromCRL entries revoke nothing; a stale CRL warns and applies.
	older := testCRL(t, inter, interKey, t0.Add(-2*day), t0.Add(-day), 1, good)
	newer := testCRL(t, inter, interKey, t0.Add(-time.Hour), t0.Add(-time.Minute), 1, stolen)
	for _, crls := range [][]*x509.RevocationList{{older, newer}, {newer, older}} {
		r, warnings, err := NewRevocations(crls, bundle, t0)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Revoked(stolen) || r.Revoked(good) {
			t.Errorf("older and newer CRL: stolen %v good %v; want the newer's revocations only", r.Revoked(stolen), r.Revoked(good))
		}
		if len(warnings) != 2 || !strings.Contains(strings.Join(warnings, "\n"), "due to be replaced") {
			t.Errorf("warnings %q: want one about the older CRL and one about the stale one", warnings)
		}
	}
	removed := testCRL(t, inter, interKey, t0, t0.Add(day), reasonRemoveFromCRL, stolen)
	if r, _, _ := NewRevocations([]*x509.RevocationList{removed}, bundle, t0); r.Revoked(stolen) {
		t.Error("a removeFromCRL entry revoked its certificate")
	}
}

// TestManufacturerRevoked: a device whose factory certificate a CRL lists
// is refused, also with valid Basic credentials; new revocations apply at
// once to chains verified before.
func TestManufacturerRevoked(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	root, rootKey := testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	inter, interKey := testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour), root, rootKey)
	device, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), inter, interKey)

	v := &Verifier{Clock: func() time.Time { return t0 }}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	v.SetManufacturers(pool)
	users := NewUsers()
	if err := users.Set("op", "secret-password"); err != nil {
		t.Fatal(err)
	}
	v.SetUsers(users)
	a := v.For(Basic, Manufacturer)
	authenticate := func(peers ...*x509.Certificate) (Identity, error) {
		r := httptest.NewRequest("POST", "https://estd.example/.well-known/est/simpleenroll", nil)
		r.TLS = &tls.ConnectionState{PeerCertificates: peers}
		r.SetBasicAuth("op", "secret-password")
		return a.Authenticate(r)
	}
	if id, err := authenticate(device, inter); err != nil || id.Method != Manufacturer {
		t.Fatalf("before the CRL: %v %v", id, err)
	}

	// The intermediate revoked by the root: the device's chain is refused.
	for name, crl := range map[string]*x509.RevocationList{
		"device":       testCRL(t, inter, interKey, t0, t0.Add(time.Hour), 1, device),
		"intermediate": testCRL(t, root, rootKey, t0, t0.Add(time.Hour), 2, inter),
	} {
		rv, _, err := NewRevocations([]*x509.RevocationList{crl}, []*x509.Certificate{root, inter}, t0)
		if err != nil {
			t.Fatal(err)
		}
		v.SetManufacturerRevocations(rv)
		_, err = authenticate(device, inter)
		if !errors.Is(err, errRevoked) || est.KindOf(err) != est.ErrForbidden || !strings.Contains(err.Error(), "revoked by its manufacturer") {
			t.Errorf("%s revoked: %v; want 403, revoked, even with Basic credentials", name, err)
		}
	}
	v.SetManufacturerRevocations(nil)
	if _, err := authenticate(device, inter); err != nil {
		t.Errorf("without CRLs again: %v", err)
	}
}
