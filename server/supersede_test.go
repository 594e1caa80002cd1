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
// concurrent renewals of one certificate, each with a key of its own,
// leave it exactly one valid successor; the others are refused and what
// they were issued is revoked. Asked again with the winner's key, the old
// certificate gets the successor again; with another key, nothing.
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
	renew := func(csr []byte) (int, string) {
		st, _, b := call(t, s.Client(tlsCert(first, key)), "POST", s.URL+est.Path("fleet", est.OpSimpleReenroll), est.MediaPKCS10, est.EncodeBase64(csr))
		return st, string(b)
	}

	const n = 8
	csrs := make([][]byte, n)
	for i := range csrs {
		csrs[i] = testpki.CSR(t, testpki.Key(t, ca.P256), "racer", nil, nil)
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], bodies[i] = renew(csrs[i])
		}()
	}
	wg.Wait()
	winner := -1
	for i, st := range statuses {
		switch {
		case st == http.StatusOK:
			if winner >= 0 {
				t.Errorf("renewals %d and %d both succeeded", winner, i)
			}
			winner = i
		case st == http.StatusForbidden && (strings.Contains(bodies[i], "concurrent") || strings.Contains(bodies[i], "revoked")):
		default:
			t.Errorf("renewal %d: %d %q", i, st, bodies[i])
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d concurrent renewals succeeded: %v", n, statuses)
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
		t.Fatalf("valid certificates for %s: %v, want one successor", first.Subject, valid)
	}

	// The winner's answer was lost: it asks again with the same key and
	// gets the same certificate. A loser's key gets nothing.
	st, body := renew(csrs[winner])
	if st != http.StatusOK {
		t.Fatalf("renewal asked again with the winner's key: %d %s", st, body)
	}
	der, err := est.DecodeBase64([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil || len(certs) != 1 || certs[0].SerialNumber.Text(16) != valid[0] {
		t.Fatalf("renewal asked again: %v, %v; want the successor %s", certs, err, valid[0])
	}
	loser := (winner + 1) % n
	if st, body := renew(csrs[loser]); st != http.StatusForbidden || !strings.Contains(body, "renewed already") {
		t.Errorf("renewal asked again with another key: %d %q, want 403 renewed already", st, body)
	}
}
