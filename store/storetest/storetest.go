// Package storetest is the conformance suite for store.Store backends.
//
// A backend's tests call Run with a function that opens an empty store, and,
// if the backend persists, RunDurable with one that opens the store kept in a
// directory:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// The suite uses timestamps with whole seconds, the least precision a backend
// may keep, and requires them back in UTC.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/estkit/estkit/store"
)

// Page sizes the store.ListOptions contract fixes.
const (
	defaultLimit = store.DefaultLimit
	maxLimit     = store.MaxLimit
)

// Run runs the conformance suite against the backend that open returns. open
// is called once per subtest, possibly from parallel subtests, and must
// return a new, empty store; the suite closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	s := func(t *testing.T) store.Store {
		t.Helper()
		st := open(t)
		t.Cleanup(func() {
			if err := st.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return st
	}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Isolation", testIsolation},
		{"NotFound", testNotFound},
		{"Duplicate", testDuplicate},
		{"BySubject", testBySubject},
		{"List", testList},
		{"ListNewest", testListNewest},
		{"ListLimits", testListLimits},
		{"Revoke", testRevoke},
		{"Supersede", testSupersede},
		{"Withdraw", testWithdraw},
		{"CountIssued", testCountIssued},
		{"ConcurrentPut", testConcurrentPut},
		{"ConcurrentDuplicate", testConcurrentDuplicate},
		{"Canceled", testCanceled},
		{"Ping", testPing},
		{"Approvals", testApprovals},
		{"ApprovalRace", testApprovalRace},
		{"PendingLimits", testPendingLimits},
		{"Revoked", testRevoked},
		{"Status", testStatus},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s(t))
		})
	}
}

// RunDurable checks that records, revocations and issuance order survive
// closing the store and opening it again. open must return the store kept in
// dir; the suite calls it with the same dir, which starts empty, more than
// once, and closes every store it is given.
func RunDurable(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	reopen := func() (store.Store, func()) {
		t.Helper()
		s := open(t, dir)
		var once sync.Once
		closeStore := func() {
			once.Do(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		t.Cleanup(closeStore)
		return s, closeStore
	}

	s, closeStore := reopen()
	var want []*store.Record
	for i := range 10 {
		r := newRecord(i)
		r.Subject = fmt.Sprintf("CN=durable-%d", i%3)
		mustPut(t, s, r)
		want = append(want, r)
	}
	revokedAt := baseTime.Add(90 * time.Minute)
	if err := s.Revoke(ctx, want[4].Serial, 1, revokedAt); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want[4].Revoked, want[4].RevokedAt, want[4].RevocationReason = true, revokedAt, 1
	closeStore()

	s, closeStore = reopen()
	checkAll(t, s, want)
	got, err := s.BySubject(ctx, "CN=durable-1")
	if err != nil {
		t.Fatalf("BySubject after reopening: %v", err)
	}
	checkRecords(t, "BySubject after reopening", got, []*store.Record{want[1], want[4], want[7]})
	if err := s.Put(ctx, newRecordSerial(11, want[0].Serial)); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Put of a serial recorded before reopening: got %v, want ErrDuplicate", err)
	}
	r := newRecord(10)
	mustPut(t, s, r)
	want = append(want, r)
	closeStore()

	s, _ = reopen()
	checkAll(t, s, want)
}

// checkAll checks that s holds exactly want, in that issuance order.
func checkAll(t *testing.T, s store.Store, want []*store.Record) {
	t.Helper()
	for _, w := range want {
		got, err := s.BySerial(t.Context(), w.Serial)
		if err != nil {
			t.Errorf("BySerial(%x): %v", w.Serial, err)
			continue
		}
		checkRecord(t, "BySerial", got, w)
	}
	checkRecords(t, "List", listAll(t, s, 3), want)
}

var baseTime = time.Date(2025, time.March, 14, 15, 9, 26, 0, time.UTC)

// newRecord returns a distinct, fully populated record with a random
// 160-bit serial.
func newRecord(i int) *store.Record {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		panic(err)
	}
	serial.SetBit(serial, 159, 1)
	return newRecordSerial(i, serial)
}

