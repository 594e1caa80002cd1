package auth

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"
	"time"
)

// Client certificate chains are verified once, not on every request. A
// device that renews over a kept-alive connection, or comes back with the
// same certificate, presents the same chain again; verifying it (chain
// building and at least one signature check) cost more per reenrollment
// than issuing the new certificate's signature. The cache remembers that a
// chain, byte for byte, verified against one root pool, and until when it
// stays valid; revocation is still looked up on every request
// (issuedStatus), and new manufacturer anchors (SetManufacturers) empty
// the cache.

// maxCachedChains bounds the cache; when full it starts over.
const maxCachedChains = 4096

// chainKey names a verification: the root pool it was verified against and
// the SHA-256 of the presented chain (leaf first, each certificate's DER
// length-prefixed).
type chainKey struct {
	roots *x509.CertPool
	sum   [sha256.Size]byte
}

// validity is when a verified chain is valid: the latest NotBefore and the
// earliest NotAfter of the certificates in it.
type validity struct{ notBefore, notAfter time.Time }

func (w validity) contains(t time.Time) bool {
	return !t.Before(w.notBefore) && !t.After(w.notAfter)
}

// verified is what the cache remembers of a verification: every chain it
// built, each with the window in which all its certificates are valid and
// its certificates as CRLs name them (leaf first, the trust anchor last),
// for the revocation checks each request makes. The names are of the chains
// built, not of what was presented: a client cannot leave a revoked
// intermediate out. A chain whose window has passed no longer counts.
type verified struct {
	chains []verifiedChain
	all    [][]revocationKey // the names of every chain, what at returns while all are valid
	// recheck is when a presented certificate that was not valid yet
	// becomes valid (zero for none): from then on it may complete a chain
	// the verification could not build, so the entry is verified again.
	recheck time.Time
}

type verifiedChain struct {
	validity
	names []revocationKey
}

// at returns the names of the chains valid at now, or nil for none.
func (v verified) at(now time.Time) [][]revocationKey {
	valid := 0
	for _, c := range v.chains {
		if c.contains(now) {
			valid++
		}
	}
	if valid == len(v.chains) {
		return v.all // the usual case, without allocating on every request
	}
	var out [][]revocationKey
	for _, c := range v.chains {
		if c.contains(now) {
			out = append(out, c.names)
		}
	}
	return out
}

type chainCache struct {
	mu sync.Mutex
	m  map[chainKey]verified
}

func (c *chainCache) get(k chainKey) (verified, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.m[k]
	return w, ok
}

func (c *chainCache) put(k chainKey, w verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedChains {
		c.m = make(map[chainKey]verified)
	}
	c.m[k] = w
}

// reset forgets every verified chain.
func (c *chainCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = nil
}

func chainKeyOf(roots *x509.CertPool, peers []*x509.Certificate) chainKey {
	h := sha256.New()
	var n [8]byte
	for _, c := range peers {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	k := chainKey{roots: roots}
	h.Sum(k.sum[:0])
	return k
}

// validityOf is the window in which every certificate of chain is valid.
func validityOf(chain []*x509.Certificate) validity {
	var w validity
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(w.notBefore) {
			w.notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(w.notAfter) {
			w.notAfter = c.NotAfter
		}
	}
	return w
}

// verifyChain verifies the presented chain peers (leaf first) against
// roots at now, from the cache when it can, and returns the certificates of
// the chains valid now, as CRLs name them.
func (v *Verifier) verifyChain(peers []*x509.Certificate, roots *x509.CertPool, now time.Time) ([][]revocationKey, error) {
	key := chainKeyOf(roots, peers)
	if w, ok := v.chains.get(key); ok && (w.recheck.IsZero() || now.Before(w.recheck)) {
		if valid := w.at(now); len(valid) > 0 {
			return valid, nil
		}
	}
	inter := x509.NewCertPool()
	for _, c := range peers[1:] {
		inter.AddCert(c)
	}
	v.verifications.Add(1)
	chains, err := peers[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, err
	}
	var w verified
	for _, c := range peers {
		if c.NotBefore.After(now) && (w.recheck.IsZero() || c.NotBefore.Before(w.recheck)) {
			w.recheck = c.NotBefore
		}
	}
	for _, ch := range chains {
		names := make([]revocationKey, len(ch))
		for i, c := range ch {
			names[i] = keyOf(c)
		}
		w.chains = append(w.chains, verifiedChain{validity: validityOf(ch), names: names})
		w.all = append(w.all, names)
	}
	v.chains.put(key, w)
	return w.at(now), nil
}
