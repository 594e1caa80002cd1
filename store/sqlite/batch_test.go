package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/internal/groupcommit"
)

func batchRecord(i int, serial int64) *store.Record {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	return &store.Record{
		Serial: big.NewInt(serial), Subject: fmt.Sprintf("CN=batch-%d", i),
		NotBefore: now, NotAfter: now.Add(time.Hour), IssuedAt: now,
		KeyAlgorithm: "ECDSA-P256", Requester: "test", AuthMethod: "basic", DER: []byte{0x30, 0x00},
	}
}

// holdWriter takes the writer connection, so that the committer blocks
// beginning its next transaction, and returns the function that gives it
// back.
func holdWriter(t *testing.T, s *Store) func() {
	t.Helper()
	conn, err := s.w.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { conn.Close() }) }
	t.Cleanup(release)
	return release
}

// waitQueued waits until n Puts wait for the next transaction.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.puts.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d Puts queued, want %d", s.puts.Queued(), n)
		}
		runtime.Gosched()
	}
}

// putAsync starts a Put and returns where its result arrives.
func putAsync(ctx context.Context, s *Store, r *store.Record) <-chan error {
	c := make(chan error, 1)
	go func() { c <- s.Put(ctx, r) }()
	return c
}

// startFirst starts a Put and waits until the committer has taken it into
// a transaction, which then waits for the writer connection that
// holdWriter holds.
func startFirst(t *testing.T, s *Store, r *store.Record) <-chan error {
	t.Helper()
	before := s.puts.Taken()
	c := putAsync(t.Context(), s, r)
	deadline := time.Now().Add(10 * time.Second)
	for s.puts.Taken() == before {
		if time.Now().After(deadline) {
			t.Fatal("the committer did not take the first Put")
		}
		runtime.Gosched()
	}
	return c
}

// TestGroupCommit: Puts that arrive while a transaction is being committed
// all go into the next one, and each is recorded.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t)
	release := holdWriter(t, s)
	first := startFirst(t, s, batchRecord(0, 1000))
	const n = 32
	var results []<-chan error
	for i := 1; i <= n; i++ {
		results = append(results, putAsync(t.Context(), s, batchRecord(i, int64(1000+i))))
	}
	waitQueued(t, s, n)
	before := s.puts.Commits()
	release()
	if err := <-first; err != nil {
		t.Fatalf("first Put: %v", err)
	}
	for i, c := range results {
		if err := <-c; err != nil {
			t.Errorf("Put %d: %v", i+1, err)
		}
	}
	if got := s.puts.Commits() - before; got != 1 {
		t.Errorf("%d queued Puts took %d transactions after the first's, want 1", n, got)
	}
	for i := 0; i <= n; i++ {
		if _, err := s.BySerial(t.Context(), big.NewInt(int64(1000+i))); err != nil {
			t.Errorf("BySerial(%d): %v", 1000+i, err)
		}
	}
}