func newRecordSerial(i int, serial *big.Int) *store.Record {
	der := make([]byte, 256+i%7)
	rand.Read(der)
	der[0], der[1] = 0x30, 0x00 // a NUL byte, in case a backend treats DER as text
	issued := baseTime.Add(time.Duration(i) * time.Second)
	return &store.Record{
		Serial:       new(big.Int).Set(serial),
		Subject:      fmt.Sprintf("CN=device-%d,O=Exämple\\, Inc.", i),
		SANs:         []string{fmt.Sprintf("dns:d%d.example.com", i), "ip:192.0.2.1", "email:ops@example.com", "uri:urn:dev:" + fmt.Sprint(i)},
		NotBefore:    issued.Add(-5 * time.Minute),
		NotAfter:     issued.AddDate(1, 0, 0),
		KeyAlgorithm: "ECDSA-P256",
		Profile:      "",
		Requester:    "user-" + fmt.Sprint(i),
		AuthMethod:   "basic",
		IssuedAt:     issued,
		DER:          der,
	}
}

func mustPut(t *testing.T, s store.Store, r *store.Record) {
	t.Helper()
	if err := s.Put(t.Context(), r); err != nil {
		t.Fatalf("Put(%x): %v", r.Serial, err)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	ctx := t.Context()
	plain := newRecord(1)

	revoked := newRecord(2)
	revoked.Profile = "iot"
	revoked.AuthMethod = "manufacturer-cert"
	revoked.Requester = "CN=factory,O=Example"
	revoked.KeyAlgorithm = "RSA-2048"
	revoked.Revoked = true
	revoked.RevokedAt = baseTime.Add(time.Hour)
	revoked.RevocationReason = store.ReasonSuperseded
	revoked.SupersededBy = new(big.Int).Lsh(big.NewInt(0xabc), 140)

	// 802.1AR's "no well-defined expiration", the earliest UTCTime, a
	// one-byte serial, no SANs, and times given in another zone.
	extremes := newRecordSerial(3, big.NewInt(1))
	extremes.NotBefore = time.Date(1950, time.January, 1, 0, 0, 0, 0, time.UTC)
	extremes.NotAfter = time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC)
	extremes.SANs = nil
	extremes.KeyAlgorithm = "Ed25519"
	extremes.IssuedAt = baseTime.In(time.FixedZone("UTC+5:30", 5*3600+1800))

	// A serial whose top byte is small, so its hex has an odd length, and
	// whose top bits are zero: leading-zero handling must not matter.
	odd := newRecordSerial(4, new(big.Int).SetBytes(append([]byte{0x01}, bytes.Repeat([]byte{0xa5}, 18)...)))
	odd.AuthMethod = "issued-cert"

	for _, r := range []*store.Record{plain, revoked, extremes, odd} {
		mustPut(t, s, r)
	}
	for _, r := range []*store.Record{plain, revoked, extremes, odd} {
		got, err := s.BySerial(ctx, r.Serial)
		if err != nil {
			t.Errorf("BySerial(%x): %v", r.Serial, err)
			continue
		}
		checkRecord(t, fmt.Sprintf("BySerial(%x)", r.Serial), got, r)
	}
}

