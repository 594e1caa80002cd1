package est

// Golden wire files, in the style of crypto/tls's handshake tests: the fixed
// inputs live in testdata/ (testdata/README.md), the expected wire bytes too,
// and go test -update rewrites the latter from the former.
//
//	certs-only.p7b, certs-only.b64     EncodeCertsOnly(ca.pem, leaf.pem): DER, and the base64 body of /cacerts
//	csrattrs.der, csrattrs.b64         (goldenCSRAttrs).Marshal(): DER, and the base64 body of /csrattrs
//	serverkeygen.multipart             WriteServerKeyGen of leaf-key.pem and leaf.pem, boundary fixed
//	openssl-certs-only.p7b             openssl crl2pkcs7 -nocrl of ca.pem and leaf.pem (fixture, not rewritten)
//	rfc7030-csrattrs.b64               the CsrAttrs example of RFC 7030 section 4.5.2 (fixture, not rewritten)

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"mime"
	"regexp"
	"strings"
	"testing"
)

// goldenChain is the pair of fixed certificates of the certs-only golden file.
func goldenChain(t *testing.T) []*x509.Certificate {
	return []*x509.Certificate{fixtureCert(t, "ca.pem"), fixtureCert(t, "leaf.pem")}
}

func TestGoldenCertsOnly(t *testing.T) {
	chain := goldenChain(t)
	der, err := EncodeCertsOnly(chain...)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "certs-only.p7b", der)
	checkGolden(t, "certs-only.b64", EncodeBase64(der))
	if *update {
		return
	}

	// The golden bytes, in either form, parse back to the two certificates in order.
	fromDER := readTestdata(t, "certs-only.p7b")
	fromB64, err := DecodeBase64(readTestdata(t, "certs-only.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromDER, fromB64) {
		t.Fatal("certs-only.b64 is not the base64 of certs-only.p7b")
	}
	checkCerts(t, fromDER, chain)

	// The structure is the degenerate SignedData of RFC 5652 5.1.
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(fromDER, &ci); err != nil || len(rest) != 0 {
		t.Fatalf("ContentInfo: %v", err)
	}
	if !ci.ContentType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}) {
		t.Errorf("content type %v is not id-signedData", ci.ContentType)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo struct {
			EContentType asn1.ObjectIdentifier
			EContent     asn1.RawValue `asn1:"optional,explicit,tag:0"`
		}
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		CRLs         asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos  asn1.RawValue `asn1:"set"`
	}
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 {
		t.Fatalf("SignedData: %v", err)
	}
	if sd.Version != 1 {
		t.Errorf("SignedData version %d; want 1", sd.Version)
	}
	if !sd.EncapContentInfo.EContentType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}) || len(sd.EncapContentInfo.EContent.FullBytes) != 0 {
		t.Errorf("encapsulated content is not an empty id-data")
	}
	if len(sd.SignerInfos.Bytes) != 0 {
		t.Errorf("certs-only PKCS#7 has signers")
	}
	if want := append(bytes.Clone(chain[0].Raw), chain[1].Raw...); !bytes.Equal(sd.Certificates.Bytes, want) {
		t.Errorf("certificates field is not the two certificates in order")
	}
}

// checkCerts parses der as certs-only and checks it holds exactly want, in order.
func checkCerts(t *testing.T, der []byte, want []*x509.Certificate) {
	t.Helper()
	got, err := ParseCertsOnly(der)
	if err != nil {
		t.Fatalf("ParseCertsOnly: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("ParseCertsOnly returned %d certificates; want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("certificate %d is %q; want %q", i, got[i].Subject, want[i].Subject)
		}
	}
}

// TestOpenSSLCertsOnly checks that a PKCS#7 made by openssl crl2pkcs7 -nocrl
// (testdata/openssl-certs-only.p7b, made once; see testdata/README.md) parses.
func TestOpenSSLCertsOnly(t *testing.T) {
	der := readTestdata(t, "openssl-certs-only.p7b")
	checkCerts(t, der, goldenChain(t))
	// And its base64 body, as openssl base64 would wrap it, decodes to it.
	b64 := []byte(wrapBase64(der, 64))
	if back, err := DecodeBase64(b64); err != nil || !bytes.Equal(back, der) {
		t.Fatalf("DecodeBase64 of openssl-style base64: %v", err)
	}
	if ours := readTestdata(t, "certs-only.p7b"); bytes.Equal(ours, der) {
		t.Log("EncodeCertsOnly and openssl crl2pkcs7 agree byte for byte")
	} else {
		t.Log("EncodeCertsOnly and openssl crl2pkcs7 differ in encoding (both parse)")
	}
}

func wrapBase64(der []byte, n int) string {
	s := strings.TrimSuffix(string(EncodeBase64(der)), "\n")
	s = strings.ReplaceAll(s, "\n", "")
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s + "\n")
	return b.String()
}

