package server

import (
	"context"
	"crypto"
	"crypto/x509"
	"net/http"
	"slices"
	"sync"

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
	key, err := ca.GenerateKey(serverKeyType(req, p))
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "key generation failed")
	}
	genReq, err := withKey(req, key.Public())
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

// serverKeyType is the type of key serverkeygen makes for req: that of the
// CSR's key when p allows it, else p's first.
func serverKeyType(req *x509.CertificateRequest, p *label) ca.KeyType {
	kt, err := ca.KeyTypeOf(req.PublicKey)
	if err != nil || !slices.Contains(p.KeyTypes, kt) {
		kt = p.KeyTypes[0]
	}
	return kt
}

// withKey is the request serverkeygen issues: the client's CSR with the
// key pub. It is not signed (signing it with the key just made, and
// checking that signature, proved nothing and cost more than the
// certificate's own signature); the client's CSR, verified already, keeps
// its signature algorithm and its extensions, so the issuer's refusals of
// weak algorithms and of subjectAltNames it does not issue apply to it.
func withKey(req *x509.CertificateRequest, pub crypto.PublicKey) (*x509.CertificateRequest, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return &x509.CertificateRequest{
		SignatureAlgorithm:      req.SignatureAlgorithm,
		PublicKey:               pub,
		RawSubjectPublicKeyInfo: spki,
		RawSubject:              req.RawSubject,
		Subject:                 req.Subject,
		Extensions:              req.Extensions,
		DNSNames:                req.DNSNames,
		IPAddresses:             req.IPAddresses,
		EmailAddresses:          req.EmailAddresses,
		URIs:                    req.URIs,
	}, nil
}

// placeholderKeys are public keys of each type, made once, that stand for
// the key serverkeygen will make when a held request is checked: its key
// is made only once an operator approved it.
var placeholderKeys sync.Map // ca.KeyType -> crypto.PublicKey

func placeholderKey(kt ca.KeyType) (crypto.PublicKey, error) {
	if k, ok := placeholderKeys.Load(kt); ok {
		return k, nil
	}
	key, err := ca.GenerateKey(kt)
	if err != nil {
		return nil, err
	}
	k, _ := placeholderKeys.LoadOrStore(kt, key.Public())
	return k, nil
}
