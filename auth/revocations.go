package auth

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/estkit/estkit"
)

// Revocations are the certificates that manufacturers' CRLs revoke. A
// factory certificate cannot be recalled otherwise: a device that was
// stolen, cloned or sold off keeps a valid certificate for years. The
// operator gives estd the CRLs (manufacturer_crl); each must be signed by a
// certificate of the manufacturer bundle, or by an intermediate given with
// the CRLs that chains to the bundle. A device whose verified chain holds a
// certificate one of them lists is refused, whatever else it presents.
//
// Only complete CRLs are taken: a delta CRL or a partition (an issuing
// distribution point), an indirect CRL (certificateIssuer entries) and any
// other critical extension are refused when loading rather than half
// understood.
type Revocations struct {
	revoked    map[revocationKey]struct{}
	n          int       // CRLs in use
	nextUpdate time.Time // the earliest nextUpdate of those, zero for none
}

// revocationKey names a certificate as a CRL does: by its issuer's name and
// its serial number.
type revocationKey struct {
	issuer string // the issuer's DER name, as the certificate's RawIssuer has it
	serial string // the serial's big-endian magnitude
}

// keyOf is how CRLs name c. Go builds chains only from a parent whose
// RawSubject is byte for byte c's RawIssuer, so a CRL's entries are keyed by
// its signer's RawSubject.
func keyOf(c *x509.Certificate) revocationKey {
	var serial []byte
	if c.SerialNumber != nil {
		serial = c.SerialNumber.Bytes()
	}
	return revocationKey{issuer: string(c.RawIssuer), serial: string(serial)}
}

// CRL and CRL entry extensions (RFC 5280 5.2, 5.3).
var (
	oidAuthorityKeyID      = asn1.ObjectIdentifier{2, 5, 29, 35}
	oidCRLNumber           = asn1.ObjectIdentifier{2, 5, 29, 20}
	oidDeltaCRLIndicator   = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidIssuingDistribution = asn1.ObjectIdentifier{2, 5, 29, 28}
	oidReasonCode          = asn1.ObjectIdentifier{2, 5, 29, 21}
	oidInvalidityDate      = asn1.ObjectIdentifier{2, 5, 29, 24}
	oidCertificateIssuer   = asn1.ObjectIdentifier{2, 5, 29, 29}
)

