package est

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// SameName reports whether two DER Names are the same name: the same RDNs
// with the same attribute types and values in the same order, whatever
// string type encodes each value (PrintableString and UTF8String compare
// equal, as RFC 5280 7.1 allows after normalisation). RFC 7030 4.2.2 asks a
// renewal's Subject to be the certificate's; servers and checkers compare
// with this.
func SameName(a, b []byte) bool {
	var ra, rb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &ra); err != nil || len(rest) > 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &rb); err != nil || len(rest) > 0 {
		return false
	}
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if len(ra[i]) != len(rb[i]) {
			return false
		}
		for j := range ra[i] {
			x, y := ra[i][j], rb[i][j]
			if !x.Type.Equal(y.Type) || fmt.Sprint(x.Value) != fmt.Sprint(y.Value) {
				return false
			}
		}
	}
	return true
}
