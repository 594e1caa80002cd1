package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
)

func testCert(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pkcs7 builds a ContentInfo by hand, with the parts a test varies.
func pkcs7(t *testing.T, contentType asn1.ObjectIdentifier, certs []byte, content, signers []byte) []byte {
	t.Helper()
	type sdT struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional"`
		SignerInfos      asn1.RawValue
	}
	encap := struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"optional"`
	}{Type: oidData}
	if content != nil {
		encap.Content = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: content}
	}
	encapDER, err := asn1.Marshal(encap)
	if err != nil {
		t.Fatal(err)
	}
	sd := sdT{
		Version:          1,
		DigestAlgorithms: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true},
		EncapContentInfo: asn1.RawValue{FullBytes: encapDER},
		SignerInfos:      asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: signers},
	}
	if certs != nil {
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs}
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{contentType, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertsOnlyStructure(t *testing.T) {
	c := testCert(t)
	good, err := est.EncodeCertsOnly(c, c)
	if err != nil {
		t.Fatal(err)
	}
	if certs, note, err := certsOnlyStructure(good); err != nil || len(certs) != 2 || note != "" {
		t.Fatalf("est.EncodeCertsOnly output: %d certificates, %q, %v", len(certs), note, err)
	}
	if certs, _, err := certsOnlyStructure(pkcs7(t, oidSignedData, c.Raw, nil, nil)); err != nil || len(certs) != 1 {
		t.Fatalf("hand-built certs-only: %v", err)
	}
	octets, _ := asn1.Marshal([]byte("hello"))
	bad := map[string]struct {
		der  []byte
		want string
	}{
		"signers":       {pkcs7(t, oidSignedData, c.Raw, nil, []byte{0x30, 0x00}), "has signers"},
		"content":       {pkcs7(t, oidSignedData, c.Raw, octets, nil), "carries content"},
		"not signed":    {pkcs7(t, oidData, c.Raw, nil, nil), "want signedData"},
		"no certs":      {pkcs7(t, oidSignedData, nil, nil, nil), "no certificate"},
		"trailing data": {append(append([]byte{}, good...), 0x00, 0x00), "trailing"},
		"not PKCS#7":    {[]byte("-----BEGIN CERTIFICATE-----"), "not a certs-only PKCS#7"},
		"bad cert":      {pkcs7(t, oidSignedData, []byte{0x30, 0x03, 0x02, 0x01, 0x05}, nil, nil), "certificate 1"},
	}
	for name, b := range bad {
		if _, _, err := certsOnlyStructure(b.der); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want an error mentioning %q", name, err, b.want)
		}
	}
}

func TestSameName(t *testing.T) {
	printable, _ := asn1.Marshal(pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "dev"}}})
	// The same CN as a UTF8String.
	utf8 := []byte{0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, 'd', 'e', 'v'}
	other, _ := asn1.Marshal(pkix.RDNSequence{{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "evil"}}})
	if !est.SameName(printable, utf8) {
		t.Error("the same name in PrintableString and UTF8String differs")
	}
	if est.SameName(printable, other) || est.SameName(printable, append(append([]byte{}, printable...), 0)) {
		t.Error("different names are the same")
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\nb\r\n\tc\x00d"); got != "a b c?d" {
		t.Errorf("%q", got)
	}
	long := oneLine(strings.Repeat("é", 400))
	if len(long) > maxReason || !strings.HasSuffix(long, "...") || strings.ContainsRune(long, '\uFFFD') {
		t.Errorf("%d bytes: %q", len(long), long)
	}
}
