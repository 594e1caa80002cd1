package client

// Full CMC (RFC 7030 section 4.3, RFC 5272): FullCMC builds, signs and
// sends a Full PKI Request; SendCMC sends one made elsewhere (by openssl
// cms, say). Both read the Full PKI Response: its signature is verified
// (and its signer chained to TrustAnchors when they are set), its
// recipientNonce must echo the request's senderNonce, and a status other
// than success is a *CMCError. A 202 Accepted (a request waiting for
// manual approval, with a pending status) is polled like Enroll's: the same
// message is sent again after Retry-After.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/estkit/estkit"
)

// CMCRequest is a Full PKI Request to build: a certification request, or
// revocations (registration authorities only).
type CMCRequest struct {
	// CSR is the DER PKCS#10 request to certify; nil for a message that
	// only revokes. Give it a subjectKeyIdentifier extension when its own
	// key signs (RFC 5272 section 3.2.1.3.1 asks for one); without it the
	// RFC 5280 method-1 identifier of the key names the signer.
	CSR []byte
	// Key signs the message: the CSR's key when Certificate is nil (the
	// signer is then named by subject key identifier), or the key of
	// Certificate, a registration authority certificate (EKU id-kp-cmcRA)
	// named by issuer and serial number and carried in the message. estd
	// takes an RA only when Certificate is also the TLS client certificate.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// Revoke lists certificates to revoke (revokeRequest controls).
	Revoke []est.RevokeRequest
	// TransactionID names the transaction; nil means a random one.
	TransactionID *big.Int
	// SenderNonce is the senderNonce the response must echo; nil means 16
	// random bytes.
	SenderNonce []byte
	// Identification, when set, is sent in the identification control:
	// estd wants the authenticated requester's name there.
	Identification string
	// RegInfo, when set, is sent in the regInfo control.
	RegInfo []byte
}

// Encode returns the DER of the signed request: a ContentInfo holding a
// SignedData whose content is the PKIData.
func (r *CMCRequest) Encode() ([]byte, error) {
	if r.Key == nil {
		return nil, errors.New("est: fullcmc: CMCRequest.Key is required")
	}
	if r.CSR == nil && len(r.Revoke) == 0 {
		return nil, errors.New("est: fullcmc: the request holds neither a CSR nor a revocation")
	}
	tid := r.TransactionID
	if tid == nil {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
		if err != nil {
			return nil, err
		}
		tid = n.Add(n, big.NewInt(1))
	}
	nonce := r.SenderNonce
	if nonce == nil {
		nonce = make([]byte, 16)
		if _, err := rand.Read(nonce); err != nil {
			return nil, err
		}
	}
	var data est.PKIData
	var errs []error
	add := func(typ asn1.ObjectIdentifier, v any) {
		c, err := est.NewControl(uint32(len(data.Controls)+1), typ, v)
		data.Controls = append(data.Controls, c)
		errs = append(errs, err)
	}
	add(est.OIDCMCTransactionID, tid)
	add(est.OIDCMCSenderNonce, nonce)
	if r.Identification != "" {
		add(est.OIDCMCIdentification, r.Identification)
	}
	if r.RegInfo != nil {
		add(est.OIDCMCRegInfo, r.RegInfo)
	}
	for i := range r.Revoke {
		add(est.OIDCMCRevokeRequest, &r.Revoke[i])
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("est: fullcmc: %w", err)
	}
	signer := est.CMSSigner{Key: r.Key, Certificate: r.Certificate}
	var certs []*x509.Certificate
	if r.Certificate != nil {
		certs = append(certs, r.Certificate)
	}
	if r.CSR != nil {
		req, err := x509.ParseCertificateRequest(r.CSR)
		if err != nil {
			return nil, fmt.Errorf("est: fullcmc: the CSR does not parse: %w", err)
		}
		data.Requests = []est.TaggedRequest{{Kind: est.RequestPKCS10, BodyPartID: uint32(len(data.Controls) + 1), CSR: r.CSR}}
		if r.Certificate == nil {
			if !est.SamePublicKey(req.PublicKey, r.Key.Public()) {
				return nil, errors.New("est: fullcmc: Key is not the CSR's key (set Certificate to sign as a registration authority)")
			}
			if signer.SubjectKeyID = est.CSRKeyID(req); signer.SubjectKeyID == nil {
				if signer.SubjectKeyID, err = est.KeyID(req.RawSubjectPublicKeyInfo); err != nil {
					return nil, err
				}
			}
		}
	} else if r.Certificate == nil {
		return nil, errors.New("est: fullcmc: a revocation is signed by a registration authority: set Certificate")
	}
	content, err := data.Marshal()
	if err != nil {
		return nil, fmt.Errorf("est: fullcmc: %w", err)
	}
	return est.EncodeSignedData(est.OIDCCTPKIData, content, signer, certs...)
}

