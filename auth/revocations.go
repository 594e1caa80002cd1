package auth

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// Revocations are the certificates that manufacturers' CRLs revoke. A
// factory certificate cannot be recalled otherwise: a device that was
// stolen, cloned or sold off keeps a valid certificate for years. The
// operator gives estd the CRLs (manufacturer_crl); each must be signed by a
// certificate of the manufacturer bundle. A device presenting a certificate
// one of them lists is refused, whatever else it presents.
type Revocations struct {
	revoked    map[revocationKey]struct{}
	n          int       // CRLs in use
	nextUpdate time.Time // the earliest nextUpdate of those, zero for none
}

// revocationKey names a certificate as a CRL does: by its issuer's name and
// its serial number.
type revocationKey struct {
	issuer string // the issuer's DER name
	serial string // the serial's big-endian magnitude
}

// NewRevocations checks crls against issuers, the certificates that may
// sign them (the manufacturer bundle): a CRL signed by none of them is an
// error. Of several CRLs from one issuer, the one issued last counts. It
// also returns warnings for the operator: a CRL past its nextUpdate is used
// all the same (what it revokes stays revoked) but should be replaced.
func NewRevocations(crls []*x509.RevocationList, issuers []*x509.Certificate, now time.Time) (*Revocations, []string, error) {
	var warnings []string
	latest := map[string]*x509.RevocationList{}
	for _, crl := range crls {
		var signer *x509.Certificate
		for _, c := range issuers {
			if bytes.Equal(c.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(c) == nil {
				signer = c
				break
			}
		}
		if signer == nil {
			return nil, nil, fmt.Errorf("the CRL of %q is not signed by a certificate of the manufacturer bundle", crl.Issuer)
		}
		k := string(crl.RawIssuer)
		if prev, ok := latest[k]; ok {
			if !crl.ThisUpdate.After(prev.ThisUpdate) {
				warnings = append(warnings, fmt.Sprintf("a CRL of %q issued %s is older than another one given; only the newest counts", crl.Issuer, crl.ThisUpdate.Format(time.RFC3339)))
				continue
			}
			warnings = append(warnings, fmt.Sprintf("a CRL of %q issued %s is older than another one given; only the newest counts", prev.Issuer, prev.ThisUpdate.Format(time.RFC3339)))
		}
		latest[k] = crl
	}
	r := &Revocations{revoked: map[revocationKey]struct{}{}, n: len(latest)}
	for issuer, crl := range latest {
		if !crl.NextUpdate.IsZero() && (r.nextUpdate.IsZero() || crl.NextUpdate.Before(r.nextUpdate)) {
			r.nextUpdate = crl.NextUpdate
		}
		if !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate) {
			warnings = append(warnings, fmt.Sprintf("the CRL of %q was due to be replaced at %s; its revocations still apply, but get a current one", crl.Issuer, crl.NextUpdate.Format(time.RFC3339)))
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.ReasonCode == reasonRemoveFromCRL || e.SerialNumber == nil {
				continue
			}
			r.revoked[revocationKey{issuer, string(e.SerialNumber.Bytes())}] = struct{}{}
		}
	}
	return r, warnings, nil
}

// reasonRemoveFromCRL (RFC 5280 5.3.1) un-revokes, in delta CRLs.
const reasonRemoveFromCRL = 8

// Revoked reports whether a CRL revokes c.
func (r *Revocations) Revoked(c *x509.Certificate) bool {
	if r == nil || len(r.revoked) == 0 || c.SerialNumber == nil {
		return false
	}
	_, ok := r.revoked[revocationKey{string(c.RawIssuer), string(c.SerialNumber.Bytes())}]
	return ok
}

// Len is the number of certificates revoked.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.revoked)
}

// CRLs is the number of CRLs in use.
func (r *Revocations) CRLs() int {
	if r == nil {
		return 0
	}
	return r.n
}

// NextUpdate is the earliest nextUpdate of the CRLs in use: when the first
// of them is due to be replaced. It is zero when none says.
func (r *Revocations) NextUpdate() time.Time {
	if r == nil {
		return time.Time{}
	}
	return r.nextUpdate
}
