package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
)

// crlSpec is a CRL to make: the certificates it revokes (with reason), its
// number and times, and extensions.
type crlSpec struct {
	number                 int64
	thisUpdate, nextUpdate time.Time
	reason                 int
	revoked                []*x509.Certificate
	extensions             []pkix.Extension
	entryExtensions        []pkix.Extension
}

func testCRL(t *testing.T, issuer *x509.Certificate, key crypto.Signer, s crlSpec) *x509.RevocationList {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range s.revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: s.thisUpdate, ReasonCode: s.reason, ExtraExtensions: s.entryExtensions})
	}
	if s.number == 0 {
		s.number = s.thisUpdate.Unix()
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(s.number), ThisUpdate: s.thisUpdate, NextUpdate: s.nextUpdate,
		RevokedCertificateEntries: entries, ExtraExtensions: s.extensions,
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

// mfrPKI is a manufacturer root, an intermediate and two devices under it.
type mfrPKI struct {
	root, inter, stolen, good *x509.Certificate
	rootKey, interKey         crypto.Signer
}

func newMfrPKI(t *testing.T, t0 time.Time) mfrPKI {
	var p mfrPKI
	p.root, p.rootKey = testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	p.inter, p.interKey = testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour), p.root, p.rootKey)
	p.stolen, _ = testCert(t, "device-stolen", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), p.inter, p.interKey)
	p.good, _ = testCert(t, "device-good", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), p.inter, p.interKey)
	return p
}

