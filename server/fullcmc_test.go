package server_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testenv"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// cmcProfiles are the default profiles (fullcmc on) plus:
//   - "held": manual approval;
//   - "ra": issues registration authority certificates (EKU id-kp-cmcRA);
//   - "fleet": accepts registration authorities (AllowRA).
func cmcProfiles() []*ca.Profile {
	ps := ca.DefaultProfiles()
	held, ra, fleet := *ps[1], *ps[1], *ps[1]
	held.Name, held.ManualApproval = "held", true
	ra.Name, ra.ExtKeyUsageOIDs = "ra", []asn1.ObjectIdentifier{est.OIDKPCMCRA}
	fleet.Name, fleet.AllowRA = "fleet", true
	return append(ps, &held, &ra, &fleet)
}

// cmcCSR returns a DER CSR for key that declares its subject key
// identifier (RFC 5272 3.2.1.3.1), and that identifier.
func cmcCSR(t *testing.T, key crypto.Signer, cn string, dns ...string) ([]byte, []byte) {
	return cmcCSRNamed(t, key, pkix.Name{CommonName: cn}, dns...)
}

// cmcCSRNamed is cmcCSR with a whole subject name.
func cmcCSRNamed(t *testing.T, key crypto.Signer, name pkix.Name, dns ...string) ([]byte, []byte) {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ski, err := est.KeyID(spki)
	if err != nil {
		t.Fatal(err)
	}
	val, _ := asn1.Marshal(ski)
	name.Names, name.ExtraNames = nil, nil
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         name,
		DNSNames:        dns,
		ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectKeyIdentifier, Value: val}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, ski
}

// cmcMessage is a Full PKI Request to build, correct unless told otherwise.
type cmcMessage struct {
	csr  []byte
	key  crypto.Signer     // signs
	cert *x509.Certificate // names the signer by issuer and serial; nil: by ski
	ski  []byte
	// extra controls and revocations; body part IDs from 10 and 20.
	controls    []est.TaggedAttribute
	revokes     []est.RevokeRequest
	contentType asn1.ObjectIdentifier // nil: id-cct-PKIData
	noTID       bool
}

// encode returns the signed message, its senderNonce and transactionId.
func (m cmcMessage) encode(t *testing.T) ([]byte, []byte, *big.Int) {
	t.Helper()
	nonce := make([]byte, 16)
	rand.Read(nonce)
	tid := big.NewInt(time.Now().UnixNano())
	var d est.PKIData
	add := func(id uint32, typ asn1.ObjectIdentifier, v any) {
		c, err := est.NewControl(id, typ, v)
		if err != nil {
			t.Fatal(err)
		}
		d.Controls = append(d.Controls, c)
	}
	if !m.noTID {
		add(1, est.OIDCMCTransactionID, tid)
	}
	add(2, est.OIDCMCSenderNonce, nonce)
	d.Controls = append(d.Controls, m.controls...)
	for i := range m.revokes {
		add(uint32(20+i), est.OIDCMCRevokeRequest, &m.revokes[i])
	}
	if m.csr != nil {
		d.Requests = []est.TaggedRequest{{Kind: est.RequestPKCS10, BodyPartID: 3, CSR: m.csr}}
	}
	content, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ct := m.contentType
	if ct == nil {
		ct = est.OIDCCTPKIData
	}
	var certs []*x509.Certificate
	if m.cert != nil {
		certs = append(certs, m.cert)
	}
	der, err := est.EncodeSignedData(ct, content, est.CMSSigner{Key: m.key, Certificate: m.cert, SubjectKeyID: m.ski}, certs...)
	if err != nil {
		t.Fatal(err)
	}
	return der, nonce, tid
}

// cmcAnswer is a response of /fullcmc.
type cmcAnswer struct {
	status int
	header http.Header
	text   string // the body of a plain-text answer
	sd     *est.SignedData
	resp   *est.PKIResponse
	st     *est.CMCStatusInfoV2 // the one statusInfoV2
	der    []byte
}