// CMCResponse is a Full PKI Response with a status of success.
type CMCResponse struct {
	// Status is the overall status: failed if any statusInfoV2 says so,
	// else pending if any does, else the first one's.
	Status est.CMCStatus
	// Statuses are the statusInfoV2 controls, in order.
	Statuses []*est.CMCStatusInfoV2
	// Certificate is the certificate issued for the request's key; nil for
	// a revocation. Certificates are all the response holds (estd adds its
	// CA chain); Signer is the one that signed the response.
	Certificate  *x509.Certificate
	Certificates []*x509.Certificate
	Signer       *x509.Certificate
	// TransactionID is the transactionId of the response, nil if none.
	TransactionID *big.Int
	// PKIResponse is the whole content.
	PKIResponse *est.PKIResponse
}

// CMCError is a Full PKI Response whose status is not success: the
// server's CMCFailInfo and statusString, and the HTTP refusal it came with
// (RFC 7030 4.3.2 sends failures with a 4xx or 5xx), which errors.Is and
// errors.As reach through Unwrap.
type CMCError struct {
	Status       est.CMCStatus
	FailInfo     *est.CMCFailInfo // nil when the server gave none
	StatusString string
	Response     *CMCResponse
	// HTTP is the status the response came with; nil for a 2xx.
	HTTP *Error
}

func (e *CMCError) Error() string {
	var b strings.Builder
	b.WriteString("est: fullcmc: ")
	if e.HTTP != nil {
		fmt.Fprintf(&b, "%d %s: ", e.HTTP.StatusCode, http.StatusText(e.HTTP.StatusCode))
	}
	b.WriteString(e.Status.String())
	if e.FailInfo != nil {
		fmt.Fprintf(&b, " (%s)", e.FailInfo)
	}
	if e.StatusString != "" {
		b.WriteString(": " + e.StatusString)
	}
	if e.HTTP != nil && e.HTTP.Err != nil {
		b.WriteString(": " + e.HTTP.Err.Error())
	}
	return b.String()
}

// Unwrap returns the HTTP refusal, if any.
func (e *CMCError) Unwrap() error {
	if e.HTTP == nil {
		return nil
	}
	return e.HTTP
}

// FullCMC signs req and sends it to /fullcmc (RFC 7030 4.3). It returns
// the response when its status is success, a *CMCError when the server
// answered with another status, and an *Error when it refused without a
// Full PKI Response (authentication, Content-Type).
func (c *Client) FullCMC(ctx context.Context, req *CMCRequest) (*CMCResponse, error) {
	der, err := req.Encode()
	if err != nil {
		return nil, err
	}
	return c.SendCMC(ctx, der)
}

// SendCMC sends der, the DER of a signed Full PKI Request made elsewhere,
// to /fullcmc and reads the response as FullCMC does. When der's PKIData
// parses, its senderNonce and transactionId are checked against the
// response and its CSR picks the certificate.
func (c *Client) SendCMC(ctx context.Context, der []byte) (*CMCResponse, error) {
	const op = est.OpFullCMC
	want := inspectCMCRequest(der)
	u, err := c.endpoint(op)
	if err != nil {
		return nil, err
	}
	hc := c.httpClient()
	body := est.EncodeBase64(der)
	for {
		resp, err := c.postCMC(ctx, hc, u, body)
		if err != nil {
			return nil, err
		}
		b, err := readBody(op, resp)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		r := &response{status: resp.StatusCode, header: resp.Header, body: b}
		var cr *CMCResponse
		var perr error
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		success := resp.StatusCode >= 200 && resp.StatusCode < 300 && resp.StatusCode != http.StatusAccepted
		if success || strings.EqualFold(mt, est.MediaPKCS7) {
			cr, perr = c.parseCMCResponse(r, want)
		}
		if success {
			if perr != nil {
				return nil, perr
			}
			if cr.Status != est.CMCSuccess {
				return nil, cmcError(cr, nil)
			}
			return cr, nil
		}
		e := &Error{Op: op, StatusCode: resp.StatusCode}
		if cr != nil && perr == nil {
			e.Message = firstStatusString(cr)
		} else if !strings.HasPrefix(strings.ToLower(mt), "application/") {
			e.Message = message(b)
		}
		d, again := c.retryAfter(resp, e)
		if !again {
			if cr != nil && perr == nil {
				return nil, cmcError(cr, e)
			}
			return nil, e
		}
		if err := c.wait(ctx, e, d); err != nil {
			if cr != nil && perr == nil {
				return nil, cmcError(cr, e)
			}
			return nil, err
		}
	}
}

// postCMC makes one request.
func (c *Client) postCMC(ctx context.Context, hc *http.Client, u *url.URL, body []byte) (*http.Response, error) {
	const op = est.OpFullCMC
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("est: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", est.MediaCMCRequest)
	req.Header.Set("Content-Transfer-Encoding", "base64")
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)
	if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("est: %s: %w", op, err)
	}
	return resp, nil
}

func cmcError(cr *CMCResponse, h *Error) *CMCError {
	e := &CMCError{Status: cr.Status, Response: cr, HTTP: h}
	for _, s := range cr.Statuses {
		if s.Status == cr.Status {
			e.FailInfo, e.StatusString = s.FailInfo, s.StatusString
			break
		}
	}
	return e
}

