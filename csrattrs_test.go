package est

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestCSRAttrsEmpty(t *testing.T) {
	for _, a := range []CSRAttrs{nil, {}} {
		der, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(der, []byte{0x30, 0x00}) {
			t.Errorf("Marshal of an empty CsrAttrs = %x; want 3000", der)
		}
	}
	// RFC 7030 4.5.2: a server with nothing to ask may answer an empty SEQUENCE.
	got, err := ParseCSRAttrs([]byte{0x30, 0x00})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("ParseCSRAttrs(3000) = %v", got)
	}
	if oids := got.OIDs(); oids == nil || len(oids) != 0 {
		t.Errorf("OIDs() of an empty CsrAttrs = %#v", oids)
	}
}

func TestCSRAttrsRoundTrip(t *testing.T) {
	tests := map[string]CSRAttrs{
		"one OID":    {{OID: OIDChallengePassword}},
		"OIDs":       {{OID: OIDSHA256WithRSA}, {OID: OIDEd25519}, {OID: OIDSubjectAltName}, {OID: asn1.ObjectIdentifier{2, 999, 1 << 30}}},
		"attribute":  {{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP256)}}}},
		"no values":  {{Attribute: &Attribute{Type: OIDExtensionRequest}}},
		"golden":     goldenCSRAttrs(t),
		"RFC 7030":   rfc7030CSRAttrs(t),
		"two values": {{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP384), rawValue(t, OIDCurveP256)}}}},
		"string value": {{Attribute: &Attribute{Type: asn1.ObjectIdentifier{2, 5, 4, 3},
			Values: []asn1.RawValue{rawValue(t, "device"), rawValue(t, 42), rawValue(t, true)}}}},
	}
	for name, a := range tests {
		t.Run(name, func(t *testing.T) {
			der, err := a.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCSRAttrs(der)
			if err != nil {
				t.Fatalf("ParseCSRAttrs(Marshal()): %v", err)
			}
			if len(got) != len(a) {
				t.Fatalf("%d items; want %d", len(got), len(a))
			}
			again, err := got.Marshal()
			if err != nil || !bytes.Equal(again, der) {
				t.Fatalf("Marshal(ParseCSRAttrs(der)) != der: %v", err)
			}
			if name != "two values" && name != "string value" { // DER sorts SET OF values
				sameCSRAttrs(t, got, a)
			}
			for i := range a {
				if (got[i].Attribute == nil) != (a[i].Attribute == nil) {
					t.Errorf("item %d: attribute/OID kind changed", i)
				}
			}
		})
	}
}

// TestCSRAttrsSetOrder checks that attribute values are a DER SET OF: the
// encoding does not depend on the order values were given in.
func TestCSRAttrsSetOrder(t *testing.T) {
	a := CSRAttrs{{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP256), rawValue(t, OIDCurveP384)}}}}
	b := CSRAttrs{{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP384), rawValue(t, OIDCurveP256)}}}}
	da, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	db, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("SET OF values not in DER order:\n%x\n%x", da, db)
	}
}

func TestCSRAttrsMarshalErrors(t *testing.T) {
	for name, a := range map[string]CSRAttrs{
		"neither OID nor attribute": {{}},
		"invalid OID":               {{OID: asn1.ObjectIdentifier{3, 1}}},
		"one-arc OID":               {{OID: asn1.ObjectIdentifier{1}}},
		"invalid attribute type":    {{Attribute: &Attribute{Type: asn1.ObjectIdentifier{7}}}},
	} {
		if der, err := a.Marshal(); err == nil {
			t.Errorf("%s: Marshal = %x; want an error", name, der)
		}
	}
}

func TestCSRAttrsOIDs(t *testing.T) {
	got := rfc7030CSRAttrs(t).OIDs()
	want := []asn1.ObjectIdentifier{OIDChallengePassword, OIDECPublicKey, OIDExtensionRequest, OIDECDSAWithSHA384}
	if len(got) != len(want) {
		t.Fatalf("OIDs() = %v; want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("OIDs()[%d] = %v; want %v", i, got[i], want[i])
		}
	}
}

func TestParseCSRAttrsRejects(t *testing.T) {
	tests := []struct {
		name string
		hex  string
	}{
		{"empty", ""},
		{"garbage", "deadbeef"},
		{"SET instead of SEQUENCE", "3100"},
		{"SET of OIDs", "310306012a"},
		{"bare OID", "06032a0304"},
		{"trailing data", "30000000"},
		{"second SEQUENCE", "30003000"},
		{"truncated", "3005060355"},
		{"length too long", "3081ff"},
		{"non-minimal length", "30810106"},
		{"indefinite length", "308006012a0000"},
		{"INTEGER element", "3003020101"},
		{"NULL element", "30020500"},
		{"context-tagged element", "3003800101"},
		{"application-tagged OID", "3003460100"},
		{"constructed OID", "300426022a03"},
		{"zero-length OID", "30020600"},
		{"non-minimal OID arc", "300406028001"},
		{"truncated OID arc", "30030601 81"},
		{"OID arc too large", "3009060788808080808001"},
		{"attribute without values", "30053003060355"},
		{"attribute type not an OID", "3007300502010131 00"},
		{"attribute values a SEQUENCE", "3009300706035504033000"},
		{"attribute values not a SET", "300a30080603550403020101"},
		{"attribute with an extra element", "300e300c060355040331020500020101"},
		{"attribute with an extra SET", "300d300b060355040331003102 0500"},
		{"attribute values truncated", "300b3009060355040331030500"},
		{"empty attribute", "30023000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCSRAttrs(der)
			if err == nil {
				t.Fatalf("ParseCSRAttrs(%x) = %v; want an error", der, describe(got))
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not of kind ErrBadRequest", err)
			}
			if got != nil {
				t.Errorf("items returned with the error")
			}
		})
	}
}

// TestParseCSRAttrsLenient records what ParseCSRAttrs accepts beyond the
// strict schema: attribute values are kept raw, whatever they hold, and an
// attribute may list no value.
func TestParseCSRAttrsLenient(t *testing.T) {
	for name, h := range map[string]string{
		"NULL value":         "300b3009060355040331020500",
		"empty SET":          "3009300706035504033100",
		"OCTET STRING value": "300d300b0603550403310404020102",
	} {
		der, _ := hex.DecodeString(h)
		got, err := ParseCSRAttrs(der)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != 1 || got[0].Attribute == nil || !got[0].Attribute.Type.Equal(asn1.ObjectIdentifier{2, 5, 4, 3}) {
			t.Errorf("%s: parsed as %v", name, describe(got))
		}
		if back, err := got.Marshal(); err != nil || !bytes.Equal(back, der) {
			t.Errorf("%s: Marshal = %x, %v; want %x", name, back, err, der)
		}
	}
}
