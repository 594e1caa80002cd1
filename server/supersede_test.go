package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// TestRevokeOnRenewConcurrent: on a label that revokes what it renews,
// concurrent renewals of one certificate leave it exactly one valid
// successor; the others are refused and what they were issued is revoked.
func TestRevokeOnRenewConcurrent(t *testing.T) {
	p := ca.DefaultProfiles()[0]
	p.Name, p.RevokeOnRenew = "fleet", true
	s := estdtest.Start(t, estdtest.Options{Profiles: []*ca.Profile{p}})
	key := testpki.Key(t, ca.P256)
	csr := testpki.CSR(t, key, "racer", nil, nil)
	st, reason, first := enrollment{op: est.OpSimpleEnroll, label: "fleet", basic: []string{s.User, s.Password}, csr: csr}.do(t, s)
	if st != http.StatusOK {
		t.Fatalf("enroll: %d %s", st, reason)
	}

	const n = 8
	var wg sync.WaitGroup
	statuses := make([]int, n)
	reasons := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := est.EncodeBase64(csr)
			st, _, b := call(t, s.Client(tlsCert(first, key)), "POST", s.URL+est.Path("fleet", est.OpSimpleReenroll), est.MediaPKCS10, body)
			statuses[i], reasons[i] = st, string(b)
		}()
	}
	wg.Wait()
	ok := 0
	for i, st := range statuses {
		switch {
		case st == http.StatusOK:
			ok++
		case st == http.StatusForbidden && (strings.Contains(reasons[i], "concurrent") || strings.Contains(reasons[i], "revoked")):
		default:
			t.Errorf("renewal %d: %d %q", i, st, reasons[i])
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent renewals succeeded, want exactly 1", ok, n)
	}
	// On record: the first certificate revoked, and of its successors
	// exactly one valid.
	var valid []string
	after := ""
	for {
		recs, next, err := s.Daemon.Store.List(context.Background(), store.ListOptions{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Subject == first.Subject.String() && !r.Revoked {
				valid = append(valid, r.Serial.Text(16))
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(valid) != 1 || valid[0] == first.SerialNumber.Text(16) {
		t.Errorf("valid certificates for %s: %v, want one successor", first.Subject, valid)
	}
}