func TestRevocations(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newMfrPKI(t, t0)
	rogue, rogueKey := testCert(t, "Manufacturer Intermediate", true, t0.Add(-time.Hour), t0.Add(24*time.Hour), nil, nil) // same name, other key
	bundle := []*x509.Certificate{p.root, p.inter}
	day := 24 * time.Hour
	load := func(crls []*x509.RevocationList, bundle, intermediates []*x509.Certificate) (*Revocations, []string, error) {
		return NewRevocations(crls, bundle, intermediates, t0)
	}

	r, warnings, err := load([]*x509.RevocationList{testCRL(t, p.inter, p.interKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(day), reason: 1, revoked: []*x509.Certificate{p.stolen}})}, bundle, nil)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("NewRevocations: %v %v", err, warnings)
	}
	if !r.Revoked(p.stolen) || r.Revoked(p.good) || r.Revoked(p.inter) || r.Len() != 1 || r.CRLs() != 1 || !r.NextUpdate().Equal(t0.Add(day)) {
		t.Errorf("revoked: stolen %v good %v inter %v, %d entries, next update %v", r.Revoked(p.stolen), r.Revoked(p.good), r.Revoked(p.inter), r.Len(), r.NextUpdate())
	}
	// The same serial from another issuer is another certificate.
	if twin := (&x509.Certificate{RawIssuer: p.root.RawSubject, SerialNumber: p.stolen.SerialNumber}); r.Revoked(twin) {
		t.Error("a serial revoked by the intermediate is revoked for the root's certificates too")
	}

	// The intermediate's CRL with only the root in the bundle: the
	// intermediate must come with the CRL, and chain to the bundle.
	interCRL := testCRL(t, p.inter, p.interKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(day), reason: 1, revoked: []*x509.Certificate{p.stolen}})
	if _, _, err := load([]*x509.RevocationList{interCRL}, []*x509.Certificate{p.root}, nil); err == nil {
		t.Error("a CRL of an intermediate not given was accepted")
	}
	if r, _, err := load([]*x509.RevocationList{interCRL}, []*x509.Certificate{p.root}, []*x509.Certificate{p.inter}); err != nil || !r.Revoked(p.stolen) {
		t.Errorf("the intermediate given with its CRL: %v", err)
	}
	if _, _, err := load([]*x509.RevocationList{interCRL}, []*x509.Certificate{p.root}, []*x509.Certificate{rogue}); err == nil {
		t.Error("an intermediate given with the CRLs that does not chain to the bundle was accepted")
	}

	// A CRL signed by a key outside the bundle is refused, even under a
	// bundle certificate's name.
	if _, _, err := load([]*x509.RevocationList{testCRL(t, rogue, rogueKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(day), reason: 1, revoked: []*x509.Certificate{p.good}})}, bundle, nil); err == nil {
		t.Error("a CRL not signed by the bundle was accepted")
	}

	// Of two CRLs of one issuer, the newer counts, whichever comes first;
	// the CRL number decides before the time.
	older := testCRL(t, p.inter, p.interKey, crlSpec{number: 1, thisUpdate: t0.Add(-2 * day), nextUpdate: t0.Add(-day), reason: 1, revoked: []*x509.Certificate{p.good}})
	newer := testCRL(t, p.inter, p.interKey, crlSpec{number: 2, thisUpdate: t0.Add(-3 * day), nextUpdate: t0.Add(-time.Minute), reason: 1, revoked: []*x509.Certificate{p.stolen}})
	for _, crls := range [][]*x509.RevocationList{{older, newer}, {newer, older}} {
		r, warnings, err := load(crls, bundle, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Revoked(p.stolen) || r.Revoked(p.good) {
			t.Errorf("older and newer CRL: stolen %v good %v; want the newer's revocations only", r.Revoked(p.stolen), r.Revoked(p.good))
		}
		if len(warnings) != 2 || !strings.Contains(strings.Join(warnings, "\n"), "due to be replaced") {
			t.Errorf("warnings %q: want one about the superseded CRL and one about the stale one", warnings)
		}
	}
	if r, warnings, err := load([]*x509.RevocationList{newer, newer}, bundle, nil); err != nil || !r.Revoked(p.stolen) || len(warnings) != 1 {
		t.Errorf("the same CRL twice: %v, %q", err, warnings)
	}
	twin := testCRL(t, p.inter, p.interKey, crlSpec{number: 2, thisUpdate: t0.Add(-3 * day), nextUpdate: t0.Add(day), reason: 1, revoked: []*x509.Certificate{p.good}})
	if _, _, err := load([]*x509.RevocationList{newer, twin}, bundle, nil); err == nil {
		t.Error("two different CRLs with the same number and time were accepted")
	}

	// removeFromCRL entries revoke nothing.
	removed := testCRL(t, p.inter, p.interKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(day), reason: reasonRemoveFromCRL, revoked: []*x509.Certificate{p.stolen}})
	if r, _, _ := load([]*x509.RevocationList{removed}, bundle, nil); r.Revoked(p.stolen) {
		t.Error("a removeFromCRL entry revoked its certificate")
	}

	// What is not a complete CRL is refused rather than half understood.
	one, _ := asn1.Marshal(1)
	idp, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true})
	issuerName, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true})
	for name, spec := range map[string]crlSpec{
		"delta CRL":                   {extensions: []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: one}}},
		"issuing distribution point":  {extensions: []pkix.Extension{{Id: oidIssuingDistribution, Critical: true, Value: idp}}},
		"unknown critical extension":  {extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: one}}},
		"indirect CRL entry":          {entryExtensions: []pkix.Extension{{Id: oidCertificateIssuer, Critical: true, Value: issuerName}}},
		"unknown critical entry ext.": {entryExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Critical: true, Value: one}}},
	} {
		spec.thisUpdate, spec.nextUpdate, spec.revoked = t0, t0.Add(day), []*x509.Certificate{p.stolen}
		if _, _, err := load([]*x509.RevocationList{testCRL(t, p.inter, p.interKey, spec)}, bundle, nil); err == nil || !strings.Contains(err.Error(), "CRL") {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	// A non-critical extension not understood is fine.
	spec := crlSpec{thisUpdate: t0, nextUpdate: t0.Add(day), revoked: []*x509.Certificate{p.stolen}, extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: one}}}
	if _, _, err := load([]*x509.RevocationList{testCRL(t, p.inter, p.interKey, spec)}, bundle, nil); err != nil {
		t.Errorf("a non-critical extension: %v", err)
	}
}