// postCMC sends der to label's /fullcmc and reads the answer; a CMC
// response must be signed by estd's issuing CA and echo nonce and tid.
func postCMC(t *testing.T, s *estdtest.Server, c *http.Client, label string, der, nonce []byte, tid *big.Int, basic ...string) cmcAnswer {
	t.Helper()
	status, hdr, body := call(t, c, "POST", s.URL+est.Path(label, est.OpFullCMC), est.MediaCMCRequest, est.EncodeBase64(der), basic...)
	a := cmcAnswer{status: status, header: hdr}
	if hdr.Get("Content-Type") != est.MediaCMCResponse {
		if status == 200 {
			t.Fatalf("200 with Content-Type %q", hdr.Get("Content-Type"))
		}
		a.text = strings.TrimSpace(string(body))
		return a
	}
	if hdr.Get("Content-Transfer-Encoding") != "base64" {
		t.Errorf("Content-Transfer-Encoding %q", hdr.Get("Content-Transfer-Encoding"))
	}
	var err error
	if a.der, err = est.DecodeBase64(body); err != nil {
		t.Fatal(err)
	}
	if a.sd, err = est.ParseSignedData(a.der); err != nil {
		t.Fatal(err)
	}
	if !a.sd.ContentType.Equal(est.OIDCCTPKIResponse) || len(a.sd.Signers) != 1 {
		t.Fatalf("response of type %v with %d signers", a.sd.ContentType, len(a.sd.Signers))
	}
	ca := s.Daemon.CA.Cert
	if !a.sd.Signers[0].Identifies(ca) || a.sd.SignerCertificate(a.sd.Signers[0]) == nil {
		t.Fatal("the response is not signed by the issuing CA, or does not carry its certificate")
	}
	if err := a.sd.Verify(a.sd.Signers[0], ca.PublicKey); err != nil {
		t.Fatalf("response signature: %v", err)
	}
	if a.resp, err = est.ParsePKIResponse(a.sd.Content); err != nil {
		t.Fatal(err)
	}
	sts, err := a.resp.Statuses()
	if err != nil || len(sts) != 1 {
		t.Fatalf("%d statusInfoV2 controls, %v", len(sts), err)
	}
	a.st = sts[0]
	if sn := a.resp.Control(est.OIDCMCSenderNonce); sn == nil {
		t.Error("no senderNonce in the response")
	}
	if nonce != nil {
		if rn := a.resp.Control(est.OIDCMCRecipientNonce); rn == nil {
			t.Error("no recipientNonce in the response")
		} else if got, err := rn.OctetString(); err != nil || !bytes.Equal(got, nonce) {
			t.Error("recipientNonce is not the request's senderNonce")
		}
	}
	if tid != nil {
		if tc := a.resp.Control(est.OIDCMCTransactionID); tc == nil {
			t.Error("no transactionId in the response")
		} else if got, err := tc.Integer(); err != nil || got.Cmp(tid) != 0 {
			t.Error("transactionId not echoed")
		}
	}
	return a
}

// cert returns the certificate among the response's for key.
func (a cmcAnswer) cert(t *testing.T, key crypto.PublicKey) *x509.Certificate {
	t.Helper()
	for _, c := range a.sd.Certificates {
		if c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(key) {
			return c
		}
	}
	t.Fatal("no certificate for the request's key in the response")
	return nil
}

// failed checks a failed status with info concerning bodyList.
func (a cmcAnswer) failed(t *testing.T, code int, info est.CMCFailInfo, bodyList ...uint32) {
	t.Helper()
	if a.st == nil {
		t.Fatalf("got %d %q, want a CMC response", a.status, a.text)
	}
	if a.status != code || a.st.Status != est.CMCFailed || a.st.FailInfo == nil || *a.st.FailInfo != info {
		fi := "none"
		if a.st.FailInfo != nil {
			fi = a.st.FailInfo.String()
		}
		t.Fatalf("got %d %v/%s %q, want %d failed/%v", a.status, a.st.Status, fi, a.st.StatusString, code, info)
	}
	if len(bodyList) > 0 {
		var got []uint32
		for _, r := range a.st.BodyList {
			got = append(got, r[len(r)-1])
		}
		if len(got) != len(bodyList) || !bytes.Equal(u32s(got), u32s(bodyList)) {
			t.Errorf("bodyList %v, want %v", got, bodyList)
		}
	}
}

func u32s(v []uint32) []byte {
	var b []byte
	for _, x := range v {
		b = append(b, byte(x>>24), byte(x>>16), byte(x>>8), byte(x))
	}
	return b
}

