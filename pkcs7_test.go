package est

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func TestEncodeCertsOnly(t *testing.T) {
	ca, leaf := fixtureCert(t, "ca.pem"), fixtureCert(t, "leaf.pem")
	for _, chain := range [][]*x509.Certificate{
		{leaf},
		{ca},
		{leaf, ca},
		{ca, leaf},
		{leaf, ca, leaf}, // duplicates are kept: the encoder does not judge
	} {
		der, err := EncodeCertsOnly(chain...)
		if err != nil {
			t.Fatal(err)
		}
		checkCerts(t, der, chain)
		// The body is deterministic: the same input gives the same bytes.
		again, err := EncodeCertsOnly(chain...)
		if err != nil || !bytes.Equal(der, again) {
			t.Errorf("EncodeCertsOnly is not deterministic")
		}
	}
	if _, err := EncodeCertsOnly(); err == nil {
		t.Error("EncodeCertsOnly with no certificate succeeded")
	}
}

// indefinite re-encodes the ContentInfo and SignedData SEQUENCEs and the [0]
// wrapper of a DER PKCS#7 with BER indefinite lengths, as some CAs send.
func indefinite(t testing.TB, der []byte) []byte {
	t.Helper()
	var ci struct {
		Type    asn1.RawValue
		Content asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatal(err)
	}
	var sd asn1.RawValue
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatal(err)
	}
	var b []byte
	b = append(b, 0x30, 0x80)
	b = append(b, ci.Type.FullBytes...)
	b = append(b, 0xa0, 0x80, 0x30, 0x80)
	b = append(b, sd.Bytes...)
	return append(b, 0, 0, 0, 0, 0, 0)
}

func TestParseCertsOnlyBER(t *testing.T) {
	for _, name := range []string{"certs-only.p7b", "openssl-certs-only.p7b"} {
		ber := indefinite(t, readTestdata(t, name))
		if ber[1] != 0x80 {
			t.Fatal("not indefinite")
		}
		checkCerts(t, ber, goldenChain(t))
	}
}

func TestParseCertsOnlyRejects(t *testing.T) {
	good := readTestdata(t, "certs-only.p7b")
	empty, err := pkcs7.DegenerateCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	dataCI, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, asn1.RawValue{Tag: asn1.TagOctetString, Bytes: []byte("hi")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		der  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"garbage", []byte("not a PKCS#7 at all")},
		{"empty sequence", []byte{0x30, 0x00}},
		{"no certificates", empty},
		{"id-data content", dataCI},
		{"truncated", good[:len(good)/2]},
		{"trailing data", append(bytes.Clone(good), 0x00)},
		{"base64 body not decoded", readTestdata(t, "certs-only.b64")},
		{"PEM", []byte("-----BEGIN PKCS7-----\n" + string(readTestdata(t, "certs-only.b64")) + "-----END PKCS7-----\n")},
		{"a certificate", fixtureCert(t, "leaf.pem").Raw},
		{"a CSR", pemBlock(t, "csr-rsa.pem", "CERTIFICATE REQUEST")},
		{"CsrAttrs", readTestdata(t, "csrattrs.der")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseCertsOnly(tt.der)
			if err == nil {
				t.Fatalf("ParseCertsOnly accepted it (%d certificates)", len(certs))
			}
			if certs != nil {
				t.Error("certificates returned with the error")
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not of kind ErrBadRequest", err)
			}
			var e *Error
			if errors.As(err, &e) && e.Err != nil && strings.Contains(Detail(err), e.Err.Error()) {
				t.Errorf("Detail %q leaks the cause", Detail(err))
			}
		})
	}
}