// testIsolation checks that the store keeps its own copies: changing a
// record after Put, or one a lookup returned, changes nothing stored.
func testIsolation(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRecord(1)
	want := cloneRecord(r)
	mustPut(t, s, r)
	r.Serial.Add(r.Serial, big.NewInt(1))
	r.SANs[0] = "dns:changed.example.com"
	r.DER[5] ^= 0xff

	got, err := s.BySerial(ctx, want.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after changing the record put", got, want)

	got.Serial.Add(got.Serial, big.NewInt(1))
	got.SANs[0] = "dns:changed.example.com"
	got.DER[5] ^= 0xff
	got, err = s.BySerial(ctx, want.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after changing a returned record", got, want)
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := newRecord(1)
	if _, err := s.BySerial(ctx, r.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial on an empty store: got %v, want ErrNotFound", err)
	}
	mustPut(t, s, r)
	other := new(big.Int).Add(r.Serial, big.NewInt(1))
	if got, err := s.BySerial(ctx, other); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial(unknown): got %v, %v, want ErrNotFound", got, err)
	}
}

func testDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := newRecord(1)
	mustPut(t, s, first)
	second := newRecordSerial(2, first.Serial)
	if err := s.Put(ctx, second); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("Put of a recorded serial: got %v, want ErrDuplicate", err)
	}
	got, err := s.BySerial(ctx, first.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after a duplicate Put", got, first)
	checkRecords(t, "List after a duplicate Put", listAll(t, s, 10), []*store.Record{first})
}

