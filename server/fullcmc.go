package server

// Full CMC (RFC 7030 section 4.3; RFC 5272, 5273, 5274 as updated by RFC
// 6402). A POST to /fullcmc carries a base64 CMS SignedData (RFC 8951)
// whose content is a PKIData (eContentType id-cct-PKIData). estd answers a
// Full PKI Response: a SignedData of a PKIResponse signed by the issuing CA,
// holding a statusInfoV2 control, the transactionId of the request, the
// request's senderNonce as recipientNonce and a senderNonce of its own, and
// in its certificates field the certificate issued and the CA chain.
//
// What a message may do:
//   - request a certificate: one PKCS#10 request (TaggedCertificationRequest);
//     CRMF and other formats get failed/badRequest;
//   - revoke certificates: revokeRequest controls (at most maxCMCRevokes);
//
// not both. Controls understood: transactionId, senderNonce, recipientNonce
// (ignored), identification (it must name the authenticated requester, as
// the access log does: the Basic user name or the client certificate's
// subject, else failed/badIdentity), regInfo (accepted and ignored),
// revokeRequest. Any other control fails the message with badRequest naming
// its body part, as RFC 5272 section 3.2.1.2 asks for controls a server
// does not process.
//
// Who may sign, and so who a request is from:
//   - the key being certified (RFC 5272 section 3.2.1.3.1): the signer is
//     named by the subjectKeyIdentifier the CSR declares in its extension
//     request, or for a CSR without one by the RFC 5280 (SHA-1) or RFC 7093
//     (SHA-256) method-1 identifier of its key; a certificate for that same
//     key may sign as well;
//   - a registration authority (RFC 6402 id-kp-cmcRA) on a label that sets
//     AllowRA: the certificate that signs the message must be the TLS
//     client certificate the request authenticated with, so the RA is
//     verified once, by package auth, as a manufacturer or issued
//     certificate. An RA may submit CSRs for keys it does not hold (on
//     behalf of devices). Revocation needs an RA certificate estd issued
//     (issued-cert, on record, not revoked), and reaches only certificates
//     issued under the label the message is sent to.
//
// Authentication is as for /simpleenroll (the label's methods, failed
// attempts rate-limited alike), and so are profiles, manual approval (a held
// request is answered 202 with Retry-After and a pending status whose
// pendToken is the approval request ID; the same request sent again finds
// it) and proof-of-possession linking.
//
// HTTP status (RFC 7030 4.3.2): 200 for success; a CMC failure is a 4xx or
// 5xx, by the one mapping of errors.go, with the Full PKI Response as its
// body. What comes before there is a message to answer (authentication,
// Content-Type, size, base64) is a plain-text error like every other.

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"log/slog"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/store"
)

// maxCMCRevokes bounds the revokeRequest controls of one message.
const maxCMCRevokes = 32

// cmcFailure is why a Full PKI Request failed: the CMCFailInfo, the body
// parts it concerns (0: the whole PKIData) and an *est.Error whose kind
// sets the HTTP status and whose detail is the statusString.
type cmcFailure struct {
	info     est.CMCFailInfo
	bodyList []uint32
	err      error
}

func (f *cmcFailure) Error() string { return f.err.Error() }
func (f *cmcFailure) Unwrap() error { return f.err }

func cmcFail(info est.CMCFailInfo, ids []uint32, kind *est.Kind, format string, args ...any) *cmcFailure {
	if len(ids) == 0 {
		ids = []uint32{0}
	}
	return &cmcFailure{info: info, bodyList: ids, err: est.Errorf(kind, format, args...)}
}

// cmcFailFrom wraps err, an error of issuance or of the store, as a failure
// of the body parts ids.
func cmcFailFrom(err error, ids []uint32) *cmcFailure {
	info := est.FailBadRequest
	switch est.KindOf(err) {
	case est.ErrUnavailable, est.ErrTooManyRequests:
		info = est.FailTryLater
	case est.ErrInternal:
		info = est.FailInternalCAError
	}
	return &cmcFailure{info: info, bodyList: ids, err: err}
}

