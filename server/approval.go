package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/store"
)

// DefaultApprovalRetryAfter is the Retry-After of a 202 for a request waiting
// for an operator.
const DefaultApprovalRetryAfter = 60

// RequestID is the ID of a manual-approval request: the same CSR sent again
// by the same requester to the same label and operation finds it.
func RequestID(label string, op est.Operation, method, requester string, csr []byte) string {
	h := sha256.New()
	for _, s := range []string{label, string(op), method, requester} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(csr)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// approval runs the manual-approval gate of RFC 7030 4.2.3. It answers
// itself (202 while pending, 200 with the certificate issued earlier for the
// same request) and returns that status, or returns 0 with rq.approvalID set
// when the request is approved and must be issued now.
func (h *Handler) approval(w http.ResponseWriter, ctx context.Context, req *x509.CertificateRequest, p *label, rq *request) (int, error) {
	got, err := h.approvalRequest(ctx, req, p, rq)
	if errors.Is(err, store.ErrTooManyPending) {
		w.Header().Set("Retry-After", strconv.Itoa(h.approvalRetryAfter))
	}
	if err != nil {
		return 0, err
	}
	switch got.Status {
	case store.RequestPending:
		w.Header().Set("Retry-After", strconv.Itoa(h.approvalRetryAfter))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("waiting for manual approval; request " + got.ID + "\n"))
		return http.StatusAccepted, nil
	case store.RequestRejected:
		reason := "rejected by an operator"
		if got.Reason != "" {
			reason += ": " + got.Reason
		}
		return 0, est.Errorf(est.ErrForbidden, "%s", reason)
	case store.RequestApproved:
		rq.approvalID = got.ID
		return 0, nil
	case store.RequestIssued:
		if rq.op == est.OpServerKeyGen {
			return 0, est.Errorf(est.ErrConflict, "request %s was issued already; server-generated keys are not kept, so send a new request", got.ID)
		}
		cert, err := h.issuedFor(ctx, got)
		if err != nil {
			return 0, err
		}
		rq.cert = cert
		return writeCertsOnly(w, cert)
	}
	return 0, est.Errorf(est.ErrInternal, "request %s in unknown state %q", got.ID, got.Status)
}

// issuedFor returns the certificate issued for the request got, which is
// RequestIssued: what a retry of it gets again, unless it has been revoked
// since.
func (h *Handler) issuedFor(ctx context.Context, got *store.Request) (*x509.Certificate, error) {
	rec, err := h.store.BySerial(ctx, got.Serial)
	if err != nil {
		return nil, est.Wrap(est.ErrUnavailable, err, "could not read the certificate issued for this request")
	}
	if rec.Revoked {
		return nil, est.Errorf(est.ErrForbidden, "the certificate issued for request %s (serial %s) has been revoked; a new request needs a new CSR", got.ID, got.Serial.Text(16))
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, est.Wrap(est.ErrInternal, err, "stored certificate does not parse")
	}
	return cert, nil
}

// approvalRequest records req as waiting for an operator's decision, unless
// the same request is recorded already, and returns the recorded request.
// Both /simpleenroll and /fullcmc gate on it.
func (h *Handler) approvalRequest(ctx context.Context, req *x509.CertificateRequest, p *label, rq *request) (*store.Request, error) {
	if h.approvals == nil {
		return nil, est.Errorf(est.ErrInternal, "manual approval needs a store that keeps requests")
	}
	// What the label can never issue is refused now, not held for an
	// operator to approve in vain.
	if c, ok := h.issuer.(ca.Checker); ok {
		check := req
		if rq.op == est.OpServerKeyGen {
			// What will be issued has a key made then, of serverKeyType.
			pub, err := placeholderKey(serverKeyType(req, p))
			if err == nil {
				check, err = withKey(req, pub)
			}
			if err != nil {
				return nil, est.Wrap(est.ErrInternal, err, "key generation failed")
			}
		}
		if err := c.Check(check, p.Profile); err != nil {
			return nil, err
		}
	}
	kt, _ := ca.KeyTypeOf(req.PublicKey)
	want := &store.Request{
		ID:           RequestID(p.Name, rq.op, string(rq.who.Method), rq.who.Name, req.Raw),
		Label:        p.Name,
		Operation:    string(rq.op),
		Requester:    rq.who.Name,
		AuthMethod:   string(rq.who.Method),
		Subject:      subjectString(req),
		SANs:         sanList(req.DNSNames, req.IPAddresses, req.EmailAddresses, req.URIs),
		KeyAlgorithm: kt.Algorithm(),
		CSR:          req.Raw,
		CreatedAt:    h.clock().UTC(),
	}
	perLabel, perRequester := p.PendingLimits()
	got, err := h.approvals.AddRequest(ctx, want, store.PendingLimits{PerLabel: perLabel, PerRequester: perRequester})
	if errors.Is(err, store.ErrTooManyPending) {
		return nil, est.Wrap(est.ErrUnavailable, err, "too many requests wait for an operator's decision on this label (or from this requester); try again later")
	}
	if err != nil {
		return nil, est.Wrap(est.ErrUnavailable, err, "could not record the request")
	}
	if got.Status == store.RequestPending && got.CreatedAt.Equal(want.CreatedAt) {
		h.log.Info("pending", slog.String("request", got.ID), slog.String("op", string(rq.op)), slog.String("label", p.Name),
			slog.String("who", rq.who.Name), slog.String("auth", string(rq.who.Method)), slog.String("subject", got.Subject))
	}
	return got, nil
}

// approvedIssued marks the approved request issued with cert. If another node
// issued it first, the winner's certificate is returned instead and cert is
// revoked as superseded, so one request yields one usable certificate.
func (h *Handler) approvedIssued(ctx context.Context, rq *request, cert *x509.Certificate) (*x509.Certificate, error) {
	err := h.approvals.Issued(ctx, rq.approvalID, cert.SerialNumber)
	if err == nil {
		return cert, nil
	}
	if !errors.Is(err, store.ErrConflict) || rq.op == est.OpServerKeyGen {
		if errors.Is(err, store.ErrConflict) {
			return cert, nil // the key is only in this response: keep this certificate
		}
		return nil, est.Wrap(est.ErrUnavailable, err, "could not record the issuance")
	}
	got, gerr := h.approvals.Request(ctx, rq.approvalID)
	if gerr != nil || got.Serial == nil {
		return nil, est.Wrap(est.ErrUnavailable, errors.Join(err, gerr), "could not record the issuance")
	}
	rec, gerr := h.store.BySerial(ctx, got.Serial)
	if gerr != nil {
		return nil, est.Wrap(est.ErrUnavailable, gerr, "could not read the certificate issued for this request")
	}
	winner, gerr := x509.ParseCertificate(rec.DER)
	if gerr != nil {
		return nil, est.Wrap(est.ErrInternal, gerr, "stored certificate does not parse")
	}
	const superseded = 4
	if rerr := h.store.Revoke(ctx, cert.SerialNumber, superseded, h.clock()); rerr != nil {
		h.log.Error("could not revoke a duplicate issuance", "serial", cert.SerialNumber.Text(16), "err", rerr.Error())
	}
	return winner, nil
}

func subjectString(req *x509.CertificateRequest) string { return req.Subject.String() }
