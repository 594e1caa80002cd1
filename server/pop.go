package server

import (
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"slices"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
)

// Proof-of-possession linking (RFC 7030 section 3.5): on a label whose
// profile sets RequirePoPLink, an enrollment CSR must carry in its
// challengePassword the base64 channel binding of the very TLS connection
// it arrives on, so that a CSR made by one party cannot be replayed by
// another over its own authenticated connection. TLS 1.2 connections bind
// with tls-unique, as RFC 7030 says; TLS 1.3 has no tls-unique, and binds
// with tls-exporter (RFC 9266: the 32-byte exporter with label
// "EXPORTER-Channel-Binding" and no context), its designated successor. See
// est.ChannelBinding.

// checkLink enforces RequirePoPLink for req, received on r from who. A
// registration authority (a certificate with EKU id-kp-cmcRA, authenticated
// as a manufacturer or issued certificate) submits CSRs it did not make,
// which cannot be linked to its connection: it is exempt when the profile
// sets AllowRA.
func (h *Handler) checkLink(r *http.Request, req *x509.CertificateRequest, p *label, who auth.Identity) error {
	if !p.RequirePoPLink {
		return nil
	}
	if p.AllowRA && isRA(who) {
		h.log.Info("PoP link waived for a registration authority", slog.String("label", p.Name), slog.String("who", who.Name))
		return nil
	}
	pw, ok, err := est.ChallengePassword(req)
	if err != nil {
		return err
	}
	if !ok {
		return est.Errorf(est.ErrPolicy, "this label requires the CSR to be linked to the TLS connection (RFC 7030 3.5): put the base64 tls-unique (TLS 1.2) or tls-exporter (TLS 1.3) value in challengePassword")
	}
	want, err := est.ChannelBinding(r.TLS)
	if err != nil {
		return est.Errorf(est.ErrPolicy, "this label requires the CSR to be linked to the TLS connection, and %s", err)
	}
	got, err := base64.StdEncoding.DecodeString(pw)
	if err != nil || subtle.ConstantTimeCompare(got, want) != 1 {
		return est.Errorf(est.ErrPolicy, "the CSR's challengePassword does not match this TLS connection's channel binding (RFC 7030 3.5): it was linked to another connection or is not a link")
	}
	return nil
}

// isRA reports whether who is a registration authority: authenticated by a
// certificate (manufacturer or issued) with EKU id-kp-cmcRA.
func isRA(who auth.Identity) bool {
	return who.Cert != nil && (who.Method == auth.Manufacturer || who.Method == auth.Issued) && est.HasEKU(who.Cert, est.OIDKPCMCRA)
}

// csrAttrsOf returns what /csrattrs answers for p: its configured
// attributes, with challengePassword added when the label requires linking
// (RFC 7030 3.5 and 4.5.2) and the configuration did not name it.
func csrAttrsOf(p *ca.Profile) est.CSRAttrs {
	if !p.RequirePoPLink || slices.ContainsFunc(p.CSRAttrs.OIDs(), est.OIDChallengePassword.Equal) {
		return p.CSRAttrs
	}
	return append(slices.Clone(p.CSRAttrs), est.AttrOrOID{OID: est.OIDChallengePassword})
}