// cmcExchange is one Full PKI Request being served.
type cmcExchange struct {
	h  *Handler
	ca *ca.CA
	p  *label
	rq *request
	r  *http.Request

	transactionID *big.Int // nil when the request had none
	senderNonce   []byte   // nil when the request had none

	csrID   uint32
	csr     *x509.CertificateRequest
	revokes []cmcRevoke
	// signer is the certificate that signed the message; nil when the key
	// of the CSR did (selfSigned).
	signer     *x509.Certificate
	selfSigned bool

	// The outcome: a failure, a pending approval request, or success for
	// the body parts done (with cert when one was issued).
	fail    *cmcFailure
	pending *store.Request
	done    []uint32
	cert    *x509.Certificate
}

type cmcRevoke struct {
	id  uint32
	req *est.RevokeRequest
}

// fullCMC serves /fullcmc.
func (h *Handler) fullCMC(w http.ResponseWriter, r *http.Request, p *label, rq *request) (status int, err error) {
	var refused error
	defer func() {
		// One audit line per request, as for the other enrollment
		// operations; a pending request has its own line, a revocation its own.
		if e := cmp.Or(err, refused); status != http.StatusAccepted && (e != nil || rq.cert != nil) {
			h.audit(rq, e)
		}
	}()
	if !p.FullCMC {
		return 0, est.Errorf(est.ErrNotImplemented, "fullcmc is not offered for this label")
	}
	issuer, ok := h.issuer.(*ca.CA)
	if !ok || issuer.Signer == nil || issuer.Cert == nil {
		return 0, est.Errorf(est.ErrNotImplemented, "fullcmc needs an issuer that signs its responses")
	}
	if err := h.limits.check(w, r, h.clock()); err != nil {
		return 0, err
	}
	who, err := p.authn.Authenticate(r)
	if err != nil {
		h.limits.failed(r, err, h.clock())
		if est.KindOf(err) == est.ErrUnauthorized && p.Accepts(auth.Basic) {
			w.Header().Set("WWW-Authenticate", `Basic realm="estd", charset="UTF-8"`)
		}
		return 0, err
	}
	rq.who = who
	der, err := h.readCMC(w, r)
	if err != nil {
		return 0, err
	}
	x := &cmcExchange{h: h, ca: issuer, p: p, rq: rq, r: r}
	x.fail = x.serve(r.Context(), der)
	if x.fail != nil {
		refused = x.fail
	}
	return x.write(w)
}

// readCMC checks the Content-Type and reads and decodes the base64 body.
func (h *Handler) readCMC(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	st, hasType := params["smime-type"]
	if err != nil || !strings.EqualFold(mt, est.MediaPKCS7) || hasType && !strings.EqualFold(st, "CMC-request") {
		return nil, est.Errorf(est.ErrMediaType, "Content-Type must be %s", est.MediaCMCRequest)
	}
	return h.readBody(w, r)
}

// serve processes the request: it checks everything first, then revokes or
// issues. It returns the failure, or nil with x.pending or x.done set.
func (x *cmcExchange) serve(ctx context.Context, der []byte) *cmcFailure {
	sd, err := est.ParseSignedData(der)
	if err != nil {
		return cmcFail(algOr(err, est.FailBadRequest), nil, est.ErrBadRequest, "%s", est.Detail(err))
	}
	if !sd.ContentType.Equal(est.OIDCCTPKIData) {
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "the signed content is of type %v, not id-cct-PKIData", sd.ContentType)
	}
	data, err := est.ParsePKIData(sd.Content)
	if err != nil {
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "%s", est.Detail(err))
	}
	x.echo(data)
	// The integrity of the message first, then what it asks.
	if len(sd.Signers) != 1 {
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "the message has %d signers; estd takes exactly one", len(sd.Signers))
	}
	if f := x.verify(sd, sd.Signers[0], data); f != nil {
		return f
	}
	if f := x.readControls(data); f != nil {
		return f
	}
	if f := x.readRequests(data); f != nil {
		return f
	}
	if f := x.authorize(); f != nil {
		return f
	}
	if x.csr != nil {
		if err := x.h.checkLink(x.r, x.csr, x.p, x.rq.who); err != nil {
			return &cmcFailure{info: est.FailPOPFailed, bodyList: []uint32{x.csrID}, err: err}
		}
		if err := checkBinding(x.csr, x.p, x.rq.who); err != nil {
			return &cmcFailure{info: est.FailBadRequest, bodyList: []uint32{x.csrID}, err: err}
		}
		return x.enroll(ctx)
	}
	return x.revoke(ctx)
}

