package auth

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/sqlite"
)

// recordOnly is a store without the Statuses capability.
type recordOnly struct{ store.Store }

// TestIssuedStatus: a certificate of this CA authenticates only as it is
// on record, not revoked, and under its profile; with the status lookup
// and with the whole record alike.
func TestIssuedStatus(t *testing.T) {
	t0 := time.Now()
	issuing, issuingKey := testCert(t, "Issuing", true, t0.Add(-time.Hour), t0.Add(24*time.Hour), nil, nil)
	leaf, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(time.Hour), issuing, issuingKey)
	twin, _ := testCert(t, "device-1", false, t0.Add(-time.Hour), t0.Add(time.Hour), issuing, issuingKey)
	twin.SerialNumber = leaf.SerialNumber // another certificate claiming the same serial
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "estd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Put(ctx, &store.Record{Serial: leaf.SerialNumber, Subject: "CN=device-1", NotBefore: leaf.NotBefore,
		NotAfter: leaf.NotAfter, Profile: "devices", IssuedAt: t0, DER: leaf.Raw}); err != nil {
		t.Fatal(err)
	}
	unknown, _ := testCert(t, "device-2", false, t0.Add(-time.Hour), t0.Add(time.Hour), issuing, issuingKey)

	for name, s := range map[string]store.Store{"status": st, "record": recordOnly{st}} {
		t.Run(name, func(t *testing.T) {
			if _, ok := s.(store.Statuses); ok != (name == "status") {
				t.Fatalf("%T: Statuses %v", s, ok)
			}
			v := &Verifier{Issuing: issuing, Store: s}
			check := func(c *x509.Certificate, wantErr string) {
				t.Helper()
				id, err := v.issuedStatus(ctx, c)
				if wantErr == "" {
					if err != nil || id.Profile != "devices" || id.Method != Issued {
						t.Fatalf("issuedStatus = %+v, %v; want Issued under devices", id, err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), wantErr) || est.KindOf(err) != est.ErrForbidden {
					t.Fatalf("issuedStatus = %v, want a 403 about %q", err, wantErr)
				}
			}
			check(leaf, "")
			check(twin, "does not match the record")
			check(unknown, "not on record")
		})
	}
	if err := st.Revoke(ctx, leaf.SerialNumber, 1, t0); err != nil {
		t.Fatal(err)
	}
	for _, s := range []store.Store{st, recordOnly{st}} {
		v := &Verifier{Issuing: issuing, Store: s}
		if _, err := v.issuedStatus(ctx, leaf); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("%T: revoked certificate: %v", s, err)
		}
	}
}