func TestFullCMCEnroll(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: cmcProfiles()})
	basic := []string{s.User, s.Password}
	for _, kt := range []ca.KeyType{ca.P256, ca.P384, ca.RSA2048, ca.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			key := testpki.Key(t, kt)
			csr, ski := cmcCSR(t, key, "cmc-"+string(kt))
			der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
			a := postCMC(t, s, s.Client(), "", der, nonce, tid, basic...)
			if a.status != 200 || a.st.Status != est.CMCSuccess {
				t.Fatalf("%d %v %q %q", a.status, a.st, a.text, a.st.StatusString)
			}
			if len(a.st.BodyList) != 1 || a.st.BodyList[0][0] != 3 {
				t.Errorf("bodyList %v, want the request's body part 3", a.st.BodyList)
			}
			cert := a.cert(t, key.Public())
			verify(t, s, cert, x509.ExtKeyUsageClientAuth)
			rec, err := s.Daemon.Store.BySerial(context.Background(), cert.SerialNumber)
			if err != nil || !bytes.Equal(rec.DER, cert.Raw) || rec.Requester != s.User {
				t.Fatalf("record: %+v %v", rec, err)
			}
			// The chain comes with it.
			if len(a.sd.Certificates) != 3 {
				t.Errorf("%d certificates in the response, want the issued one and the chain", len(a.sd.Certificates))
			}
		})
	}

	t.Run("CSR without a subject key identifier", func(t *testing.T) {
		key := testpki.Key(t, ca.P256)
		csr := testpki.CSR(t, key, "no-ski", nil, nil)
		req, _ := x509.ParseCertificateRequest(csr)
		ski, _ := est.KeyID(req.RawSubjectPublicKeyInfo)
		der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
		if a := postCMC(t, s, s.Client(), "tls-client", der, nonce, tid, basic...); a.status != 200 {
			t.Fatalf("%d %q", a.status, a.text)
		}
	})

	t.Run("device certificate, identification and regInfo", func(t *testing.T) {
		dev, devKey := s.Manufacturer.Device(t, "SN-CMC-1", time.Now())
		key := testpki.Key(t, ca.P256)
		csr, ski := cmcCSR(t, key, "SN-CMC-1")
		ident, _ := est.NewControl(10, est.OIDCMCIdentification, dev.Subject.String())
		reg, _ := est.NewControl(11, est.OIDCMCRegInfo, []byte("anything at all"))
		der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski, controls: []est.TaggedAttribute{ident, reg}}.encode(t)
		a := postCMC(t, s, s.Client(tlsCert(dev, devKey)), "", der, nonce, tid)
		if a.status != 200 {
			t.Fatalf("%d %q %v", a.status, a.text, a.st)
		}
		a.cert(t, key.Public())
	})

	t.Run("signed by a certificate for the same key", func(t *testing.T) {
		first, key := enrollBasic(t, s, "same-key")
		csr, _ := cmcCSR(t, key.(crypto.Signer), "same-key")
		der, nonce, tid := cmcMessage{csr: csr, key: key.(crypto.Signer), cert: first}.encode(t)
		if a := postCMC(t, s, s.Client(), "", der, nonce, tid, basic...); a.status != 200 {
			t.Fatalf("%d %q %v", a.status, a.text, a.st)
		}
	})

	t.Run("no transactionId", func(t *testing.T) {
		key := testpki.Key(t, ca.P256)
		csr, ski := cmcCSR(t, key, "no-tid")
		der, nonce, _ := cmcMessage{csr: csr, key: key, ski: ski, noTID: true}.encode(t)
		a := postCMC(t, s, s.Client(), "", der, nonce, nil, basic...)
		if a.status != 200 || a.resp.Control(est.OIDCMCTransactionID) != nil {
			t.Fatalf("%d, transactionId %v", a.status, a.resp.Control(est.OIDCMCTransactionID))
		}
	})
}

