package ca

import (
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

func TestNewSerial(t *testing.T) {
	seen := map[string]bool{}
	for _, now := range []time.Time{
		time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC),
		time.Unix(0, 0), // clamped to 1 ms: still positive
		time.Date(6400, 12, 31, 23, 59, 59, 0, time.UTC), // 47 bits of milliseconds last until 6429
	} {
		for range 1000 {
			s, err := newSerial(now)
			if err != nil {
				t.Fatal(err)
			}
			der, err := asn1.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			// RFC 5280 4.1.2.2: positive, at most 20 content octets.
			if s.Sign() <= 0 || len(der)-2 > 20 {
				t.Fatalf("serial %x at %v: %d octets, sign %d", s, now, len(der)-2, s.Sign())
			}
			ms := new(big.Int).Rsh(s, 8*serialRandomBytes).Int64()
			if want := max(now.UnixMilli(), 1); ms != want {
				t.Fatalf("serial %x: time prefix %d, want %d", s, ms, want)
			}
			if seen[s.Text(16)] {
				t.Fatalf("serial %x repeated", s)
			}
			seen[s.Text(16)] = true
		}
	}
	// The random part varies in every one of its bits.
	var or, and big.Int
	and.Sub(new(big.Int).Lsh(big.NewInt(1), 8*serialRandomBytes), big.NewInt(1))
	mask := new(big.Int).Set(&and)
	for range 200 {
		s, err := NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		r := new(big.Int).And(s, mask)
		or.Or(&or, r)
		and.And(&and, r)
	}
	if or.Cmp(mask) != 0 || and.Sign() != 0 {
		t.Errorf("random part: or %x and %x; want every bit both set and clear", &or, &and)
	}
}

// Serials issued later sort after earlier ones, numerically and as the
// stores' lowercase hexadecimal text, which is what keeps the serial index
// growing at its end.
func TestNewSerialOrder(t *testing.T) {
	t0 := time.Date(2026, 11, 24, 19, 0, 0, 0, time.UTC)
	prev, _ := newSerial(t0)
	for i := 1; i < 2000; i++ {
		s, err := newSerial(t0.Add(time.Duration(i) * time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if s.Cmp(prev) <= 0 || s.Text(16) <= prev.Text(16) {
			t.Fatalf("serial %x after %x: not ordered", s, prev)
		}
		prev = s
	}
}
