package postgres

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/estkit/estkit/internal/pgtest"
	"github.com/estkit/estkit/store"
)

func batchItem(t *testing.T, serial int64, subject string) putItem {
	t.Helper()
	rec := testRecord(serial)
	rec.Subject = subject
	it, err := newPutItem(rec)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// A batch is one transaction; a duplicate serial, recorded before or
// earlier in the same batch, fails only its own Put.
func TestCommitBatch(t *testing.T) {
	s := openNew(t)
	ctx := t.Context()
	if err := s.Put(ctx, testRecord(7)); err != nil {
		t.Fatal(err)
	}
	batch := []putItem{
		batchItem(t, 8, "CN=first 8"),
		batchItem(t, 7, "CN=second 7"),
		batchItem(t, 9, "CN=9"),
		batchItem(t, 8, "CN=second 8"),
		batchItem(t, 10, "CN=10"),
	}
	errs := s.commitBatch(batch)
	wantDup := []bool{false, true, false, true, false}
	for i, err := range errs {
		if wantDup[i] != errors.Is(err, store.ErrDuplicate) || !wantDup[i] && err != nil {
			t.Errorf("item %d (serial %s): %v, want duplicate %v", i, batch[i].serial, err, wantDup[i])
		}
	}
	for serial, subject := range map[int64]string{7: "CN=test", 8: "CN=first 8", 9: "CN=9", 10: "CN=10"} {
		r, err := s.BySerial(ctx, big.NewInt(serial))
		if err != nil {
			t.Fatalf("BySerial(%d): %v", serial, err)
		}
		if r.Subject != subject {
			t.Errorf("serial %d: subject %q, want %q (the first Put of a serial wins)", serial, r.Subject, subject)
		}
	}
	// Rows written by one transaction carry its transaction ID.
	var txids int
	if err := s.pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM certificates WHERE serial IN ('8', '9', 'a')`).Scan(&txids); err != nil {
		t.Fatal(err)
	}
	if txids != 1 {
		t.Errorf("the batch was written by %d transactions, want 1", txids)
	}
}

// A record the server refuses for another reason (here the canonical-serial
// CHECK) fails alone: the batch is retried record by record.
func TestCommitBatchRefusedRecord(t *testing.T) {
	s := openNew(t)
	ctx := t.Context()
	bad := batchItem(t, 21, "CN=bad")
	bad.serial = "021" // not canonical: the CHECK refuses it
	bad.args[0] = bad.serial
	batch := []putItem{batchItem(t, 20, "CN=20"), bad, batchItem(t, 22, "CN=22")}
	errs := s.commitBatch(batch)
	if errs[0] != nil || errs[2] != nil {
		t.Errorf("good records: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || errors.Is(errs[1], store.ErrDuplicate) {
		t.Errorf("refused record: %v, want the CHECK violation", errs[1])
	}
	for _, serial := range []int64{20, 22} {
		if _, err := s.BySerial(ctx, big.NewInt(serial)); err != nil {
			t.Errorf("BySerial(%d): %v", serial, err)
		}
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM certificates WHERE serial = '021'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused record: %d rows (%v)", n, err)
	}
}

// When the server cannot be reached, every Put of the batch fails.
func TestCommitBatchUnreachable(t *testing.T) {
	s := openNew(t)
	s.pool.Close()
	errs := s.commitBatch([]putItem{batchItem(t, 30, "CN=30"), batchItem(t, 31, "CN=31")})
	for i, err := range errs {
		if err == nil || errors.Is(err, store.ErrDuplicate) {
			t.Errorf("item %d on a closed pool: %v, want an error", i, err)
		}
	}
}

// A batch the server does not answer fails once batchTimeout has passed,
// instead of holding its Puts for ever; the store recovers.
func TestCommitBatchTimeout(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	// One connection, with both statements prepared by batches that
	// succeed, so that the timed-out batches reach the server whole
	// (not stuck in preparing against the lock).
	s := openDSN(t, dsn+"&pool_max_conns=1")
	defer s.Close()
	ctx := t.Context()
	for _, batch := range [][]putItem{{batchItem(t, 1, "CN=1")}, {batchItem(t, 2, "CN=2"), batchItem(t, 3, "CN=3")}} {
		for _, err := range s.commitBatch(batch) {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	old := batchTimeout
	batchTimeout = 300 * time.Millisecond
	defer func() { batchTimeout = old }()

	// Another session locks the table, so the INSERTs wait.
	lock := adminConn(t, dsn)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE certificates IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]putItem{
		{batchItem(t, 41, "CN=41"), batchItem(t, 42, "CN=42")},
		{batchItem(t, 40, "CN=40")},
	} {
		for i, err := range s.commitBatch(batch) {
			if err == nil {
				t.Errorf("item %d of a batch of %d succeeded while the table was locked", i, len(batch))
			}
		}
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, testRecord(43)); err != nil {
		t.Fatalf("Put after the timeouts: %v", err)
	}
	// The failed batches were canceled on the server, not left to commit
	// once the lock was gone.
	for _, serial := range []int64{40, 41, 42} {
		if _, err := s.BySerial(ctx, big.NewInt(serial)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("serial %d of a batch that failed: %v, want ErrNotFound", serial, err)
		}
	}
}