// algOr returns badAlg for an unsupported algorithm, else def.
func algOr(err error, def est.CMCFailInfo) est.CMCFailInfo {
	if errors.Is(err, est.ErrCMSAlgorithm) {
		return est.FailBadAlg
	}
	return def
}

// echo keeps the transactionId and senderNonce to echo, even when the
// message fails later.
func (x *cmcExchange) echo(data *est.PKIData) {
	if tid, n := controlOf(data, est.OIDCMCTransactionID); n == 1 {
		x.transactionID, _ = tid.Integer()
	}
	if sn, n := controlOf(data, est.OIDCMCSenderNonce); n == 1 {
		x.senderNonce, _ = sn.OctetString()
	}
}

// readControls checks the body part IDs and reads the controls.
func (x *cmcExchange) readControls(data *est.PKIData) *cmcFailure {
	seen := map[uint32]bool{}
	ids := make([]uint32, 0, len(data.Controls)+len(data.Requests)+len(data.CMS)+len(data.OtherMsgs))
	for _, c := range data.Controls {
		ids = append(ids, c.BodyPartID)
	}
	for _, r := range data.Requests {
		ids = append(ids, r.BodyPartID)
	}
	for _, c := range data.CMS {
		ids = append(ids, c.BodyPartID)
	}
	for _, m := range data.OtherMsgs {
		ids = append(ids, m.BodyPartID)
	}
	for _, id := range ids {
		if id == 0 || seen[id] {
			// RFC 5272 3.2.2: 0 names the PKIData itself; IDs are unique.
			return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "body part ID %d is reserved or used twice", id)
		}
		seen[id] = true
	}
	for i := range data.Controls {
		c := &data.Controls[i]
		id := []uint32{c.BodyPartID}
		var err error
		switch {
		case c.Type.Equal(est.OIDCMCTransactionID):
			_, err = c.Integer()
		case c.Type.Equal(est.OIDCMCSenderNonce), c.Type.Equal(est.OIDCMCRecipientNonce), c.Type.Equal(est.OIDCMCRegInfo):
			_, err = c.OctetString()
		case c.Type.Equal(est.OIDCMCIdentification):
			var name string
			if name, err = c.UTF8String(); err == nil && name != x.rq.who.Name {
				return cmcFail(est.FailBadIdentity, id, est.ErrForbidden, "the identification control names %q, not the authenticated requester", clipString(name))
			}
		case c.Type.Equal(est.OIDCMCRevokeRequest):
			var rr *est.RevokeRequest
			if rr, err = c.RevokeRequest(); err == nil {
				x.revokes = append(x.revokes, cmcRevoke{id: c.BodyPartID, req: rr})
			}
		default:
			return cmcFail(est.FailBadRequest, id, est.ErrBadRequest, "control %v is not supported", c.Type)
		}
		if err != nil {
			return cmcFail(est.FailBadRequest, id, est.ErrBadRequest, "%s", est.Detail(err))
		}
		if c.Type.Equal(est.OIDCMCTransactionID) || c.Type.Equal(est.OIDCMCSenderNonce) || c.Type.Equal(est.OIDCMCIdentification) {
			if _, n := controlOf(data, c.Type); n > 1 {
				return cmcFail(est.FailBadRequest, id, est.ErrBadRequest, "control %v appears %d times", c.Type, n)
			}
		}
	}
	if len(x.revokes) > maxCMCRevokes {
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "%d revokeRequest controls; estd takes at most %d per message", len(x.revokes), maxCMCRevokes)
	}
	return nil
}

func controlOf(data *est.PKIData, typ asn1.ObjectIdentifier) (*est.TaggedAttribute, int) {
	var first *est.TaggedAttribute
	n := 0
	for i := range data.Controls {
		if data.Controls[i].Type.Equal(typ) {
			if first == nil {
				first = &data.Controls[i]
			}
			n++
		}
	}
	return first, n
}

