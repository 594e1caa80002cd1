package est

// Fuzz targets for every parser of the package, seeded from the golden files
// and fixtures of testdata/. Crashers found by go test -fuzz are kept under
// testdata/fuzz/<Target>/ and run as regression seeds by plain go test.
//
//	go test -run '^$' -fuzz '^FuzzParseCertsOnly$' -fuzztime 30s .
//
// Besides not panicking, each target checks the error kind and, when the
// input parses, that the matching encoder round-trips it.

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkBadRequest fails unless err is an *Error of kind ErrBadRequest.
func checkBadRequest(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrBadRequest {
		t.Fatalf("error %v (%T) is not an *Error of kind ErrBadRequest", err, err)
	}
	if !utf8.ValidString(Detail(err)) {
		t.Fatalf("Detail %q is not valid UTF-8", Detail(err))
	}
}

func FuzzParsePath(f *testing.F) {
	for _, op := range Operations {
		f.Add(Path("", op))
		f.Add(Path("ca1", op))
	}
	for _, s := range []string{"", "/", WellKnownPrefix, WellKnownPrefix + "cacerts/", WellKnownPrefix + "a/b/c",
		WellKnownPrefix + "cacerts/cacerts", WellKnownPrefix + "\xff/cacerts", WellKnownPrefix + strings.Repeat("é", 30)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		label, op, err := ParsePath(path)
		if err != nil {
			if KindOf(err) != ErrNotFound {
				t.Fatalf("error %v is not of kind ErrNotFound", err)
			}
			// The detail quotes at most 40 bytes of the path; quoting may
			// expand each byte to an escape of up to 4 characters.
			if d := Detail(err); !utf8.ValidString(d) || len(d) > 200 {
				t.Fatalf("Detail %q is not short valid UTF-8", d)
			}
			if label != "" || op != "" {
				t.Fatalf("ParsePath returned %q, %q with its error", label, op)
			}
			return
		}
		if !op.Valid() {
			t.Fatalf("ParsePath(%q) returned the invalid operation %q", path, op)
		}
		if label != "" && !ValidLabel(label) {
			t.Fatalf("ParsePath(%q) returned the invalid label %q", path, label)
		}
		if p := Path(label, op); p != path {
			t.Fatalf("Path(ParsePath(%q)) = %q", path, p)
		}
	})
}

func FuzzDecodeBase64(f *testing.F) {
	for _, name := range []string{"certs-only.b64", "csrattrs.b64", "rfc7030-csrattrs.b64"} {
		f.Add(readTestdata(f, name))
	}
	for _, s := range []string{"", "QQ", "QQ==", "QUJD\r\nREVG", " Q U J D ", "====", "QU=D", "-_", "QR=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		der, err := DecodeBase64(body)
		if !bytes.Equal(in, body) {
			t.Fatal("DecodeBase64 modified its input")
		}
		if err != nil {
			checkBadRequest(t, err)
			if der != nil {
				t.Fatal("bytes returned with the error")
			}
			return
		}
		if len(der) == 0 {
			t.Fatal("DecodeBase64 succeeded with no bytes")
		}
		enc := EncodeBase64(der)
		back, err := DecodeBase64(enc)
		if err != nil || !bytes.Equal(back, der) {
			t.Fatalf("DecodeBase64(EncodeBase64(x)) != x: %v", err)
		}
		// The input had only the characters of the encoding and white space.
		for _, c := range body {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\r\n", rune(c)) {
				t.Fatalf("accepted the character %q", c)
			}
		}
	})
}