func TestFullCMCFailures(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: cmcProfiles()})
	basic := []string{s.User, s.Password}
	key := testpki.Key(t, ca.P256)
	csr, ski := cmcCSR(t, key, "cmc-bad")
	good := cmcMessage{csr: csr, key: key, ski: ski}
	other := testpki.Key(t, ca.P256)
	bogus, _ := est.NewControl(10, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 7, 99}, []byte{1})
	ident, _ := est.NewControl(10, est.OIDCMCIdentification, "someone-else")
	dup, _ := est.NewControl(2, est.OIDCMCRegInfo, []byte{1})
	noSAN, noSANski := cmcCSR(t, key, "no-san")
	issued, issuedKey := enrollBasic(t, s, "not-an-ra")

	type tc struct {
		name  string
		label string
		msg   cmcMessage
		// tamper changes the signed message; the DER stays parseable.
		tamper func([]byte) []byte
		code   int
		info   est.CMCFailInfo
		body   []uint32
		words  string
		noEcho bool // failed before the PKIData was read
	}
	flipLast := func(b []byte) []byte { b[len(b)-1] ^= 1; return b } // in the signature
	flipContent := func(b []byte) []byte {
		i := bytes.Index(b, []byte("cmc-bad")) // inside the CSR, so the eContent
		b[i] ^= 1
		return b
	}
	cases := []tc{
		{name: "bad signature", msg: good, tamper: flipLast, code: 400, info: est.FailBadMessageCheck, body: []uint32{0}, words: "does not verify"},
		{name: "content changed", msg: good, tamper: flipContent, code: 400, info: est.FailBadMessageCheck, words: "digest"},
		{name: "signer not the CSR's key", msg: cmcMessage{csr: csr, key: other, ski: ski}, code: 400, info: est.FailBadMessageCheck, words: "does not verify"},
		{name: "unknown subject key identifier", msg: cmcMessage{csr: csr, key: key, ski: []byte("nope")}, code: 400, info: est.FailBadMessageCheck, words: "neither"},
		{name: "profile refuses the CSR", label: "tls-server", msg: cmcMessage{csr: noSAN, key: key, ski: noSANski}, code: 400, info: est.FailBadRequest, body: []uint32{3}, words: "needs a subjectAltName"},
		{name: "id-data content", msg: cmcMessage{csr: csr, key: key, ski: ski, contentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}}, code: 400, info: est.FailBadRequest, words: "not id-cct-PKIData", noEcho: true},
		{name: "unknown control", msg: cmcMessage{csr: csr, key: key, ski: ski, controls: []est.TaggedAttribute{bogus}}, code: 400, info: est.FailBadRequest, body: []uint32{10}, words: "not supported"},
		{name: "identification of someone else", msg: cmcMessage{csr: csr, key: key, ski: ski, controls: []est.TaggedAttribute{ident}}, code: 403, info: est.FailBadIdentity, body: []uint32{10}, words: "identification"},
		{name: "body part ID twice", msg: cmcMessage{csr: csr, key: key, ski: ski, controls: []est.TaggedAttribute{dup}}, code: 400, info: est.FailBadRequest, body: []uint32{0}, words: "used twice"},
		{name: "another's CSR without being an RA", msg: cmcMessage{csr: csr, key: issuedKey.(crypto.Signer), cert: issued}, code: 403, info: est.FailBadRequest, body: []uint32{3}, words: "registration authority"},
		{name: "revocation without being an RA", msg: cmcMessage{key: issuedKey.(crypto.Signer), cert: issued,
			revokes: []est.RevokeRequest{{Issuer: s.Daemon.CA.Cert.RawSubject, Serial: issued.SerialNumber, Reason: 1}}}, code: 403, info: est.FailBadRequest, body: []uint32{20}, words: "registration authority"},
		{name: "nothing to do", msg: cmcMessage{key: issuedKey.(crypto.Signer), cert: issued}, code: 400, info: est.FailBadRequest, words: "no certification request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := count(t, s)
			der, nonce, tid := c.msg.encode(t)
			if c.tamper != nil {
				der = c.tamper(der)
			}
			if c.noEcho {
				nonce, tid = nil, nil
			}
			a := postCMC(t, s, s.Client(), c.label, der, nonce, tid, basic...)
			a.failed(t, c.code, c.info, c.body...)
			if !strings.Contains(a.st.StatusString, c.words) {
				t.Errorf("statusString %q does not mention %q", a.st.StatusString, c.words)
			}
			if count(t, s) != before {
				t.Fatal("a failed request was issued a certificate")
			}
		})
	}

	// A CRMF request: failed, naming it.
	t.Run("CRMF request", func(t *testing.T) {
		var d est.PKIData
		crm := []byte{0xa1, 0x05, 0x30, 0x03, 0x02, 0x01, 0x07} // [1] { certReq { certReqId 7 } }
		d.Requests = []est.TaggedRequest{{Kind: est.RequestCRMF, BodyPartID: 7, Raw: crm}}
		content, _ := d.Marshal()
		der, err := est.EncodeSignedData(est.OIDCCTPKIData, content, est.CMSSigner{Key: issuedKey.(crypto.Signer), Certificate: issued}, issued)
		if err != nil {
			t.Fatal(err)
		}
		postCMC(t, s, s.Client(), "", der, nil, nil, basic...).failed(t, 400, est.FailBadRequest, 7)
	})

	// Not a SignedData at all: still a CMC response.
	t.Run("garbage", func(t *testing.T) {
		postCMC(t, s, s.Client(), "", []byte("\x30\x03\x02\x01\x01"), nil, nil, basic...).failed(t, 400, est.FailBadRequest, 0)
	})

	// Before there is a message to answer: plain-text errors.
	der, _, _ := good.encode(t)
	b64 := est.EncodeBase64(der)
	url := s.URL + est.Path("", est.OpFullCMC)
	for _, c := range []struct {
		name, ctype string
		body        []byte
		basic       []string
		code        int
		words       string
	}{
		{"PKCS#10 Content-Type", est.MediaPKCS10, b64, basic, 415, "Content-Type"},
		{"certs-only Content-Type", est.MediaCertsOnly, b64, basic, 415, "Content-Type"},
		{"not base64", est.MediaCMCRequest, []byte("*not base64*"), basic, 400, "base64"},
		{"no credentials", est.MediaCMCRequest, b64, nil, 401, "authentication required"},
		{"wrong password", est.MediaCMCRequest, b64, []string{s.User, "wrong"}, 401, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, hdr, body := call(t, s.Client(), "POST", url, c.ctype, c.body, c.basic...)
			if status != c.code || !strings.Contains(string(body), c.words) || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
				t.Fatalf("got %d %q (%s), want %d mentioning %q", status, body, hdr.Get("Content-Type"), c.code, c.words)
			}
		})
	}
	// Without smime-type the request is taken.
	if status, _, body := call(t, s.Client(), "POST", url, est.MediaPKCS7, b64, basic...); status != 200 {
		t.Fatalf("application/pkcs7-mime without smime-type: %d %s", status, body)
	}
}