// readRequests reads the one certification request, if any, and refuses
// what estd does not process.
func (x *cmcExchange) readRequests(data *est.PKIData) *cmcFailure {
	if len(data.CMS)+len(data.OtherMsgs) > 0 {
		var ids []uint32
		for _, c := range data.CMS {
			ids = append(ids, c.BodyPartID)
		}
		for _, m := range data.OtherMsgs {
			ids = append(ids, m.BodyPartID)
		}
		return cmcFail(est.FailBadRequest, ids, est.ErrBadRequest, "cmsSequence and otherMsgSequence are not supported")
	}
	for _, r := range data.Requests {
		if r.Kind != est.RequestPKCS10 {
			return cmcFail(est.FailBadRequest, []uint32{r.BodyPartID}, est.ErrBadRequest, "only PKCS#10 certification requests are supported")
		}
	}
	switch {
	case len(data.Requests) > 1:
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "%d certification requests; estd takes one per message", len(data.Requests))
	case len(data.Requests) == 1 && len(x.revokes) > 0:
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "a message either requests a certificate or revokes, not both")
	case len(data.Requests) == 0 && len(x.revokes) == 0:
		return cmcFail(est.FailBadRequest, nil, est.ErrBadRequest, "the message holds no certification request and no revokeRequest")
	case len(data.Requests) == 0:
		return nil
	}
	tr := data.Requests[0]
	x.csrID = tr.BodyPartID
	id := []uint32{tr.BodyPartID}
	req, err := x509.ParseCertificateRequest(tr.CSR)
	if err != nil {
		return cmcFail(est.FailBadRequest, id, est.ErrBadRequest, "malformed PKCS#10 request")
	}
	if err := req.CheckSignature(); err != nil {
		if errors.Is(err, x509.ErrUnsupportedAlgorithm) {
			return cmcFail(est.FailBadAlg, id, est.ErrBadRequest, "unsupported CSR signature algorithm")
		}
		return cmcFail(est.FailPOPFailed, id, est.ErrBadRequest, "the CSR's signature does not verify")
	}
	x.csr = req
	return nil
}

// verify finds the signer (a certificate in the message, the TLS client
// certificate, or the key of the message's PKCS#10 request) and checks the
// signature.
func (x *cmcExchange) verify(sd *est.SignedData, si *est.SignerInfo, data *est.PKIData) *cmcFailure {
	who := x.rq.who
	signer := sd.SignerCertificate(si)
	if signer == nil && who.Cert != nil && si.Identifies(who.Cert) {
		signer = who.Cert // an RA need not repeat its TLS certificate
	}
	var csr *x509.CertificateRequest
	for _, r := range data.Requests {
		if r.Kind == est.RequestPKCS10 {
			csr, _ = x509.ParseCertificateRequest(r.CSR)
			break
		}
	}
	var pub crypto.PublicKey
	switch {
	case signer != nil:
		pub = signer.PublicKey
	case csr != nil && est.MatchesCSRKey(si.SubjectKeyID, csr):
		pub, x.selfSigned = csr.PublicKey, true
	default:
		return cmcFail(est.FailBadMessageCheck, nil, est.ErrBadRequest,
			"the signer is neither the key of the certification request (by its subject key identifier) nor a certificate in the message")
	}
	if err := sd.Verify(si, pub); err != nil {
		return cmcFail(algOr(err, est.FailBadMessageCheck), nil, est.ErrBadRequest, "%s", est.Detail(err))
	}
	x.signer = signer
	return nil
}