func testBySubject(t *testing.T, s store.Store) {
	ctx := t.Context()
	subjects := []string{"CN=a", "CN=b", "CN=a", "cn=a", "CN=a,O=x", "CN=a"}
	var want []*store.Record
	for i, subj := range subjects {
		r := newRecord(i)
		r.Subject = subj
		mustPut(t, s, r)
		if subj == "CN=a" {
			want = append(want, r)
		}
	}
	got, err := s.BySubject(ctx, "CN=a")
	if err != nil {
		t.Fatalf("BySubject: %v", err)
	}
	checkRecords(t, `BySubject("CN=a")`, got, want)

	got, err = s.BySubject(ctx, "CN=nobody")
	if err != nil || len(got) != 0 {
		t.Errorf(`BySubject("CN=nobody") = %d records, %v; want none, nil`, len(got), err)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := t.Context()
	recs, next, err := s.List(ctx, store.ListOptions{Limit: 5})
	if err != nil || len(recs) != 0 || next != "" {
		t.Fatalf(`List on an empty store = %d records, %q, %v; want none, "", nil`, len(recs), next, err)
	}

	var want []*store.Record
	for i := range 23 {
		r := newRecord(i)
		mustPut(t, s, r)
		want = append(want, r)
	}
	for _, limit := range []int{1, 5, 23, 24} {
		checkRecords(t, fmt.Sprintf("List with Limit %d", limit), listAll(t, s, limit), want)
	}

	// A cursor stays valid as records are added after it.
	recs, next, err = s.List(ctx, store.ListOptions{Limit: 20})
	if err != nil || len(recs) != 20 || next == "" {
		t.Fatalf("List(Limit 20) = %d records, %q, %v; want 20 and a cursor", len(recs), next, err)
	}
	for i := range 4 {
		r := newRecord(100 + i)
		mustPut(t, s, r)
		want = append(want, r)
	}
	var rest []*store.Record
	for next != "" {
		var page []*store.Record
		page, next, err = s.List(ctx, store.ListOptions{After: next, Limit: 5})
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		rest = append(rest, page...)
	}
	checkRecords(t, "List resumed after adding records", rest, want[20:])
}

func testListNewest(t *testing.T, s store.Store) {
	ctx := t.Context()
	recs, next, err := s.List(ctx, store.ListOptions{Limit: 5, Newest: true})
	if err != nil || len(recs) != 0 || next != "" {
		t.Fatalf(`List(Newest) on an empty store = %d records, %q, %v; want none, "", nil`, len(recs), next, err)
	}
	var want []*store.Record
	for i := range 23 {
		r := newRecord(i)
		mustPut(t, s, r)
		want = append(want, r)
	}
	slices.Reverse(want)
	for _, limit := range []int{1, 5, 23, 24} {
		checkRecords(t, fmt.Sprintf("List(Newest) with Limit %d", limit), listNewest(t, s, limit, ""), want)
	}

	// A cursor goes on backwards; records added after the first page are
	// not in that listing.
	recs, next, err = s.List(ctx, store.ListOptions{Limit: 10, Newest: true})
	if err != nil || len(recs) != 10 || next == "" {
		t.Fatalf("List(Newest, Limit 10) = %d records, %q, %v; want 10 and a cursor", len(recs), next, err)
	}
	checkRecords(t, "List(Newest, Limit 10)", recs, want[:10])
	mustPut(t, s, newRecord(100))
	checkRecords(t, "List(Newest) resumed after adding a record", listNewest(t, s, 5, next), want[10:])
}

func testListLimits(t *testing.T, s store.Store) {
	if testing.Short() {
		t.Skip("puts 1001 records")
	}
	ctx := t.Context()
	const n = maxLimit + 1
	want := putConcurrently(t, s, 16, n)

	recs, next, err := s.List(ctx, store.ListOptions{})
	if err != nil || len(recs) != defaultLimit || next == "" {
		t.Errorf("List(Limit 0) = %d records, %q, %v; want %d and a cursor", len(recs), next, err, defaultLimit)
	}
	recs, next, err = s.List(ctx, store.ListOptions{Limit: 5 * maxLimit})
	if err != nil || len(recs) != maxLimit || next == "" {
		t.Fatalf("List(Limit %d) = %d records, %q, %v; want %d and a cursor", 5*maxLimit, len(recs), next, err, maxLimit)
	}
	last, next, err := s.List(ctx, store.ListOptions{After: next, Limit: 5 * maxLimit})
	if err != nil || len(last) != 1 || next != "" {
		t.Fatalf(`List of the last page = %d records, %q, %v; want 1, "", nil`, len(last), next, err)
	}
	checkSameSet(t, "List", append(recs, last...), want)
}

// testCountIssued: certificates are counted by issuance time, from
// inclusive, to exclusive, to the nanosecond the store keeps.
func testCountIssued(t *testing.T, s store.Store) {
	c, ok := s.(store.IssuanceCounts)
	if !ok {
		t.Skip("the store does not implement store.IssuanceCounts")
	}
	ctx := t.Context()
	for i := range 20 {
		mustPut(t, s, newRecord(i)) // issued baseTime + i seconds
	}
	at := func(sec int) time.Time { return baseTime.Add(time.Duration(sec) * time.Second) }
	for _, tc := range []struct {
		from, to time.Time
		want     int64
	}{
		{at(5), at(10), 5},
		{at(0), at(20), 20},
		{at(-100), at(100), 20},
		{at(19), at(19), 0},
		{at(19), at(19).Add(time.Microsecond), 1},
		{at(4).Add(time.Microsecond), at(6), 1},
		{at(20), at(30), 0},
		// Another time zone is the same instant.
		{at(5).In(time.FixedZone("UTC+5", 5*3600)), at(10).In(time.FixedZone("UTC-3", -3*3600)), 5},
	} {
		if n, err := c.CountIssued(ctx, tc.from, tc.to); err != nil || n != tc.want {
			t.Errorf("CountIssued(%v, %v) = %d, %v; want %d", tc.from, tc.to, n, err, tc.want)
		}
	}
}

// testSupersede: of concurrent renewals superseding one certificate,
// exactly one does; the first revocation and its successor are kept; a
// retry for the same successor reports success; Status and BySerial name
// the successor.
func testSupersede(t *testing.T, s store.Store) {
	sup, ok := s.(store.Supersedes)
	if !ok {
		t.Skip("the store does not implement store.Supersedes")
	}
	ctx := t.Context()
	r := newRecord(1)
	mustPut(t, s, r)
	at := baseTime.Add(3 * time.Hour)
	const n = 16
	successor := func(i int) *big.Int { return big.NewInt(int64(0x5000 + i)) }
	results := make(chan error, n)
	winner := make(chan int, n)
	for i := range n {
		go func() {
			ok, err := sup.Supersede(ctx, r.Serial, successor(i), at.Add(time.Duration(i)*time.Second))
			if ok {
				winner <- i
			}
			results <- err
		}()
	}
	for range n {
		if err := <-results; err != nil {
			t.Fatalf("Supersede: %v", err)
		}
	}
	close(winner)
	var wins []int
	for i := range winner {
		wins = append(wins, i)
	}
	if len(wins) != 1 {
		t.Fatalf("%d of %d concurrent Supersede revoked the certificate (%v), want exactly 1", len(wins), n, wins)
	}
	w := wins[0]
	got, err := s.BySerial(ctx, r.Serial)
	if err != nil || !got.Revoked || got.RevocationReason != store.ReasonSuperseded || !got.RevokedAt.Equal(at.Add(time.Duration(w)*time.Second)) {
		t.Fatalf("after Supersede: %+v, %v; want revoked as superseded at the winner's time", got, err)
	}
	if got.SupersededBy == nil || got.SupersededBy.Cmp(successor(w)) != 0 {
		t.Fatalf("SupersededBy = %v, want the winner's successor %v", got.SupersededBy, successor(w))
	}
	if st, ok := s.(store.Statuses); ok {
		if status, err := st.Status(ctx, r.Serial, r.DER); err != nil || !status.Revoked || status.SupersededBy == nil || status.SupersededBy.Cmp(successor(w)) != 0 {
			t.Fatalf("Status after Supersede = %+v, %v; want revoked, superseded by %v", status, err, successor(w))
		}
	}
	// A retry for the winner's successor learns that it won; any other
	// successor, that it did not. Neither changes the revocation.
	if ok, err := sup.Supersede(ctx, r.Serial, successor(w), at.Add(time.Hour)); !ok || err != nil {
		t.Errorf("Supersede again for the same successor = %v, %v; want true, nil", ok, err)
	}
	if ok, err := sup.Supersede(ctx, r.Serial, successor(w+1), at); ok || err != nil {
		t.Errorf("Supersede of a superseded certificate for another successor = %v, %v; want false, nil", ok, err)
	}
	if again, _ := s.BySerial(ctx, r.Serial); !again.RevokedAt.Equal(got.RevokedAt) || again.SupersededBy.Cmp(successor(w)) != 0 {
		t.Errorf("the first revocation was not kept: %+v", again)
	}
	// A certificate revoked otherwise is superseded by nobody.
	other := newRecord(2)
	mustPut(t, s, other)
	if err := s.Revoke(ctx, other.Serial, 1, at); err != nil {
		t.Fatal(err)
	}
	if ok, err := sup.Supersede(ctx, other.Serial, successor(0), at); ok || err != nil {
		t.Errorf("Supersede of a revoked certificate = %v, %v; want false, nil", ok, err)
	}
	if again, _ := s.BySerial(ctx, other.Serial); again.RevocationReason != 1 || again.SupersededBy != nil {
		t.Errorf("Supersede changed an earlier revocation: %+v", again)
	}
	if _, err := sup.Supersede(ctx, big.NewInt(0x7777777), successor(0), at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Supersede of an unknown serial: %v, want ErrNotFound", err)
	}
	for _, bad := range []*big.Int{nil, big.NewInt(0), big.NewInt(-1)} {
		if _, err := sup.Supersede(ctx, other.Serial, bad, at); err == nil {
			t.Errorf("Supersede with successor %v succeeded", bad)
		}
	}
}

// testWithdraw: Withdraw revokes a renewal's certificate unless its
// predecessor names it as successor, and says which it was.
func testWithdraw(t *testing.T, s store.Store) {
	sup, ok := s.(store.Supersedes)
	if !ok {
		t.Skip("the store does not implement store.Supersedes")
	}
	ctx := t.Context()
	old, won, lost := newRecord(1), newRecord(2), newRecord(3)
	for _, r := range []*store.Record{old, won, lost} {
		mustPut(t, s, r)
	}
	at := baseTime.Add(time.Hour)
	if ok, err := sup.Supersede(ctx, old.Serial, won.Serial, at); !ok || err != nil {
		t.Fatalf("Supersede = %v, %v", ok, err)
	}
	if superseded, err := sup.Withdraw(ctx, won.Serial, old.Serial, at); !superseded || err != nil {
		t.Errorf("Withdraw of the successor = %v, %v; want true (kept)", superseded, err)
	}
	if got, _ := s.BySerial(ctx, won.Serial); got.Revoked {
		t.Errorf("Withdraw revoked the recorded successor: %+v", got)
	}
	if superseded, err := sup.Withdraw(ctx, lost.Serial, old.Serial, at); superseded || err != nil {
		t.Errorf("Withdraw of another certificate = %v, %v; want false (withdrawn)", superseded, err)
	}
	got, _ := s.BySerial(ctx, lost.Serial)
	if !got.Revoked || got.RevocationReason != store.ReasonCessation || !got.RevokedAt.Equal(at) {
		t.Errorf("after Withdraw: %+v; want revoked, cessationOfOperation", got)
	}
	// Withdrawn again: nothing changes.
	if superseded, err := sup.Withdraw(ctx, lost.Serial, old.Serial, at.Add(time.Hour)); superseded || err != nil {
		t.Errorf("Withdraw again = %v, %v", superseded, err)
	}
	if again, _ := s.BySerial(ctx, lost.Serial); !again.RevokedAt.Equal(at) {
		t.Errorf("a second Withdraw changed the revocation: %+v", again)
	}
	if _, err := sup.Withdraw(ctx, lost.Serial, big.NewInt(0x7777777), at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Withdraw for an unknown predecessor: %v, want ErrNotFound", err)
	}
}

func testRevoke(t *testing.T, s store.Store) {
	ctx := t.Context()
	r, other := newRecord(1), newRecord(2)
	mustPut(t, s, r)
	mustPut(t, s, other)

	at := baseTime.Add(2 * time.Hour)
	// Reason 0, unspecified: Revoked must not be inferred from the reason.
	if err := s.Revoke(ctx, r.Serial, 0, at); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want := cloneRecord(r)
	want.Revoked, want.RevokedAt, want.RevocationReason = true, at, 0
	got, err := s.BySerial(ctx, r.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after Revoke", got, want)

	if err := s.Revoke(ctx, r.Serial, 1, at.Add(time.Hour)); err != nil {
		t.Errorf("second Revoke: %v", err)
	}
	got, err = s.BySerial(ctx, r.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after a second Revoke", got, want)
	checkRecords(t, "List after Revoke", listAll(t, s, 10), []*store.Record{want, other})

	unknown := new(big.Int).Add(r.Serial, big.NewInt(1))
	if err := s.Revoke(ctx, unknown, 1, at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Revoke(unknown): got %v, want ErrNotFound", err)
	}
	if _, err := s.BySerial(ctx, unknown); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial after Revoke(unknown): got %v, want ErrNotFound", err)
	}
}

func testConcurrentPut(t *testing.T, s store.Store) {
	want := putConcurrently(t, s, 16, 16*25)
	for _, w := range want {
		got, err := s.BySerial(t.Context(), w.Serial)
		if err != nil {
			t.Errorf("BySerial(%x): %v", w.Serial, err)
			continue
		}
		checkRecord(t, "BySerial", got, w)
	}
	checkSameSet(t, "List", listAll(t, s, 37), want)
}

// putConcurrently puts n distinct records from the given number of
// goroutines and returns them.
func putConcurrently(t *testing.T, s store.Store, goroutines, n int) []*store.Record {
	t.Helper()
	recs := make([]*store.Record, n)
	for i := range recs {
		recs[i] = newRecord(i)
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		next  atomic.Int64
	)
	for range goroutines {
		wg.Go(func() {
			<-start
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := s.Put(t.Context(), recs[i]); err != nil {
					t.Errorf("Put(%x): %v", recs[i].Serial, err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return recs
}

func testConcurrentDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 20 {
		a := newRecord(2 * round)
		b := newRecordSerial(2*round+1, a.Serial)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2]error
		)
		for i, r := range []*store.Record{a, b} {
			wg.Go(func() {
				<-start
				errs[i] = s.Put(ctx, r)
			})
		}
		close(start)
		wg.Wait()

		var winner *store.Record
		switch {
		case errs[0] == nil && errors.Is(errs[1], store.ErrDuplicate):
			winner = a
		case errs[1] == nil && errors.Is(errs[0], store.ErrDuplicate):
			winner = b
		default:
			t.Fatalf("round %d: concurrent Puts of one serial returned %v and %v; want nil and ErrDuplicate", round, errs[0], errs[1])
		}
		got, err := s.BySerial(ctx, a.Serial)
		if err != nil {
			t.Fatalf("BySerial: %v", err)
		}
		checkRecord(t, fmt.Sprintf("round %d: BySerial", round), got, winner)
	}
	if recs := listAll(t, s, 100); len(recs) != 20 {
		t.Errorf("List after 20 contested serials: %d records, want 20", len(recs))
	}
}

func testCanceled(t *testing.T, s store.Store) {
	r := newRecord(1)
	mustPut(t, s, r)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: got %v, want context.Canceled", op, err)
		}
	}
	fresh := newRecord(2)
	check("Put", s.Put(ctx, fresh))
	_, err := s.BySerial(ctx, r.Serial)
	check("BySerial", err)
	_, err = s.BySubject(ctx, r.Subject)
	check("BySubject", err)
	_, _, err = s.List(ctx, store.ListOptions{})
	check("List", err)
	check("Revoke", s.Revoke(ctx, r.Serial, 1, baseTime))
	check("Ping", s.Ping(ctx))

	// A canceled call must not have happened.
	if _, err := s.BySerial(t.Context(), fresh.Serial); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BySerial after a canceled Put: got %v, want ErrNotFound", err)
	}
	got, err := s.BySerial(t.Context(), r.Serial)
	if err != nil {
		t.Fatalf("BySerial: %v", err)
	}
	checkRecord(t, "BySerial after a canceled Revoke", got, r)
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping on an empty store: %v", err)
	}
	mustPut(t, s, newRecord(1))
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// listAll pages through the whole store with the given page size. It
// tolerates a final empty page but no page longer than the limit.
func listAll(t *testing.T, s store.Store, limit int) []*store.Record {
	t.Helper()
	return listFrom(t, s, store.ListOptions{Limit: limit})
}

// listNewest pages through s newest first from the cursor after.
func listNewest(t *testing.T, s store.Store, limit int, after string) []*store.Record {
	t.Helper()
	return listFrom(t, s, store.ListOptions{After: after, Limit: limit, Newest: true})
}

// listFrom pages through s as o says, from o.After to the end.
func listFrom(t *testing.T, s store.Store, o store.ListOptions) []*store.Record {
	t.Helper()
	var all []*store.Record
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("List(%+v) did not end after %d pages", o, pages)
		}
		recs, next, err := s.List(t.Context(), o)
		if err != nil {
			t.Fatalf("List(%+v): %v", o, err)
		}
		if len(recs) > o.Limit {
			t.Fatalf("List(%+v) returned %d records", o, len(recs))
		}
		all = append(all, recs...)
		if next == "" {
			return all
		}
		if len(recs) == 0 {
			t.Fatalf("List(%+v) returned no records but cursor %q", o, next)
		}
		o.After = next
	}
}

