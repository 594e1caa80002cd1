package ca

import (
	"crypto"
	"crypto/x509"
)

// KeySigner returns the key and the certificate chain (signer first) that
// sign what the CA vouches for besides certificates: the package of a
// private key the server generated (RFC 7030 4.4.2). They are the issuing
// CA's own.
func (c *CA) KeySigner() (crypto.Signer, []*x509.Certificate) {
	return c.Signer, c.Chain
}
