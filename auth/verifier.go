package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/store"
)

// Verifier holds what every authentication method needs. One Verifier is
// shared by the per-profile Authenticators that For returns; the trust
// anchors and users can be replaced while it serves (SetManufacturers,
// SetUsers).
type Verifier struct {
	// Issuing is our issuing CA certificate: client certificates it signed
	// authenticate as Issued when the store knows them and they are not revoked.
	Issuing *x509.Certificate
	// Retired are issuing CA certificates of this CA that a rollover
	// replaced: the certificates they signed authenticate as Issued too,
	// until they expire.
	Retired []*x509.Certificate
	// Store is where issued certificates are looked up.
	Store store.Store
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time

	// manufacturers are the manufacturer trust anchors with what their
	// CRLs revoke, replaced together.
	manufacturers atomic.Pointer[manufacturerTrust]
	users         atomic.Pointer[Users]
	issuingPool   atomic.Pointer[x509.CertPool]
	// chains remembers verified client certificate chains (chaincache.go);
	// verifications counts the chains verified in full, for tests.
	chains        chainCache
	verifications atomic.Int64
}

// manufacturerTrust is what factory certificates are verified against.
type manufacturerTrust struct {
	pool        *x509.CertPool
	revocations *Revocations
}

// SetManufacturers replaces the manufacturer trust anchors (nil: none) and
// what their CRLs revoke (nil: nothing), both at once. Chains verified
// against the old anchors are forgotten, which lets the old pool go (a
// verification that started before the change may still add one entry for
// it; it can never match, the key names the pool). Revocations are looked
// up on every request.
func (v *Verifier) SetManufacturers(p *x509.CertPool, r *Revocations) {
	var t *manufacturerTrust
	if p != nil {
		t = &manufacturerTrust{pool: p, revocations: r}
	}
	v.manufacturers.Store(t)
	v.chains.reset()
}

// ManufacturerRevocations returns what the manufacturers' CRLs in use revoke.
func (v *Verifier) ManufacturerRevocations() *Revocations {
	if t := v.manufacturers.Load(); t != nil {
		return t.revocations
	}
	return nil
}

// SetUsers replaces the HTTP Basic users (nil: none).
func (v *Verifier) SetUsers(u *Users) { v.users.Store(u) }

func (v *Verifier) now() time.Time {
	if v.Clock != nil {
		return v.Clock()
	}
	return time.Now()
}

// For returns an Authenticator that accepts only the given methods. A request
// whose only credentials are of another method is refused with ErrForbidden.
func (v *Verifier) For(methods ...Method) Authenticator {
	a := &methodSet{v: v}
	for _, m := range methods {
		switch m {
		case Basic:
			a.basic = true
		case Manufacturer:
			a.manufacturer = true
		case Issued:
			a.issued = true
		}
	}
	return a
}

type methodSet struct {
	v                           *Verifier
	basic, manufacturer, issued bool
}

func (a *methodSet) Authenticate(r *http.Request) (Identity, error) {
	var certErr error
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := a.v.certificate(r.Context(), r.TLS.PeerCertificates, a.manufacturer, a.issued)
		if err == nil {
			return id, nil
		}
		if errors.Is(err, errRevoked) {
			return Identity{}, err // revoked: no other credentials help
		}
		certErr = err
	}
	if user, pass, ok := r.BasicAuth(); ok {
		if r.TLS == nil {
			return Identity{}, est.Errorf(est.ErrForbidden, "HTTP Basic credentials are accepted only over TLS")
		}
		if !a.basic {
			if certErr != nil {
				return Identity{}, certErr
			}
			return Identity{}, est.Errorf(est.ErrForbidden, "HTTP Basic authentication is not accepted for this label")
		}
		if users := a.v.users.Load(); users != nil && users.Verify(user, pass) {
			return Identity{Method: Basic, Name: user}, nil
		}
		return Identity{}, est.Errorf(est.ErrUnauthorized, "invalid user name or password")
	}
	if certErr != nil {
		return Identity{}, certErr
	}
	if !a.basic {
		// Nothing to challenge for (a 401 must name an HTTP
		// authentication scheme, RFC 9110 15.5.2): only a certificate
		// in the TLS handshake would do.
		return Identity{}, est.Errorf(est.ErrForbidden, "a TLS client certificate is required here, and none was presented")
	}
	return Identity{}, est.Errorf(est.ErrUnauthorized, "authentication required")
}