// NewRevocations checks crls and takes what they revoke. Each CRL must be
// signed by a certificate of bundle (the manufacturer trust anchors), or of
// intermediates that verify against bundle at now. Of several CRLs from one
// issuer, the newest (by CRL number, else by thisUpdate) counts. It also
// returns warnings for the operator: a CRL past its nextUpdate is used all
// the same (what it revokes stays revoked) but should be replaced.
func NewRevocations(crls []*x509.RevocationList, bundle, intermediates []*x509.Certificate, now time.Time) (*Revocations, []string, error) {
	signers := append([]*x509.Certificate(nil), bundle...)
	if len(intermediates) > 0 {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		for _, c := range bundle {
			roots.AddCert(c)
		}
		for _, c := range intermediates {
			inter.AddCert(c)
		}
		for _, c := range intermediates {
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return nil, nil, fmt.Errorf("the CA certificate %q given with the CRLs does not chain to the manufacturer bundle: %v", c.Subject, err)
			}
			signers = append(signers, c)
		}
	}
	var warnings []string
	type chosen struct {
		crl    *x509.RevocationList
		signer *x509.Certificate
	}
	latest := map[string]chosen{}
	for _, crl := range crls {
		if err := checkCRLExtensions(crl); err != nil {
			return nil, nil, err
		}
		var signer *x509.Certificate
		for _, c := range signers {
			if est.SameName(c.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(c) == nil {
				signer = c
				break
			}
		}
		if signer == nil {
			return nil, nil, fmt.Errorf("the CRL of %q is not signed by a certificate of the manufacturer bundle (or an intermediate given with the CRLs)", crl.Issuer)
		}
		// One current CRL per signer, a name and a key: a CA rekeyed
		// under its old name signs CRLs of its own.
		k := string(signer.RawSubject) + "\x00" + string(signer.RawSubjectPublicKeyInfo)
		prev, ok := latest[k]
		if !ok {
			latest[k] = chosen{crl, signer}
			continue
		}
		switch c := newer(crl, prev.crl); {
		case c == 0 && bytes.Equal(crl.Raw, prev.crl.Raw):
			// the same CRL twice
		case c == 0:
			return nil, nil, fmt.Errorf("two different CRLs of %q with the same number and time", crl.Issuer)
		case c > 0:
			warnings = append(warnings, fmt.Sprintf("a CRL of %q issued %s is superseded by a newer one given; only the newest counts", prev.crl.Issuer, prev.crl.ThisUpdate.Format(time.RFC3339)))
			latest[k] = chosen{crl, signer}
		default:
			warnings = append(warnings, fmt.Sprintf("a CRL of %q issued %s is superseded by a newer one given; only the newest counts", crl.Issuer, crl.ThisUpdate.Format(time.RFC3339)))
		}
	}
	// Entries are keyed by the issuer's name, as certificates name their
	// issuer: of two CAs of one name, a serial one of them revoked is
	// revoked for both, which errs on the side of refusing.
	r := &Revocations{revoked: map[revocationKey]struct{}{}, n: len(latest)}
	for _, ch := range latest {
		crl, issuer := ch.crl, string(ch.signer.RawSubject)
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

// newer compares two CRLs of one issuer: > 0 when a is newer than b.
func newer(a, b *x509.RevocationList) int {
	if a.Number != nil && b.Number != nil {
		if c := a.Number.Cmp(b.Number); c != 0 {
			return c
		}
	}
	return a.ThisUpdate.Compare(b.ThisUpdate)
}

// checkCRLExtensions refuses what NewRevocations does not understand.
func checkCRLExtensions(crl *x509.RevocationList) error {
	for _, e := range crl.Extensions {
		switch {
		case e.Id.Equal(oidDeltaCRLIndicator):
			return fmt.Errorf("the CRL of %q is a delta CRL; give complete CRLs", crl.Issuer)
		case e.Id.Equal(oidIssuingDistribution):
			return fmt.Errorf("the CRL of %q has an issuing distribution point (a partition or an indirect CRL); give complete CRLs", crl.Issuer)
		case e.Id.Equal(oidAuthorityKeyID), e.Id.Equal(oidCRLNumber):
		case e.Critical:
			return fmt.Errorf("the CRL of %q has a critical extension %v estd does not understand", crl.Issuer, e.Id)
		}
	}
	for _, entry := range crl.RevokedCertificateEntries {
		for _, e := range entry.Extensions {
			switch {
			case e.Id.Equal(oidCertificateIssuer):
				return fmt.Errorf("the CRL of %q names other issuers (an indirect CRL); give each issuer's own CRL", crl.Issuer)
			case e.Id.Equal(oidReasonCode), e.Id.Equal(oidInvalidityDate):
			case e.Critical:
				return fmt.Errorf("the CRL of %q has an entry with a critical extension %v estd does not understand", crl.Issuer, e.Id)
			}
		}
	}
	return nil
}

// reasonRemoveFromCRL (RFC 5280 5.3.1) un-revokes, in delta CRLs.
const reasonRemoveFromCRL = 8

// Revoked reports whether a CRL revokes c.
func (r *Revocations) Revoked(c *x509.Certificate) bool {
	if r == nil || len(r.revoked) == 0 {
		return false
	}
	_, ok := r.revoked[keyOf(c)]
	return ok
}

// revokedIn reports whether every one of chains holds a revoked
// certificate, and which one in the first chain.
func (r *Revocations) revokedIn(chains [][]revocationKey) (revocationKey, bool) {
	if r == nil || len(r.revoked) == 0 || len(chains) == 0 {
		return revocationKey{}, false
	}
	var first revocationKey
	for i, ch := range chains {
		found := false
		for _, k := range ch {
			if _, ok := r.revoked[k]; ok {
				if i == 0 {
					first = k
				}
				found = true
				break
			}
		}
		if !found {
			return revocationKey{}, false // a chain without a revoked certificate
		}
	}
	return first, true
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
