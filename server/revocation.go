package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"golang.org/x/crypto/ocsp"

	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/internal/logsample"
	"github.com/estkit/estkit/store"
)

// CRL and OCSP timing.
const (
	// CRLValidity is the span between a CRL's thisUpdate and nextUpdate.
	CRLValidity = 24 * time.Hour
	// crlRefresh is how old a cached CRL, and the reading of revocations
	// it was signed from, may get: a revocation on any node shows in the
	// CRLs within twice this time.
	crlRefresh = time.Minute
	// OCSPValidity is the nextUpdate of OCSP responses.
	OCSPValidity = time.Hour
)

// Revocation publishes revocation status over plain HTTP: CRLs (RFC 5280,
// DER, each signed by the issuing CA whose certificates it lists) at /crl
// and /crl/ID, and an OCSP responder (RFC 6960, GET and POST, responses
// signed by the issuing CA of the certificate asked about) at /ocsp.
//
// After a rollover (estd ca rollover) estd has issuing CAs of earlier
// generations, retired, whose certificates stay valid until they expire:
// each issuing CA has its CRL at /crl/ID, ID its subject key identifier in
// lowercase hexadecimal, and /crl is the first generation's (CRLPath).
type Revocation struct {
	cas   []*revocationCA // the current issuing CA first
	bare  *revocationCA   // the CA of /crl
	store store.Store
	revs  store.Revocations
	clock func() time.Time
	log   *slog.Logger

	// readMu guards one reading of the revoked certificates, sorted by CA,
	// shared by the CAs' CRLs for crlRefresh.
	readMu  sync.Mutex
	readAt  time.Time
	revoked map[*revocationCA][]x509.RevocationListEntry

	// refusals samples the log lines of refused requests.
	refusals *logsample.Sampler
}

// IssuingCA is an issuing CA certificate with its key.
type IssuingCA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

type revocationCA struct {
	IssuingCA
	// mu guards the CA's cached CRL: signing one CA's CRL, or failing to,
	// holds up no other CA's.
	mu      sync.Mutex
	crl     []byte    // the last CRL signed, nil if none is valid
	crlNext time.Time // its nextUpdate
	crlMade time.Time // when it was last signed or failed to be
	crlErr  error     // why the last signing failed, nil if it did not
}

// CRLPath is the path of the CRL of an issuing CA among those estd serves:
// /crl for the first generation (ca.Generation), whose certificates name
// the CRL URL as configured, /crl/ID for every later one, ID its subject
// key identifier in lowercase hexadecimal. Certificates name it in their
// CRL distribution point; it depends on the CA certificate alone, so nodes
// agree on it whatever else their data directories hold.
func CRLPath(c *x509.Certificate) string {
	if ca.Generation(c) == 1 {
		return "/crl"
	}
	return "/crl/" + hex.EncodeToString(c.SubjectKeyId)
}

