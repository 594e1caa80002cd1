// Package server is the EST server of RFC 7030 as an http.Handler: it serves
// /.well-known/est[/label]/{cacerts,simpleenroll,simplereenroll,fullcmc,
// serverkeygen,csrattrs} (RFC 7030 3.2.2, 4.1-4.5; fullcmc in fullcmc.go), authenticates each request for the
// label's profile, issues through a ca.Issuer and records every certificate in
// the store before it answers. Dependencies come in through Options; there is
// no global state.
//
// A label may require proof-of-possession linking (RFC 7030 3.5): the CSR's
// challengePassword must hold the channel binding of the TLS connection it
// arrives on, tls-unique on TLS 1.2 and, as TLS 1.3 has no tls-unique,
// tls-exporter (RFC 9266) on TLS 1.3 (pop.go). /serverkeygen encrypts the
// private key when the CSR asks (RFC 7030 4.4.1.1, 4.4.1.2;
// keygen_encrypt.go).
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/store"
)

// DefaultMaxBody is the default limit on request bodies: 64 KiB.
const DefaultMaxBody = 64 << 10

// Options are the dependencies of a Handler.
type Options struct {
	// Issuer signs certificates.
	Issuer ca.Issuer
	// CACerts is the chain /cacerts returns: issuing CA first, root last.
	CACerts []*x509.Certificate
	// Profiles are the labels served; the one named "" is the unlabeled default.
	Profiles []*ca.Profile
	// Verifier authenticates requesters.
	Verifier *auth.Verifier
	// Store records issued certificates.
	Store store.Store
	// Logger receives access and audit lines; nil discards them.
	Logger *slog.Logger
	// MaxBody limits request bodies; 0 means DefaultMaxBody.
	MaxBody int64
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Metrics records Prometheus metrics; nil records none.
	Metrics *Metrics
	// ApprovalRetryAfter is the Retry-After, in seconds, of a 202 for a
	// request waiting for manual approval; 0 means DefaultApprovalRetryAfter.
	ApprovalRetryAfter int
	// AuthLimits limit failed authentication; the zero value is the defaults.
	AuthLimits AuthLimits
}

// Handler serves EST.
type Handler struct {
	issuer ca.Issuer
	store  store.Store
	// approvals is the store's manual-approval capability, nil if it has none.
	approvals          store.Approvals
	approvalRetryAfter int
	metrics            *Metrics
	log                *slog.Logger
	maxBody            int64
	clock              func() time.Time
	verifier           *auth.Verifier
	profiles           atomic.Pointer[map[string]*label] // replaced whole by SetProfiles
	cacerts            []byte                            // base64 body of /cacerts, encoded once
	keks               atomic.Pointer[KEKs]              // shared keys of encrypted serverkeygen
	limits             *authLimiter
}

// label is a profile with what is derived from it once.
type label struct {
	*ca.Profile
	authn    auth.Authenticator // for simpleenroll and serverkeygen
	renew    auth.Authenticator // for simplereenroll: certificates we issued only
	csrattrs []byte             // base64 body, nil for 204
}