func FuzzParseCertsOnly(f *testing.F) {
	for _, name := range []string{"certs-only.p7b", "openssl-certs-only.p7b"} {
		der := readTestdata(f, name)
		f.Add(der)
		f.Add(indefinite(f, der))
	}
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Add(pemBlock(f, "leaf.pem", "CERTIFICATE"))
	f.Fuzz(func(t *testing.T, der []byte) {
		certs, err := ParseCertsOnly(der)
		if err != nil {
			checkBadRequest(t, err)
			if certs != nil {
				t.Fatal("certificates returned with the error")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("ParseCertsOnly succeeded with no certificate")
		}
		again, err := EncodeCertsOnly(certs...)
		if err != nil {
			t.Fatalf("EncodeCertsOnly of parsed certificates: %v", err)
		}
		back, err := ParseCertsOnly(again)
		if err != nil {
			t.Fatalf("ParseCertsOnly(EncodeCertsOnly(x)): %v", err)
		}
		if len(back) != len(certs) {
			t.Fatalf("round trip: %d certificates; want %d", len(back), len(certs))
		}
		for i := range certs {
			if !bytes.Equal(back[i].Raw, certs[i].Raw) {
				t.Fatalf("round trip changed certificate %d", i)
			}
		}
	})
}

func FuzzParseCSRAttrs(f *testing.F) {
	f.Add(readTestdata(f, "csrattrs.der"))
	rfc, err := DecodeBase64(readTestdata(f, "rfc7030-csrattrs.b64"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rfc)
	for _, b := range [][]byte{{0x30, 0x00}, {0x30, 0x02, 0x06, 0x00}, {0x30, 0x03, 0x06, 0x01, 0x78}} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := ParseCSRAttrs(der)
		if err != nil {
			checkBadRequest(t, err)
			if a != nil {
				t.Fatal("items returned with the error")
			}
			return
		}
		for i, it := range a {
			if (it.Attribute == nil) == (it.OID == nil) {
				t.Fatalf("item %d has both or neither of OID and Attribute", i)
			}
		}
		if len(a.OIDs()) != len(a) {
			t.Fatal("OIDs() does not list one OID per item")
		}
		// Marshal accepts what ParseCSRAttrs returns, and the result is a
		// fixed point: it parses back to items that marshal to the same bytes.
		d1, err := a.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed CsrAttrs: %v", err)
		}
		b, err := ParseCSRAttrs(d1)
		if err != nil {
			t.Fatalf("ParseCSRAttrs(Marshal(x)): %v", err)
		}
		if len(b) != len(a) {
			t.Fatalf("round trip: %d items; want %d", len(b), len(a))
		}
		for i := range a {
			if !a.OIDs()[i].Equal(b.OIDs()[i]) || (a[i].Attribute == nil) != (b[i].Attribute == nil) {
				t.Fatalf("round trip changed item %d", i)
			}
		}
		d2, err := b.Marshal()
		if err != nil || !bytes.Equal(d1, d2) {
			t.Fatalf("Marshal is not a fixed point: %x vs %x (%v)", d1, d2, err)
		}
	})
}

func FuzzParseServerKeyGen(f *testing.F) {
	golden := readTestdata(f, "serverkeygen.multipart")
	f.Add(goldenContentType, golden)
	f.Add(goldenContentType, bytes.ReplaceAll(golden, []byte("\r\n"), []byte("\n")))
	f.Add(`multipart/mixed; boundary="`+goldenBoundary+`"`, golden)
	f.Add("multipart/mixed; boundary=x", []byte("--x\r\nContent-Type: application/pkcs8\r\n\r\nQQ==\r\n--x\r\nContent-Type: application/pkcs7-mime\r\n\r\nQg\r\n--x--\r\n"))
	f.Add("multipart/mixed; boundary=x", []byte("--x\r\nContent-Type: application/pkcs7-mime; smime-type=server-generated-key\r\n\r\nQQ\r\n--x\r\nContent-Type: application/pkcs7-mime; smime-type=certs-only\r\n\r\nQg\r\n--x--\r\n"))
	f.Add("multipart/mixed", []byte{})
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		r, err := ParseServerKeyGen(ctype, body)
		if err != nil {
			checkBadRequest(t, err)
			if r != nil {
				t.Fatal("a response returned with the error")
			}
			return
		}
		if len(r.Key) == 0 || len(r.Certs) == 0 {
			t.Fatalf("accepted with an empty part: %+v", r)
		}
		ct2, body2, err := WriteServerKeyGen(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParseServerKeyGen(ct2, body2)
		if err != nil {
			t.Fatalf("ParseServerKeyGen(WriteServerKeyGen(x)): %v", err)
		}
		if !bytes.Equal(r.Key, r2.Key) || !bytes.Equal(r.Certs, r2.Certs) || r.KeyEncrypted != r2.KeyEncrypted {
			t.Fatal("round trip changed the content")
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	for _, name := range []string{"csr-rsa.pem", "csr-ecdsa.pem", "csr-ed25519.pem", "csr-rsa-sha1.pem"} {
		f.Add(pemBlock(f, name, "CERTIFICATE REQUEST"))
	}
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ParseCSR(der)
		if err != nil {
			checkBadRequest(t, err)
			if req != nil {
				t.Fatal("a request returned with the error")
			}
			return
		}
		if !bytes.Equal(req.Raw, der) {
			t.Fatal("accepted a CSR with trailing data")
		}
		if err := req.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature does not verify: %v", err)
		}
		if req.PublicKeyAlgorithm == x509.UnknownPublicKeyAlgorithm {
			t.Fatal("accepted a CSR with an unknown key algorithm")
		}
	})
}
