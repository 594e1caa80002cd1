package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/estkit/estkit/store"
)

func approvals(t *testing.T, s store.Store) store.Approvals {
	t.Helper()
	a, ok := s.(store.Approvals)
	if !ok {
		t.Fatalf("%T does not implement store.Approvals; every estkit backend must", s)
	}
	return a
}

func newRequest(i int) *store.Request {
	return &store.Request{
		ID:           fmt.Sprintf("req-%04d", i),
		Label:        "tls-client",
		Operation:    "simpleenroll",
		Requester:    fmt.Sprintf("CN=device-%d", i),
		AuthMethod:   "manufacturer-cert",
		Subject:      fmt.Sprintf("CN=device-%d", i),
		SANs:         []string{fmt.Sprintf("dns:device-%d.example", i)},
		KeyAlgorithm: "ECDSA-P256",
		CSR:          []byte{0x30, byte(i), 0x01},
		CreatedAt:    baseTime.Add(time.Duration(i) * time.Second),
	}
}

func testApprovals(t *testing.T, s store.Store) {
	a := approvals(t, s)
	ctx := context.Background()
	in := newRequest(1)
	got, err := a.AddRequest(ctx, in, store.PendingLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.RequestPending || got.ID != in.ID || got.Requester != in.Requester || !got.CreatedAt.Equal(in.CreatedAt) ||
		string(got.CSR) != string(in.CSR) || len(got.SANs) != 1 || got.Operation != "simpleenroll" || got.Serial != nil || !got.DecidedAt.IsZero() {
		t.Fatalf("AddRequest returned %+v", got)
	}
	// A retry finds the same request, unchanged.
	again := newRequest(1)
	again.CreatedAt = baseTime.Add(time.Hour)
	got2, err := a.AddRequest(ctx, again, store.PendingLimits{})
	if err != nil || !got2.CreatedAt.Equal(in.CreatedAt) {
		t.Fatalf("second AddRequest: %+v, %v; want the first request", got2, err)
	}
	for i := 2; i <= 5; i++ {
		if _, err := a.AddRequest(ctx, newRequest(i), store.PendingLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Request(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Request(unknown) = %v, want ErrNotFound", err)
	}

	// Decisions: pending -> approved -> issued; pending -> rejected.
	at := baseTime.Add(2 * time.Hour)
	if err := a.Decide(ctx, "req-0001", store.RequestApproved, "alice", "", at); err != nil {
		t.Fatal(err)
	}
	if err := a.Decide(ctx, "req-0002", store.RequestRejected, "bob", "unknown device", at); err != nil {
		t.Fatal(err)
	}
	if err := a.Decide(ctx, "req-0001", store.RequestRejected, "bob", "", at); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("deciding an approved request: %v, want ErrConflict", err)
	}
	if err := a.Decide(ctx, "nope", store.RequestApproved, "bob", "", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deciding an unknown request: %v, want ErrNotFound", err)
	}
	if err := a.Decide(ctx, "req-0003", store.RequestIssued, "bob", "", at); err == nil {
		t.Fatal("Decide accepted status issued")
	}
	if err := a.Issued(ctx, "req-0002", big.NewInt(7)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("issuing a rejected request: %v, want ErrConflict", err)
	}
	serial, _ := new(big.Int).SetString("7f0123456789abcdef0123456789abcdef", 16)
	if err := a.Issued(ctx, "req-0001", serial); err != nil {
		t.Fatal(err)
	}
	if err := a.Issued(ctx, "req-0001", serial); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("issuing twice: %v, want ErrConflict", err)
	}
	r1, err := a.Request(ctx, "req-0001")
	if err != nil || r1.Status != store.RequestIssued || r1.Serial.Cmp(serial) != 0 || r1.DecidedBy != "alice" || !r1.DecidedAt.Equal(at) {
		t.Fatalf("issued request: %+v, %v", r1, err)
	}
	r2, err := a.Request(ctx, "req-0002")
	if err != nil || r2.Status != store.RequestRejected || r2.Reason != "unknown device" || r2.DecidedBy != "bob" {
		t.Fatalf("rejected request: %+v, %v", r2, err)
	}

	// Listing by status, paged, oldest first.
	pending, next, err := a.Requests(ctx, store.RequestPending, store.ListOptions{Limit: 2})
	if err != nil || len(pending) != 2 || pending[0].ID != "req-0003" || pending[1].ID != "req-0004" || next == "" {
		t.Fatalf("pending page 1: %d %v %q", len(pending), err, next)
	}
	pending, next, err = a.Requests(ctx, store.RequestPending, store.ListOptions{After: next, Limit: 2})
	if err != nil || len(pending) != 1 || pending[0].ID != "req-0005" || next != "" {
		t.Fatalf("pending page 2: %d %v %q", len(pending), err, next)
	}
	all, _, err := a.Requests(ctx, "", store.ListOptions{})
	if err != nil || len(all) != 5 {
		t.Fatalf("all requests: %d, %v", len(all), err)
	}
	// Newest first is for certificates: refused, not an empty page.
	if got, _, err := a.Requests(ctx, "", store.ListOptions{Newest: true}); err == nil {
		t.Errorf("requests newest first: %d and no error, want an error", len(got))
	}
}

// testApprovalRace: of many concurrent attempts to decide or issue one
// request, exactly one succeeds.
func testApprovalRace(t *testing.T, s store.Store) {
	a := approvals(t, s)
	ctx := context.Background()
	if _, err := a.AddRequest(ctx, newRequest(9), store.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func(i int) error{
		func(i int) error {
			return a.Decide(ctx, "req-0009", store.RequestApproved, fmt.Sprintf("op-%d", i), "", baseTime)
		},
		func(i int) error { return a.Issued(ctx, "req-0009", big.NewInt(int64(1000+i))) },
	} {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := step(i)
				if err != nil && !errors.Is(err, store.ErrConflict) {
					t.Errorf("unexpected error: %v", err)
				}
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d concurrent transitions succeeded, want exactly 1", wins)
		}
	}
}

func testRevoked(t *testing.T, s store.Store) {
	rv, ok := s.(store.Revocations)
	if !ok {
		t.Fatalf("%T does not implement store.Revocations; every estkit backend must", s)
	}
	ctx := context.Background()
	var recs []*store.Record
	for i := range 4 {
		r := newRecord(100 + i)
		mustPut(t, s, r)
		recs = append(recs, r)
	}
	// Revoke 2 then 0 (order of revocation), leave 1 and 3.
	if err := s.Revoke(ctx, recs[2].Serial, 1, baseTime.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, recs[0].Serial, 4, baseTime.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := rv.Revoked(ctx, baseTime)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Serial.Cmp(recs[2].Serial) != 0 || got[1].Serial.Cmp(recs[0].Serial) != 0 || got[1].RevocationReason != 4 {
		t.Fatalf("Revoked = %d records, want serials of records 2 then 0", len(got))
	}
	// Expired certificates leave the list.
	late := recs[3].NotAfter.Add(time.Second)
	if got, err := rv.Revoked(ctx, late); err != nil || len(got) != 0 {
		t.Fatalf("Revoked after expiry = %d records, %v; want none", len(got), err)
	}
}

func testStatus(t *testing.T, s store.Store) {
	st, ok := s.(store.Statuses)
	if !ok {
		t.Fatalf("%T does not implement store.Statuses; every estkit backend must", s)
	}
	ctx := context.Background()
	r := newRecord(200)
	r.Profile = "devices"
	mustPut(t, s, r)
	got, err := st.Status(ctx, r.Serial, r.DER)
	if err != nil || got != (store.Status{SameDER: true, Profile: "devices"}) {
		t.Fatalf("Status = %+v, %v; want the same DER, not revoked, profile devices", got, err)
	}
	other := append([]byte(nil), r.DER...)
	other[len(other)-1] ^= 1
	if got, err := st.Status(ctx, r.Serial, other); err != nil || got.SameDER {
		t.Fatalf("Status with other DER = %+v, %v; want SameDER false", got, err)
	}
	if got, err := st.Status(ctx, r.Serial, nil); err != nil || got.SameDER {
		t.Fatalf("Status with no DER = %+v, %v; want SameDER false", got, err)
	}
	if err := s.Revoke(ctx, r.Serial, 1, baseTime); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Status(ctx, r.Serial, r.DER); err != nil || !got.Revoked || !got.SameDER {
		t.Fatalf("Status after Revoke = %+v, %v; want revoked", got, err)
	}
	if _, err := st.Status(ctx, big.NewInt(999999), r.DER); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Status of an unknown serial: %v, want ErrNotFound", err)
	}
	for _, bad := range []*big.Int{nil, big.NewInt(0), big.NewInt(-5)} {
		if _, err := st.Status(ctx, bad, r.DER); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Status(%v): %v, want ErrNotFound", bad, err)
		}
	}
}

