package client_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/client"
	"github.com/estkit/estkit/internal/estdtest"
	"github.com/estkit/estkit/internal/testpki"
	"github.com/estkit/estkit/store"
)

// cmcEstd runs estd with the default labels (fullcmc on) plus "held"
// (manual approval), "ra" (issues RA certificates) and "fleet" (accepts
// registration authorities).
func cmcEstd(t *testing.T) (*estdtest.Server, *client.Client) {
	t.Helper()
	ps := ca.DefaultProfiles()
	held, ra, fleet := *ps[1], *ps[1], *ps[1]
	held.Name, held.ManualApproval = "held", true
	ra.Name, ra.ExtKeyUsageOIDs = "ra", []asn1.ObjectIdentifier{est.OIDKPCMCRA}
	fleet.Name, fleet.AllowRA = "fleet", true
	s := estdtest.Start(t, estdtest.Options{Profiles: append(ps, &held, &ra, &fleet)})
	return s, &client.Client{Server: s.Addr, TrustAnchors: s.Roots(), Username: s.User, Password: s.Password}
}

// cmcCSR returns a CSR for key declaring its subject key identifier.
func cmcCSR(t *testing.T, key crypto.Signer, cn string, dns ...string) []byte {
	t.Helper()
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	ski, err := est.KeyID(spki)
	if err != nil {
		t.Fatal(err)
	}
	val, _ := asn1.Marshal(ski)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectKeyIdentifier, Value: val}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestEstdFullCMC(t *testing.T) {
	t.Parallel()
	s, c := cmcEstd(t)
	key := ecKey(t)
	res, err := c.FullCMC(ctx(t), &client.CMCRequest{CSR: cmcCSR(t, key, "cmc-client"), Key: key, TransactionID: big.NewInt(99), Identification: s.User})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != est.CMCSuccess || res.Certificate == nil || !samePublic(res.Certificate.PublicKey, key.Public()) {
		t.Fatalf("status %v, certificate %v", res.Status, res.Certificate)
	}
	if !res.Signer.Equal(s.Daemon.CA.Cert) || res.TransactionID.Int64() != 99 || len(res.Certificates) != 3 {
		t.Errorf("signer %s, transactionId %v, %d certificates", res.Signer.Subject, res.TransactionID, len(res.Certificates))
	}

	// A CSR without a subject key identifier: the RFC 5280 identifier names the signer.
	if _, err := c.FullCMC(ctx(t), &client.CMCRequest{CSR: csr(t, key, "no-ski"), Key: key}); err != nil {
		t.Fatal(err)
	}

	// A refusal by the profile: a *CMCError over a 400.
	c.Label = "tls-server"
	_, err = c.FullCMC(ctx(t), &client.CMCRequest{CSR: cmcCSR(t, key, "no-san"), Key: key})
	var ce *client.CMCError
	if !errors.As(err, &ce) || ce.Status != est.CMCFailed || ce.FailInfo == nil || *ce.FailInfo != est.FailBadRequest ||
		!strings.Contains(ce.StatusString, "subjectAltName") {
		t.Fatalf("refusal: %v", err)
	}
	var he *client.Error
	if !errors.Is(err, client.ErrRejected) || !errors.Is(err, est.ErrBadRequest) || !errors.As(err, &he) || he.StatusCode != 400 {
		t.Errorf("refusal does not read as a 400: %v", err)
	}
	if !strings.Contains(err.Error(), "failed (badRequest)") {
		t.Errorf("message %q", err)
	}

	// Wrong credentials: a plain *Error, no CMC response.
	c.Label, c.Password = "", "wrong"
	_, err = c.FullCMC(ctx(t), &client.CMCRequest{CSR: cmcCSR(t, key, "x"), Key: key})
	if !errors.As(err, &he) || he.StatusCode != 401 || errors.As(err, &ce) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestEstdFullCMCPending(t *testing.T) {
	t.Parallel()
	s, c := cmcEstd(t)
	c.Label = "held"
	ft := newFakeTime()
	var reasons []string
	c.Clock = ft.Now
	c.OnWait = func(op est.Operation, d time.Duration, reason string) { reasons = append(reasons, reason) }
	approvals := s.Daemon.Store.(store.Approvals)
	c.Sleep = func(ctx context.Context, d time.Duration) error {
		// The operator approves while the client waits.
		reqs, _, err := approvals.Requests(ctx, store.RequestPending, store.ListOptions{})
		if err != nil || len(reqs) != 1 {
			t.Errorf("pending: %d %v", len(reqs), err)
			return errors.New("no pending request")
		}
		if err := approvals.Decide(ctx, reqs[0].ID, store.RequestApproved, "alice", "", time.Now()); err != nil {
			return err
		}
		return ft.Sleep(ctx, d)
	}
	key := ecKey(t)
	res, err := c.FullCMC(longCtx(t), &client.CMCRequest{CSR: cmcCSR(t, key, "held-client"), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if !samePublic(res.Certificate.PublicKey, key.Public()) {
		t.Fatal("not the certificate for the key")
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "202 Accepted: waiting for manual approval") {
		t.Errorf("waits %q", reasons)
	}
	if got := ft.Slept(); len(got) != 1 || got[0] != 60*time.Second {
		t.Errorf("slept %v, want the Retry-After of 60s", got)
	}
}

func TestEstdFullCMCRegistrationAuthority(t *testing.T) {
	t.Parallel()
	s, c := cmcEstd(t)
	raKey := ecKey(t)
	c.Label = "ra"
	enr, err := c.Enroll(ctx(t), csr(t, raKey, "RA client"))
	if err != nil {
		t.Fatal(err)
	}
	ra := enr.Certificate
	rac := &client.Client{Server: s.Addr, TrustAnchors: s.Roots(), Label: "fleet", Certificate: enr.TLSCertificate(raKey)}

	// On behalf of a device whose key the RA does not hold.
	devKey := ecKey(t)
	res, err := rac.FullCMC(ctx(t), &client.CMCRequest{CSR: csr(t, devKey, "fleet-7"), Key: raKey, Certificate: ra})
	if err != nil {
		t.Fatal(err)
	}
	dev := res.Certificate
	if dev == nil || !samePublic(dev.PublicKey, devKey.Public()) {
		t.Fatal("no certificate for the device key")
	}

	// Revocation.
	res, err = rac.FullCMC(ctx(t), &client.CMCRequest{Key: raKey, Certificate: ra, Revoke: []est.RevokeRequest{
		{Issuer: dev.RawIssuer, Serial: dev.SerialNumber, Reason: est.CRLReasons["keyCompromise"]}}})
	if err != nil || res.Status != est.CMCSuccess || res.Certificate != nil {
		t.Fatalf("revocation: %v %v", res, err)
	}
	rec, err := s.Daemon.Store.BySerial(context.Background(), dev.SerialNumber)
	if err != nil || !rec.Revoked || rec.RevocationReason != 1 {
		t.Fatalf("record after revocation: %+v %v", rec, err)
	}

	// The device cannot renew with the revoked certificate.
	devc := &client.Client{Server: s.Addr, TrustAnchors: s.Roots(), Label: "fleet", Certificate: &tls.Certificate{Certificate: [][]byte{dev.Raw}, PrivateKey: devKey, Leaf: dev}}
	renewal, err := client.RenewalCSR(dev, devKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devc.Reenroll(ctx(t), renewal); !errors.Is(err, est.ErrForbidden) {
		t.Fatalf("renewal of a revoked certificate: %v", err)
	}
}

func TestCMCRequestEncode(t *testing.T) {
	key, other := ecKey(t), ecKey(t)
	for name, r := range map[string]*client.CMCRequest{
		"no key":                  {CSR: csr(t, key, "x")},
		"nothing to do":           {Key: key},
		"another key":             {CSR: csr(t, key, "x"), Key: other},
		"revocation without cert": {Key: key, Revoke: []est.RevokeRequest{{Issuer: []byte{0x30, 0}, Serial: big.NewInt(1)}}},
		"not a CSR":               {CSR: []byte("nope"), Key: key},
	} {
		if _, err := r.Encode(); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	der, err := (&client.CMCRequest{CSR: cmcCSR(t, key, "x"), Key: key, RegInfo: []byte("r"), SenderNonce: []byte("n")}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	sd, err := est.ParseSignedData(der)
	if err != nil || !sd.ContentType.Equal(est.OIDCCTPKIData) {
		t.Fatal(err)
	}
	data, err := est.ParsePKIData(sd.Content)
	if err != nil || data.Control(est.OIDCMCRegInfo) == nil || data.Control(est.OIDCMCTransactionID) == nil {
		t.Fatalf("PKIData %+v %v", data, err)
	}
	if n, _ := data.Control(est.OIDCMCSenderNonce).OctetString(); string(n) != "n" {
		t.Errorf("senderNonce %q", n)
	}
}

// TestFullCMCResponseChecks serves forged responses: the client refuses a
// recipientNonce that is not its senderNonce, a response signed by a CA it
// does not trust or not signed at all, and reads a 200 with status failed.
func TestFullCMCResponseChecks(t *testing.T) {
	caKey := ecKey(t)
	now := time.Now()
	caCert, err := ca.NewRoot(caKey, pkix.Name{CommonName: "CMC test CA"}, now.Add(-time.Hour), time.Hour*24)
	if err != nil {
		t.Fatal(err)
	}
	rogue := testpki.NewRoot(t, "rogue", now)
	type forged struct {
		nonce  []byte
		status est.CMCStatus
		key    crypto.Signer
		cert   *x509.Certificate
		code   int
	}
	var f forged
	_, c, _ := newTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		fail := est.FailBadRequest
		st := &est.CMCStatusInfoV2{Status: f.status, BodyList: []est.BodyPartReference{{0}}}
		if f.status == est.CMCFailed {
			st.FailInfo, st.StatusString = &fail, "no"
		}
		c1, _ := est.NewControl(1, est.OIDCMCStatusInfoV2, st)
		c2, _ := est.NewControl(2, est.OIDCMCRecipientNonce, f.nonce)
		content, _ := (&est.PKIResponse{Controls: []est.TaggedAttribute{c1, c2}}).Marshal()
		der, err := est.EncodeSignedData(est.OIDCCTPKIResponse, content, est.CMSSigner{Key: f.key, Certificate: f.cert}, f.cert)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", est.MediaCMCResponse)
		w.WriteHeader(f.code)
		w.Write(est.EncodeBase64(der))
	})
	c.TrustAnchors.AddCert(caCert)
	key := ecKey(t)
	req := &client.CMCRequest{Key: key, Certificate: caCert, Revoke: []est.RevokeRequest{{Issuer: caCert.RawSubject, Serial: big.NewInt(5)}}, SenderNonce: []byte("mine")}
	req.Key = caKey

	f = forged{nonce: []byte("mine"), status: est.CMCSuccess, key: caKey, cert: caCert, code: 200}
	if _, err := c.FullCMC(ctx(t), req); err != nil {
		t.Fatalf("a good response: %v", err)
	}
	f.nonce = []byte("theirs")
	if _, err := c.FullCMC(ctx(t), req); !errors.Is(err, client.ErrMalformedResponse) || !strings.Contains(err.Error(), "recipientNonce") {
		t.Errorf("nonce mismatch: %v", err)
	}
	f = forged{nonce: []byte("mine"), status: est.CMCSuccess, key: rogue.Key, cert: rogue.Cert, code: 200}
	if _, err := c.FullCMC(ctx(t), req); !errors.Is(err, client.ErrMalformedResponse) || !strings.Contains(err.Error(), "trust anchors") {
		t.Errorf("untrusted signer: %v", err)
	}
	f = forged{nonce: []byte("mine"), status: est.CMCFailed, key: caKey, cert: caCert, code: 200}
	_, err = c.FullCMC(ctx(t), req)
	var ce *client.CMCError
	if !errors.As(err, &ce) || ce.HTTP != nil || errors.Is(err, client.ErrRejected) || *ce.FailInfo != est.FailBadRequest {
		t.Errorf("200 with failed: %v", err)
	}
}