func TestBERLen(t *testing.T) {
	deep := strings.Repeat("3080", maxBERDepth+1) + strings.Repeat("0000", maxBERDepth+1)
	okDeep := strings.Repeat("3080", maxBERDepth) + strings.Repeat("0000", maxBERDepth)
	// definite nests n SEQUENCEs around a NULL: n+1 levels.
	definite := func(n int) string {
		b := []byte{0x05, 0x00}
		for i := 0; i < n; i++ {
			b = append([]byte{0x30, byte(len(b))}, b...)
		}
		return hex.EncodeToString(b)
	}
	okDefinite, deepDefinite := definite(maxBERDepth-1), definite(maxBERDepth)
	tests := []struct {
		hex string
		n   int // -1: error
	}{
		{"0500", 2},
		{"050000", 2},
		{"3003020101ff", 5},
		{"04810101ff", 4}, // BER allows a long form for a short length
		{"0482000101", 5},
		{"30050500020100", 7},
		{"3007a0050303000102", 9},
		{okDefinite, len(okDefinite) / 2},
		{"3080020101000000", 7},
		{"3080308000000000", 8},
		{"3080a0800201010000000000", 11},
		{"1f8101020102", 6}, // high tag number form
		{okDeep, len(okDeep) / 2},
		{"", -1},
		{"05", -1},
		{"0501", -1},
		{"3081", -1},
		{"308201", -1},
		{"30850000000001", -1},
		{"3084ffffffff", -1},
		{"0580", -1}, // indefinite primitive
		{"3080", -1},
		{"308000", -1},
		{"3080020101", -1},
		{"30800202010000", -1},
		{"1f", -1},
		{"1f81", -1},
		{"1f8181818181810100", -1},
		{deep, -1},
		{deepDefinite, -1},
		{"3001ff", -1},         // constructed content that is not elements
		{"300302020000", -1},   // an element overrunning its parent
		{"3004050005", -1},     // a truncated element inside
		{"a0803001ff0000", -1}, // bad content inside indefinite
	}
	for _, tt := range tests {
		b, err := hex.DecodeString(tt.hex)
		if err != nil {
			t.Fatal(err)
		}
		n, err := berLen(b, maxBERDepth)
		if tt.n < 0 {
			if err == nil {
				t.Errorf("berLen(%s) = %d; want an error", tt.hex, n)
			}
			continue
		}
		if err != nil || n != tt.n {
			t.Errorf("berLen(%s) = %d, %v; want %d", tt.hex, n, err, tt.n)
		}
	}
}

func TestParseCertsOnlyTrailingBER(t *testing.T) {
	ber := indefinite(t, readTestdata(t, "certs-only.p7b"))
	for _, tail := range [][]byte{{0}, {0, 0}, {0x30, 0x00}, []byte("\n")} {
		if _, err := ParseCertsOnly(append(bytes.Clone(ber), tail...)); !errors.Is(err, ErrBadRequest) {
			t.Errorf("BER PKCS#7 followed by %x: %v; want ErrBadRequest", tail, err)
		}
	}
}

// TestParseCertsOnlyDeep checks that deeply nested input is refused up front:
// the BER-to-DER conversion under ParseCertsOnly takes time quadratic in the
// nesting depth, so 60 kB of nested SEQUENCEs used to take a third of a second
// and a megabyte over a minute.
func TestParseCertsOnlyDeep(t *testing.T) {
	// Built back to front, then reversed, to stay linear.
	r := []byte{0x00, 0x05}
	for len(r) < 1<<20 {
		n := len(r)
		switch {
		case n < 0x80:
			r = append(r, byte(n), 0x30)
		case n < 0x100:
			r = append(r, byte(n), 0x81, 0x30)
		case n < 0x10000:
			r = append(r, byte(n), byte(n>>8), 0x82, 0x30)
		default:
			r = append(r, byte(n), byte(n>>8), byte(n>>16), 0x83, 0x30)
		}
	}
	b := make([]byte, len(r))
	for i, c := range r {
		b[len(r)-1-i] = c
	}
	if n, err := berLen(b, 1<<30); err != nil || n != len(b) {
		t.Fatalf("test input is not %d bytes of BER: %d, %v", len(b), n, err)
	}
	start := time.Now()
	_, err := ParseCertsOnly(b)
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ParseCertsOnly of deep nesting: %v; want ErrBadRequest", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("ParseCertsOnly of %d bytes of nesting took %v", len(b), d)
	}
}