func TestFullCMCNotOffered(t *testing.T) {
	ps := ca.DefaultProfiles()
	ps[0].FullCMC = false
	s := estdtest.Start(t, estdtest.Options{Profiles: ps})
	status, _, body := call(t, s.Client(), "POST", s.URL+est.Path("", est.OpFullCMC), est.MediaCMCRequest, []byte("MA=="), s.User, s.Password)
	if status != 501 || !strings.Contains(string(body), "not offered") {
		t.Fatalf("%d %s", status, body)
	}
}

func TestFullCMCPending(t *testing.T) {
	s := estdtest.Start(t, estdtest.Options{Profiles: cmcProfiles()})
	ctx := context.Background()
	approvals := s.Daemon.Store.(store.Approvals)
	basic := []string{s.User, s.Password}
	key := testpki.Key(t, ca.P256)
	csr, ski := cmcCSR(t, key, "held-cmc")
	der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)

	before := count(t, s)
	a := postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...)
	if a.status != http.StatusAccepted || a.header.Get("Retry-After") != "60" || a.st.Status != est.CMCPending || a.st.PendInfo == nil {
		t.Fatalf("pending: %d Retry-After %q %v", a.status, a.header.Get("Retry-After"), a.st)
	}
	pending, _, err := approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if err != nil || len(pending) != 1 || pending[0].Operation != string(est.OpFullCMC) || pending[0].Subject != "CN=held-cmc" {
		t.Fatalf("pending requests: %+v %v", pending, err)
	}
	if string(a.st.PendInfo.Token) != pending[0].ID || !strings.Contains(a.st.StatusString, pending[0].ID) {
		t.Errorf("pendToken %q, want the request ID %s", a.st.PendInfo.Token, pending[0].ID)
	}
	if count(t, s) != before {
		t.Fatal("a pending request was issued a certificate")
	}
	// The same CSR in a new message (new nonce) finds the same request.
	der2, nonce2, tid2 := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
	if a := postCMC(t, s, s.Client(), "held", der2, nonce2, tid2, basic...); a.status != http.StatusAccepted {
		t.Fatalf("retry: %d", a.status)
	}

	if err := approvals.Decide(ctx, pending[0].ID, store.RequestApproved, "alice", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	a = postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...)
	if a.status != 200 || a.st.Status != est.CMCSuccess {
		t.Fatalf("approved: %d %v", a.status, a.st)
	}
	first := a.cert(t, key.Public())
	// A retry after a lost response gets the same certificate.
	a = postCMC(t, s, s.Client(), "held", der2, nonce2, tid2, basic...)
	if a.status != 200 || a.cert(t, key.Public()).SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatalf("retry after issuance: %d, another certificate", a.status)
	}
	if count(t, s) != before+1 {
		t.Fatal("one approved request, not one certificate")
	}

	// Rejection: failed with the operator's reason.
	key2 := testpki.Key(t, ca.P256)
	csr2, ski2 := cmcCSR(t, key2, "held-cmc-2")
	der, nonce, tid = cmcMessage{csr: csr2, key: key2, ski: ski2}.encode(t)
	postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...)
	pending, _, _ = approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
	if len(pending) != 1 {
		t.Fatalf("%d pending", len(pending))
	}
	if err := approvals.Decide(ctx, pending[0].ID, store.RequestRejected, "alice", "unknown device", time.Now()); err != nil {
		t.Fatal(err)
	}
	a = postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...)
	a.failed(t, 403, est.FailBadRequest, 3)
	if !strings.Contains(a.st.StatusString, "unknown device") {
		t.Errorf("statusString %q", a.st.StatusString)
	}
}

