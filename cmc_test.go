package est

// Golden Full CMC messages (testdata/README.md):
//
//	cmc-request.der, cmc-request.b64    a Full PKI Request for csr-ed25519.pem signed by its key (by subject key identifier)
//	cmc-response.der, cmc-response.b64  the Full PKI Response issuing cmc-leaf.pem, signed by cmc-ca.pem
//
// Ed25519 signatures and no signingTime make both deterministic.

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"reflect"
	"testing"
	"time"
)

var (
	cmcGoldenNonce = []byte("estkit-golden-16")
	cmcGoldenTID   = big.NewInt(4711)
)

func cmcControl(t testing.TB, id uint32, typ asn1.ObjectIdentifier, v any) TaggedAttribute {
	t.Helper()
	c, err := NewControl(id, typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// goldenPKIData is the content of cmc-request.der.
func goldenPKIData(t testing.TB) *PKIData {
	return &PKIData{
		Controls: []TaggedAttribute{
			cmcControl(t, 1, OIDCMCTransactionID, cmcGoldenTID),
			cmcControl(t, 2, OIDCMCSenderNonce, cmcGoldenNonce),
			cmcControl(t, 3, OIDCMCIdentification, "ed25519-device"),
		},
		Requests: []TaggedRequest{{Kind: RequestPKCS10, BodyPartID: 4, CSR: pemBlock(t, "csr-ed25519.pem", "CERTIFICATE REQUEST")}},
	}
}

// goldenPKIResponse is the content of cmc-response.der.
func goldenPKIResponse(t testing.TB) *PKIResponse {
	return &PKIResponse{Controls: []TaggedAttribute{
		cmcControl(t, 1, OIDCMCStatusInfoV2, &CMCStatusInfoV2{Status: CMCSuccess, BodyList: []BodyPartReference{{4}}}),
		cmcControl(t, 2, OIDCMCTransactionID, cmcGoldenTID),
		cmcControl(t, 3, OIDCMCRecipientNonce, cmcGoldenNonce),
		cmcControl(t, 4, OIDCMCSenderNonce, []byte("estkit-server-16")),
	}}
}

func goldenSigner(t testing.TB, name string) crypto.Signer {
	t.Helper()
	_, k := fixtureKey(t, name)
	return k.(crypto.Signer)
}

func TestGoldenCMCRequest(t *testing.T) {
	csr, err := x509.ParseCertificateRequest(pemBlock(t, "csr-ed25519.pem", "CERTIFICATE REQUEST"))
	if err != nil {
		t.Fatal(err)
	}
	ski, err := KeyID(csr.RawSubjectPublicKeyInfo)
	if err != nil {
		t.Fatal(err)
	}
	content, err := goldenPKIData(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	der, err := EncodeSignedData(OIDCCTPKIData, content, CMSSigner{Key: goldenSigner(t, "ed25519-key.pem"), SubjectKeyID: ski})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "cmc-request.der", der)
	checkGolden(t, "cmc-request.b64", EncodeBase64(der))
	if *update {
		return
	}

	sd, err := ParseSignedData(readTestdata(t, "cmc-request.der"))
	if err != nil {
		t.Fatal(err)
	}
	if !sd.ContentType.Equal(OIDCCTPKIData) || len(sd.Signers) != 1 || len(sd.Certificates) != 0 {
		t.Fatalf("content type %v, %d signers, %d certificates", sd.ContentType, len(sd.Signers), len(sd.Certificates))
	}
	si := sd.Signers[0]
	if !bytes.Equal(si.SubjectKeyID, ski) || si.Serial != nil || !MatchesCSRKey(si.SubjectKeyID, csr) {
		t.Fatal("the signer is not named by the CSR key's identifier")
	}
	if !si.SignatureAlgorithm.Equal(sdOIDEd25519) || !si.DigestAlgorithm.Equal(sdOIDSHA512) {
		t.Errorf("algorithms %v, %v; want Ed25519 with SHA-512 (RFC 8419)", si.SignatureAlgorithm, si.DigestAlgorithm)
	}
	if err := sd.Verify(si, csr.PublicKey); err != nil {
		t.Fatal(err)
	}
	data, err := ParsePKIData(sd.Content)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(data.Requests[0].CSR, goldenPKIData(t).Requests[0].CSR) || data.Requests[0].BodyPartID != 4 {
		t.Error("the CSR did not come back")
	}
	if tid, err := data.Control(OIDCMCTransactionID).Integer(); err != nil || tid.Cmp(cmcGoldenTID) != 0 {
		t.Errorf("transactionId %v, %v", tid, err)
	}
	if n, err := data.Control(OIDCMCSenderNonce).OctetString(); err != nil || !bytes.Equal(n, cmcGoldenNonce) {
		t.Errorf("senderNonce %q, %v", n, err)
	}
	if id, err := data.Control(OIDCMCIdentification).UTF8String(); err != nil || id != "ed25519-device" {
		t.Errorf("identification %q, %v", id, err)
	}
	again, err := data.Marshal()
	if err != nil || !bytes.Equal(again, sd.Content) {
		t.Error("PKIData does not round-trip")
	}
	// The body is the base64 of the DER.
	if b, err := DecodeBase64(readTestdata(t, "cmc-request.b64")); err != nil || !bytes.Equal(b, readTestdata(t, "cmc-request.der")) {
		t.Error("cmc-request.b64 is not the base64 of cmc-request.der")
	}
}

func TestGoldenCMCResponse(t *testing.T) {
	caCert, leaf := fixtureCert(t, "cmc-ca.pem"), fixtureCert(t, "cmc-leaf.pem")
	content, err := goldenPKIResponse(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	der, err := EncodeSignedData(OIDCCTPKIResponse, content, CMSSigner{Key: goldenSigner(t, "cmc-ca-key.pem"), Certificate: caCert}, leaf, caCert)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "cmc-response.der", der)
	checkGolden(t, "cmc-response.b64", EncodeBase64(der))
	if *update {
		return
	}

	sd, err := ParseSignedData(readTestdata(t, "cmc-response.der"))
	if err != nil {
		t.Fatal(err)
	}
	if !sd.ContentType.Equal(OIDCCTPKIResponse) || len(sd.Signers) != 1 || len(sd.Certificates) != 2 {
		t.Fatalf("content type %v, %d signers, %d certificates", sd.ContentType, len(sd.Signers), len(sd.Certificates))
	}
	si := sd.Signers[0]
	signer := sd.SignerCertificate(si)
	if signer == nil || !signer.Equal(caCert) || si.SubjectKeyID != nil {
		t.Fatal("the signer is not named as the CA certificate by issuer and serial number")
	}
	if err := sd.Verify(si, signer.PublicKey); err != nil {
		t.Fatal(err)
	}
	if err := sd.Verify(si, leaf.PublicKey); err == nil {
		t.Fatal("verified with another key")
	}
	resp, err := ParsePKIResponse(sd.Content)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := resp.Statuses()
	if err != nil || len(sts) != 1 || sts[0].Status != CMCSuccess || !reflect.DeepEqual(sts[0].BodyList, []BodyPartReference{{4}}) {
		t.Fatalf("statuses %+v, %v", sts, err)
	}
	if n, err := resp.Control(OIDCMCRecipientNonce).OctetString(); err != nil || !bytes.Equal(n, cmcGoldenNonce) {
		t.Errorf("recipientNonce %q, %v", n, err)
	}
	if b, err := DecodeBase64(readTestdata(t, "cmc-response.b64")); err != nil || !bytes.Equal(b, readTestdata(t, "cmc-response.der")) {
		t.Error("cmc-response.b64 is not the base64 of cmc-response.der")
	}
}

func TestCMCStatusInfoV2RoundTrip(t *testing.T) {
	fail := FailBadMessageCheck
	for _, s := range []*CMCStatusInfoV2{
		{Status: CMCSuccess, BodyList: []BodyPartReference{{1}, {2}}},
		{Status: CMCFailed, BodyList: []BodyPartReference{{0}}, StatusString: "the signature does not verify", FailInfo: &fail},
		{Status: CMCPending, BodyList: []BodyPartReference{{3}}, StatusString: "wait", PendInfo: &PendInfo{Token: []byte("abc"), Time: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{Status: CMCFailed, BodyList: []BodyPartReference{{1, 2, 3}}, ExtendedFailInfo: &ExtendedFailInfo{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}},
		{Status: CMCNoSupport, BodyList: []BodyPartReference{{4294967295}}},
	} {
		der, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseCMCStatusInfoV2(der)
		if err != nil {
			t.Fatalf("%v: %v", s.Status, err)
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("round trip:\ngot  %+v\nwant %+v", got, s)
		}
	}
	if _, err := (&CMCStatusInfoV2{Status: CMCSuccess}).Marshal(); err == nil {
		t.Error("a status without a bodyList marshalled")
	}
	if _, err := (&CMCStatusInfoV2{Status: CMCFailed, BodyList: []BodyPartReference{{1}}, FailInfo: &fail, PendInfo: &PendInfo{}}).Marshal(); err == nil {
		t.Error("a status with two otherInfo marshalled")
	}
	if FailBadIdentity.String() != "badIdentity" || CMCPending.String() != "pending" || CMCFailInfo(99).String() != "CMCFailInfo(99)" {
		t.Error("names")
	}
}

func TestRevokeRequestRoundTrip(t *testing.T) {
	issuer := fixtureCert(t, "ca.pem").RawSubject
	for _, r := range []*RevokeRequest{
		{Issuer: issuer, Serial: big.NewInt(2), Reason: CRLReasons["keyCompromise"]},
		{Issuer: issuer, Serial: new(big.Int).Lsh(big.NewInt(1), 140), Reason: 4, InvalidityDate: time.Date(2029, 5, 6, 7, 8, 9, 0, time.UTC),
			Passphrase: []byte("secret"), Comment: "superseded by a new key"},
	} {
		der, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseRevokeRequest(der)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\ngot  %+v\nwant %+v", got, r)
		}
	}
	// The reason is an ENUMERATED (CRLReason), not an INTEGER.
	der, _ := (&RevokeRequest{Issuer: issuer, Serial: big.NewInt(2), Reason: 1}).Marshal()
	if !bytes.Contains(der, []byte{0x0a, 0x01, 0x01}) {
		t.Error("reason is not encoded as ENUMERATED")
	}
}

func TestPKIDataKinds(t *testing.T) {
	crm := []byte{0xa1, 0x05, 0x30, 0x03, 0x02, 0x01, 0x07}
	orm := []byte{0xa2, 0x08, 0x02, 0x01, 0x09, 0x06, 0x01, 0x2a, 0x05, 0x00}
	d := &PKIData{
		Requests:  []TaggedRequest{{Kind: RequestCRMF, Raw: crm}, {Kind: RequestOther, Raw: orm}},
		CMS:       []TaggedContentInfo{{BodyPartID: 5, ContentInfo: []byte{0x30, 0x00}}},
		OtherMsgs: []OtherMsg{{BodyPartID: 6, Type: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{0x05, 0x00}}},
	}
	der, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParsePKIData(der)
	if err != nil {
		t.Fatal(err)
	}
	if got.Requests[0].Kind != RequestCRMF || got.Requests[0].BodyPartID != 7 || got.Requests[1].Kind != RequestOther || got.Requests[1].BodyPartID != 9 {
		t.Errorf("requests %+v", got.Requests)
	}
	if got.CMS[0].BodyPartID != 5 || got.OtherMsgs[0].BodyPartID != 6 {
		t.Error("cmsSequence or otherMsgSequence lost")
	}
	// An empty PKIData is four empty sequences.
	empty, _ := (&PKIData{}).Marshal()
	if !bytes.Equal(empty, []byte{0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00}) {
		t.Errorf("empty PKIData %x", empty)
	}
	for name, bad := range map[string][]byte{
		"trailing data":      append(bytes.Clone(empty), 0),
		"three sequences":    {0x30, 0x06, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00},
		"body part too big":  {0x30, 0x17, 0x30, 0x0f, 0x30, 0x0d, 0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x06, 0x01, 0x2a, 0x31, 0x01, 0x05, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00},
		"unknown request":    {0x30, 0x0a, 0x30, 0x00, 0x30, 0x02, 0xa5, 0x00, 0x30, 0x00, 0x30, 0x00},
		"indefinite length":  {0x30, 0x80, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x00, 0x00},
		"not a sequence":     {0x04, 0x00},
		"negative body part": {0x30, 0x16, 0x30, 0x0e, 0x30, 0x0c, 0x02, 0x01, 0xff, 0x06, 0x01, 0x2a, 0x31, 0x04, 0x04, 0x02, 0x01, 0x02, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00},
	} {
		if _, err := ParsePKIData(bad); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
}

func TestControlValues(t *testing.T) {
	c := cmcControl(t, 1, OIDCMCSenderNonce, []byte("n"))
	if _, err := c.Integer(); !errors.Is(err, ErrBadRequest) {
		t.Errorf("an OCTET STRING read as INTEGER: %v", err)
	}
	c.Values = append(c.Values, c.Values[0])
	if _, err := c.OctetString(); !errors.Is(err, ErrBadRequest) {
		t.Errorf("two values read as one: %v", err)
	}
	if _, err := NewControl(1, OIDCMCIdentification, "\xff"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	if _, err := NewControl(1, OIDCMCIdentification, 1.5); err == nil {
		t.Error("a float accepted")
	}
	// Values of a control are a DER SET OF: sorted.
	a := TaggedAttribute{BodyPartID: 1, Type: OIDCMCRegInfo, Values: []asn1.RawValue{{FullBytes: []byte{0x04, 0x01, 0x02}}, {FullBytes: []byte{0x04, 0x01, 0x01}}}}
	der, err := (&PKIResponse{Controls: []TaggedAttribute{a}}).Marshal()
	if err != nil || !bytes.Contains(der, []byte{0x31, 0x06, 0x04, 0x01, 0x01, 0x04, 0x01, 0x02}) {
		t.Errorf("SET OF not sorted: %x %v", der, err)
	}
}

func cmcTestKeys(t *testing.T) map[string]crypto.Signer {
	t.Helper()
	keys := map[string]crypto.Signer{}
	for name, c := range map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = k
	}
	_, rk := fixtureKey(t, "rsa-key.pem")
	keys["RSA"] = rk.(*rsa.PrivateKey)
	_, ek := fixtureKey(t, "ed25519-key.pem")
	keys["Ed25519"] = ek.(ed25519.PrivateKey)
	return keys
}

func TestSignedDataSignVerify(t *testing.T) {
	content := []byte("a PKIData, say")
	now := time.Date(2031, 7, 8, 9, 10, 11, 0, time.UTC)
	for name, key := range cmcTestKeys(t) {
		t.Run(name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: name}, SubjectKeyId: []byte("skid-" + name),
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
			certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			cert, _ := x509.ParseCertificate(certDER)
			for _, s := range []CMSSigner{{Key: key, Certificate: cert, SigningTime: now}, {Key: key, SubjectKeyID: []byte("skid-" + name)}} {
				der, err := EncodeSignedData(OIDCCTPKIData, content, s, cert)
				if err != nil {
					t.Fatal(err)
				}
				sd, err := ParseSignedData(der)
				if err != nil {
					t.Fatal(err)
				}
				si := sd.Signers[0]
				if sd.SignerCertificate(si) == nil || !bytes.Equal(sd.Content, content) {
					t.Fatal("signer or content lost")
				}
				if !si.SigningTime.Equal(s.SigningTime) {
					t.Errorf("signing time %v, want %v", si.SigningTime, s.SigningTime)
				}
				if err := sd.Verify(si, key.Public()); err != nil {
					t.Fatal(err)
				}
				// Another content type than the one signed; another content.
				sd.ContentType = OIDCCTPKIResponse
				if err := sd.Verify(si, key.Public()); !errors.Is(err, ErrBadRequest) {
					t.Errorf("content type swapped: %v", err)
				}
				sd.ContentType, sd.Content = OIDCCTPKIData, []byte("another")
				if err := sd.Verify(si, key.Public()); !errors.Is(err, ErrBadRequest) {
					t.Errorf("content swapped: %v", err)
				}
			}
		})
	}
	// A key that does not match the certificate is refused.
	keys := cmcTestKeys(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: now, NotAfter: now.Add(time.Hour)}
	certDER, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, keys["P-256"].Public(), keys["P-256"])
	cert, _ := x509.ParseCertificate(certDER)
	if _, err := EncodeSignedData(OIDCCTPKIData, content, CMSSigner{Key: keys["P-384"], Certificate: cert}); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
	if _, err := EncodeSignedData(OIDCCTPKIData, content, CMSSigner{Key: keys["P-384"]}); err == nil {
		t.Error("signed without naming the signer")
	}
}

func TestSignedDataUnsupportedAlgorithm(t *testing.T) {
	der := readTestdata(t, "cmc-request.der")
	// Replace id-sha512 (both the digestAlgorithms and the signer's) by an unknown OID.
	sha512 := []byte{0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03}
	bad := bytes.ReplaceAll(der, sha512, append(sha512[:10:10], 0x7f))
	sd, err := ParseSignedData(bad)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(pemBlock(t, "csr-ed25519.pem", "CERTIFICATE REQUEST"))
	if err := sd.Verify(sd.Signers[0], csr.PublicKey); !errors.Is(err, ErrCMSAlgorithm) || !errors.Is(err, ErrBadRequest) {
		t.Fatalf("unknown digest: %v", err)
	}
}

func TestParseSignedDataErrors(t *testing.T) {
	good := readTestdata(t, "cmc-request.der")
	certsOnly := readTestdata(t, "certs-only.p7b")
	for name, der := range map[string][]byte{
		"empty":          nil,
		"trailing data":  append(bytes.Clone(good), 0),
		"truncated":      good[:len(good)-1],
		"not SignedData": {0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x00},
	} {
		if _, err := ParseSignedData(der); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
	// A certs-only PKCS#7 parses (no signers, no content) but verifies nothing.
	sd, err := ParseSignedData(certsOnly)
	if err != nil || len(sd.Signers) != 0 || len(sd.Certificates) != 2 {
		t.Fatalf("certs-only: %v", err)
	}
}

func TestMatchesCSRKey(t *testing.T) {
	csr, _ := x509.ParseCertificateRequest(pemBlock(t, "csr-ecdsa.pem", "CERTIFICATE REQUEST"))
	ids := sdKeyIDs(csr.RawSubjectPublicKeyInfo)
	for _, id := range ids {
		if !MatchesCSRKey(id, csr) {
			t.Errorf("method-1 identifier %x not matched", id)
		}
	}
	if MatchesCSRKey([]byte("other"), csr) || MatchesCSRKey(nil, csr) {
		t.Error("matched another identifier")
	}
}

// FuzzParseSignedData: no panics, ErrBadRequest, and a parsed message
// whose signers verify (or fail) without panicking.
func FuzzParseSignedData(f *testing.F) {
	for _, name := range []string{"cmc-request.der", "cmc-response.der", "certs-only.p7b", "openssl-certs-only.p7b"} {
		f.Add(readTestdata(f, name))
	}
	_, ek := fixtureKey(f, "ed25519-key.pem")
	pub := ek.(ed25519.PrivateKey).Public()
	f.Fuzz(func(t *testing.T, der []byte) {
		sd, err := ParseSignedData(der)
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		for _, si := range sd.Signers {
			if err := sd.Verify(si, pub); err != nil {
				checkBadRequest(t, err)
			}
			for _, c := range sd.Certificates {
				si.Identifies(c)
			}
		}
	})
}

// FuzzParsePKIData: no panics, ErrBadRequest, and Marshal of a parsed
// PKIData parses back to the same bytes.
func FuzzParsePKIData(f *testing.F) {
	sd, err := ParseSignedData(readTestdata(f, "cmc-request.der"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sd.Content)
	f.Add([]byte{0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		d, err := ParsePKIData(der)
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		for i := range d.Controls {
			d.Controls[i].OctetString()
			d.Controls[i].StatusInfoV2()
			d.Controls[i].RevokeRequest()
		}
		m1, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		d2, err := ParsePKIData(m1)
		if err != nil {
			t.Fatalf("a marshalled PKIData does not parse: %v", err)
		}
		if m2, err := d2.Marshal(); err != nil || !bytes.Equal(m1, m2) {
			t.Fatal("PKIData does not round-trip")
		}
	})
}

// FuzzParsePKIResponse: as FuzzParsePKIData, and the statuses parse or
// fail with ErrBadRequest.
func FuzzParsePKIResponse(f *testing.F) {
	sd, err := ParseSignedData(readTestdata(f, "cmc-response.der"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sd.Content)
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := ParsePKIResponse(der)
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		if _, err := r.Statuses(); err != nil {
			checkBadRequest(t, err)
		}
		m1, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		r2, err := ParsePKIResponse(m1)
		if err != nil {
			t.Fatalf("a marshalled PKIResponse does not parse: %v", err)
		}
		if m2, err := r2.Marshal(); err != nil || !bytes.Equal(m1, m2) {
			t.Fatal("PKIResponse does not round-trip")
		}
	})
}
