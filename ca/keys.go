package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
)

// KeyType names a key algorithm and size as flags and config spell it.
type KeyType string

// The key types estkit generates and accepts.
const (
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
	Ed25519 KeyType = "ed25519"
)

// KeyTypes lists every KeyType, strongest-last within each family.
var KeyTypes = []KeyType{P256, P384, RSA2048, RSA3072, RSA4096, Ed25519}

// ParseKeyType parses a key type name, case-insensitively, also accepting the
// spellings "P-256", "ecdsa-p256", "rsa-2048" and the like.
func ParseKeyType(s string) (KeyType, error) {
	n := strings.NewReplacer("-", "", "_", "", "ecdsa", "").Replace(strings.ToLower(s))
	for _, kt := range KeyTypes {
		if string(kt) == n {
			return kt, nil
		}
	}
	return "", fmt.Errorf("unknown key type %q (want one of p256, p384, rsa2048, rsa3072, rsa4096, ed25519)", s)
}

// GenerateKey creates a new private key of type kt.
func GenerateKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("ca: cannot generate key type %q", kt)
}

// KeyTypeOf returns the KeyType of a public key, or an error for a key
// estkit does not issue to (DSA, RSA under 2048 bits or not a multiple the
// table knows, other curves).
func KeyTypeOf(pub crypto.PublicKey) (KeyType, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return P256, nil
		case elliptic.P384():
			return P384, nil
		}
		return "", fmt.Errorf("unsupported elliptic curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			return RSA2048, nil
		case 3072:
			return RSA3072, nil
		case 4096:
			return RSA4096, nil
		}
		return "", fmt.Errorf("unsupported RSA key size %d bits (want 2048, 3072 or 4096)", k.N.BitLen())
	case ed25519.PublicKey:
		return Ed25519, nil
	}
	return "", fmt.Errorf("unsupported public key type %T", pub)
}

// Algorithm is the human name of kt as the store records it: "ECDSA-P256",
// "RSA-2048", "Ed25519".
func (kt KeyType) Algorithm() string {
	switch kt {
	case P256:
		return "ECDSA-P256"
	case P384:
		return "ECDSA-P384"
	case RSA2048:
		return "RSA-2048"
	case RSA3072:
		return "RSA-3072"
	case RSA4096:
		return "RSA-4096"
	case Ed25519:
		return "Ed25519"
	}
	return string(kt)
}