// raFixture is an estd with a registration authority certificate it issued.
type raFixture struct {
	s      *estdtest.Server
	ra     *x509.Certificate
	raKey  crypto.Signer
	raTLS  tls.Certificate
	client *http.Client // presents the RA certificate
}

func newRAFixture(t *testing.T) *raFixture {
	t.Helper()
	s := estdtest.Start(t, estdtest.Options{Profiles: cmcProfiles()})
	key := testpki.Key(t, ca.P256)
	status, reason, ra := enrollment{op: est.OpSimpleEnroll, label: "ra", basic: []string{s.User, s.Password}, csr: testpki.CSR(t, key, "RA 1", nil, nil)}.do(t, s)
	if status != 200 {
		t.Fatalf("RA certificate: %d %s", status, reason)
	}
	if !est.HasEKU(ra, est.OIDKPCMCRA) {
		t.Fatal("the ra label issued a certificate without id-kp-cmcRA")
	}
	f := &raFixture{s: s, ra: ra, raKey: key, raTLS: tlsCert(ra, key)}
	f.client = s.Client(f.raTLS)
	return f
}

func TestFullCMCRegistrationAuthority(t *testing.T) {
	f := newRAFixture(t)
	s := f.s
	ctx := context.Background()

	// The RA submits a device's CSR on the fleet label.
	devKey := testpki.Key(t, ca.P256)
	devCSR := testpki.CSR(t, devKey, "fleet-device-1", nil, nil)
	der, nonce, tid := cmcMessage{csr: devCSR, key: f.raKey, cert: f.ra}.encode(t)
	a := postCMC(t, s, f.client, "fleet", der, nonce, tid)
	if a.status != 200 {
		t.Fatalf("RA enrollment: %d %q %v", a.status, a.text, a.st)
	}
	dev := a.cert(t, devKey.Public())
	rec, err := s.Daemon.Store.BySerial(ctx, dev.SerialNumber)
	if err != nil || rec.Requester != f.ra.Subject.String() || rec.Profile != "fleet" {
		t.Fatalf("record: %+v %v", rec, err)
	}

	// Not on a label without AllowRA; not when the RA is not the TLS client.
	der, nonce, tid = cmcMessage{csr: devCSR, key: f.raKey, cert: f.ra}.encode(t)
	postCMC(t, s, f.client, "tls-client", der, nonce, tid).failed(t, 403, est.FailBadRequest, 3)
	postCMC(t, s, s.Client(), "fleet", der, nonce, tid, s.User, s.Password).failed(t, 403, est.FailBadRequest, 3)

	// The device renews with its certificate: it works until revoked.
	renew := func() int {
		st, _, _ := enrollment{op: est.OpSimpleReenroll, label: "fleet", csr: renewalCSRFor(t, dev, devKey), certs: []tls.Certificate{tlsCert(dev, devKey)}}.do(t, s)
		return st
	}
	if st := renew(); st != 200 {
		t.Fatalf("reenroll before revocation: %d", st)
	}

	// Revocation of a certificate of another label, of an unknown serial,
	// with removeFromCRL, or by another CA's name: failed, nothing revoked.
	other, _ := enrollBasic(t, s, "other-label")
	issuer := s.Daemon.CA.Cert.RawSubject
	for _, c := range []struct {
		name string
		rr   est.RevokeRequest
		code int
		info est.CMCFailInfo
	}{
		{"other label", est.RevokeRequest{Issuer: issuer, Serial: other.SerialNumber, Reason: 1}, 400, est.FailBadCertID},
		{"unknown serial", est.RevokeRequest{Issuer: issuer, Serial: big.NewInt(4711), Reason: 1}, 400, est.FailBadCertID},
		{"removeFromCRL", est.RevokeRequest{Issuer: issuer, Serial: dev.SerialNumber, Reason: 8}, 400, est.FailBadRequest},
		{"another issuer", est.RevokeRequest{Issuer: s.Root.RawSubject, Serial: dev.SerialNumber, Reason: 1}, 400, est.FailBadCertID},
	} {
		der, nonce, tid := cmcMessage{key: f.raKey, cert: f.ra, revokes: []est.RevokeRequest{c.rr}}.encode(t)
		postCMC(t, s, f.client, "fleet", der, nonce, tid).failed(t, c.code, c.info, 20)
	}
	if r, _ := s.Daemon.Store.BySerial(ctx, other.SerialNumber); r.Revoked {
		t.Fatal("a certificate of another label was revoked")
	}

	// Revocation by the RA.
	der, nonce, tid = cmcMessage{key: f.raKey, cert: f.ra, revokes: []est.RevokeRequest{
		{Issuer: issuer, Serial: dev.SerialNumber, Reason: 1, Comment: "stolen"}}}.encode(t)
	a = postCMC(t, s, f.client, "fleet", der, nonce, tid)
	if a.status != 200 || a.st.Status != est.CMCSuccess || len(a.st.BodyList) != 1 || a.st.BodyList[0][0] != 20 {
		t.Fatalf("revocation: %d %v", a.status, a.st)
	}
	rec, err = s.Daemon.Store.BySerial(ctx, dev.SerialNumber)
	if err != nil || !rec.Revoked || rec.RevocationReason != 1 {
		t.Fatalf("after revocation: %+v %v", rec, err)
	}
	if st := renew(); st != http.StatusForbidden {
		t.Fatalf("reenroll after revocation: %d, want 403", st)
	}
}

