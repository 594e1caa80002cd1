package server

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"math/big"
	"net/http"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/store"
)

// supersede revokes old, which renewed has just renewed for req on a label
// that revokes what it renews, records renewed as its successor, and
// returns the certificate to answer with. Of concurrent renewals of one
// certificate only the first to revoke it keeps its new certificate: the
// others' are withdrawn (revoked) at once, so that one certificate has one
// successor; a loser that asked for the winner's key is a retry of the
// winner (a client that gave up waiting and asked again) and gets the
// winner's certificate, the others 403. When the old certificate cannot be
// revoked (the store fails, or the client has gone and would never get the
// new one), the new one is withdrawn instead and the old one stays valid
// for a retry. A store that cannot revoke conditionally revokes as before,
// unconditionally.
func (h *Handler) supersede(ctx context.Context, old, renewed *x509.Certificate, req *x509.CertificateRequest, p *label, rq *request) (*x509.Certificate, error) {
	withdraw := func() {
		if err := h.store.Revoke(context.WithoutCancel(ctx), renewed.SerialNumber, store.ReasonCessation, h.clock()); err != nil {
			h.log.Error("could not withdraw the certificate of a renewal that did not complete", "serial", renewed.SerialNumber.Text(16), "err", err.Error())
		}
	}
	if err := ctx.Err(); err != nil {
		withdraw() // nobody would receive it; the old certificate can renew again
		return nil, err
	}
	ctx = context.WithoutCancel(ctx) // from here on the outcome is recorded whole
	sup, ok := h.store.(store.Supersedes)
	if !ok {
		if err := h.store.Revoke(ctx, old.SerialNumber, store.ReasonSuperseded, h.clock()); err != nil {
			h.log.Error("could not revoke the renewed certificate", "serial", old.SerialNumber.Text(16), "err", err.Error())
		}
		return renewed, nil
	}
	first, err := sup.Supersede(ctx, old.SerialNumber, renewed.SerialNumber, h.clock())
	if err != nil {
		// The revocation may have committed all the same (a connection
		// lost after the commit). Asking again is safe: Supersede for the
		// same successor reports whether it has it.
		h.log.Warn("superseding a renewed certificate failed; trying once more", "serial", old.SerialNumber.Text(16), "err", err.Error())
		first, err = sup.Supersede(ctx, old.SerialNumber, renewed.SerialNumber, h.clock())
	}
	if err != nil {
		// Still unknown: withdraw the new certificate unless the old one
		// names it, in one step, so the device is left with one of them.
		superseded, werr := sup.Withdraw(ctx, renewed.SerialNumber, old.SerialNumber, h.clock())
		switch {
		case werr != nil:
			h.log.Error("could neither revoke a renewed certificate nor withdraw its renewal", "serial", old.SerialNumber.Text(16),
				"renewal", renewed.SerialNumber.Text(16), "err", werr.Error())
			return nil, est.Wrap(est.ErrUnavailable, err, "the certificate store failed during the renewal; try again")
		case superseded:
			return renewed, nil // it did take effect
		}
		return nil, est.Wrap(est.ErrUnavailable, err, "could not revoke the certificate being renewed, so the new one was withdrawn; try again")
	}
	if first {
		return renewed, nil
	}
	withdraw()
	h.log.Info("a concurrent renewal of the same certificate won; this one's certificate was withdrawn",
		"renewed", old.SerialNumber.Text(16), "withdrawn", renewed.SerialNumber.Text(16))
	if winner, werr := h.successor(ctx, old, req, p); werr == nil {
		rq.repeated = true
		return winner, nil
	}
	return nil, est.Wrap(est.ErrForbidden, errRenewedMeanwhile, "client certificate refused: it was revoked while this renewal was served (by a concurrent renewal or an operator)")
}

// errRenewedMeanwhile is why a renewal lost: its certificate was revoked
// while it was served.
var errRenewedMeanwhile = errors.New("revoked while the renewal was served")

// errNoSuccessor is why a superseded certificate gets nothing: no valid
// successor of it has the key asked for.
var errNoSuccessor = errors.New("no valid successor with that key")

// successor returns the certificate that superseded old, if it is valid,
// of label p, and for the public key of req.
func (h *Handler) successor(ctx context.Context, old *x509.Certificate, req *x509.CertificateRequest, p *label) (*x509.Certificate, error) {
	st, err := h.store.BySerial(ctx, old.SerialNumber)
	if err != nil {
		return nil, err
	}
	if st.SupersededBy == nil {
		return nil, errNoSuccessor
	}
	return h.successorBySerial(ctx, st.SupersededBy, req, p)
}

// successorBySerial returns the certificate with serial if it is valid, of
// label p, and for the public key of req.
func (h *Handler) successorBySerial(ctx context.Context, serial *big.Int, req *x509.CertificateRequest, p *label) (*x509.Certificate, error) {
	rec, err := h.store.BySerial(ctx, serial)
	if err != nil {
		return nil, err
	}
	if rec.Revoked || rec.Profile != p.Name || !h.clock().Before(rec.NotAfter) {
		return nil, errNoSuccessor
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		h.log.Error("a recorded certificate does not parse", "serial", rec.Serial.Text(16), "err", err.Error())
		return nil, errNoSuccessor
	}
	if !est.SamePublicKey(req.PublicKey, cert.PublicKey) {
		return cert, errOtherKey
	}
	return cert, nil
}

// errOtherKey: the successor is for another key than the one asked for.
var errOtherKey = errors.New("the successor is for another key")

// renewedAlready answers a reenrollment authenticated by a certificate that
// an earlier renewal superseded (revoke_on_renew). A device whose renewal
// was answered but whose answer was lost has only that certificate left;
// it asks again with the same key, and gets the certificate it was issued
// then, not a new one: the CSR must pass every check of a renewal, and its
// key must be the successor's, which the CSR's signature proves the client
// holds. The successor must still be valid. Otherwise the request is
// refused as any revoked certificate is (refused). Every such request
// counts as a failed authentication, as a revoked certificate's does, so
// the limit on those bounds how often a superseded certificate may ask.
func (h *Handler) renewedAlready(w http.ResponseWriter, r *http.Request, p *label, rq *request, sup *auth.Superseded, refused error) (int, error) {
	h.limits.failed(r, refused, h.clock())
	who := sup.Identity
	rq.who = who
	req, err := h.readCSR(w, r)
	if err != nil {
		return 0, err
	}
	if err := h.checkLink(r, req, p, who); err != nil {
		return 0, err
	}
	if err := checkRenewal(req, who, p.Name); err != nil {
		return 0, err
	}
	cert, err := h.successorBySerial(r.Context(), sup.Successor, req, p)
	switch {
	case errors.Is(err, errOtherKey):
		return 0, est.Wrap(est.ErrForbidden, refused,
			"client certificate refused: revoked, it was renewed already (serial "+cert.SerialNumber.Text(16)+") for another key; "+
				"ask with that key to get that certificate again, or enroll anew")
	case errors.Is(err, errNoSuccessor), errors.Is(err, store.ErrNotFound):
		return 0, refused
	case err != nil:
		return 0, est.Wrap(est.ErrUnavailable, err, "certificate status unavailable")
	}
	rq.cert, rq.repeated = cert, true
	h.log.Info("renewal asked again: answering with the certificate it was issued",
		slog.String("label", p.Name), slog.String("renewed", who.Cert.SerialNumber.Text(16)), slog.String("serial", cert.SerialNumber.Text(16)))
	return writeCertsOnly(w, cert)
}