// testPendingLimits: AddRequest refuses a new request over a cap of its
// label or requester, atomically also when many arrive at once; a request
// already recorded is returned whatever the caps; a decision frees a slot;
// other labels and requesters are not counted.
func testPendingLimits(t *testing.T, s store.Store) {
	a := approvals(t, s)
	ctx := context.Background()
	req := func(id, label, requester string) *store.Request {
		r := newRequest(1)
		r.ID, r.Label, r.Requester = id, label, requester
		return r
	}
	limits := store.PendingLimits{PerLabel: 5, PerRequester: 2}

	// 24 requesters at once, 3 requests each: 5 recorded, the others refused.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		recorded int
	)
	for i := range 24 {
		for j := range 3 {
			wg.Go(func() {
				_, err := a.AddRequest(ctx, req(fmt.Sprintf("burst-%d-%d", i, j), "held", fmt.Sprintf("dev-%d", i)), limits)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					recorded++
				case !errors.Is(err, store.ErrTooManyPending):
					t.Errorf("AddRequest: %v", err)
				}
			})
		}
	}
	wg.Wait()
	pending, _, err := a.Requests(ctx, store.RequestPending, store.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if recorded != 5 || len(pending) != 5 {
		t.Fatalf("%d of 72 concurrent requests recorded, %d pending; want 5 (the label's cap)", recorded, len(pending))
	}
	// A recorded request is found again although the label is full.
	if got, err := a.AddRequest(ctx, req(pending[0].ID, "held", pending[0].Requester), limits); err != nil || got.ID != pending[0].ID {
		t.Fatalf("AddRequest of a recorded request at the cap: %+v, %v", got, err)
	}
	// Another label has its own count.
	if _, err := a.AddRequest(ctx, req("other-label", "elsewhere", "dev-0"), limits); err != nil {
		t.Fatalf("AddRequest on another label: %v", err)
	}
	// A decision frees a slot of the label.
	if err := a.Decide(ctx, pending[0].ID, store.RequestRejected, "alice", "", baseTime); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddRequest(ctx, req("after-decision", "held", "dev-new"), limits); err != nil {
		t.Fatalf("AddRequest after a decision: %v", err)
	}
	if _, err := a.AddRequest(ctx, req("full-again", "held", "dev-newer"), limits); !errors.Is(err, store.ErrTooManyPending) {
		t.Fatalf("AddRequest over the cap: %v, want ErrTooManyPending", err)
	}

	// The requester's cap, on a label without one.
	per := store.PendingLimits{PerRequester: 2}
	for i := range 2 {
		if _, err := a.AddRequest(ctx, req(fmt.Sprintf("mine-%d", i), "roomy", "dev-x"), per); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.AddRequest(ctx, req("mine-2", "roomy", "dev-x"), per); !errors.Is(err, store.ErrTooManyPending) {
		t.Fatalf("a third request of one requester: %v, want ErrTooManyPending", err)
	}
	if _, err := a.AddRequest(ctx, req("yours-0", "roomy", "dev-y"), per); err != nil {
		t.Fatalf("another requester: %v", err)
	}
	// Without caps, nothing is refused.
	if _, err := a.AddRequest(ctx, req("mine-3", "roomy", "dev-x"), store.PendingLimits{}); err != nil {
		t.Fatalf("AddRequest without caps: %v", err)
	}
}
