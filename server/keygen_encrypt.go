package server

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
)

// Encrypted server-side key generation (RFC 7030 4.4.1.1, 4.4.1.2, 4.4.2):
// a /serverkeygen CSR that carries DecryptKeyIdentifier gets its private key
// encrypted with the symmetric key of that identifier, which the client and
// estd share beforehand (KEKs, one file in the data directory); one that
// carries AsymmetricDecryptKeyIdentifier gets it encrypted to the key of the
// TLS client certificate the request authenticated with, whose subject key
// identifier the attribute must be. The key travels as an
// AsymmetricKeyPackage in a SignedData made with the issuing CA's key, in an
// EnvelopedData (est.EncryptServerKey), in the
// application/pkcs7-mime; smime-type=server-generated-key part.

// KEKs are the pre-shared AES key-encryption keys for symmetric encryption
// of server-generated keys (RFC 7030 4.4.1.1), by label and key identifier.
// The zero value holds none.
type KEKs struct {
	keys map[string]map[string][]byte // label ("*" for any) -> hex key ID -> key
}

// KEKAnyLabel and KEKDefaultLabel stand for every label and the unlabeled
// default in a KEKs file; neither is a valid label.
const (
	KEKAnyLabel     = "*"
	KEKDefaultLabel = "-"
)

// ParseKEKs reads a KEKs file: one key a line, as
//
//	LABEL KEY-ID KEY
//
// where LABEL is a CA label ("-" for the unlabeled default, "*" for every
// label), KEY-ID the DecryptKeyIdentifier the client sends, in hex, and KEY
// the AES key in hex, 16, 24 or 32 bytes. Blank lines and lines starting
// with # are ignored.
func ParseKEKs(data []byte) (*KEKs, error) {
	k := &KEKs{keys: map[string]map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want LABEL KEY-ID KEY", n)
		}
		label := f[0]
		switch {
		case label == KEKDefaultLabel:
			label = ""
		case label != KEKAnyLabel && !est.ValidLabel(label):
			return nil, fmt.Errorf("line %d: %q is not a label (or - for the default, * for every label)", n, f[0])
		}
		id, err := hex.DecodeString(f[1])
		if err != nil || len(id) == 0 {
			return nil, fmt.Errorf("line %d: the key ID is not hex", n)
		}
		key, err := hex.DecodeString(f[2])
		if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
			return nil, fmt.Errorf("line %d: the key must be 16, 24 or 32 bytes in hex", n)
		}
		if k.keys[label] == nil {
			k.keys[label] = map[string][]byte{}
		}
		if _, dup := k.keys[label][hex.EncodeToString(id)]; dup {
			return nil, fmt.Errorf("line %d: key ID %s given twice for label %q", n, f[1], f[0])
		}
		k.keys[label][hex.EncodeToString(id)] = key
	}
	return k, sc.Err()
}

// LoadKEKs reads the KEKs file at path. A missing file holds no keys; a file
// that group or others may read is refused.
func LoadKEKs(path string) (*KEKs, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &KEKs{}, nil
	}
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: holds secret keys but has mode %v; chmod 600 it", path, st.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseKEKs(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Lookup returns the key of id for label, or for every label.
func (k *KEKs) Lookup(label string, id []byte) ([]byte, bool) {
	if k == nil {
		return nil, false
	}
	for _, l := range []string{label, KEKAnyLabel} {
		if key, ok := k.keys[l][hex.EncodeToString(id)]; ok {
			return key, true
		}
	}
	return nil, false
}

// Len returns how many keys k holds.
func (k *KEKs) Len() int {
	if k == nil {
		return 0
	}
	n := 0
	for _, m := range k.keys {
		n += len(m)
	}
	return n
}

// SetKEKs replaces the pre-shared keys of encrypted server-side key
// generation (nil: none).
func (h *Handler) SetKEKs(k *KEKs) { h.keks.Store(k) }

// keySigner is the optional capability of an Issuer to sign what it vouches
// for besides certificates: here the package of a server-generated key
// (RFC 7030 4.4.2). *ca.CA has it.
type keySigner interface {
	KeySigner() (crypto.Signer, []*x509.Certificate)
}