// New returns a Handler for o.
func New(o Options) (*Handler, error) {
	if o.Issuer == nil || o.Store == nil || o.Verifier == nil || len(o.CACerts) == 0 {
		return nil, errors.New("server: Issuer, Store, Verifier and CACerts are required")
	}
	h := &Handler{
		issuer:   o.Issuer,
		store:    o.Store,
		log:      o.Logger,
		maxBody:  o.MaxBody,
		clock:    o.Clock,
		verifier: o.Verifier,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	h.approvals, _ = o.Store.(store.Approvals)
	h.metrics = o.Metrics
	h.approvalRetryAfter = o.ApprovalRetryAfter
	h.limits = newAuthLimiter(o.AuthLimits)
	if h.approvalRetryAfter <= 0 {
		h.approvalRetryAfter = DefaultApprovalRetryAfter
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBody
	}
	p7, err := est.EncodeCertsOnly(o.CACerts...)
	if err != nil {
		return nil, err
	}
	h.cacerts = est.EncodeBase64(p7)
	if err := h.SetProfiles(o.Profiles); err != nil {
		return nil, err
	}
	return h, nil
}

// CheckProfiles reports what SetProfiles would refuse in profiles, short of
// what depends on the store.
func CheckProfiles(profiles []*ca.Profile) error {
	seen := map[string]bool{}
	for _, p := range profiles {
		if err := p.Check(); err != nil {
			return err
		}
		if seen[p.Name] {
			return fmt.Errorf("server: profile %q defined twice", p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

// SetProfiles replaces the labels served, all at once: a request sees either
// the old set or the new one. On error nothing changes.
func (h *Handler) SetProfiles(profiles []*ca.Profile) error {
	if err := CheckProfiles(profiles); err != nil {
		return err
	}
	m := make(map[string]*label, len(profiles))
	for _, p := range profiles {
		if p.ManualApproval && h.approvals == nil {
			return fmt.Errorf("server: profile %q needs manual approval, which store %T cannot keep", p.Name, h.store)
		}
		l := &label{Profile: p, authn: h.verifier.For(p.Auth...), renew: h.verifier.For(auth.Issued)}
		if attrs := csrAttrsOf(p); len(attrs) > 0 {
			der, err := attrs.Marshal()
			if err != nil {
				return fmt.Errorf("server: profile %q: csrattrs: %w", p.Name, err)
			}
			l.csrattrs = est.EncodeBase64(der)
		}
		m[p.Name] = l
	}
	h.profiles.Store(&m)
	return nil
}

// request is what one request did, for the access line.
type request struct {
	label string
	op    est.Operation
	who   auth.Identity
	cert  *x509.Certificate
	// approvalID is the manual-approval request being issued, if any.
	approvalID string
	// repeated: cert was issued by an earlier request and is sent again.
	repeated bool
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var rq request
	status, err := h.serve(w, r, &rq)
	if err != nil {
		status = h.writeError(w, r, &rq, err)
	}
	attrs := []any{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	}
	if rq.who.Method != "" {
		attrs = append(attrs, slog.String("auth", string(rq.who.Method)), slog.String("who", rq.who.Name))
	}
	if err != nil {
		attrs = append(attrs, slog.String("reason", err.Error()))
	}
	h.log.Info("request", attrs...)
	h.metrics.request(string(rq.op), rq.label, status)
	switch rq.op {
	case est.OpSimpleEnroll, est.OpSimpleReenroll, est.OpServerKeyGen:
		if status != http.StatusAccepted { // a pending request has its own line
			h.audit(&rq, err)
		}
	}
}

// serve handles r and returns the status it wrote, or an error to map.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rq *request) (int, error) {
	// An encoded slash (%2F) belongs to its segment (RFC 3986 2.2): it must
	// not split tls-server%2Fsimpleenroll into a label and an operation.
	if strings.Count(r.URL.EscapedPath(), "/") != strings.Count(r.URL.Path, "/") {
		return 0, est.Errorf(est.ErrNotFound, "not an EST path: encoded slash")
	}
	lbl, op, err := est.ParsePath(r.URL.Path)
	if err != nil {
		return 0, err
	}
	rq.op = op
	p, ok := (*h.profiles.Load())[lbl]
	if !ok {
		rq.label = "(unknown)" // not the requester's text: it would be a metric label
		return 0, est.Errorf(est.ErrNotFound, "unknown label %q", lbl)
	}
	rq.label = lbl
	if r.Method != op.Method() {
		w.Header().Set("Allow", op.Method())
		return 0, est.Errorf(est.ErrMethod, "%s needs %s", op, op.Method())
	}
	switch op {
	case est.OpCACerts:
		return writeBody(w, est.MediaPKCS7, h.cacerts), nil
	case est.OpCSRAttrs:
		if p.csrattrs == nil {
			w.WriteHeader(http.StatusNoContent)
			return http.StatusNoContent, nil
		}
		return writeBody(w, est.MediaCSRAttrs, p.csrattrs), nil
	case est.OpSimpleEnroll, est.OpSimpleReenroll, est.OpServerKeyGen:
		return h.enroll(w, r, p, rq)
	case est.OpFullCMC:
		return h.fullCMC(w, r, p, rq)
	}
	return 0, est.Errorf(est.ErrNotImplemented, "%s is not supported", op)
}

// enroll serves simpleenroll, simplereenroll and serverkeygen.
func (h *Handler) enroll(w http.ResponseWriter, r *http.Request, p *label, rq *request) (int, error) {
	if err := h.limits.check(w, r, h.clock()); err != nil {
		return 0, err
	}
	authn := p.authn
	if rq.op == est.OpSimpleReenroll {
		authn = p.renew
		if r.TLS != nil && len(r.TLS.PeerCertificates) == 0 {
			if _, _, basic := r.BasicAuth(); basic {
				return 0, est.Errorf(est.ErrForbidden, "reenrollment needs the TLS client certificate being renewed")
			}
		}
	}
	who, err := authn.Authenticate(r)
	var superseded *auth.Superseded
	if rq.op == est.OpSimpleReenroll && errors.As(err, &superseded) {
		return h.renewedAlready(w, r, p, rq, superseded, err)
	}
	if err != nil {
		h.limits.failed(r, err, h.clock())
		if est.KindOf(err) == est.ErrUnauthorized && p.Accepts(auth.Basic) {
			w.Header().Set("WWW-Authenticate", `Basic realm="estd", charset="UTF-8"`)
		}
		return 0, err
	}
	rq.who = who
	if rq.op == est.OpServerKeyGen && !p.ServerKeyGen {
		return 0, est.Errorf(est.ErrForbidden, "server-side key generation is not offered for this label")
	}
	req, err := h.readCSR(w, r)
	if err != nil {
		return 0, err
	}
	if err := h.checkLink(r, req, p, who); err != nil {
		return 0, err
	}
	if rq.op != est.OpSimpleReenroll {
		if err := checkBinding(req, p, who); err != nil {
			return 0, err
		}
	}
	if rq.op == est.OpSimpleReenroll {
		if err := checkRenewal(req, who, p.Name); err != nil {
			return 0, err
		}
	}
	if p.ManualApproval && rq.op == est.OpServerKeyGen {
		// A key that cannot be encrypted as the CSR asks is refused
		// before the request is held, not after it was approved.
		if _, err := h.keyRecipient(req, p, who); err != nil {
			return 0, err
		}
	}
	if p.ManualApproval && rq.op != est.OpSimpleReenroll {
		if status, err := h.approval(w, r.Context(), req, p, rq); status != 0 || err != nil {
			return status, err
		}
	}
	if rq.op == est.OpServerKeyGen {
		return h.serverKeyGen(w, r.Context(), req, p, rq)
	}
	cert, err := h.issue(r.Context(), req, p, rq)
	if err != nil {
		return 0, err
	}
	if rq.op == est.OpSimpleReenroll && p.RevokeOnRenew {
		if cert, err = h.supersede(r.Context(), who.Cert, cert, req, p, rq); err != nil {
			return 0, err
		}
		rq.cert = cert
	}
	return writeCertsOnly(w, cert)
}

// writeCertsOnly answers 200 with cert as a base64 certs-only PKCS#7.
func writeCertsOnly(w http.ResponseWriter, cert *x509.Certificate) (int, error) {
	p7, err := est.EncodeCertsOnly(cert)
	if err != nil {
		return 0, est.Wrap(est.ErrInternal, err, "encoding failed")
	}
	return writeBody(w, est.MediaCertsOnly, est.EncodeBase64(p7)), nil
}

// readBody reads the base64 body of r, at most maxBody bytes, and decodes it.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > h.maxBody {
		// Refuse at once rather than wait for a body announced too large.
		// Reading one byte past a zero limit makes net/http close the
		// connection only once the client could read the 413.
		io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 0))
		return nil, est.Errorf(est.ErrTooLarge, "body over %d bytes", h.maxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, est.Errorf(est.ErrTooLarge, "body over %d bytes", h.maxBody)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, est.Wrap(est.ErrTimeout, err, "the body did not arrive in time")
		}
		return nil, est.Wrap(est.ErrBadRequest, err, "could not read the body")
	}
	return est.DecodeBase64(body)
}

