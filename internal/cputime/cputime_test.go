//go:build unix

package cputime

import (
	"crypto/sha256"
	"testing"
)

// TestProcessAdvances: burning CPU moves the reading forward.
func TestProcessAdvances(t *testing.T) {
	start := Process()
	if start <= 0 {
		t.Fatalf("Process() = %v, want > 0", start)
	}
	sum := sha256.Sum256(nil)
	for Process() == start {
		sum = sha256.Sum256(sum[:])
	}
	if Process() < start {
		t.Fatal("CPU time went backwards")
	}
}

// TestReport: the metric is reported per iteration.
func TestReport(t *testing.T) {
	r := testing.Benchmark(func(b *testing.B) {
		start := Process()
		for b.Loop() {
			sha256.Sum256([]byte("x"))
		}
		Report(b, start)
	})
	if _, ok := r.Extra["cpu-ns/op"]; !ok {
		t.Fatalf("no cpu-ns/op in %v", r.Extra)
	}
}