// rawValue returns v marshalled and parsed back, as ParseCSRAttrs returns values.
func rawValue(t testing.TB, v any) asn1.RawValue {
	t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var rv asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &rv); err != nil || len(rest) != 0 {
		t.Fatal(err)
	}
	return rv
}

// OIDMACAddress is macAddress (RFC 2307), which RFC 7030's example asks for.
var oidMACAddress = asn1.ObjectIdentifier{1, 3, 6, 1, 1, 1, 1, 22}

// goldenCSRAttrs is the CsrAttrs of testdata/csrattrs.der: bare OIDs and
// attributes with values, in the spirit of RFC 7030 4.5.2 and RFC 9908.
func goldenCSRAttrs(t testing.TB) CSRAttrs {
	san, err := asn1.Marshal([]pkix.Extension{{Id: OIDSubjectAltName, Value: []byte{0x30, 0x00}}})
	if err != nil {
		t.Fatal(err)
	}
	var exts asn1.RawValue
	if _, err := asn1.Unmarshal(san, &exts); err != nil {
		t.Fatal(err)
	}
	return CSRAttrs{
		{OID: OIDChallengePassword},
		{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP384)}}},
		{Attribute: &Attribute{Type: OIDRSAEncryption, Values: []asn1.RawValue{rawValue(t, 3072)}}},
		{Attribute: &Attribute{Type: OIDExtensionRequest, Values: []asn1.RawValue{exts}}},
		{OID: OIDECDSAWithSHA384},
		{OID: OIDSubjectAltName},
	}
}

// rfc7030CSRAttrs is what the example of RFC 7030 section 4.5.2 holds.
func rfc7030CSRAttrs(t testing.TB) CSRAttrs {
	return CSRAttrs{
		{OID: OIDChallengePassword},
		{Attribute: &Attribute{Type: OIDECPublicKey, Values: []asn1.RawValue{rawValue(t, OIDCurveP384)}}},
		{Attribute: &Attribute{Type: OIDExtensionRequest, Values: []asn1.RawValue{rawValue(t, oidMACAddress)}}},
		{OID: OIDECDSAWithSHA384},
	}
}

// describe renders a as comparable, readable lines.
func describe(a CSRAttrs) []string {
	out := make([]string, 0, len(a))
	for _, it := range a {
		switch {
		case it.Attribute != nil && it.OID != nil:
			out = append(out, "BOTH "+it.OID.String())
		case it.Attribute != nil:
			vals := make([]string, len(it.Attribute.Values))
			for i, v := range it.Attribute.Values {
				vals[i] = fmt.Sprintf("%x", v.FullBytes)
			}
			out = append(out, fmt.Sprintf("attr %v {%s}", it.Attribute.Type, strings.Join(vals, ", ")))
		default:
			out = append(out, "oid "+it.OID.String())
		}
	}
	return out
}

