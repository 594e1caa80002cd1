package auth

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFlightsShareOneCheck: concurrent checks of one tag run the check
// once and all get its answer; another tag runs its own.
func TestFlightsShareOneCheck(t *testing.T) {
	var (
		fs      flights
		calls   atomic.Int32
		release = make(chan struct{})
		tag     = [32]byte{1}
	)
	check := func() bool {
		calls.Add(1)
		<-release
		return true
	}
	const n = 8
	results := make(chan bool, n)
	go func() { results <- fs.do(tag, check) }()
	// Wait for the first check to be under way, then join it.
	waitFor(t, func() bool { return calls.Load() == 1 })
	var wg sync.WaitGroup
	for range n - 1 {
		wg.Go(func() { results <- fs.do(tag, check) })
	}
	fs.mu.Lock()
	f := fs.m[tag]
	fs.mu.Unlock()
	waitFor(t, func() bool { return f.waiters.Load() == n-1 })
	if fs.do([32]byte{2}, func() bool { return false }) {
		t.Fatal("another tag got the shared answer")
	}
	close(release)
	wg.Wait()
	for range n {
		if !<-results {
			t.Fatal("a waiter got another answer")
		}
	}
	if got := calls.Load(); got != 1 {
		t.Fatalf("check ran %d times for %d concurrent calls, want once", got, n)
	}
	if len(fs.m) != 0 {
		t.Fatal("a finished flight was kept")
	}
	// A later call checks again: answers are not remembered here.
	if fs.do(tag, func() bool { return false }) {
		t.Fatal("a later call got the old answer")
	}
}

// TestVerifyConcurrent: a burst of verifications of one credential, which
// share bcrypt comparisons, all get the right answer.
func TestVerifyConcurrent(t *testing.T) {
	lowCost(t)
	u := NewUsers()
	if err := u.Set("fleet", "shared-bootstrap"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 16 {
		wg.Go(func() {
			if u.Verify("fleet", "shared-bootstrap") {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 16 {
		t.Fatalf("%d of 16 verifications succeeded", ok.Load())
	}
	if u.Verify("fleet", "wrong") {
		t.Fatal("a wrong password was accepted")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		runtime.Gosched()
	}
}