// keyRecipient returns whom the private key generated for req is to be
// encrypted for, nil when req asks for no encryption. It refuses a request
// it cannot honour before any key is generated or certificate issued.
func (h *Handler) keyRecipient(req *x509.CertificateRequest, p *label, who auth.Identity) (*est.KeyRecipient, error) {
	symID, sym, err := est.RequestKeyID(req, est.OIDDecryptKeyID)
	if err != nil {
		return nil, err
	}
	asymID, asym, err := est.RequestKeyID(req, est.OIDAsymmDecryptKeyID)
	if err != nil {
		return nil, err
	}
	if !sym && !asym {
		return nil, nil
	}
	if sym && asym {
		return nil, est.Errorf(est.ErrBadRequest, "the CSR carries both DecryptKeyIdentifier and AsymmetricDecryptKeyIdentifier; send one")
	}
	if _, ok := h.issuer.(keySigner); !ok {
		return nil, est.Errorf(est.ErrNotImplemented, "this server cannot sign server-generated keys, so it does not encrypt them")
	}
	if sym {
		kek, ok := h.keks.Load().Lookup(p.Name, symID)
		if !ok {
			return nil, est.Errorf(est.ErrBadRequest, "no shared key with the CSR's DecryptKeyIdentifier %x is configured for this label (RFC 7030 4.4.1.1)", symID)
		}
		return &est.KeyRecipient{KeyID: symID, KEK: kek}, nil
	}
	if who.Cert == nil {
		return nil, est.Errorf(est.ErrBadRequest, "AsymmetricDecryptKeyIdentifier must name the TLS client certificate this request authenticated with, and there is none (RFC 7030 4.4.1.2)")
	}
	if !bytes.Equal(asymID, est.SubjectKeyID(who.Cert)) {
		return nil, est.Errorf(est.ErrBadRequest, "the CSR's AsymmetricDecryptKeyIdentifier %x is not the subject key identifier of the TLS client certificate (RFC 7030 4.4.1.2)", asymID)
	}
	// Refused here, before anything is issued, rather than after: a key
	// that cannot be encrypted would leave a certificate on record that
	// nobody received.
	switch pub := who.Cert.PublicKey.(type) {
	case ed25519.PublicKey:
		return nil, est.Errorf(est.ErrBadRequest, "a key cannot be encrypted to an Ed25519 certificate; use an RSA or ECDSA certificate, or DecryptKeyIdentifier")
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRecipientRSABits {
			return nil, est.Errorf(est.ErrBadRequest, "a key is not encrypted to an RSA key of %d bits; the TLS client certificate needs at least %d, or use DecryptKeyIdentifier", pub.N.BitLen(), minRecipientRSABits)
		}
	case *ecdsa.PublicKey:
		if _, err := pub.ECDH(); err != nil {
			return nil, est.Errorf(est.ErrBadRequest, "a key cannot be encrypted to an ECDSA key on %s; use P-256, P-384 or P-521, or DecryptKeyIdentifier", pub.Curve.Params().Name)
		}
	default:
		return nil, est.Errorf(est.ErrBadRequest, "a key cannot be encrypted to a %s certificate; use an RSA or ECDSA certificate, or DecryptKeyIdentifier", who.Cert.PublicKeyAlgorithm)
	}
	return &est.KeyRecipient{Certificate: who.Cert}, nil
}

// minRecipientRSABits is the smallest RSA key a server-generated private key
// is encrypted to.
const minRecipientRSABits = 2048

// encryptKey returns the key part of an encrypted response for pkcs8.
func (h *Handler) encryptKey(pkcs8 []byte, rcpt *est.KeyRecipient) ([]byte, error) {
	signer, chain := h.issuer.(keySigner).KeySigner()
	der, err := est.EncryptServerKey(pkcs8, *rcpt, signer, chain)
	if err != nil {
		return nil, signingFailed(err, "key encryption failed")
	}
	return der, nil
}