func sameCSRAttrs(t *testing.T, got, want CSRAttrs) {
	t.Helper()
	g, w := describe(got), describe(want)
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("CsrAttrs differ:\ngot:\n  %s\nwant:\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
}

func TestGoldenCSRAttrs(t *testing.T) {
	want := goldenCSRAttrs(t)
	der, err := want.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "csrattrs.der", der)
	checkGolden(t, "csrattrs.b64", EncodeBase64(der))
	if *update {
		return
	}
	fromB64, err := DecodeBase64(readTestdata(t, "csrattrs.b64"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fromB64, readTestdata(t, "csrattrs.der")) {
		t.Fatal("csrattrs.b64 is not the base64 of csrattrs.der")
	}
	got, err := ParseCSRAttrs(readTestdata(t, "csrattrs.der"))
	if err != nil {
		t.Fatal(err)
	}
	sameCSRAttrs(t, got, want)
	wantOIDs := []string{"1.2.840.113549.1.9.7", "1.2.840.10045.2.1", "1.2.840.113549.1.1.1", "1.2.840.113549.1.9.14", "1.2.840.10045.4.3.3", "2.5.29.17"}
	if g := fmt.Sprint(got.OIDs()); g != fmt.Sprint(wantOIDs) {
		t.Errorf("OIDs() = %v; want %v", g, wantOIDs)
	}
	// The ecPublicKey value is the secp384r1 OID, the rsaEncryption value the
	// INTEGER 3072, the extensionRequest value Extensions with a SAN template.
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(got[1].Attribute.Values[0].FullBytes, &curve); err != nil || !curve.Equal(OIDCurveP384) {
		t.Errorf("ecPublicKey value = %v, %v; want secp384r1", curve, err)
	}
	var bits int
	if _, err := asn1.Unmarshal(got[2].Attribute.Values[0].FullBytes, &bits); err != nil || bits != 3072 {
		t.Errorf("rsaEncryption value = %d, %v; want 3072", bits, err)
	}
	var exts []pkix.Extension
	if _, err := asn1.Unmarshal(got[3].Attribute.Values[0].FullBytes, &exts); err != nil || len(exts) != 1 || !exts[0].Id.Equal(OIDSubjectAltName) {
		t.Errorf("extensionRequest value = %v, %v; want one SAN extension", exts, err)
	}
}

// TestRFC7030CSRAttrs checks the example of RFC 7030 section 4.5.2, as printed
// there (base64 without a trailing line break), decodes, parses and
// re-encodes to the same bytes.
func TestRFC7030CSRAttrs(t *testing.T) {
	const text = "MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw=="
	if got := strings.TrimSpace(string(readTestdata(t, "rfc7030-csrattrs.b64"))); got != text {
		t.Fatalf("testdata/rfc7030-csrattrs.b64 is not the RFC's text")
	}
	der, err := DecodeBase64([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(der) != 67 || der[0] != 0x30 || der[1] != 65 {
		t.Fatalf("decoded %d bytes starting %x; want a 67-byte SEQUENCE", len(der), der[:2])
	}
	got, err := ParseCSRAttrs(der)
	if err != nil {
		t.Fatal(err)
	}
	// challengePassword, id-ecPublicKey{secp384r1},
	// extensionRequest{macAddress}, ecdsa-with-SHA384.
	sameCSRAttrs(t, got, rfc7030CSRAttrs(t))
	// Note: the RFC's extensionRequest value is a bare OID (macAddress), not
	// the Extensions SEQUENCE of PKCS#9; it parses because values are kept raw.
	if got[2].Attribute.Values[0].Tag != asn1.TagOID {
		t.Errorf("the RFC's extensionRequest value is not an OID")
	}
	// Re-encoding the RFC's value gives the RFC's bytes.
	back, err := rfc7030CSRAttrs(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, der) {
		t.Errorf("Marshal of the RFC's CsrAttrs = %x; want %x", back, der)
	}
	if enc := strings.ReplaceAll(string(EncodeBase64(back)), "\n", ""); enc != text {
		t.Errorf("EncodeBase64 = %s; want the RFC's text", enc)
	}
}

// The golden multipart body is WriteServerKeyGen's output with its random
// boundary replaced by this one, of the same length.
const (
	goldenBoundary    = "est-goldengoldengoldengolden"
	goldenContentType = "multipart/mixed; boundary=" + goldenBoundary
)

var boundaryRE = regexp.MustCompile(`^est-[0-9a-f]{24}$`)

// goldenServerKeyGen is the content of testdata/serverkeygen.multipart.
func goldenServerKeyGen(t *testing.T) *ServerKeyGenResponse {
	key, _ := fixtureKey(t, "leaf-key.pem")
	certs, err := EncodeCertsOnly(fixtureCert(t, "leaf.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return &ServerKeyGenResponse{Key: key, Certs: certs}
}

// fixBoundary replaces the random boundary of a WriteServerKeyGen output.
func fixBoundary(t *testing.T, ctype string, body []byte) []byte {
	t.Helper()
	_, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		t.Fatal(err)
	}
	b := params["boundary"]
	if !boundaryRE.MatchString(b) || len(b) != len(goldenBoundary) {
		t.Fatalf("boundary %q is not est- and 24 hex digits", b)
	}
	return bytes.ReplaceAll(body, []byte(b), []byte(goldenBoundary))
}

func TestGoldenServerKeyGen(t *testing.T) {
	want := goldenServerKeyGen(t)
	ctype, body, err := WriteServerKeyGen(want)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "serverkeygen.multipart", fixBoundary(t, ctype, body))
	if *update {
		return
	}

	golden := readTestdata(t, "serverkeygen.multipart")
	got, err := ParseServerKeyGen(goldenContentType, golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Certs, want.Certs) || got.KeyEncrypted {
		t.Fatalf("golden body parses to a different content")
	}
	if _, err := x509.ParsePKCS8PrivateKey(got.Key); err != nil {
		t.Errorf("key part: %v", err)
	}
	checkCerts(t, got.Certs, []*x509.Certificate{fixtureCert(t, "leaf.pem")})

	// The key part comes first, each part with its type and base64 encoding.
	s := string(golden)
	k := strings.Index(s, "Content-Type: application/pkcs8\r\n")
	c := strings.Index(s, "Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n")
	if k < 0 || c < 0 || k > c {
		t.Errorf("golden body lacks the key part before the certificate part")
	}
	if n := strings.Count(s, "Content-Transfer-Encoding: base64\r\n"); n != 2 {
		t.Errorf("%d parts say Content-Transfer-Encoding: base64; want 2", n)
	}
	if !strings.HasSuffix(s, "\r\n--"+goldenBoundary+"--\r\n") {
		t.Errorf("golden body does not end with the closing delimiter")
	}
}
