package server_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
	"github.com/estkit/estkit/store/sqlite"
)

// TestRevocationSeveralCAs: with a retired issuing CA beside the current
// one, each CA's CRL lists only its own revoked certificates and is signed
// by it, at /crl (the oldest CA) and /crl/ID; OCSP answers for each CA's
// certificates with that CA's signature, and a request naming one CA for a
// certificate of the other is not vouched for.
func TestRevocationSeveralCAs(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	root := testpki.NewRoot(t, "Rollover Root", now)
	old, current := testpki.SubCA(t, root, "Issuing G1", now.Add(-48*time.Hour)), testpki.SubCA(t, root, "Issuing G2", now.Add(-time.Hour))
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "estd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	p := ca.DefaultProfiles()[0]
	issue := func(c *ca.CA, cn string, revoke bool) *x509.Certificate {
		req, _ := x509.ParseCertificateRequest(testpki.CSR(t, testpki.Key(t, ca.P256), cn, nil, nil))
		cert, err := c.Issue(ctx, req, p, auth.Identity{Method: auth.Basic, Name: "op"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, server.Record(cert, "", auth.Identity{Method: auth.Basic, Name: "op"}, now)); err != nil {
			t.Fatal(err)
		}
		if revoke {
			if err := st.Revoke(ctx, cert.SerialNumber, 1, now); err != nil {
				t.Fatal(err)
			}
		}
		return cert
	}
	oldGood, oldRevoked := issue(old, "old-good", false), issue(old, "old-revoked", true)
	newGood, newRevoked := issue(current, "new-good", false), issue(current, "new-revoked", true)

	cas := []server.IssuingCA{{Cert: current.Cert, Signer: current.Signer}, {Cert: old.Cert, Signer: old.Signer}}
	if got := server.CRLPath(current.Cert); got != "/crl/"+hex.EncodeToString(current.Cert.SubjectKeyId) {
		t.Errorf("CRLPath of the second generation = %q", got)
	}
	if got := server.CRLPath(old.Cert); got != "/crl" {
		t.Errorf("CRLPath of the first generation = %q, want /crl", got)
	}
	h, err := server.NewRevocation(cas, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://pki.example"+path, nil))
		return rec
	}
	for _, c := range []struct {
		path    string
		issuer  *x509.Certificate
		revoked *x509.Certificate
	}{
		{"/crl", old.Cert, oldRevoked},
		{"/crl/" + hex.EncodeToString(old.Cert.SubjectKeyId), old.Cert, oldRevoked},
		{"/crl/" + hex.EncodeToString(current.Cert.SubjectKeyId), current.Cert, newRevoked},
	} {
		rec := get(c.path)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", c.path, rec.Code)
		}
		crl, err := x509.ParseRevocationList(rec.Body.Bytes())
		if err != nil || crl.CheckSignatureFrom(c.issuer) != nil {
			t.Fatalf("GET %s: %v, or not signed by %s", c.path, err, c.issuer.Subject)
		}
		var serials []string
		for _, e := range crl.RevokedCertificateEntries {
			serials = append(serials, e.SerialNumber.Text(16))
		}
		if !slices.Equal(serials, []string{c.revoked.SerialNumber.Text(16)}) {
			t.Errorf("GET %s lists %v, want only %x", c.path, serials, c.revoked.SerialNumber)
		}
	}
	if rec := get("/crl/00ff"); rec.Code != http.StatusNotFound {
		t.Errorf("the CRL of an unknown key identifier: %d, want 404", rec.Code)
	}

	for _, c := range []struct {
		cert, issuer *x509.Certificate
		want         int
	}{
		{oldGood, old.Cert, ocsp.Good},
		{oldRevoked, old.Cert, ocsp.Revoked},
		{newGood, current.Cert, ocsp.Good},
		{newRevoked, current.Cert, ocsp.Revoked},
		{oldRevoked, current.Cert, ocsp.Unknown}, // on record, but not the named CA's
		{newGood, old.Cert, ocsp.Unknown},
	} {
		req, err := ocsp.CreateRequest(c.cert, c.issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := ocsp.ParseResponseForCert(h.OCSP(ctx, req), c.cert, c.issuer)
		if err != nil {
			t.Fatalf("OCSP for %s under %s: %v", c.cert.Subject.CommonName, c.issuer.Subject.CommonName, err)
		}
		if resp.Status != c.want {
			t.Errorf("OCSP for %s under %s: status %d, want %d", c.cert.Subject.CommonName, c.issuer.Subject.CommonName, resp.Status, c.want)
		}
	}
}

// toggleSigner signs while ok is set.
type toggleSigner struct {
	crypto.Signer
	ok *atomic.Bool
}

func (s toggleSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if !s.ok.Load() {
		return nil, errors.New("the HSM session is gone")
	}
	return s.Signer.Sign(r, digest, opts)
}

// TestCRLSigningFailure: each issuing CA signs its CRL on its own. A CA
// whose key stops signing keeps serving its last CRL until that CRL's
// nextUpdate, then 503; the other CAs' CRLs are served and refreshed
// throughout.
func TestCRLSigningFailure(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	tick := func(d time.Duration) { clock.Add(int64(d)) }
	root := testpki.NewRoot(t, "Root", now)
	first, cur := testpki.SubCA(t, root, "Issuing", now.Add(-time.Hour)), testpki.SubCA(t, root, "Issuing G2", now.Add(-time.Hour))
	firstCert, firstKey := first.Cert, first.Signer
	curCert, curKey := cur.Cert, cur.Signer
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "estd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ok atomic.Bool
	ok.Store(true)
	cas := []server.IssuingCA{{Cert: curCert, Signer: toggleSigner{curKey, &ok}}, {Cert: firstCert, Signer: firstKey}}
	h, err := server.NewRevocation(cas, st, func() time.Time { return time.Unix(0, clock.Load()) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, *x509.RevocationList) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "http://pki.example"+path, nil))
		if rec.Code != 200 {
			return rec.Code, nil
		}
		crl, err := x509.ParseRevocationList(rec.Body.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return rec.Code, crl
	}
	current := "/crl/" + hex.EncodeToString(curCert.SubjectKeyId)
	_, signed := get(current)
	if signed == nil {
		t.Fatal("no CRL while every key signs")
	}

	ok.Store(false)
	tick(2 * time.Minute)
	if code, crl := get(current); code != 200 || !crl.ThisUpdate.Equal(signed.ThisUpdate) {
		t.Fatalf("the broken CA's CRL before its nextUpdate: %d; want its last CRL", code)
	}
	if code, crl := get("/crl"); code != 200 || !crl.ThisUpdate.After(signed.ThisUpdate) {
		t.Fatalf("the other CA's CRL while one key fails: %d; want a fresh one", code)
	}
	tick(server.CRLValidity)
	if code, _ := get(current); code != http.StatusServiceUnavailable {
		t.Fatalf("the broken CA's CRL past its nextUpdate: %d, want 503", code)
	}
	if code, _ := get("/crl"); code != 200 {
		t.Fatalf("the other CA's CRL: %d", code)
	}
	ok.Store(true)
	tick(2 * time.Minute)
	if code, _ := get(current); code != 200 {
		t.Fatalf("the CA's CRL once its key signs again: %d", code)
	}
}