// authorize decides whether the signer may ask for what the message asks.
func (x *cmcExchange) authorize() *cmcFailure {
	who, signer := x.rq.who, x.signer
	ra := signer != nil && who.Cert != nil && bytes.Equal(signer.Raw, who.Cert.Raw) && isRA(who)
	if x.csr != nil {
		switch {
		case x.selfSigned || signer != nil && est.SamePublicKey(signer.PublicKey, x.csr.PublicKey):
			return nil
		case ra && x.p.AllowRA:
			x.h.log.Info("request on behalf of another key", slog.String("label", x.p.Name), slog.String("ra", who.Name),
				slog.String("subject", x.csr.Subject.String()))
			return nil
		case ra:
			return cmcFail(est.FailBadRequest, []uint32{x.csrID}, est.ErrForbidden, "this label does not accept registration authorities")
		}
		return cmcFail(est.FailBadRequest, []uint32{x.csrID}, est.ErrForbidden,
			"the request is signed neither by the key being certified nor by a registration authority (EKU id-kp-cmcRA) authenticated with the same certificate")
	}
	ids := make([]uint32, len(x.revokes))
	for i, rv := range x.revokes {
		ids[i] = rv.id
	}
	switch {
	case !ra || who.Method != auth.Issued:
		return cmcFail(est.FailBadRequest, ids, est.ErrForbidden,
			"revocation needs a registration authority: a certificate of this CA with EKU id-kp-cmcRA that signs the message and authenticates the connection")
	case !x.p.AllowRA:
		return cmcFail(est.FailBadRequest, ids, est.ErrForbidden, "this label does not accept registration authorities")
	}
	return nil
}

// enroll issues a certificate for the request, through the manual-approval
// gate when the label has one.
func (x *cmcExchange) enroll(ctx context.Context) *cmcFailure {
	id := []uint32{x.csrID}
	h, rq := x.h, x.rq
	if x.p.ManualApproval {
		got, err := h.approvalRequest(ctx, x.csr, x.p, rq)
		if err != nil {
			return cmcFailFrom(err, id)
		}
		switch got.Status {
		case store.RequestPending:
			x.pending = got
			return nil
		case store.RequestRejected:
			reason := "rejected by an operator"
			if got.Reason != "" {
				reason += ": " + got.Reason
			}
			return cmcFail(est.FailBadRequest, id, est.ErrForbidden, "%s", reason)
		case store.RequestApproved:
			rq.approvalID = got.ID
		case store.RequestIssued:
			cert, err := h.issuedFor(ctx, got)
			if err != nil {
				return cmcFailFrom(err, id)
			}
			rq.cert, x.cert, x.done = cert, cert, id
			return nil
		default:
			return cmcFailFrom(est.Errorf(est.ErrInternal, "request %s in unknown state %q", got.ID, got.Status), id)
		}
	}
	cert, err := h.issue(ctx, x.csr, x.p, rq)
	if err != nil {
		return cmcFailFrom(err, id)
	}
	x.cert, x.done = cert, id
	return nil
}

// ourIssuer reports whether name is the subject of the issuing CA or of an
// issuing CA a rollover retired, whose certificates may still be revoked.
// Any of them names any certificate on record: serials are unique across
// estd's CAs (the store's key), and an RA that knows only the current CA's
// name (est fullcmc -revoke takes it from /cacerts) can still revoke what
// the one before issued.
func (x *cmcExchange) ourIssuer(name []byte) bool {
	if est.SameName(name, x.ca.Cert.RawSubject) {
		return true
	}
	for _, c := range x.h.verifier.Retired {
		if est.SameName(name, c.RawSubject) {
			return true
		}
	}
	return false
}

// revoke checks every revokeRequest, then marks the certificates revoked.
func (x *cmcExchange) revoke(ctx context.Context) *cmcFailure {
	h := x.h
	for _, rv := range x.revokes {
		id := []uint32{rv.id}
		r := rv.req
		if r.Reason < 0 || r.Reason > 10 || r.Reason == 7 || r.Reason == 8 {
			// 7 is unused; removeFromCRL (8) would undo a revocation, which estd does not.
			return cmcFail(est.FailBadRequest, id, est.ErrBadRequest, "revocation reason %d is not accepted", r.Reason)
		}
		if !x.ourIssuer(r.Issuer) {
			return cmcFail(est.FailBadCertID, id, est.ErrBadRequest, "the issuer named is not this CA")
		}
		rec, err := h.store.BySerial(ctx, r.Serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return cmcFail(est.FailBadCertID, id, est.ErrBadRequest, "no certificate with serial %s", r.Serial.Text(16))
		case err != nil:
			h.metrics.StoreError("get")
			return cmcFailFrom(est.Wrap(est.ErrUnavailable, err, "certificate status unavailable"), id)
		case rec.Profile != x.p.Name:
			// Not named: which label holds a serial is not the RA's to learn.
			return cmcFail(est.FailBadCertID, id, est.ErrBadRequest, "no certificate with serial %s under this label", r.Serial.Text(16))
		}
	}
	now := h.clock()
	for _, rv := range x.revokes {
		if err := h.store.Revoke(ctx, rv.req.Serial, rv.req.Reason, now); err != nil {
			h.metrics.StoreError("revoke")
			return cmcFailFrom(est.Wrap(est.ErrUnavailable, err, "could not record the revocation"), []uint32{rv.id})
		}
		x.done = append(x.done, rv.id)
		h.log.Info("revoked", slog.String("op", string(x.rq.op)), slog.String("label", x.p.Name),
			slog.String("who", x.rq.who.Name), slog.String("auth", string(x.rq.who.Method)),
			slog.String("serial", rv.req.Serial.Text(16)), slog.Int("reason", rv.req.Reason))
	}
	return nil
}

