package logsample

import (
	"sync"
	"testing"
	"time"
)

// TestCounts: after the first events, one per interval gets through and
// says how many were left out before it; none is lost from the count, also
// under concurrent events.
func TestCounts(t *testing.T) {
	s := New(3, 50*time.Millisecond)
	var (
		mu     sync.Mutex
		logged int
		total  int64
	)
	log := func(skipped int64) {
		mu.Lock()
		defer mu.Unlock()
		logged++
		total += 1 + skipped
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				s.Do(log)
			}
		})
	}
	wg.Wait()
	if logged < 3 || logged > 10 {
		t.Fatalf("%d of 800 events logged at once, want the first 3 (and few others)", logged)
	}
	time.Sleep(60 * time.Millisecond)
	s.Do(log) // the next interval: logged, with everything left out before it
	if total != 801 {
		t.Fatalf("logged %d lines accounting for %d events, want 801", logged, total)
	}
}
