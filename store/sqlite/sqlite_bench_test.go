package sqlite

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/cputime"
	"github.com/estkit/estkit/store"
)

// BenchmarkPut is the store insert, durable (WAL, synchronous=FULL): one
// Put at a time (c=1), where every Put pays its own fsync, and 16 at a
// time, where group commit shares them. It reports the records per
// transaction.
func BenchmarkPut(b *testing.B) {
	der := make([]byte, 480)
	rand.Read(der)
	now := time.Now().UTC()
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "estd.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			put := func() {
				serial, err := ca.NewSerial()
				if err != nil {
					b.Fatal(err)
				}
				i := n.Add(1)
				cn := fmt.Sprintf("bench-%d", i)
				if err := s.Put(context.Background(), &store.Record{
					Serial: serial, Subject: "CN=" + cn, SANs: []string{"dns:" + cn + ".example.net"},
					NotBefore: now, NotAfter: now.Add(time.Hour), KeyAlgorithm: "ECDSA-P256",
					Requester: "bench", AuthMethod: "basic", IssuedAt: now, DER: der,
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			commits := s.puts.Commits()
			start := cputime.Process()
			if c == 1 {
				for b.Loop() {
					put()
				}
			} else {
				b.SetParallelism((c + 1) / 2)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						put()
					}
				})
			}
			cputime.Report(b, start)
			b.ReportMetric(float64(b.N)/float64(max(1, s.puts.Commits()-commits)), "records/commit")
		})
	}
}