// TestGroupCommitDuplicates: a duplicate serial fails only its own Put,
// whether it repeats a recorded serial or one earlier in the same batch.
func TestGroupCommitDuplicates(t *testing.T) {
	s := openTemp(t)
	if err := s.Put(t.Context(), batchRecord(0, 7)); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	first := startFirst(t, s, batchRecord(1, 8))
	recs := []*store.Record{batchRecord(2, 9), batchRecord(3, 7), batchRecord(4, 10), batchRecord(5, 9), batchRecord(6, 11)}
	wantDup := []bool{false, true, false, true, false}
	var results []<-chan error
	for _, r := range recs {
		results = append(results, putAsync(t.Context(), s, r))
		waitQueued(t, s, len(results)) // keep the order: serial 9 first, then its duplicate
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, c := range results {
		err := <-c
		if wantDup[i] != errors.Is(err, store.ErrDuplicate) || !wantDup[i] && err != nil {
			t.Errorf("Put of serial %v: %v, want duplicate %v", recs[i].Serial, err, wantDup[i])
		}
	}
	for i, serial := range []int64{7, 8, 9, 10, 11} {
		got, err := s.BySerial(t.Context(), big.NewInt(serial))
		if err != nil {
			t.Fatalf("BySerial(%d): %v", serial, err)
		}
		if want := []string{"CN=batch-0", "CN=batch-1", "CN=batch-2", "CN=batch-4", "CN=batch-6"}[i]; got.Subject != want {
			t.Errorf("serial %d: subject %q, want %q (the first Put of a serial wins)", serial, got.Subject, want)
		}
	}
}

// TestGroupCommitCanceledWhileQueued: a Put whose context ends before its
// transaction begins returns the context's error and is not recorded.
func TestGroupCommitCanceledWhileQueued(t *testing.T) {
	s := openTemp(t)
	release := holdWriter(t, s)
	first := startFirst(t, s, batchRecord(0, 20))
	ctx, cancel := context.WithCancel(t.Context())
	queued := putAsync(ctx, s, batchRecord(1, 21))
	waitQueued(t, s, 1)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Put: %v, want context.Canceled", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// A later Put commits after the abandoned one was skipped.
	if err := s.Put(t.Context(), batchRecord(2, 22)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BySerial(t.Context(), big.NewInt(21)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial of the canceled Put: %v, want ErrNotFound", err)
	}
}

// TestGroupCommitFailedBatch: an error other than a constraint rolls the
// whole batch back and fails every Put in it; the next batch is unaffected.
func TestGroupCommitFailedBatch(t *testing.T) {
	s := openTemp(t)
	release := holdWriter(t, s)
	first := startFirst(t, s, batchRecord(0, 30))
	good := putAsync(t.Context(), s, batchRecord(1, 31))
	waitQueued(t, s, 1)
	bad := make(chan error, 1)
	go func() { bad <- s.puts.Put(t.Context(), []any{"not enough arguments"}) }()
	waitQueued(t, s, 2)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-bad; err == nil {
		t.Fatal("a malformed insert succeeded")
	}
	if err := <-good; err == nil {
		t.Fatal("a Put in a failed batch succeeded")
	}
	if _, err := s.BySerial(t.Context(), big.NewInt(31)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial of a Put in the failed batch: %v, want ErrNotFound", err)
	}
	if err := s.Put(t.Context(), batchRecord(2, 32)); err != nil {
		t.Fatalf("Put after a failed batch: %v", err)
	}
}

// TestPutAfterClose: a Put on a closed store fails at once.
func TestPutAfterClose(t *testing.T) {
	s := openAt(t, t.TempDir()+"/estd.db")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), batchRecord(0, 40)); !errors.Is(err, groupcommit.ErrClosed) {
		t.Fatalf("Put after Close: %v, want groupcommit.ErrClosed", err)
	}
	s.puts.Close() // twice
}

// TestCloseFailsQueuedPuts: Puts still waiting when the store closes fail
// instead of hanging.
func TestCloseFailsQueuedPuts(t *testing.T) {
	s := openAt(t, t.TempDir()+"/estd.db")
	release := holdWriter(t, s)
	first := startFirst(t, s, batchRecord(0, 50))
	queued := putAsync(t.Context(), s, batchRecord(1, 51))
	waitQueued(t, s, 1)
	closed := make(chan error, 1)
	go func() { s.puts.Close(); closed <- nil }()
	release()
	if err := <-first; err != nil {
		t.Fatalf("the Put in flight: %v", err)
	}
	if err := <-queued; err != nil && !errors.Is(err, groupcommit.ErrClosed) {
		t.Fatalf("queued Put: %v, want nil or errClosed", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// TestIsConstraint: only constraint errors are a single record's failure.
func TestIsConstraint(t *testing.T) {
	s := openTemp(t)
	_, err := s.w.ExecContext(t.Context(), `INSERT INTO certificates (serial) VALUES ('')`)
	if err == nil || !isConstraint(err) {
		t.Errorf("NOT NULL/CHECK violation: isConstraint(%v) = false", err)
	}
	for _, err := range []error{errors.New("disk I/O error"), sql.ErrConnDone, nil} {
		if isConstraint(err) {
			t.Errorf("isConstraint(%v) = true", err)
		}
	}
}
