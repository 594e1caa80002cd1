package estd

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/server"
)

// TestCRLDistributionPointsAcrossRollovers: across rollovers and the
// expiry of the CAs they retired, the CRL distribution point of every
// valid certificate serves a CRL of its own issuer that lists it once
// revoked.
func TestCRLDistributionPointsAcrossRollovers(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	t0 := time.Now()
	var now time.Time
	clock := func() time.Time { return now }
	type issued struct {
		cert *x509.Certificate
		at   string
	}
	var all []issued
	open := func(at time.Time, step string) *Daemon {
		now = at
		d, err := Open(context.Background(), Options{DataDir: data, Clock: clock, CRLURL: "http://pki.example/crl", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		t.Cleanup(func() { d.Close() })
		p := *ca.DefaultProfiles()[0]
		p.Validity = 30 * 365 * 24 * time.Hour // long-lived device certificates: capped at the CA's expiry
		req, _ := x509.ParseCertificateRequest(testpki.CSR(t, testpki.Key(t, ca.P256), step, nil, nil))
		c, err := d.CA.Issue(context.Background(), req, &p, auth.Identity{Method: auth.Basic, Name: "op"})
		if err != nil {
			t.Fatal(err)
		}
		d.Store.Put(context.Background(), server.Record(c, "", auth.Identity{Method: auth.Basic, Name: "op"}, now))
		d.Store.Revoke(context.Background(), c.SerialNumber, 1, now)
		all = append(all, issued{c, step})
		h, err := server.NewRevocation(d.issuingCAs(), d.Store, clock, nil)
		if err != nil {
			t.Fatal(err)
		}
		cas := append([]*x509.Certificate{d.CA.Cert}, d.Verifier.Retired...)
		for _, is := range all {
			if !now.Before(is.cert.NotAfter) {
				continue
			}
			u, _ := url.Parse(is.cert.CRLDistributionPoints[0])
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "http://pki.example"+u.Path, nil))
			if rec.Code != 200 {
				t.Errorf("%s: cert from %s (issuer %s): GET %s: %d", step, is.at, is.cert.Issuer.CommonName, u.Path, rec.Code)
				continue
			}
			crl, err := x509.ParseRevocationList(rec.Body.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			var issuer *x509.Certificate
			for _, c := range cas {
				if bytes.Equal(c.RawSubject, is.cert.RawIssuer) && is.cert.CheckSignatureFrom(c) == nil {
					issuer = c
				}
			}
			if issuer == nil || crl.CheckSignatureFrom(issuer) != nil || !bytes.Equal(crl.RawIssuer, is.cert.RawIssuer) {
				t.Errorf("%s: cert from %s (issuer %s) names %s, whose CRL is %s's", step, is.at, is.cert.Issuer.CommonName, u.Path, crl.Issuer.CommonName)
				continue
			}
			found := false
			for _, e := range crl.RevokedCertificateEntries {
				found = found || e.SerialNumber.Cmp(is.cert.SerialNumber) == 0
			}
			if !found {
				t.Errorf("%s: cert from %s not on its CRL", step, is.at)
			}
		}
		return d
	}
	y := 365 * 24 * time.Hour
	open(t0, "T0").Close()
	roll := func(at time.Time) {
		if _, err := RolloverCA(context.Background(), data, RolloverOptions{Now: at}); err != nil {
			t.Fatal(err)
		}
	}
	roll(t0.Add(5 * y))
	open(t0.Add(5*y), "T5").Close()
	roll(t0.Add(8 * y))
	open(t0.Add(8*y), "T8").Close()
	open(t0.Add(10*y+24*time.Hour), "T10 G1 expired").Close()
	open(t0.Add(15*y+24*time.Hour), "T15 G2 expired").Close()
	roll(t0.Add(15*y + 48*time.Hour))
	open(t0.Add(15*y+48*time.Hour), "T15 G4").Close()
	roll(t0.Add(16 * y))
	open(t0.Add(16*y), "T16 G5").Close()
	open(t0.Add(18*y+24*time.Hour), "T18 G3 expired").Close()
}