// TestManufacturerRevoked: a device whose verified chain holds a certificate
// a CRL lists is refused, also with valid Basic credentials and also when it
// leaves the revoked intermediate out of what it presents; new revocations
// apply at once to chains verified before.
func TestManufacturerRevoked(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newMfrPKI(t, t0)
	// Both CAs in the bundle, as estd's manufacturer_ca makes them anchors.
	bundle := []*x509.Certificate{p.root, p.inter}
	pool := x509.NewCertPool()
	for _, c := range bundle {
		pool.AddCert(c)
	}
	v := &Verifier{Clock: func() time.Time { return t0 }}
	v.SetManufacturers(pool, nil)
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
	for _, peers := range [][]*x509.Certificate{{p.stolen, p.inter}, {p.stolen}} {
		if id, err := authenticate(peers...); err != nil || id.Method != Manufacturer {
			t.Fatalf("before the CRLs: %v %v", id, err)
		}
	}

	for name, crl := range map[string]*x509.RevocationList{
		"device":       testCRL(t, p.inter, p.interKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(time.Hour), reason: 1, revoked: []*x509.Certificate{p.stolen}}),
		"intermediate": testCRL(t, p.root, p.rootKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(time.Hour), reason: 2, revoked: []*x509.Certificate{p.inter}}),
	} {
		rv, _, err := NewRevocations([]*x509.RevocationList{crl}, bundle, nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		v.SetManufacturers(pool, rv)
		// With its chain, and with the leaf alone (the intermediate, an
		// anchor here, completes the chain).
		for _, peers := range [][]*x509.Certificate{{p.stolen, p.inter}, {p.stolen}} {
			_, err = authenticate(peers...)
			if !errors.Is(err, errRevoked) || est.KindOf(err) != est.ErrForbidden || !strings.Contains(err.Error(), "revoked by its manufacturer") {
				t.Errorf("%s revoked, %d certificates presented: %v; want 403, revoked, even with Basic credentials", name, len(peers), err)
			}
		}
		if name == "device" {
			if _, err := authenticate(p.good, p.inter); err != nil {
				t.Errorf("another device: %v", err)
			}
		}
	}
	v.SetManufacturers(pool, nil)
	if _, err := authenticate(p.stolen, p.inter); err != nil {
		t.Errorf("without CRLs again: %v", err)
	}
}

// TestRevokedAfterAChainExpires: a device whose chains were verified while
// one of them (through an intermediate that is not revoked) was valid is
// refused once that chain expires, if every chain left holds a revoked
// certificate; the cache does not keep the expired chain's verdict.
func TestRevokedAfterAChainExpires(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	root, rootKey := testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Two certificates of one intermediate (same name, same key): one
	// expiring in an hour, one long-lived that the root revokes.
	short := reissued(t, root, rootKey, interKey, 11, t0.Add(-time.Hour), t0.Add(time.Hour))
	long := reissued(t, root, rootKey, interKey, 12, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour))
	device, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), short, interKey)

	now := t0
	v := &Verifier{Clock: func() time.Time { return now }}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	rv, _, err := NewRevocations([]*x509.RevocationList{testCRL(t, root, rootKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(48 * time.Hour), reason: 1, revoked: []*x509.Certificate{long}})}, []*x509.Certificate{root}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	v.SetManufacturers(pool, rv)
	authenticate := func() error {
		_, err := v.certificate(t.Context(), []*x509.Certificate{device, short, long}, true, false)
		return err
	}
	if err := authenticate(); err != nil {
		t.Fatalf("with a valid chain through the intermediate that is not revoked: %v", err)
	}
	now = t0.Add(2 * time.Hour) // the short-lived intermediate has expired
	if err := authenticate(); !errors.Is(err, errRevoked) {
		t.Fatalf("once only the revoked intermediate's chain is left: %v, want refused as revoked", err)
	}
}

