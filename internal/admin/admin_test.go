package admin

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/estkit/estkit/store"
	"github.com/estkit/estkit/store/sqlite"
)

func newService(t *testing.T) (*Service, store.Store, *time.Time) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 11, 24, 12, 30, 0, 0, time.UTC)
	return New(st, func() time.Time { return now }, nil), st, &now
}

func put(t *testing.T, st store.Store, i int, subject string, issued time.Time) *store.Record {
	t.Helper()
	r := &store.Record{
		Serial: new(big.Int).SetInt64(int64(0x1000 + i)), Subject: subject, Requester: fmt.Sprintf("user-%d", i%2),
		AuthMethod: "basic", KeyAlgorithm: "ECDSA-P256", IssuedAt: issued, NotBefore: issued, NotAfter: issued.Add(24 * time.Hour), DER: []byte{0x30, 0},
	}
	if err := st.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSearchAndIssuance(t *testing.T) {
	s, st, now := newService(t)
	ctx := context.Background()
	for i := range 6 {
		put(t, st, i, fmt.Sprintf("CN=dev-%d,O=Acme", i), now.Add(-time.Duration(i)*time.Hour))
	}
	all, err := s.Search(ctx, "", 100)
	if err != nil || len(all) != 6 || all[0].Serial.Int64() != 0x1005 {
		t.Fatalf("Search all: %d, %v; want 6, newest recorded first", len(all), err)
	}
	if got, _ := s.Search(ctx, "DEV-3", 10); len(got) != 1 || got[0].Subject != "CN=dev-3,O=Acme" {
		t.Fatalf("subject search: %v", got)
	}
	if got, _ := s.Search(ctx, "user-1", 10); len(got) != 3 {
		t.Fatalf("requester search: %d, want 3", len(got))
	}
	if got, _ := s.Search(ctx, "1004", 10); len(got) != 1 {
		t.Fatalf("serial search: %d, want 1", len(got))
	}
	if got, _ := s.Search(ctx, "", 2); len(got) != 2 {
		t.Fatalf("limit: %d", len(got))
	}
	buckets, err := s.Issuance(ctx, time.Hour, 4)
	if err != nil || len(buckets) != 4 {
		t.Fatal(err)
	}
	// Hours ending at 13:00: [09,10) [10,11) [11,12) [12,13); issued at 12:30, 11:30, 10:30, 09:30, ...
	for i, want := range []int{1, 1, 1, 1} {
		if buckets[i].Count != want {
			t.Errorf("bucket %d (%v): %d, want %d", i, buckets[i].Start, buckets[i].Count, want)
		}
	}
}

func TestRevoke(t *testing.T) {
	s, st, _ := newService(t)
	ctx := context.Background()
	r := put(t, st, 1, "CN=x", time.Now())
	serial := r.Serial.Text(16)
	if err := s.Revoke(ctx, serial, "bogus", "alice"); err == nil {
		t.Fatal("unknown reason accepted")
	}
	if err := s.Revoke(ctx, serial, "keyCompromise", ""); err == nil {
		t.Fatal("anonymous revocation accepted")
	}
	if err := s.Revoke(ctx, "zz", "keyCompromise", "alice"); err == nil {
		t.Fatal("bad serial accepted")
	}
	if err := s.Revoke(ctx, "0x"+serial, "keyCompromise", "alice"); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Certificate(ctx, serial)
	if !got.Revoked || got.RevocationReason != 1 {
		t.Fatalf("record after revoke: %+v", got)
	}
	if err := s.Revoke(ctx, serial, "superseded", "bob"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second revoke: %v, want ErrConflict", err)
	}
	if err := s.Revoke(ctx, "abcdef", "superseded", "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown serial: %v", err)
	}
}

