package server

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"net/http"
	"slices"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/ca"
)

// serverKeyGen serves RFC 7030 4.4: it generates a key pair of the type of
// the CSR's key (the CSR names the subject and SANs; its key only proves the
// requester made the request), issues a certificate for the new key, and
// returns both as multipart/mixed. The private key is not stored; it is
// encrypted when the CSR asks for it (RFC 7030 4.4.2).
func (h *Handler) serverKeyGen(w http.ResponseWriter, ctx context.Context, req *x509.CertificateRequest, p *label, rq *request) (int, error) {
	rcpt, err := h.keyRecipient(req, p, rq.who) // RFC 7030 4.4.1.1, 4.4.1.2: see keygen_encrypt.go
	if err != nil {
		return 0, err
	}
	kt, err := ca.KeyTypeOf(req.PublicKey)
	if err != nil || !slices.Contains(p.KeyTypes, kt) {
		kt = p.KeyTypes[0]
	}
	key, err := ca.GenerateKey(kt)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "key generation failed")
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject:     req.RawSubject,
		DNSNames:       req.DNSNames,
		IPAddresses:    req.IPAddresses,
		EmailAddresses: req.EmailAddresses,
		URIs:           req.URIs,
	}, key)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "key generation failed")
	}
	genReq, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "key generation failed")
	}
	cert, err := h.issue(ctx, genReq, p, rq)
	if err != nil {
		return 0, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "key encoding failed")
	}
	p7, err := est.EncodeCertsOnly(cert)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "encoding failed")
	}
	resp := &est.ServerKeyGenResponse{Key: pkcs8, Certs: p7}
	if rcpt != nil {
		if resp.Key, err = h.encryptKey(pkcs8, rcpt); err != nil {
			return 0, err
		}
		resp.KeyEncrypted = true
	}
	ctype, body, err := est.WriteServerKeyGen(resp)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "encoding failed")
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeFull(w, ctype, body), nil
}
