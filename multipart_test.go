package est

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strings"
	"testing"
)

// mpart is one part of a hand-made multipart body.
type mpart struct {
	ctype   string // Content-Type; "" for none
	cte     string // Content-Transfer-Encoding; "" for none
	body    string
	headers string // extra header lines, each ending in eol
}

// buildMultipart writes parts between boundary delimiters with eol line ends.
func buildMultipart(boundary, eol string, parts ...mpart) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString("--" + boundary + eol)
		if p.ctype != "" {
			b.WriteString("Content-Type: " + p.ctype + eol)
		}
		if p.cte != "" {
			b.WriteString("Content-Transfer-Encoding: " + p.cte + eol)
		}
		b.WriteString(p.headers)
		b.WriteString(eol)
		b.WriteString(p.body)
		b.WriteString(eol)
	}
	b.WriteString("--" + boundary + "--" + eol)
	return b.String()
}

type skgFixture struct {
	key, certs, encKey []byte
	keyB64, certsB64   string
	encB64             string
}

func newSKGFixture(t *testing.T) skgFixture {
	g := goldenServerKeyGen(t)
	enc := []byte("\x30\x80 stands in for a CMS EnvelopedData \x00\x00")
	return skgFixture{
		key: g.Key, certs: g.Certs, encKey: enc,
		keyB64: string(EncodeBase64(g.Key)), certsB64: string(EncodeBase64(g.Certs)), encB64: string(EncodeBase64(enc)),
	}
}

func TestParseServerKeyGen(t *testing.T) {
	f := newSKGFixture(t)
	const ct = "multipart/mixed; boundary=b0und4ry"
	keyPart := mpart{ctype: MediaPKCS8, cte: "base64", body: f.keyB64}
	certPart := mpart{ctype: MediaCertsOnly, cte: "base64", body: f.certsB64}
	encPart := mpart{ctype: MediaServerKey, cte: "base64", body: f.encB64}
	rsaKey := func() []byte {
		_, k := fixtureKey(t, "rsa-key.pem")
		return x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))
	}()
	unknown := func(n int) []mpart {
		var ps []mpart
		for i := 0; i < n; i++ {
			ps = append(ps, mpart{ctype: "text/plain", body: "not base64 at all!"})
		}
		return ps
	}

	tests := []struct {
		name      string
		ctype     string
		body      string
		key       []byte
		encrypted bool
	}{
		{"key then certs", ct, buildMultipart("b0und4ry", "\r\n", keyPart, certPart), f.key, false},
		{"certs then key", ct, buildMultipart("b0und4ry", "\r\n", certPart, keyPart), f.key, false},
		{"no Content-Transfer-Encoding", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaPKCS8, body: f.keyB64}, mpart{ctype: MediaCertsOnly, body: f.certsB64}), f.key, false},
		{"one part with Content-Transfer-Encoding", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaCertsOnly, body: f.certsB64}, keyPart), f.key, false},
		{"LF line ends", ct, buildMultipart("b0und4ry", "\n", keyPart, certPart), f.key, false},
		{"unbroken unpadded base64", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaPKCS8, body: base64.RawStdEncoding.EncodeToString(f.key)},
			mpart{ctype: MediaCertsOnly, body: base64.StdEncoding.EncodeToString(f.certs)}), f.key, false},
		{"CRLF inside base64", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaPKCS8, body: strings.ReplaceAll(f.keyB64, "\n", "\r\n")},
			mpart{ctype: MediaCertsOnly, body: strings.ReplaceAll(f.certsB64, "\n", "\r\n")}), f.key, false},
		{"encrypted key", ct, buildMultipart("b0und4ry", "\r\n", encPart, certPart), f.encKey, true},
		{"encrypted key last", ct, buildMultipart("b0und4ry", "\r\n", certPart, encPart), f.encKey, true},
		{"types in other case", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: "Application/PKCS8", body: f.keyB64},
			mpart{ctype: "APPLICATION/PKCS7-MIME; SMIME-TYPE=Certs-Only", body: f.certsB64}), f.key, false},
		{"encrypted type in other case", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: "application/pkcs7-mime; smime-type=Server-Generated-Key", body: f.encB64}, certPart), f.encKey, true},
		{"certs without smime-type", ct, buildMultipart("b0und4ry", "\r\n",
			keyPart, mpart{ctype: MediaPKCS7, body: f.certsB64}), f.key, false},
		{"quoted smime-type", ct, buildMultipart("b0und4ry", "\r\n",
			keyPart, mpart{ctype: `application/pkcs7-mime; smime-type="certs-only"`, body: f.certsB64}), f.key, false},
		{"PKCS#1 labelled pkcs8", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaPKCS8, body: string(EncodeBase64(rsaKey))}, certPart), rsaKey, false},
		{"quoted boundary", `multipart/mixed; boundary="est boundary"`, buildMultipart("est boundary", "\r\n", keyPart, certPart), f.key, false},
		{"media type in other case", "Multipart/Mixed; Boundary=b0und4ry", buildMultipart("b0und4ry", "\r\n", keyPart, certPart), f.key, false},
		{"preamble and epilogue", ct, "This is a preamble.\r\n" + buildMultipart("b0und4ry", "\r\n", keyPart, certPart) + "epilogue\r\n", f.key, false},
		{"extra headers", ct, buildMultipart("b0und4ry", "\r\n",
			mpart{ctype: MediaPKCS8, body: f.keyB64, headers: "Content-Description: key\r\nContent-Disposition: attachment\r\n"}, certPart), f.key, false},
		{"unknown part ignored", ct, buildMultipart("b0und4ry", "\r\n", append([]mpart{keyPart}, append(unknown(1), certPart)...)...), f.key, false},
		{"maxParts parts", ct, buildMultipart("b0und4ry", "\r\n", append([]mpart{keyPart, certPart}, unknown(maxParts-2)...)...), f.key, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServerKeyGen(tt.ctype, []byte(tt.body))
			if err != nil {
				t.Fatalf("ParseServerKeyGen: %v\n%s", err, tt.body)
			}
			if !bytes.Equal(got.Key, tt.key) {
				t.Errorf("Key = %x; want %x", got.Key, tt.key)
			}
			if !bytes.Equal(got.Certs, f.certs) {
				t.Errorf("Certs differ")
			}
			if got.KeyEncrypted != tt.encrypted {
				t.Errorf("KeyEncrypted = %v; want %v", got.KeyEncrypted, tt.encrypted)
			}
		})
	}
}

