package ca

import (
	"encoding/asn1"
	"math/big"
	"time"
)

// derWriter appends DER to buf, element by element, without allocating
// for each one: begin writes a tag and reserves one length octet, end
// writes the length once the contents are known and moves them when the
// length needs more octets. Issuing writes about sixty elements per
// certificate; cryptobyte's builder allocated a child builder for each.
type derWriter struct {
	buf   []byte
	open  [16]int // where the length octet of each open element is
	depth int
	bad   bool // nested deeper than open allows, or more ends than begins
}

// DER identifier octets used by issuing.
const (
	tagBoolean         = 0x01
	tagInteger         = 0x02
	tagBitString       = 0x03
	tagOctetString     = 0x04
	tagUTCTime         = 0x17
	tagGeneralizedTime = 0x18
	tagSequence        = 0x30
)

// contextTag is the identifier octet of [n] (n < 31), constructed or not.
func contextTag(n byte, constructed bool) byte {
	if constructed {
		return 0xa0 | n
	}
	return 0x80 | n
}

func (w *derWriter) begin(tag byte) {
	if w.depth >= len(w.open) {
		w.bad = true
		w.depth++ // so that the matching end balances
		return
	}
	w.buf = append(w.buf, tag, 0)
	w.open[w.depth] = len(w.buf) - 1
	w.depth++
}

func (w *derWriter) end() {
	if w.depth == 0 {
		w.bad = true
		return
	}
	w.depth--
	if w.depth >= len(w.open) {
		return // its begin was refused
	}
	at := w.open[w.depth]
	n := len(w.buf) - at - 1
	if n < 0x80 {
		w.buf[at] = byte(n)
		return
	}
	extra := 0
	for x := n; x > 0; x >>= 8 {
		extra++
	}
	for range extra {
		w.buf = append(w.buf, 0)
	}
	copy(w.buf[at+1+extra:], w.buf[at+1:at+1+n])
	w.buf[at] = 0x80 | byte(extra)
	for i := extra; i > 0; i-- {
		w.buf[at+i] = byte(n)
		n >>= 8
	}
}

// element writes a whole element: tag, length, contents.
func (w *derWriter) element(tag byte, contents []byte) {
	w.begin(tag)
	w.buf = append(w.buf, contents...)
	w.end()
}

// raw appends DER that is already encoded.
func (w *derWriter) raw(der []byte) { w.buf = append(w.buf, der...) }

// positiveInteger writes n (> 0) as an INTEGER.
func (w *derWriter) positiveInteger(n *big.Int) {
	w.begin(tagInteger)
	var a [64]byte
	var b []byte
	if n.BitLen() <= 8*len(a) {
		b = n.FillBytes(a[:])
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
	} else {
		b = n.Bytes()
	}
	if len(b) == 0 || b[0]&0x80 != 0 {
		w.buf = append(w.buf, 0)
	}
	w.buf = append(w.buf, b...)
	w.end()
}

// time writes t as encoding/asn1 does: UTCTime from 1950 to 2049,
// GeneralizedTime otherwise, in UTC, to the second. It reports false for a
// year outside 0-9999.
func (w *derWriter) time(t time.Time) bool {
	t = t.UTC()
	switch y := t.Year(); {
	case y < 0 || y > 9999:
		return false
	case y >= 1950 && y < 2050:
		w.begin(tagUTCTime)
		w.buf = t.AppendFormat(w.buf, "060102150405Z")
	default:
		w.begin(tagGeneralizedTime)
		w.buf = t.AppendFormat(w.buf, "20060102150405Z")
	}
	w.end()
	return true
}

// bytes returns what was written, or false if begins and ends did not
// balance.
func (w *derWriter) bytes() ([]byte, bool) {
	return w.buf, !w.bad && w.depth == 0
}

// derOID is the DER of oid, for the object identifiers issuing writes.
func derOID(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err)
	}
	return der
}