// write answers with the Full PKI Response and returns the HTTP status.
func (x *cmcExchange) write(w http.ResponseWriter) (int, error) {
	h := x.h
	st := &est.CMCStatusInfoV2{}
	code := http.StatusOK
	switch {
	case x.fail != nil:
		info := x.fail.info
		st.Status, st.FailInfo, st.StatusString = est.CMCFailed, &info, est.Detail(x.fail.err)
		st.BodyList = refs(x.fail.bodyList)
		code = status(est.KindOf(x.fail.err))
		switch {
		case errors.Is(x.fail.err, store.ErrTooManyPending):
			w.Header().Set("Retry-After", strconv.Itoa(h.approvalRetryAfter)) // as simpleenroll's
		case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
			w.Header().Set("Retry-After", retryAfter)
		}
		if code == http.StatusInternalServerError {
			h.log.Error("internal error", "path", x.r.URL.Path, "err", x.fail.err.Error())
		}
	case x.pending != nil:
		after := time.Duration(h.approvalRetryAfter) * time.Second
		st.Status, st.StatusString = est.CMCPending, "waiting for manual approval; request "+x.pending.ID
		st.BodyList = refs([]uint32{x.csrID})
		st.PendInfo = &est.PendInfo{Token: []byte(x.pending.ID), Time: h.clock().Add(after)}
		code = http.StatusAccepted
		w.Header().Set("Retry-After", strconv.Itoa(h.approvalRetryAfter))
	default:
		st.Status, st.BodyList = est.CMCSuccess, refs(x.done)
	}
	der, err := x.response(st)
	if err != nil {
		return 0, signingFailed(err, "could not sign the response")
	}
	body := est.EncodeBase64(der)
	w.Header().Set("Content-Type", est.MediaCMCResponse)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
	return code, nil
}

func refs(ids []uint32) []est.BodyPartReference {
	out := make([]est.BodyPartReference, len(ids))
	for i, id := range ids {
		out[i] = est.BodyPartReference{id}
	}
	return out
}

// response returns the DER of the signed Full PKI Response with status st.
func (x *cmcExchange) response(st *est.CMCStatusInfoV2) ([]byte, error) {
	var controls []est.TaggedAttribute
	add := func(typ asn1.ObjectIdentifier, v any) error {
		c, err := est.NewControl(uint32(len(controls)+1), typ, v)
		controls = append(controls, c)
		return err
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	errs := []error{add(est.OIDCMCStatusInfoV2, st)}
	if x.transactionID != nil {
		errs = append(errs, add(est.OIDCMCTransactionID, x.transactionID))
	}
	if x.senderNonce != nil {
		errs = append(errs, add(est.OIDCMCRecipientNonce, x.senderNonce))
	}
	errs = append(errs, add(est.OIDCMCSenderNonce, nonce))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	content, err := (&est.PKIResponse{Controls: controls}).Marshal()
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	if x.cert != nil {
		certs = append(certs, x.cert)
	}
	chain := x.ca.Chain
	if len(chain) == 0 {
		chain = []*x509.Certificate{x.ca.Cert}
	}
	certs = append(certs, chain...)
	return est.EncodeSignedData(est.OIDCCTPKIResponse, content,
		est.CMSSigner{Key: x.ca.Signer, Certificate: x.ca.Cert, SigningTime: x.h.clock()}, certs...)
}

// clipString shortens requester text for a reason line.
func clipString(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