func TestParseServerKeyGenRejects(t *testing.T) {
	f := newSKGFixture(t)
	const b = "b0und4ry"
	const ct = "multipart/mixed; boundary=" + b
	keyPart := mpart{ctype: MediaPKCS8, cte: "base64", body: f.keyB64}
	certPart := mpart{ctype: MediaCertsOnly, cte: "base64", body: f.certsB64}
	encPart := mpart{ctype: MediaServerKey, cte: "base64", body: f.encB64}
	good := buildMultipart(b, "\r\n", keyPart, certPart)
	unknown := mpart{ctype: "text/plain", body: "x"}
	var many []mpart
	for i := 0; i < maxParts-1; i++ {
		many = append(many, unknown)
	}

	tests := []struct {
		name  string
		ctype string
		body  string
	}{
		{"no Content-Type", "", good},
		{"no boundary", "multipart/mixed", good},
		{"empty boundary", `multipart/mixed; boundary=""`, good},
		{"boundary without value", "multipart/mixed; boundary", good},
		{"malformed Content-Type", "multipart/mixed boundary=" + b, good},
		{"form-data", "multipart/form-data; boundary=" + b, good},
		{"related", "multipart/related; boundary=" + b, good},
		{"not multipart", MediaPKCS8, good},
		{"other boundary", "multipart/mixed; boundary=other", good},
		{"longer boundary", "multipart/mixed; boundary=" + b + "x", good},
		{"shorter boundary", "multipart/mixed; boundary=b0und4", good},
		{"empty body", ct, ""},
		{"garbage body", ct, "hello, world"},
		{"no parts", ct, "--" + b + "--\r\n"},
		{"missing certificate part", ct, buildMultipart(b, "\r\n", keyPart)},
		{"missing key part", ct, buildMultipart(b, "\r\n", certPart)},
		{"only unknown parts", ct, buildMultipart(b, "\r\n", unknown, unknown)},
		{"key and encrypted key", ct, buildMultipart(b, "\r\n", keyPart, encPart, certPart)},
		{"two keys", ct, buildMultipart(b, "\r\n", keyPart, certPart, keyPart)},
		{"two certificate parts", ct, buildMultipart(b, "\r\n", keyPart, certPart, certPart)},
		{"too many parts", ct, buildMultipart(b, "\r\n", append([]mpart{keyPart, certPart}, many...)...)},
		{"too many parts before the key", ct, buildMultipart(b, "\r\n", append(append(many, unknown, unknown), keyPart, certPart)...)},
		{"invalid base64", ct, buildMultipart(b, "\r\n", mpart{ctype: MediaPKCS8, body: "!!!!"}, certPart)},
		{"empty key part", ct, buildMultipart(b, "\r\n", mpart{ctype: MediaPKCS8, body: ""}, certPart)},
		{"white space key part", ct, buildMultipart(b, "\r\n", mpart{ctype: MediaPKCS8, body: " \r\n "}, certPart)},
		{"invalid base64 in certs", ct, buildMultipart(b, "\r\n", keyPart, mpart{ctype: MediaCertsOnly, body: "QUJD-"})},
		{"part without Content-Type", ct, buildMultipart(b, "\r\n", keyPart, mpart{body: f.certsB64})},
		{"part with malformed Content-Type", ct, buildMultipart(b, "\r\n", keyPart, mpart{ctype: "application/", body: f.certsB64})},
		{"truncated in a part", ct, good[:len(good)/2]},
		{"truncated in the last part", ct, strings.TrimSuffix(good, "\r\n--"+b+"--\r\n")[:len(good)-40]},
		{"malformed part header", ct, "--" + b + "\r\nno colon here\r\n\r\n" + f.keyB64 + "\r\n--" + b + "--\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseServerKeyGen(tt.ctype, []byte(tt.body))
			if err == nil {
				t.Fatalf("ParseServerKeyGen accepted it: key %d bytes, certs %d bytes", len(got.Key), len(got.Certs))
			}
			if got != nil {
				t.Error("a response returned with the error")
			}
			if !errors.Is(err, ErrBadRequest) || KindOf(err) != ErrBadRequest {
				t.Fatalf("error %v is not of kind ErrBadRequest", err)
			}
		})
	}
}