// NewRevocation returns the handler for the issuing CAs cas, the current
// one first. The store must list revocations.
func NewRevocation(cas []IssuingCA, st store.Store, clock func() time.Time, log *slog.Logger) (*Revocation, error) {
	revs, ok := st.(store.Revocations)
	if !ok {
		return nil, errors.New("server: the store cannot list revocations")
	}
	if len(cas) == 0 {
		return nil, errors.New("server: no issuing CA")
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &Revocation{store: st, revs: revs, clock: clock, log: log, refusals: logsample.New(10, time.Second)}
	for _, c := range cas {
		v.cas = append(v.cas, &revocationCA{IssuingCA: c})
	}
	// /crl is the first generation's CRL; once that CA has expired (and
	// every certificate naming /crl with it), the current CA's.
	v.bare = v.cas[0]
	for _, c := range v.cas {
		if CRLPath(c.Cert) == "/crl" {
			v.bare = c
			break
		}
	}
	return v, nil
}

// ServeHTTP serves /crl and /ocsp.
func (v *Revocation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case (r.URL.Path == "/crl" || strings.HasPrefix(r.URL.Path, "/crl/")) && (r.Method == "GET" || r.Method == "HEAD"):
		c := v.crlCA(r.URL.Path)
		if c == nil {
			v.refused(r, "no issuing CA has that key identifier")
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		crl, err := v.crlOf(r.Context(), c)
		if err != nil {
			v.log.Error("CRL", "err", err.Error())
			http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge(crl, v.clock())))
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

// maxAge is how long, in seconds, a client may cache crl: a minute, or
// less when the CRL is due to be replaced sooner (a CRL kept because its
// CA's key failed).
func maxAge(crl []byte, now time.Time) int {
	l, err := x509.ParseRevocationList(crl)
	if err != nil {
		return 0
	}
	return int(max(0, min(60, l.NextUpdate.Sub(now)/time.Second)))
}

func writeOCSP(w http.ResponseWriter, resp []byte) {
	w.Header().Set("Cache-Control", "max-age=60")
	writeFull(w, "application/ocsp-response", resp)
}

// crlCA returns the CA whose CRL is at path, or nil.
func (v *Revocation) crlCA(path string) *revocationCA {
	if path == "/crl" {
		return v.bare
	}
	id := strings.TrimPrefix(path, "/crl/")
	for _, c := range v.cas {
		if hex.EncodeToString(c.Cert.SubjectKeyId) == id {
			return c
		}
	}
	return nil
}

// CRL returns the CRL of /crl (see Revocation).
func (v *Revocation) CRL(ctx context.Context) ([]byte, error) {
	return v.crlOf(ctx, v.bare)
}

// crlOf returns the CRL of c, signed anew when it is older than a minute.
// Each CA signs on its own: a CA whose key fails (an HSM that is gone)
// keeps serving its last CRL until that CRL's nextUpdate, tries again a
// minute later, and holds up no other CA's.
func (v *Revocation) crlOf(ctx context.Context, c *revocationCA) ([]byte, error) {
	now := v.clock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.crlMade.IsZero() && now.Sub(c.crlMade) < crlRefresh && !now.Before(c.crlMade) {
		if c.crl == nil {
			return nil, c.crlErr
		}
		return c.crl, nil
	}
	// last is the cached CRL while it is valid: what a failure serves.
	last := func(err error) ([]byte, error) {
		if c.crl != nil && now.Before(c.crlNext) {
			return c.crl, nil
		}
		c.crl = nil
		return nil, err
	}
	revoked, readAt, err := v.revokedByCA(ctx, now)
	if err != nil {
		v.log.Error("could not read the revoked certificates for a CRL", "ca", c.Cert.Subject.String(), "err", err.Error())
		return last(err)
	}
	// The CRL says what the store held when it was read, not later.
	thisUpdate := readAt.Truncate(time.Second)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		// Seconds since the epoch: increasing across restarts and nodes.
		Number:                    big.NewInt(thisUpdate.Unix()),
		ThisUpdate:                thisUpdate,
		NextUpdate:                thisUpdate.Add(CRLValidity),
		RevokedCertificateEntries: revoked[c],
	}, c.Cert, c.Signer)
	c.crlMade = readAt
	if err != nil {
		c.crlMade = now
		c.crlErr = fmt.Errorf("the CRL of %s: %w", c.Cert.Subject, err)
		v.log.Error("could not sign a CRL", "ca", c.Cert.Subject.String(), "err", err.Error())
		return last(c.crlErr)
	}
	c.crl, c.crlNext, c.crlErr = der, thisUpdate.Add(CRLValidity), nil
	return der, nil
}

// revokedByCA returns the revoked certificates sorted by the CA that issued
// them, and when they were read: at most once per crlRefresh for all CAs.
func (v *Revocation) revokedByCA(ctx context.Context, now time.Time) (map[*revocationCA][]x509.RevocationListEntry, time.Time, error) {
	v.readMu.Lock()
	defer v.readMu.Unlock()
	if v.revoked != nil && now.Sub(v.readAt) < crlRefresh && !now.Before(v.readAt) {
		return v.revoked, v.readAt, nil
	}
	recs, err := v.revs.Revoked(ctx, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	revoked := make(map[*revocationCA][]x509.RevocationListEntry, len(v.cas))
	unmatched := 0
	for _, r := range recs {
		issuer := v.issuer(r)
		if issuer == nil {
			unmatched++
			continue
		}
		revoked[issuer] = append(revoked[issuer], x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.RevokedAt, ReasonCode: r.RevocationReason})
	}
	if unmatched > 0 {
		v.log.Warn("revoked certificates on record that none of the issuing CAs loaded issued are on no CRL (is a retired CA missing from retired-cas?)", "certificates", unmatched)
	}
	v.revoked, v.readAt = revoked, now
	return revoked, now, nil
}