// checkRecords checks that got holds records equal to want, in order.
func checkRecords(t *testing.T, what string, got, want []*store.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		checkRecord(t, fmt.Sprintf("%s[%d]", what, i), got[i], want[i])
	}
}

// checkSameSet checks that got holds each record of want exactly once, in
// any order.
func checkSameSet(t *testing.T, what string, got, want []*store.Record) {
	t.Helper()
	seen := make(map[string]int, len(got))
	for _, r := range got {
		seen[r.Serial.Text(16)]++
	}
	for _, w := range want {
		if n := seen[w.Serial.Text(16)]; n != 1 {
			t.Errorf("%s: serial %x appears %d times, want once", what, w.Serial, n)
		}
		delete(seen, w.Serial.Text(16))
	}
	for serial := range seen {
		t.Errorf("%s: unexpected serial %s", what, serial)
	}
}

// checkRecord reports every field in which got differs from want. Times must
// be equal instants and in UTC.
func checkRecord(t *testing.T, what string, got, want *store.Record) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil record", what)
		return
	}
	diff := func(field string, g, w any) {
		t.Helper()
		t.Errorf("%s: %s = %v, want %v", what, field, g, w)
	}
	if got.Serial == nil || got.Serial.Cmp(want.Serial) != 0 {
		diff("Serial", got.Serial, want.Serial)
	}
	for _, f := range []struct {
		name string
		g, w string
	}{
		{"Subject", got.Subject, want.Subject},
		{"KeyAlgorithm", got.KeyAlgorithm, want.KeyAlgorithm},
		{"Profile", got.Profile, want.Profile},
		{"Requester", got.Requester, want.Requester},
		{"AuthMethod", got.AuthMethod, want.AuthMethod},
	} {
		if f.g != f.w {
			diff(f.name, fmt.Sprintf("%q", f.g), fmt.Sprintf("%q", f.w))
		}
	}
	if !slices.Equal(got.SANs, want.SANs) {
		diff("SANs", fmt.Sprintf("%q", got.SANs), fmt.Sprintf("%q", want.SANs))
	}
	if !bytes.Equal(got.DER, want.DER) {
		diff("DER", fmt.Sprintf("%d bytes %x…", len(got.DER), got.DER[:min(8, len(got.DER))]),
			fmt.Sprintf("%d bytes %x…", len(want.DER), want.DER[:min(8, len(want.DER))]))
	}
	for _, f := range []struct {
		name string
		g, w time.Time
	}{
		{"NotBefore", got.NotBefore, want.NotBefore},
		{"NotAfter", got.NotAfter, want.NotAfter},
		{"IssuedAt", got.IssuedAt, want.IssuedAt},
		{"RevokedAt", got.RevokedAt, want.RevokedAt},
	} {
		if !f.g.Equal(f.w) {
			diff(f.name, f.g, f.w)
		} else if !f.g.IsZero() && f.g.Location() != time.UTC {
			diff(f.name+".Location()", f.g.Location(), time.UTC)
		}
	}
	if got.Revoked != want.Revoked {
		diff("Revoked", got.Revoked, want.Revoked)
	}
	if got.RevocationReason != want.RevocationReason {
		diff("RevocationReason", got.RevocationReason, want.RevocationReason)
	}
	if (got.SupersededBy == nil) != (want.SupersededBy == nil) ||
		got.SupersededBy != nil && got.SupersededBy.Cmp(want.SupersededBy) != 0 {
		diff("SupersededBy", got.SupersededBy, want.SupersededBy)
	}
}

func cloneRecord(r *store.Record) *store.Record {
	c := *r
	c.Serial = new(big.Int).Set(r.Serial)
	c.SANs = slices.Clone(r.SANs)
	c.DER = bytes.Clone(r.DER)
	if r.SupersededBy != nil {
		c.SupersededBy = new(big.Int).Set(r.SupersededBy)
	}
	return &c
}
