package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/estkit/estkit/internal/logsample"
	"github.com/estkit/estkit/store"
)

// CRL and OCSP timing.
const (
	// CRLValidity is the span between a CRL's thisUpdate and nextUpdate.
	CRLValidity = 24 * time.Hour
	// crlRefresh is how old a cached CRL may get before it is signed again,
	// so a revocation on any node shows within this time.
	crlRefresh = time.Minute
	// OCSPValidity is the nextUpdate of OCSP responses.
	OCSPValidity = time.Hour
)

// Revocation publishes revocation status over plain HTTP: a CRL (RFC 5280,
// DER, signed by the issuing CA) at /crl and an OCSP responder (RFC 6960,
// GET and POST, responses signed by the issuing CA) at /ocsp.
type Revocation struct {
	issuer *x509.Certificate
	signer crypto.Signer
	store  store.Store
	revs   store.Revocations
	clock  func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	crl     []byte
	crlMade time.Time

	// refusals samples the log lines of refused requests.
	refusals *logsample.Sampler
}

// NewRevocation returns the handler. The store must list revocations.
func NewRevocation(issuer *x509.Certificate, signer crypto.Signer, st store.Store, clock func() time.Time, log *slog.Logger) (*Revocation, error) {
	revs, ok := st.(store.Revocations)
	if !ok {
		return nil, errors.New("server: the store cannot list revocations")
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Revocation{issuer: issuer, signer: signer, store: st, revs: revs, clock: clock, log: log,
		refusals: logsample.New(10, time.Second)}, nil
}

// ServeHTTP serves /crl and /ocsp.
func (v *Revocation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/crl" && (r.Method == "GET" || r.Method == "HEAD"):
		crl, err := v.CRL(r.Context())
		if err != nil {
			v.log.Error("CRL", "err", err.Error())
			http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		writeFull(w, "application/pkix-crl", crl)
	case r.URL.Path == "/ocsp" && r.Method == "POST":
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 10<<10))
		if err != nil || !strings.EqualFold(r.Header.Get("Content-Type"), "application/ocsp-request") {
			v.refused(r, "OCSP request unreadable or not application/ocsp-request")
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		writeOCSP(w, v.OCSP(r.Context(), body))
	case strings.HasPrefix(r.URL.Path, "/ocsp/") && r.Method == "GET":
		// RFC 6960 A.1: the base64 DER request, URL-encoded, as the path
		// (r.URL.Path is already percent-decoded).
		der, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/ocsp/"))
		if err != nil {
			v.refused(r, "OCSP GET request is not base64")
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		writeOCSP(w, v.OCSP(r.Context(), der))
	default:
		v.refused(r, "not found")
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// refused logs a request the revocation listener turned away. Answers are
// not logged: OCSP traffic can be heavy, and every answer is what the store
// says.
// The listener is plain HTTP without authentication: anyone can send it
// junk, so these lines are sampled (the first ten, then one a second, with
// the number left out).
func (v *Revocation) refused(r *http.Request, reason string) {
	v.refusals.Do(func(skipped int64) {
		v.log.Info("revocation listener: refused", "method", r.Method, "path", clipPath(r.URL.Path), "remote", r.RemoteAddr, "reason", reason, "not_logged_before", skipped)
	})
}

// clipPath bounds a path for a log line.
func clipPath(p string) string {
	if len(p) > 200 {
		return p[:200] + "…"
	}
	return p
}

func writeOCSP(w http.ResponseWriter, resp []byte) {
	w.Header().Set("Cache-Control", "max-age=60")
	writeFull(w, "application/ocsp-response", resp)
}

// CRL returns the current CRL, signing a new one when the cached one is
// older than a minute.
func (v *Revocation) CRL(ctx context.Context) ([]byte, error) {
	now := v.clock()
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.crl != nil && now.Sub(v.crlMade) < crlRefresh && !now.Before(v.crlMade) {
		return v.crl, nil
	}
	recs, err := v.revs.Revoked(ctx, now)
	if err != nil {
		return nil, err
	}
	entries := make([]x509.RevocationListEntry, len(recs))
	for i, r := range recs {
		entries[i] = x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.RevokedAt, ReasonCode: r.RevocationReason}
	}
	thisUpdate := now.Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		// Seconds since the epoch: increasing across restarts and nodes.
		Number:                    big.NewInt(thisUpdate.Unix()),
		ThisUpdate:                thisUpdate,
		NextUpdate:                thisUpdate.Add(CRLValidity),
		RevokedCertificateEntries: entries,
	}, v.issuer, v.signer)
	if err != nil {
		return nil, err
	}
	v.crl, v.crlMade = der, now
	return der, nil
}

// OCSP answers one DER OCSP request with a DER response.
func (v *Revocation) OCSP(ctx context.Context, der []byte) []byte {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		v.log.Info("OCSP: malformed request", "err", err.Error())
		return ocsp.MalformedRequestErrorResponse
	}
	// The request must name our issuing CA by the hash of its key.
	spki, err := issuerKeyHash(v.issuer, req.HashAlgorithm)
	if err != nil || string(spki) != string(req.IssuerKeyHash) {
		v.log.Info("OCSP: a request for another issuer", "serial", req.SerialNumber.Text(16))
		return ocsp.UnauthorizedErrorResponse
	}
	now := v.clock().Truncate(time.Second)
	tmpl := ocsp.Response{
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now,
		NextUpdate:   now.Add(OCSPValidity),
		Status:       ocsp.Good,
	}
	rec, err := v.store.BySerial(ctx, req.SerialNumber)
	switch {
	case errors.Is(err, store.ErrNotFound):
		tmpl.Status = ocsp.Unknown
	case err != nil:
		v.log.Error("OCSP", "err", err.Error())
		return ocsp.TryLaterErrorResponse
	case rec.Revoked:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt, rec.RevocationReason
	}
	resp, err := ocsp.CreateResponse(v.issuer, v.issuer, tmpl, v.signer)
	if err != nil {
		v.log.Error("OCSP", "err", err.Error())
		return ocsp.InternalErrorErrorResponse
	}
	return resp
}

// issuerKeyHash hashes the issuer's subjectPublicKey bits as RFC 6960 4.1.1 says.
func issuerKeyHash(issuer *x509.Certificate, h crypto.Hash) ([]byte, error) {
	if !h.Available() {
		return nil, errors.New("hash unavailable")
	}
	key, err := subjectPublicKeyBits(issuer.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, err
	}
	hh := h.New()
	hh.Write(key)
	return hh.Sum(nil), nil
}

func subjectPublicKeyBits(spki []byte) ([]byte, error) {
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, err
	}
	return info.PublicKey.Bytes, nil
}
