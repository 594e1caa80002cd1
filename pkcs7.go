package est

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// EncodeCertsOnly returns the DER of a certs-only (degenerate) PKCS#7
// SignedData holding certs in order (RFC 7030 4.1.3 and 4.2.3, RFC 5652 5.1):
// no signers, no content.
func EncodeCertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, fmt.Errorf("est: certs-only PKCS#7 needs at least one certificate")
	}
	// Written directly: every enrollment answers with one, and the
	// reflection-based encoders cost more than the rest of the response.
	n := 64
	for _, c := range certs {
		n += len(c.Raw)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, n))
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // ContentInfo
		b.AddASN1ObjectIdentifier(oidCMSSignedData)
		b.AddASN1(asn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) { // SignedData
				b.AddASN1Int64(1)                                 // version
				b.AddASN1(asn1.SET, func(*cryptobyte.Builder) {}) // digestAlgorithms
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidCMSData) // encapContentInfo, no content
				})
				b.AddASN1(asn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					for _, c := range certs {
						b.AddBytes(c.Raw)
					}
				})
				// An empty crls, as estd has always sent (the golden files).
				b.AddASN1(asn1.Tag(1).ContextSpecific().Constructed(), func(*cryptobyte.Builder) {})
				b.AddASN1(asn1.SET, func(*cryptobyte.Builder) {}) // signerInfos
			})
		})
	})
	return b.Bytes()
}

// ParseCertsOnly parses a certs-only PKCS#7 and returns its certificates in the
// order they appear. It tolerates BER and extra certificates; it refuses a
// structure that holds none. Errors are of kind ErrBadRequest.
func ParseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	// pkcs7.Parse converts BER to DER first; that conversion drops whatever
	// follows the first element and takes time quadratic in the nesting
	// depth, so trailing data and depth are checked here.
	n, err := berLen(der, maxBERDepth)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed PKCS#7")
	}
	if n != len(der) {
		return nil, Errorf(ErrBadRequest, "trailing data after PKCS#7")
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed PKCS#7")
	}
	if len(p7.Certificates) == 0 {
		return nil, Errorf(ErrBadRequest, "PKCS#7 holds no certificate")
	}
	return p7.Certificates, nil
}

// maxBERDepth bounds the nesting of constructed elements ParseCertsOnly
// accepts. Real certificates nest about a dozen deep; the BER-to-DER
// conversion of pkcs7.Parse costs time quadratic in the depth.
const maxBERDepth = 64

var errBER = errors.New("est: malformed BER")

// berLen returns the length of the BER element at the start of b. It walks
// constructed elements (definite or indefinite length, at most depth levels)
// and checks that their content is exactly a sequence of elements.
func berLen(b []byte, depth int) (int, error) {
	if depth == 0 || len(b) < 2 {
		return 0, errBER
	}
	constructed := b[0]&0x20 != 0
	i := 1
	if b[0]&0x1f == 0x1f { // high tag number form
		for {
			if i >= len(b) || i > 5 {
				return 0, errBER
			}
			c := b[i]
			i++
			if c&0x80 == 0 {
				break
			}
		}
	}
	if i >= len(b) {
		return 0, errBER
	}
	l := b[i]
	i++
	var n int
	switch {
	case l < 0x80:
		n = int(l)
	case l == 0x80: // indefinite: elements up to an end-of-contents 00 00
		if !constructed {
			return 0, errBER
		}
		for {
			if len(b)-i < 2 {
				return 0, errBER
			}
			if b[i] == 0 && b[i+1] == 0 {
				return i + 2, nil
			}
			m, err := berLen(b[i:], depth-1)
			if err != nil {
				return 0, err
			}
			i += m
		}
	default:
		k := int(l & 0x7f)
		if k > 4 || len(b)-i < k || (k == 4 && b[i] >= 0x80) {
			return 0, errBER
		}
		for j := 0; j < k; j++ {
			n = n<<8 | int(b[i+j])
		}
		i += k
	}
	if n > len(b)-i {
		return 0, errBER
	}
	if constructed {
		for c := b[i : i+n]; len(c) > 0; {
			m, err := berLen(c, depth-1)
			if err != nil {
				return 0, err
			}
			c = c[m:]
		}
	}
	return i + n, nil
}
