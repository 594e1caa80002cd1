package est

import (
	"encoding/asn1"
)

// Well-known object identifiers used in CSR attributes.
var (
	OIDChallengePassword = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 7}
	OIDExtensionRequest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 14}
	OIDECPublicKey       = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	OIDRSAEncryption     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	OIDEd25519           = asn1.ObjectIdentifier{1, 3, 101, 112}
	OIDCurveP256         = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	OIDCurveP384         = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	OIDECDSAWithSHA256   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	OIDECDSAWithSHA384   = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	OIDSHA256WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	OIDSubjectAltName    = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// Attribute is one CSR attribute a server asks for, with values
// (RFC 7030 4.5.2, RFC 9908): for example id-ecPublicKey with the curve.
type Attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// CSRAttrs is the body of a /csrattrs response (RFC 7030 4.5.2):
//
//	CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//	AttrOrOID ::= CHOICE (oid OBJECT IDENTIFIER, attribute Attribute }
//
// Items keep their order on the wire; each has exactly one of OID or Attribute.
type CSRAttrs []AttrOrOID

// AttrOrOID is one element of CsrAttrs.
type AttrOrOID struct {
	OID       asn1.ObjectIdentifier
	Attribute *Attribute
}

// Marshal returns the DER encoding of a.
func (a CSRAttrs) Marshal() ([]byte, error) {
	items := make([]asn1.RawValue, 0, len(a))
	for _, it := range a {
		var der []byte
		var err error
		if it.Attribute != nil {
			der, err = asn1.Marshal(*it.Attribute)
		} else {
			der, err = asn1.Marshal(it.OID)
		}
		if err != nil {
			return nil, err
		}
		items = append(items, asn1.RawValue{FullBytes: der})
	}
	return asn1.Marshal(items)
}

// ParseCSRAttrs parses a DER CsrAttrs. Errors are of kind ErrBadRequest.
func ParseCSRAttrs(der []byte) (CSRAttrs, error) {
	var items []asn1.RawValue
	rest, err := asn1.Unmarshal(der, &items)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed CsrAttrs")
	}
	if len(rest) != 0 {
		return nil, Errorf(ErrBadRequest, "trailing data after CsrAttrs")
	}
	out := make(CSRAttrs, 0, len(items))
	for _, it := range items {
		switch {
		case it.Class == asn1.ClassUniversal && it.Tag == asn1.TagOID:
			var oid asn1.ObjectIdentifier
			if _, err := asn1.Unmarshal(it.FullBytes, &oid); err != nil {
				return nil, Wrap(ErrBadRequest, err, "malformed OID in CsrAttrs")
			}
			out = append(out, AttrOrOID{OID: oid})
		case it.Class == asn1.ClassUniversal && it.Tag == asn1.TagSequence:
			var attr Attribute
			if _, err := asn1.Unmarshal(it.FullBytes, &attr); err != nil {
				return nil, Wrap(ErrBadRequest, err, "malformed attribute in CsrAttrs")
			}
			// encoding/asn1 ignores elements after the last field of a
			// SEQUENCE; an Attribute is exactly { type, values }.
			if !twoElements(it.Bytes) {
				return nil, Errorf(ErrBadRequest, "malformed attribute in CsrAttrs: extra elements")
			}
			out = append(out, AttrOrOID{Attribute: &attr})
		default:
			return nil, Errorf(ErrBadRequest, "unexpected element in CsrAttrs")
		}
	}
	return out, nil
}

// twoElements reports whether b, the content of a SEQUENCE, is exactly two
// TLVs.
func twoElements(b []byte) bool {
	for i := 0; i < 2; i++ {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return false
		}
		b = rest
	}
	return len(b) == 0
}

// OIDs returns every OID a mentions: bare OIDs and attribute types.
func (a CSRAttrs) OIDs() []asn1.ObjectIdentifier {
	out := make([]asn1.ObjectIdentifier, 0, len(a))
	for _, it := range a {
		if it.Attribute != nil {
			out = append(out, it.Attribute.Type)
		} else {
			out = append(out, it.OID)
		}
	}
	return out
}
