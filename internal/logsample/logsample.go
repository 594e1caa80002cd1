// Package logsample bounds log lines that anyone can cause (failed TLS
// handshakes, junk sent to a listener without authentication): the first few
// are logged, then one per interval, and each line logged says how many were
// left out since the one before, so a flood is visible in the log without
// filling it.
package logsample

import (
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Sampler lets the first events through, then one per interval; make one
// with New. It is safe for concurrent use.
type Sampler struct {
	s       rate.Sometimes
	skipped atomic.Int64
}

// New returns a Sampler that lets the first events through, then one per
// interval.
func New(first int, interval time.Duration) *Sampler {
	return &Sampler{s: rate.Sometimes{First: first, Interval: interval}}
}

// Do calls log for an event it lets through, with the number of events left
// out since the last one it let through; it counts the others.
func (s *Sampler) Do(log func(skipped int64)) {
	ran := false
	s.s.Do(func() {
		ran = true
		log(s.skipped.Swap(0))
	})
	if !ran {
		s.skipped.Add(1)
	}
}