func TestDecisions(t *testing.T) {
	s, st, now := newService(t)
	ctx := context.Background()
	a := st.(store.Approvals)
	for _, id := range []string{"r1", "r2"} {
		if _, err := a.AddRequest(ctx, &store.Request{ID: id, Subject: "CN=" + id, CSR: []byte{1}, CreatedAt: *now}, store.PendingLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Approve(ctx, "r1", ""); err == nil {
		t.Fatal("anonymous approval accepted")
	}
	if err := s.Approve(ctx, "r1", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reject(ctx, "r2", "bob", "  not\nours  "); err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Request(ctx, "r2")
	if r2.Status != store.RequestRejected || r2.Reason != "not ours" || !r2.DecidedAt.Equal(*now) {
		t.Fatalf("r2: %+v", r2)
	}
	pending, err := s.Requests(ctx, store.RequestPending, 10)
	if err != nil || len(pending) != 0 {
		t.Fatalf("pending: %d %v", len(pending), err)
	}
	if err := s.Approve(ctx, "r2", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("approving a rejected request: %v", err)
	}
}

func TestReasonNames(t *testing.T) {
	if ReasonName(1) != "keyCompromise" || ReasonName(4) != "superseded" || ReasonName(77) != "reason-77" {
		t.Fatal("ReasonName")
	}
	if _, err := ParseSerial("00:1a:2B"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "0", "xyz", "-5"} {
		if _, err := ParseSerial(bad); err == nil {
			t.Errorf("ParseSerial(%q) succeeded", bad)
		}
	}
}

// countingStore counts the records List hands out.
type countingStore struct {
	store.Store
	read int
}

func (c *countingStore) List(ctx context.Context, o store.ListOptions) ([]*store.Record, string, error) {
	recs, next, err := c.Store.List(ctx, o)
	c.read += len(recs)
	return recs, next, err
}

// TestNewestFirst: the recent certificates and the issuance counts come from
// the newest records, without reading the whole ledger (with more than
// maxScan certificates, reading oldest first never reached the recent ones).
func TestNewestFirst(t *testing.T) {
	_, st, now := newService(t)
	ctx := context.Background()
	old := now.Add(-40 * 24 * time.Hour)
	const nOld = 2500
	recs := make([]*store.Record, nOld)
	for i := range recs {
		recs[i] = &store.Record{
			Serial: new(big.Int).SetInt64(int64(0x100000 + i)), Subject: fmt.Sprintf("CN=old-%d", i), Requester: "user-0",
			AuthMethod: "basic", KeyAlgorithm: "ECDSA-P256", IssuedAt: old, NotBefore: old, NotAfter: old.Add(24 * time.Hour), DER: []byte{0x30, 0},
		}
	}
	putAll(t, st, recs)
	for i := range 3 {
		put(t, st, i, fmt.Sprintf("CN=new-%d", i), now.Add(-time.Duration(i)*time.Minute))
	}
	c := &countingStore{Store: st}
	s := New(c, func() time.Time { return *now }, nil)

	got, err := s.Search(ctx, "", 3)
	if err != nil || len(got) != 3 || got[0].Subject != "CN=new-2" || got[2].Subject != "CN=new-0" {
		t.Fatalf("Search(\"\", 3) = %v, %v; want the three newest, newest first", got, err)
	}
	if c.read > 3 {
		t.Errorf("Search(\"\", 3) read %d records, want 3", c.read)
	}

	c.read = 0
	buckets, err := s.Issuance(ctx, time.Hour, 24)
	if err != nil {
		t.Fatal(err)
	}
	if last := buckets[len(buckets)-1]; last.Count != 3 {
		t.Errorf("Issuance: the last hour counts %d, want 3", last.Count)
	}
	if c.read >= nOld {
		t.Errorf("Issuance over a day read %d records of %d, most of them weeks old", c.read, nOld+3)
	}
	// The store's index (store.IssuanceCounts; the counting wrapper hides
	// it) counts the same, over a day and over two months, and reads no
	// record.
	direct := New(st, func() time.Time { return *now }, nil)
	for _, span := range []struct {
		step time.Duration
		n    int
	}{{time.Hour, 24}, {24 * time.Hour, 60}} {
		c.read = 0
		scanned, err := s.Issuance(ctx, span.step, span.n)
		if err != nil {
			t.Fatal(err)
		}
		counted, err := direct.Issuance(ctx, span.step, span.n)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(scanned) != fmt.Sprint(counted) {
			t.Errorf("Issuance(%v, %d): scanned %v, counted %v", span.step, span.n, scanned, counted)
		}
	}
	if _, ok := st.(store.IssuanceCounts); !ok {
		t.Error("the SQLite store does not count by issuance time")
	}
}

// putAll puts recs, many at a time.
func putAll(t *testing.T, st store.Store, recs []*store.Record) {
	t.Helper()
	errs := make(chan error, len(recs))
	sem := make(chan struct{}, 64)
	for _, r := range recs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- st.Put(context.Background(), r)
		}()
	}
	for range recs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