// renewalCSRFor is a CSR with cert's subject for key.
func renewalCSRFor(t *testing.T, cert *x509.Certificate, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: cert.RawSubject}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestFullCMCOpenSSL checks estd against openssl's CMS tools: openssl
// verifies and unpacks estd's responses, and signs requests estd takes, with
// the request's own key (by subject key identifier) and as an RA.
func TestFullCMCOpenSSL(t *testing.T) {
	openssl := testenv.Command(t, "openssl")
	f := newRAFixture(t)
	s := f.s
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	keyPEM := func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}
	// pkiData returns the DER PKIData of a request for csr.
	pkiData := func(csr []byte, nonce []byte) []byte {
		tidC, _ := est.NewControl(1, est.OIDCMCTransactionID, 7)
		nC, _ := est.NewControl(2, est.OIDCMCSenderNonce, nonce)
		d := est.PKIData{Controls: []est.TaggedAttribute{tidC, nC}, Requests: []est.TaggedRequest{{Kind: est.RequestPKCS10, BodyPartID: 3, CSR: csr}}}
		der, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	t.Run("request signed by its own key", func(t *testing.T) {
		// Not Ed25519: OpenSSL 3.0 cannot sign CMS with it ("invalid digest").
		for _, kt := range []ca.KeyType{ca.P256, ca.P384, ca.RSA2048} {
			key := testpki.Key(t, kt)
			csr, ski := cmcCSR(t, key, "openssl-"+string(kt))
			// openssl signs with a certificate; a throw-away self-signed one
			// for the key, whose subject key identifier names the signer
			// (-keyid) and which is left out of the message (-nocerts).
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "self"}, SubjectKeyId: ski,
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
			selfDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
			if err != nil {
				t.Fatal(err)
			}
			nonce := []byte("openssl-nonce-" + string(kt))
			in := write("pkidata-"+string(kt)+".der", pkiData(csr, nonce))
			out := filepath.Join(dir, "req-"+string(kt)+".der")
			run("cms", "-sign", "-binary", "-nodetach", "-nocerts", "-keyid", "-md", "sha256",
				"-econtent_type", "1.3.6.1.5.5.7.12.2", "-signer", write("self-"+string(kt)+".pem", pemOf("CERTIFICATE", selfDER)),
				"-inkey", write("key-"+string(kt)+".pem", keyPEM(key)), "-in", in, "-outform", "DER", "-out", out)
			der, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			a := postCMC(t, s, s.Client(), "", der, nonce, big.NewInt(7), s.User, s.Password)
			if a.status != 200 {
				t.Fatalf("%s: %d %q %v", kt, a.status, a.text, a.st)
			}
			a.cert(t, key.Public())

			// openssl verifies the response against estd's root and unpacks
			// exactly the PKIResponse.
			resp := write("resp-"+string(kt)+".der", a.der)
			content := filepath.Join(dir, "content-"+string(kt)+".der")
			run("cms", "-verify", "-inform", "DER", "-in", resp, "-CAfile", s.RootFile, "-purpose", "any", "-binary", "-out", content)
			got, err := os.ReadFile(content)
			if err != nil || !bytes.Equal(got, a.sd.Content) {
				t.Fatalf("openssl extracted %d bytes, not the PKIResponse (%v)", len(got), err)
			}
			printed := string(run("cms", "-cmsout", "-print", "-inform", "DER", "-in", resp))
			if !strings.Contains(printed, "1.3.6.1.5.5.7.12.3") && !strings.Contains(printed, "id-cct-PKIResponse") {
				t.Errorf("openssl does not see eContentType id-cct-PKIResponse:\n%s", printed)
			}
		}
	})

	t.Run("request signed by an RA", func(t *testing.T) {
		devKey := testpki.Key(t, ca.P256)
		csr := testpki.CSR(t, devKey, "openssl-fleet-1", nil, nil)
		nonce := []byte("openssl-ra-nonce")
		out := filepath.Join(dir, "ra-req.der")
		run("cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-econtent_type", "1.3.6.1.5.5.7.12.2",
			"-signer", write("ra.pem", pemOf("CERTIFICATE", f.ra.Raw)), "-inkey", write("ra.key", keyPEM(f.raKey)),
			"-in", write("ra-pkidata.der", pkiData(csr, nonce)), "-outform", "DER", "-out", out)
		der, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		a := postCMC(t, s, f.client, "fleet", der, nonce, big.NewInt(7))
		if a.status != 200 {
			t.Fatalf("%d %q %v", a.status, a.text, a.st)
		}
		a.cert(t, devKey.Public())
	})

	t.Run("failure response", func(t *testing.T) {
		// A failed response verifies too, and its status is readable.
		a := postCMC(t, s, s.Client(), "", []byte("\x30\x00"), nil, nil, s.User, s.Password)
		a.failed(t, 400, est.FailBadRequest)
		run("cms", "-verify", "-inform", "DER", "-in", write("fail.der", a.der), "-CAfile", s.RootFile, "-purpose", "any", "-binary", "-out", filepath.Join(dir, "fail-content.der"))
	})
}