func firstStatusString(cr *CMCResponse) string {
	for _, s := range cr.Statuses {
		if s.Status == cr.Status && s.StatusString != "" {
			return message([]byte(s.StatusString))
		}
	}
	return cr.Status.String()
}

// cmcExpect is what a response must echo of its request.
type cmcExpect struct {
	nonce  []byte
	tid    *big.Int
	csrKey crypto.PublicKey
}

// inspectCMCRequest reads what the response must match out of a request,
// as far as it parses.
func inspectCMCRequest(der []byte) cmcExpect {
	var want cmcExpect
	sd, err := est.ParseSignedData(der)
	if err != nil {
		return want
	}
	data, err := est.ParsePKIData(sd.Content)
	if err != nil {
		return want
	}
	if c := data.Control(est.OIDCMCSenderNonce); c != nil {
		want.nonce, _ = c.OctetString()
	}
	if c := data.Control(est.OIDCMCTransactionID); c != nil {
		want.tid, _ = c.Integer()
	}
	for _, r := range data.Requests {
		if r.Kind == est.RequestPKCS10 {
			if req, err := x509.ParseCertificateRequest(r.CSR); err == nil {
				want.csrKey = req.PublicKey
			}
			break
		}
	}
	return want
}

// parseCMCResponse parses and checks a Full PKI Response.
func (c *Client) parseCMCResponse(r *response, want cmcExpect) (*CMCResponse, error) {
	const op = est.OpFullCMC
	der, err := decodeBody(r.body)
	if err != nil {
		return nil, malformed(op, "%s (%s)", err, r.describe())
	}
	sd, err := est.ParseSignedData(der)
	if err != nil {
		return nil, malformed(op, "%s (%s)", est.Detail(err), r.describe())
	}
	if !sd.ContentType.Equal(est.OIDCCTPKIResponse) {
		return nil, malformed(op, "the signed content is of type %v, not id-cct-PKIResponse", sd.ContentType)
	}
	if len(sd.Signers) != 1 {
		return nil, malformed(op, "the response has %d signers, want 1", len(sd.Signers))
	}
	si := sd.Signers[0]
	signer := sd.SignerCertificate(si)
	if signer == nil {
		return nil, malformed(op, "the response does not carry its signer's certificate")
	}
	if err := sd.Verify(si, signer.PublicKey); err != nil {
		return nil, malformed(op, "%s", est.Detail(err))
	}
	if anchors := c.anchorsForVerify(); anchors != nil {
		inter := x509.NewCertPool()
		for _, ct := range sd.Certificates {
			inter.AddCert(ct)
		}
		if _, err := signer.Verify(x509.VerifyOptions{Roots: anchors, Intermediates: inter, CurrentTime: c.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, malformed(op, "the response's signer %s does not chain to the trust anchors: %v", signer.Subject, err)
		}
	}
	pr, err := est.ParsePKIResponse(sd.Content)
	if err != nil {
		return nil, malformed(op, "%s", est.Detail(err))
	}
	cr := &CMCResponse{Certificates: sd.Certificates, Signer: signer, PKIResponse: pr}
	if cr.Statuses, err = pr.Statuses(); err != nil {
		return nil, malformed(op, "%s", est.Detail(err))
	}
	if len(cr.Statuses) == 0 {
		return nil, malformed(op, "the response has no statusInfoV2 control")
	}
	cr.Status = cr.Statuses[0].Status
	for _, s := range cr.Statuses {
		if s.Status == est.CMCFailed || s.Status == est.CMCPending && cr.Status != est.CMCFailed {
			cr.Status = s.Status
		}
	}
	if tc := pr.Control(est.OIDCMCTransactionID); tc != nil {
		if cr.TransactionID, err = tc.Integer(); err != nil {
			return nil, malformed(op, "%s", est.Detail(err))
		}
		if want.tid != nil && cr.TransactionID.Cmp(want.tid) != 0 {
			return nil, malformed(op, "the transactionId %v is not the request's %v", cr.TransactionID, want.tid)
		}
	}
	if want.nonce != nil {
		rc := pr.Control(est.OIDCMCRecipientNonce)
		switch {
		case rc != nil:
			got, err := rc.OctetString()
			if err != nil || !bytes.Equal(got, want.nonce) {
				return nil, malformed(op, "the recipientNonce does not echo the request's senderNonce")
			}
		case cr.Status == est.CMCSuccess:
			// RFC 5272 6.6: a response carries the request's nonce back;
			// a failure to parse the request may leave it out.
			return nil, malformed(op, "the response has no recipientNonce")
		}
	}
	if cr.Status == est.CMCSuccess && want.csrKey != nil {
		leaf, _, err := pickLeaf(sd.Certificates, want.csrKey, "the request's key")
		if err != nil {
			return nil, malformed(op, "%s", err)
		}
		cr.Certificate = leaf
	}
	return cr, nil
}

// anchorsForVerify returns the trust anchors the response's signer must
// chain to: TrustAnchors, unless the caller brought its own HTTP client.
func (c *Client) anchorsForVerify() *x509.CertPool {
	if c.HTTPClient != nil {
		return nil
	}
	return c.TrustAnchors
}
