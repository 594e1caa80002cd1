package client

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"

	"github.com/estkit/estkit"
)

// Encrypted server-generated keys (RFC 7030 4.4.1.1, 4.4.1.2, 4.4.2). A
// client asks for one by putting in its serverkeygen CSR either
// DecryptKeyIdentifier (est.KeyIDAttribute(est.OIDDecryptKeyID, id)), the
// identifier of a symmetric key it shares with the server, or
// AsymmetricDecryptKeyIdentifier (est.OIDAsymmDecryptKeyID), the subject
// key identifier (est.SubjectKeyID) of a certificate whose private key it
// holds; est.SetRequestAttributes adds either to a CSR. ServerKeyGen then
// decrypts the key with Client.KeyEncryptionKey or Client.Certificate's
// key; Enrollment.DecryptKey does it with any other.

// DecryptKey opens an encrypted server-generated key (KeyEncrypted): with
// kek, the symmetric key shared with the server when the CSR carried
// DecryptKeyIdentifier, or priv, the private key of the certificate the
// CSR's AsymmetricDecryptKeyIdentifier named (an RSA crypto.Decrypter, or an
// *ecdsa.PrivateKey). The key package must be signed by a certificate that
// chains to anchors (nil: the system roots), and the key must be the one
// Certificate certifies. On success Key and KeyDER hold the key, as PKCS#8,
// and KeyEncrypted is false.
func (e *Enrollment) DecryptKey(kek []byte, priv crypto.PrivateKey, anchors *x509.CertPool) error {
	if !e.KeyEncrypted {
		return errors.New("est: the key is not encrypted")
	}
	dk, err := est.DecryptServerKey(e.KeyDER, kek, priv)
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range append(slices.Clone(e.Extra), dk.Certificates...) {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: anchors, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	if _, err := dk.Signer.Verify(opts); err != nil {
		return fmt.Errorf("est: the key was signed by %s, which is not trusted: %w", dk.Signer.Subject, err)
	}
	key, err := parsePrivateKey(dk.Key)
	if err != nil {
		return fmt.Errorf("est: the decrypted key: %w", err)
	}
	if e.Certificate != nil {
		if pub, ok := key.Public().(publicKey); !ok || !pub.Equal(e.Certificate.PublicKey) {
			return errors.New("est: the decrypted key is not the certificate's")
		}
	}
	e.Key, e.KeyDER, e.KeyEncrypted = key, dk.Key, false
	return nil
}

// decryptServerKey decrypts e's key with what c has for the encryption req
// asked for; without it, e is left encrypted for the caller.
func (c *Client) decryptServerKey(e *Enrollment, req *x509.CertificateRequest) error {
	var kek []byte
	var priv crypto.PrivateKey
	if _, ok, _ := est.RequestKeyID(req, est.OIDDecryptKeyID); ok {
		kek = c.KeyEncryptionKey
	}
	if id, ok, _ := est.RequestKeyID(req, est.OIDAsymmDecryptKeyID); ok && c.Certificate != nil {
		leaf := c.Certificate.Leaf
		if leaf == nil && len(c.Certificate.Certificate) > 0 {
			leaf, _ = x509.ParseCertificate(c.Certificate.Certificate[0])
		}
		if leaf != nil && bytes.Equal(est.SubjectKeyID(leaf), id) {
			priv = c.Certificate.PrivateKey
		}
	}
	if kek == nil && priv == nil {
		return nil
	}
	return e.DecryptKey(kek, priv, c.TrustAnchors)
}
