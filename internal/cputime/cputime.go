// Package cputime reads the CPU time this process has used, so that
// benchmarks can report CPU per operation next to wall time: on a shared,
// noisy machine the CPU an operation takes is steadier than how long it took.
package cputime

import (
	"testing"
	"time"
)

// Report reports the process CPU time per iteration of b since start (a
// Process() reading) as the metric cpu-ns/op. It reports nothing where
// Process is not available.
func Report(b *testing.B, start time.Duration) {
	if end := Process(); end > 0 && b.N > 0 {
		b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
	}
}