// issuer returns the CA that issued the certificate of rec, or nil when
// none of them did. With one issuing CA every record is its; with several,
// the certificate's authority key identifier tells (read without parsing
// the whole certificate: a CRL may list a million).
func (v *Revocation) issuer(rec *store.Record) *revocationCA {
	if len(v.cas) == 1 {
		return v.cas[0]
	}
	if aki := authorityKeyID(rec.DER); aki != nil {
		for _, c := range v.cas {
			if bytes.Equal(aki, c.Cert.SubjectKeyId) {
				return c
			}
		}
		return nil
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil
	}
	for _, c := range v.cas {
		if bytes.Equal(cert.RawIssuer, c.Cert.RawSubject) && cert.CheckSignatureFrom(c.Cert) == nil {
			return c
		}
	}
	return nil
}

// oidAuthorityKeyID is 2.5.29.35, DER-encoded.
var oidAuthorityKeyID = []byte{0x55, 0x1d, 0x23}

// authorityKeyID returns the keyIdentifier of a DER certificate's
// authority key identifier extension (RFC 5280 4.2.1.1), or nil.
func authorityKeyID(der []byte) []byte {
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return nil
	}
	// Extensions count in v3 certificates only, as crypto/x509 reads them.
	var version cryptobyte.String
	var hasVersion bool
	var v int
	if !tbs.ReadOptionalASN1(&version, &hasVersion, cbasn1.Tag(0).Constructed().ContextSpecific()) || !hasVersion ||
		!version.ReadASN1Integer(&v) || v != 2 {
		return nil
	}
	if !tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subjectPublicKeyInfo
		!tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific()) || // issuerUniqueID
		!tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific()) { // subjectUniqueID
		return nil
	}
	var exts, list cryptobyte.String
	var present bool
	if !tbs.ReadOptionalASN1(&exts, &present, cbasn1.Tag(3).Constructed().ContextSpecific()) || !present ||
		!exts.ReadASN1(&list, cbasn1.SEQUENCE) {
		return nil
	}
	for !list.Empty() {
		var ext, oid, value, aki, id cryptobyte.String
		if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) {
			return nil
		}
		if !bytes.Equal(oid, oidAuthorityKeyID) {
			continue
		}
		var hasID bool
		if !ext.SkipOptionalASN1(cbasn1.BOOLEAN) || !ext.ReadASN1(&value, cbasn1.OCTET_STRING) ||
			!value.ReadASN1(&aki, cbasn1.SEQUENCE) || !aki.ReadOptionalASN1(&id, &hasID, cbasn1.Tag(0).ContextSpecific()) || !hasID {
			return nil
		}
		return id
	}
	return nil
}

// OCSP answers one DER OCSP request with a DER response.
func (v *Revocation) OCSP(ctx context.Context, der []byte) []byte {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		v.log.Info("OCSP: malformed request", "err", err.Error())
		return ocsp.MalformedRequestErrorResponse
	}
	// The request must name one of our issuing CAs by the hashes of its
	// key and of its name.
	var c *revocationCA
	for _, cand := range v.cas {
		if spki, err := issuerKeyHash(cand.Cert, req.HashAlgorithm); err == nil && string(spki) == string(req.IssuerKeyHash) &&
			string(hashOf(req.HashAlgorithm, cand.Cert.RawSubject)) == string(req.IssuerNameHash) {
			c = cand
			break
		}
	}
	if c == nil {
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
	case v.issuer(rec) != c:
		tmpl.Status = ocsp.Unknown // on record, but another CA of ours issued it
	case rec.Revoked:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt, rec.RevocationReason
	}
	resp, err := ocsp.CreateResponse(c.Cert, c.Cert, tmpl, c.Signer)
	if err != nil {
		v.log.Error("OCSP", "err", err.Error())
		return ocsp.InternalErrorErrorResponse
	}
	return resp
}

// hashOf hashes b with h, an available hash.
func hashOf(h crypto.Hash, b []byte) []byte {
	hh := h.New()
	hh.Write(b)
	return hh.Sum(nil)
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