// certificate verifies a TLS client certificate chain as Issued (tried
// first) or Manufacturer, whichever is allowed.
func (v *Verifier) certificate(ctx context.Context, peers []*x509.Certificate, manufacturer, issued bool) (Identity, error) {
	leaf, now := peers[0], v.now()
	var reasons []string
	if v.Issuing != nil {
		if _, err := v.verifyChain(peers, v.issuingRoots(), now); err == nil {
			if !issued {
				if _, err := v.issuedStatus(ctx, leaf); errors.Is(err, errRevoked) {
					return Identity{}, err
				}
				return Identity{}, est.Errorf(est.ErrForbidden, "authentication by a certificate of this CA is not accepted for this label")
			}
			return v.issuedStatus(ctx, leaf)
		} else {
			reasons = append(reasons, why(err))
		}
	}
	if trust := v.manufacturers.Load(); trust != nil {
		if chains, err := v.verifyChain(peers, trust.pool, now); err == nil {
			if k, revoked := trust.revocations.revokedIn(chains); revoked {
				what := "the client certificate"
				if k != keyOf(leaf) {
					what = "a CA certificate of its chain"
				}
				return Identity{}, est.Wrap(est.ErrForbidden, errRevoked, fmt.Sprintf("client certificate refused: %s (serial %x) is revoked by its manufacturer's CRL", what, []byte(k.serial)))
			}
			if !manufacturer {
				return Identity{}, est.Errorf(est.ErrForbidden, "authentication by a manufacturer certificate is not accepted for this label")
			}
			return Identity{Method: Manufacturer, Name: leaf.Subject.String(), Cert: leaf}, nil
		} else {
			reasons = append(reasons, why(err))
		}
	}
	reason := "no trust anchor configured"
	if len(reasons) > 0 {
		reason = reasons[len(reasons)-1]
		for _, r := range reasons {
			if r != reasonUnknownCA { // an expiry says more than "unknown CA"
				reason = r
			}
		}
	}
	return Identity{}, est.Errorf(est.ErrForbidden, "client certificate refused: %s", reason)
}

func (v *Verifier) issuingRoots() *x509.CertPool {
	if p := v.issuingPool.Load(); p != nil {
		return p
	}
	p := x509.NewCertPool()
	p.AddCert(v.Issuing)
	for _, c := range v.Retired {
		p.AddCert(c)
	}
	v.issuingPool.Store(p)
	return p
}

// issuedStatus checks that a certificate signed by our issuing CA is on record
// and not revoked.
func (v *Verifier) issuedStatus(ctx context.Context, leaf *x509.Certificate) (Identity, error) {
	if v.Store == nil {
		return Identity{}, est.Errorf(est.ErrForbidden, "client certificate refused: no store to check it against")
	}
	st, err := certificateStatus(ctx, v.Store, leaf)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Identity{}, est.Errorf(est.ErrForbidden, "client certificate refused: not on record")
	case err != nil:
		return Identity{}, est.Wrap(est.ErrUnavailable, err, "certificate status unavailable")
	case !st.SameDER:
		return Identity{}, est.Errorf(est.ErrForbidden, "client certificate refused: does not match the record")
	case st.Revoked && st.SupersededBy != nil:
		who := Identity{Method: Issued, Name: leaf.Subject.String(), Cert: leaf, Profile: st.Profile}
		return Identity{}, est.Wrap(est.ErrForbidden, &Superseded{Identity: who, Successor: st.SupersededBy},
			fmt.Sprintf("client certificate refused: revoked, it was renewed already (serial %s)", st.SupersededBy.Text(16)))
	case st.Revoked:
		return Identity{}, est.Wrap(est.ErrForbidden, errRevoked, "client certificate refused: revoked")
	}
	return Identity{Method: Issued, Name: leaf.Subject.String(), Cert: leaf, Profile: st.Profile}, nil
}

// Superseded is the cause of refusing a certificate of this CA that a
// renewal revoked (revoke_on_renew). It is errRevoked to errors.Is, so it
// refuses like any revocation; a renewal that was answered but whose answer
// was lost may still fetch Successor again with it (server package).
type Superseded struct {
	// Identity is who the certificate would authenticate were it valid.
	Identity Identity
	// Successor is the serial of the certificate that renewed it.
	Successor *big.Int
}

func (e *Superseded) Error() string {
	return "client certificate revoked: superseded by serial " + e.Successor.Text(16)
}

// Is makes a Superseded a revocation.
func (e *Superseded) Is(target error) bool { return target == errRevoked }

// certificateStatus looks leaf's record up: only its status where the store
// can (store.Statuses), else the whole record.
func certificateStatus(ctx context.Context, s store.Store, leaf *x509.Certificate) (store.Status, error) {
	if ss, ok := s.(store.Statuses); ok {
		return ss.Status(ctx, leaf.SerialNumber, leaf.Raw)
	}
	rec, err := s.BySerial(ctx, leaf.SerialNumber)
	if err != nil {
		return store.Status{}, err
	}
	return store.Status{SameDER: sameDER(rec.DER, leaf.Raw), Revoked: rec.Revoked, Profile: rec.Profile, SupersededBy: rec.SupersededBy}, nil
}

// errRevoked is the cause of refusing a certificate this CA revoked. Such a
// request is refused even when it also carries valid HTTP Basic
// credentials: revoking a certificate is a decision to stop its holder.
var errRevoked = errors.New("client certificate revoked")

func sameDER(a, b []byte) bool { return string(a) == string(b) }

const reasonUnknownCA = "not issued by a trusted CA"

func why(err error) string {
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) {
		switch inv.Reason {
		case x509.Expired:
			return "expired or not yet valid"
		case x509.NotAuthorizedToSign:
			return "issuer not allowed to sign certificates"
		case x509.CANotAuthorizedForThisName:
			return "outside the issuer's name constraints"
		}
		return strings.TrimPrefix(inv.Error(), "x509: ")
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return reasonUnknownCA
	}
	return fmt.Sprint(strings.TrimPrefix(err.Error(), "x509: "))
}