// TestParseServerKeyGenPartSize checks the per-part size limit: a part of
// exactly maxPartSize bytes is read whole, one a quantum longer is refused
// rather than truncated.
func TestParseServerKeyGenPartSize(t *testing.T) {
	f := newSKGFixture(t)
	const b = "b0und4ry"
	certPart := mpart{ctype: MediaCertsOnly, body: f.certsB64}
	big := bytes.Repeat([]byte{0xa5}, maxPartSize/4*3)
	atLimit := base64.StdEncoding.EncodeToString(big)
	if len(atLimit) != maxPartSize {
		t.Fatalf("test part is %d bytes", len(atLimit))
	}
	got, err := ParseServerKeyGen("multipart/mixed; boundary="+b, []byte(buildMultipart(b, "\r\n", mpart{ctype: MediaPKCS8, body: atLimit}, certPart)))
	if err != nil {
		t.Fatalf("part of maxPartSize bytes: %v", err)
	}
	if !bytes.Equal(got.Key, big) {
		t.Fatal("part of maxPartSize bytes not read whole")
	}
	over := base64.StdEncoding.EncodeToString(append(big, 1, 2, 3))
	_, err = ParseServerKeyGen("multipart/mixed; boundary="+b, []byte(buildMultipart(b, "\r\n", mpart{ctype: MediaPKCS8, body: over}, certPart)))
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("part over maxPartSize bytes: %v; want ErrBadRequest", err)
	}
}

func TestWriteServerKeyGen(t *testing.T) {
	f := newSKGFixture(t)
	seen := map[string]bool{}
	for _, in := range []*ServerKeyGenResponse{
		{Key: f.key, Certs: f.certs},
		{Key: f.encKey, Certs: f.certs, KeyEncrypted: true},
		{Key: []byte{0}, Certs: []byte{1}},
	} {
		ctype, body, err := WriteServerKeyGen(in)
		if err != nil {
			t.Fatal(err)
		}
		mt, params, err := mime.ParseMediaType(ctype)
		if err != nil || mt != MediaMultipartMixed {
			t.Fatalf("Content-Type %q: %v", ctype, err)
		}
		bd := params["boundary"]
		if !boundaryRE.MatchString(bd) {
			t.Errorf("boundary %q is not est- and 24 hex digits", bd)
		}
		if seen[bd] {
			t.Errorf("boundary %q used twice", bd)
		}
		seen[bd] = true

		got, err := ParseServerKeyGen(ctype, body)
		if err != nil {
			t.Fatalf("ParseServerKeyGen(WriteServerKeyGen()): %v", err)
		}
		if !bytes.Equal(got.Key, in.Key) || !bytes.Equal(got.Certs, in.Certs) || got.KeyEncrypted != in.KeyEncrypted {
			t.Fatalf("round trip changed the content: %+v", got)
		}

		// Read it with mime/multipart, as any other client would: two parts,
		// key first, each typed and base64 with lines of at most 76 characters.
		mr := multipart.NewReader(bytes.NewReader(body), bd)
		wantTypes := []string{MediaPKCS8, MediaCertsOnly}
		if in.KeyEncrypted {
			wantTypes[0] = MediaServerKey
		}
		wantDER := [][]byte{in.Key, in.Certs}
		for i := 0; ; i++ {
			p, err := mr.NextPart()
			if err == io.EOF {
				if i != 2 {
					t.Errorf("%d parts; want 2", i)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if i >= 2 {
				t.Fatal("more than two parts")
			}
			if got := p.Header.Get("Content-Type"); got != wantTypes[i] {
				t.Errorf("part %d Content-Type %q; want %q", i, got, wantTypes[i])
			}
			if got := p.Header.Get("Content-Transfer-Encoding"); got != "base64" {
				t.Errorf("part %d Content-Transfer-Encoding %q", i, got)
			}
			data, err := io.ReadAll(p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(string(data), "\r\n") {
				t.Errorf("part %d has line breaks in its base64 (RFC 8951 3.1)", i)
			}
			der, err := base64.StdEncoding.DecodeString(string(data))
			if err != nil || !bytes.Equal(der, wantDER[i]) {
				t.Errorf("part %d does not decode with encoding/base64 to its content: %v", i, err)
			}
		}
	}
}
