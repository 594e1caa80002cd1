package server

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/store"
)

// supersede revokes old, which renewed has just renewed on a label that
// revokes what it renews, and records renewed as its successor. Of
// concurrent renewals of one certificate only the first to revoke it keeps
// its new certificate: the others' are revoked at once and refused, so that
// one certificate has one successor. When the old certificate cannot be
// revoked (the store fails, or the client has gone and would never get the
// new one), the new one is withdrawn instead and the old one stays valid
// for a retry. A store that cannot revoke conditionally revokes as before,
// unconditionally.
func (h *Handler) supersede(ctx context.Context, old, renewed *x509.Certificate) error {
	const cessation = 5
	withdraw := func() {
		if err := h.store.Revoke(context.WithoutCancel(ctx), renewed.SerialNumber, cessation, h.clock()); err != nil {
			h.log.Error("could not withdraw the certificate of a renewal that did not complete", "serial", renewed.SerialNumber.Text(16), "err", err.Error())
		}
	}
	if err := ctx.Err(); err != nil {
		withdraw() // nobody would receive it; the old certificate can renew again
		return err
	}
	ctx = context.WithoutCancel(ctx) // from here on the outcome is recorded whole
	sup, ok := h.store.(store.Supersedes)
	if !ok {
		if err := h.store.Revoke(ctx, old.SerialNumber, store.ReasonSuperseded, h.clock()); err != nil {
			h.log.Error("could not revoke the renewed certificate", "serial", old.SerialNumber.Text(16), "err", err.Error())
		}
		return nil
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
		withdraw()
		return est.Wrap(est.ErrUnavailable, err, "could not revoke the certificate being renewed, so the new one was withdrawn; try again")
	}
	if first {
		return nil
	}
	withdraw()
	return est.Wrap(est.ErrForbidden, errRenewedMeanwhile, "client certificate refused: it was revoked while this renewal was served (by a concurrent renewal or an operator)")
}

// errRenewedMeanwhile is why a renewal lost: its certificate was revoked
// while it was served.
var errRenewedMeanwhile = errors.New("revoked while the renewal was served")

// renewedAlready answers a reenrollment authenticated by a certificate that
// an earlier renewal superseded (revoke_on_renew). A device whose renewal
// was answered but whose answer was lost has only that certificate left;
// it asks again with the same key, and gets the certificate it was issued
// then, not a new one: the CSR must pass every check of a renewal, and its
// key must be the successor's, which the CSR's signature proves the client
// holds. The successor must still be valid. Otherwise the request is
// refused as any revoked certificate is (refused).
func (h *Handler) renewedAlready(w http.ResponseWriter, r *http.Request, p *label, rq *request, sup *auth.Superseded, refused error) (int, error) {
	fail := func() (int, error) {
		h.limits.failed(r, refused, h.clock())
		return 0, refused
	}
	who := sup.Identity
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
	rec, err := h.store.BySerial(r.Context(), sup.Successor)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fail()
		}
		return 0, est.Wrap(est.ErrUnavailable, err, "certificate status unavailable")
	}
	if rec.Revoked || rec.Profile != p.Name || !h.clock().Before(rec.NotAfter) {
		return fail()
	}
	successor, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		h.log.Error("a recorded certificate does not parse", "serial", rec.Serial.Text(16), "err", err.Error())
		return fail()
	}
	if k, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(successor.PublicKey) {
		return 0, est.Wrap(est.ErrForbidden, refused,
			"client certificate refused: revoked, it was renewed already (serial "+rec.Serial.Text(16)+") for another key; "+
				"ask with that key to get that certificate again, or enroll anew")
	}
	rq.who, rq.cert, rq.repeated = who, successor, true
	h.log.Info("renewal asked again: answering with the certificate it was issued",
		slog.String("label", p.Name), slog.String("renewed", who.Cert.SerialNumber.Text(16)), slog.String("serial", rec.Serial.Text(16)))
	return writeCertsOnly(w, successor)
}
