package server

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/estkit/estkit"
)

// TestLimitTableBounded: an attacker rotating keys cannot grow a table past
// its cap; the least recently failed keys are forgotten first.
func TestLimitTableBounded(t *testing.T) {
	now := time.Now()
	tab := newLimitTable(RateLimit{Burst: 1, Every: time.Minute}, 100)
	for i := range 10000 {
		tab.fail(fmt.Sprintf("198.18.%d.%d", i/256, i%256), now)
	}
	if n := tab.size(); n != 100 {
		t.Fatalf("%d keys tracked, want the cap of 100", n)
	}
	if d := tab.wait("198.18.39.15", now); d != time.Minute { // the last one, 9999
		t.Errorf("most recent key waits %v, want 1m", d)
	}
	if d := tab.wait("198.18.0.0", now); d != 0 {
		t.Errorf("a forgotten key waits %v", d)
	}
}

// TestLimitTableWait: asking costs nothing; the wait is what the bucket
// says; concurrent failures leave the bucket in debt.
func TestLimitTableWait(t *testing.T) {
	now := time.Now()
	tab := newLimitTable(RateLimit{Burst: 2, Every: 10 * time.Second}, 10)
	tab.fail("k", now)
	for range 5 {
		if d := tab.wait("k", now); d != 0 {
			t.Fatalf("one token left, wait %v", d)
		}
	}
	tab.fail("k", now)
	if d := tab.wait("k", now); d != 10*time.Second {
		t.Fatalf("empty bucket: wait %v, want 10s", d)
	}
	tab.fail("k", now) // raced past the check
	if d := tab.wait("k", now.Add(5*time.Second)); d != 15*time.Second {
		t.Fatalf("in debt, 5 s later: wait %v, want 15s", d)
	}
	if d := tab.wait("k", now.Add(20*time.Second)); d != 0 {
		t.Fatalf("refilled: wait %v", d)
	}
}

// TestAuthLimiterOff: a limit that is off tracks nothing.
func TestAuthLimiterOff(t *testing.T) {
	a := newAuthLimiter(AuthLimits{PerIP: RateLimit{Off: true}, PerUser: RateLimit{Burst: 1}})
	r := httptest.NewRequest("POST", "https://est.test/.well-known/est/simpleenroll", nil)
	r.SetBasicAuth("dev", "wrong")
	now := time.Now()
	for range 3 {
		a.failed(r, est.Errorf(est.ErrUnauthorized, "no"), now)
	}
	if a.ip != nil || a.user.size() != 1 {
		t.Fatalf("ip table %v, user keys %d", a.ip, a.user.size())
	}
	w := httptest.NewRecorder()
	if err := a.check(w, r, now); est.KindOf(err) != est.ErrTooManyRequests || w.Header().Get("Retry-After") != "18" {
		t.Fatalf("check: %v, Retry-After %q", err, w.Header().Get("Retry-After"))
	}
	// A store failure is not the requester's.
	r2 := httptest.NewRequest("POST", "https://est.test/.well-known/est/simpleenroll", nil)
	r2.SetBasicAuth("other", "x")
	a.failed(r2, est.Errorf(est.ErrUnavailable, "store down"), now)
	if a.user.size() != 1 {
		t.Fatal("an unavailable store counted as a failed authentication")
	}
}
