package ca

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"
)

// TestDERWriterLengths: every length form, nested, as encoding/asn1 writes it.
func TestDERWriterLengths(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20} {
		content := bytes.Repeat([]byte{0xa5}, n)
		var w derWriter
		w.begin(tagSequence)
		w.element(tagOctetString, content)
		w.begin(tagSequence)
		w.end()
		w.end()
		got, ok := w.bytes()
		want, err := asn1.Marshal(struct {
			B []byte
			E struct{}
		}{B: content})
		if err != nil {
			t.Fatal(err)
		}
		if !ok || !bytes.Equal(got, want) {
			t.Fatalf("%d octets: got %x…, want %x…", n, got[:min(len(got), 12)], want[:min(len(want), 12)])
		}
	}
}

func TestDERWriterIntegersAndTimes(t *testing.T) {
	for _, n := range []*big.Int{big.NewInt(1), big.NewInt(127), big.NewInt(128), big.NewInt(255), big.NewInt(256),
		new(big.Int).Lsh(big.NewInt(1), 159), new(big.Int).Lsh(big.NewInt(1), 600)} {
		var w derWriter
		w.positiveInteger(n)
		want, _ := asn1.Marshal(n)
		if got, ok := w.bytes(); !ok || !bytes.Equal(got, want) {
			t.Errorf("integer %x: got %x, want %x", n, got, want)
		}
	}
	for _, tm := range []time.Time{
		time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 11, 24, 12, 0, 0, 0, time.FixedZone("x", 3600)),
	} {
		var w derWriter
		if !w.time(tm) {
			t.Fatalf("time %v refused", tm)
		}
		want, _ := asn1.Marshal(tm.UTC().Truncate(time.Second)) // x509 writes UTC
		if got, _ := w.bytes(); !bytes.Equal(got, want) {
			t.Errorf("time %v: got %s, want %s", tm, got, want)
		}
	}
	var w derWriter
	if w.time(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("year 10000 written")
	}
}

// TestDERWriterUnbalanced: more ends than begins, or nesting deeper than it
// keeps, is reported rather than written wrong.
func TestDERWriterUnbalanced(t *testing.T) {
	var w derWriter
	w.end()
	if _, ok := w.bytes(); ok {
		t.Error("an end without a begin went unnoticed")
	}
	for _, over := range []int{1, 2, 5} {
		w = derWriter{}
		for range len(w.open) + over {
			w.begin(tagSequence)
		}
		for range len(w.open) + over {
			w.end()
		}
		if _, ok := w.bytes(); ok {
			t.Errorf("nesting %d too deep went unnoticed", over)
		}
	}
	w = derWriter{}
	w.begin(tagSequence)
	if _, ok := w.bytes(); ok {
		t.Error("an element left open went unnoticed")
	}
}

// TestMarshalTBSNoExtensions: a certificate without extensions has no [3]
// at all, as x509 writes it.
func TestMarshalTBSNoExtensions(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	caKey, _ := GenerateKey(P256)
	root, err := NewRoot(caKey, pkix.Name{CommonName: "No Extensions Root"}, now.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), RawSubject: root.RawSubject, NotBefore: now, NotAfter: now.Add(time.Hour)}
	sameAsX509(t, tmpl, root, caKey.Public(), caKey)
}