// readCSR reads, decodes and verifies the PKCS#10 body of r.
func (h *Handler) readCSR(w http.ResponseWriter, r *http.Request) (*x509.CertificateRequest, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, est.MediaPKCS10) {
		return nil, est.Errorf(est.ErrMediaType, "Content-Type must be %s", est.MediaPKCS10)
	}
	der, err := h.readBody(w, r)
	if err != nil {
		return nil, err
	}
	return est.ParseCSR(der)
}

// checkRenewal enforces RFC 7030 4.2.2: a reenrollment is authenticated by
// the certificate being renewed, and the CSR's Subject and SubjectAltName equal
// that certificate's. It is made on the label the certificate was issued
// under, so a renewal cannot turn a client certificate into a server one.
func checkRenewal(req *x509.CertificateRequest, who auth.Identity, label string) error {
	if who.Method != auth.Issued || who.Cert == nil {
		return est.Errorf(est.ErrForbidden, "reenrollment needs the TLS client certificate being renewed")
	}
	if who.Profile != label {
		return est.Errorf(est.ErrForbidden, "the certificate was issued under label %q; renew it there", who.Profile)
	}
	if !est.SameName(req.RawSubject, who.Cert.RawSubject) {
		return est.Errorf(est.ErrForbidden, "the CSR's subject differs from the certificate being renewed")
	}
	if !SameSANs(req, who.Cert) {
		return est.Errorf(est.ErrForbidden, "the CSR's subjectAltName differs from the certificate being renewed")
	}
	return nil
}