// TestRevocationsRekeyedCA: two CAs of one name (a manufacturer that
// rekeyed) each have their current CRL; both apply.
func TestRevocationsRekeyedCA(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	ca1, key1 := testCert(t, "Mfr CA", true, t0.Add(-time.Hour), t0.Add(24*time.Hour), nil, nil)
	ca2, key2 := testCert(t, "Mfr CA", true, t0.Add(-time.Hour), t0.Add(24*time.Hour), nil, nil)
	dev1, _ := testCert(t, "dev-1", false, t0.Add(-time.Hour), t0.Add(time.Hour), ca1, key1)
	dev2, _ := testCert(t, "dev-2", false, t0.Add(-time.Hour), t0.Add(time.Hour), ca2, key2)
	crl1 := testCRL(t, ca1, key1, crlSpec{number: 5, thisUpdate: t0, nextUpdate: t0.Add(time.Hour), reason: 1, revoked: []*x509.Certificate{dev1}})
	crl2 := testCRL(t, ca2, key2, crlSpec{number: 7, thisUpdate: t0, nextUpdate: t0.Add(time.Hour), reason: 1, revoked: []*x509.Certificate{dev2}})
	r, warnings, err := NewRevocations([]*x509.RevocationList{crl1, crl2}, []*x509.Certificate{ca1, ca2}, nil, t0)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("%v %q", err, warnings)
	}
	if !r.Revoked(dev1) || !r.Revoked(dev2) || r.CRLs() != 2 {
		t.Errorf("dev1 revoked %v, dev2 revoked %v, %d CRLs; want both, 2", r.Revoked(dev1), r.Revoked(dev2), r.CRLs())
	}
}

// TestChainThatBecomesValid: a chain through an intermediate certificate
// that was not valid yet when the presented chain was first verified counts
// once it is: a device refused as revoked then is accepted later.
func TestChainThatBecomesValid(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	root, rootKey := testCert(t, "Manufacturer Root", true, t0.Add(-time.Hour), t0.Add(10*365*24*time.Hour), nil, nil)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	revoked := reissued(t, root, rootKey, interKey, 21, t0.Add(-time.Hour), t0.Add(5*365*24*time.Hour))
	later := reissued(t, root, rootKey, interKey, 22, t0.Add(time.Hour), t0.Add(5*365*24*time.Hour))
	device, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(24*time.Hour), revoked, interKey)

	now := t0
	v := &Verifier{Clock: func() time.Time { return now }}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	rv, _, err := NewRevocations([]*x509.RevocationList{testCRL(t, root, rootKey, crlSpec{thisUpdate: t0, nextUpdate: t0.Add(48 * time.Hour), reason: 1, revoked: []*x509.Certificate{revoked}})}, []*x509.Certificate{root}, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	v.SetManufacturers(pool, rv)
	authenticate := func() error {
		_, err := v.certificate(t.Context(), []*x509.Certificate{device, revoked, later}, true, false)
		return err
	}
	if err := authenticate(); !errors.Is(err, errRevoked) {
		t.Fatalf("while only the revoked intermediate's chain is valid: %v, want refused as revoked", err)
	}
	now = t0.Add(2 * time.Hour) // the reissued intermediate is valid now
	if err := authenticate(); err != nil {
		t.Fatalf("with a valid chain through the reissued intermediate: %v", err)
	}
}

// reissued is a certificate of the intermediate "Manufacturer Intermediate"
// with key, signed by root: several of them share name and key, as an
// intermediate's certificates do when its CA issues it anew.
func reissued(t *testing.T, root *x509.Certificate, rootKey crypto.Signer, key *ecdsa.PrivateKey, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "Manufacturer Intermediate"},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