// TestFullCMCPendingCap: fullcmc counts against a label's max_pending as
// simpleenroll does; one more gets 503 with the approval Retry-After and a
// CMC failure of tryLater.
func TestFullCMCPendingCap(t *testing.T) {
	ps := cmcProfiles()
	for _, p := range ps {
		if p.Name == "held" {
			p.MaxPending = 1
		}
	}
	s := estdtest.Start(t, estdtest.Options{Profiles: ps})
	basic := []string{s.User, s.Password}
	var answers []cmcAnswer
	for _, cn := range []string{"a", "b"} {
		key := testpki.Key(t, ca.P256)
		csr, ski := cmcCSR(t, key, cn)
		der, nonce, tid := cmcMessage{csr: csr, key: key, ski: ski}.encode(t)
		answers = append(answers, postCMC(t, s, s.Client(), "held", der, nonce, tid, basic...))
	}
	if answers[0].status != http.StatusAccepted {
		t.Fatalf("first request: %d, want 202", answers[0].status)
	}
	a := answers[1]
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "60" || a.st == nil ||
		a.st.Status != est.CMCFailed || a.st.FailInfo == nil || *a.st.FailInfo != est.FailTryLater {
		t.Fatalf("over the cap: %d Retry-After %q status %+v", a.status, a.header.Get("Retry-After"), a.st)
	}
}