// issue signs a certificate for req and records it; a certificate that could
// not be recorded is not handed out.
func (h *Handler) issue(ctx context.Context, req *x509.CertificateRequest, p *label, rq *request) (*x509.Certificate, error) {
	start := time.Now()
	for attempt := 0; ; attempt++ {
		cert, err := h.issuer.Issue(ctx, req, p.Profile, rq.who)
		if err != nil {
			return nil, err
		}
		err = h.store.Put(ctx, Record(cert, p.Name, rq.who, h.clock()))
		if errors.Is(err, store.ErrDuplicate) && attempt == 0 {
			continue // 112 random bits collided within a millisecond: sign again
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) { // a client that went away is no store error
				h.metrics.StoreError("put")
			}
			return nil, est.Wrap(est.ErrUnavailable, err, "could not record the certificate; nothing was issued")
		}
		if rq.approvalID != "" {
			if cert, err = h.approvedIssued(ctx, rq, cert); err != nil {
				return nil, err
			}
		}
		rq.cert = cert
		h.metrics.issued(p.Name, time.Since(start))
		return cert, nil
	}
}

// audit writes one line per enrollment request: "issued" with the serial
// and subject, or "refused" with the reason; who asked and how they
// authenticated, when known, on both.
func (h *Handler) audit(rq *request, err error) {
	attrs := []any{
		slog.String("op", string(rq.op)),
		slog.String("label", rq.label),
		slog.String("who", rq.who.Name),
		slog.String("auth", string(rq.who.Method)),
	}
	if err != nil || rq.cert == nil {
		reason := "no certificate"
		if err != nil {
			reason = err.Error()
		}
		if rq.cert != nil {
			// Issued, recorded, then withdrawn (a renewal that lost to a
			// concurrent one): its serial is on record, revoked.
			attrs = append(attrs, slog.String("serial", rq.cert.SerialNumber.Text(16)))
		}
		h.log.Warn("refused", append(attrs, slog.String("reason", reason))...)
		return
	}
	msg := "issued"
	if rq.repeated {
		msg = "sent again" // issued and audited before; nothing was signed now
	}
	h.log.Info(msg, append(attrs,
		slog.String("serial", rq.cert.SerialNumber.Text(16)),
		slog.String("subject", rq.cert.Subject.String()))...)
}

// writeBody writes a 200 with a base64 body of the given media type.
func writeBody(w http.ResponseWriter, mediaType string, b64 []byte) int {
	w.Header().Set("Content-Transfer-Encoding", "base64")
	return writeFull(w, mediaType, b64)
}

// writeFull writes a 200 with body and an explicit Content-Length: some EST
// clients (strongSwan's pki) cannot read chunked responses.
func writeFull(w http.ResponseWriter, mediaType string, body []byte) int {
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return http.StatusOK
}
