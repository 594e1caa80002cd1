// Package keys loads CA private keys as crypto.Signer, whatever holds them:
// a PEM key file (optionally encrypted with a passphrase) or a key in a
// PKCS#11 token named by an RFC 7512 URI. A key file and a hardware token
// differ only in how the signer is loaded; everything after that sees a
// crypto.Signer.
//
// PKCS#11 needs cgo: a binary built with CGO_ENABLED=0 parses PKCS#11 URIs
// but refuses to open them with ErrNoPKCS11.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/estkit/estkit/ca"
)

// Passphrase returns a secret: the passphrase of an encrypted key file, or a
// PKCS#11 user PIN. It is called only when the secret is needed, so an
// unencrypted key file loads even where the source is not set up.
type Passphrase func() ([]byte, error)

// PassphraseFromEnv reads the secret from the environment variable name.
// An unset or empty variable is an error that names the variable.
func PassphraseFromEnv(name string) Passphrase {
	return func() ([]byte, error) {
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("environment variable %s is not set", name)
		}
		if v == "" {
			return nil, fmt.Errorf("environment variable %s is empty", name)
		}
		return []byte(v), nil
	}
}

// PassphraseFromFile reads the secret from the file at path, without one
// trailing newline ("\n" or "\r\n"). An empty secret is an error.
func PassphraseFromFile(path string) Passphrase {
	return func() ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		b = trimNewline(b)
		if len(b) == 0 {
			return nil, fmt.Errorf("%s is empty", path)
		}
		return b, nil
	}
}

// PassphraseBytes returns p itself, for secrets that are already in memory.
func PassphraseBytes(p []byte) Passphrase {
	return func() ([]byte, error) { return bytes.Clone(p), nil }
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// LoadFile reads a PEM private key file: PKCS#8 ("PRIVATE KEY"), SEC 1
// ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"). An encrypted key fails
// with ErrPassphraseRequired; use LoadFileWithPassphrase.
func LoadFile(path string) (crypto.Signer, error) {
	return LoadFileWithPassphrase(path, nil)
}

// LoadFileWithPassphrase is LoadFile that also reads encrypted PKCS#8
// ("ENCRYPTED PRIVATE KEY"), calling pass for the passphrase. pass may be
// nil when the key is known to be unencrypted.
func LoadFileWithPassphrase(path string, pass Passphrase) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParsePEMWithPassphrase(data, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParsePEM parses the first private key block of data. An encrypted key
// fails with ErrPassphraseRequired; use ParsePEMWithPassphrase.
func ParsePEM(data []byte) (crypto.Signer, error) {
	return ParsePEMWithPassphrase(data, nil)
}

// ParsePEMWithPassphrase parses the first private key block of data, which
// may be an encrypted PKCS#8 key (PBES2: PBKDF2 with HMAC-SHA-1/256/384/512
// and AES-128/192/256-CBC, as OpenSSL writes them). pass is called only for
// an encrypted key; a passphrase that does not decrypt it gives
// ErrWrongPassphrase.
func ParsePEMWithPassphrase(data []byte, pass Passphrase) (crypto.Signer, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, fmt.Errorf("no PEM private key")
		}
		var k any
		var err error
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "EC PRIVATE KEY", "RSA PRIVATE KEY":
			if _, ok := b.Headers["DEK-Info"]; ok {
				return nil, fmt.Errorf("legacy PEM encryption (Proc-Type/DEK-Info headers) is not supported; convert the key with 'openssl pkcs8 -topk8 -v2 aes-256-cbc'")
			}
			if b.Type == "EC PRIVATE KEY" {
				k, err = x509.ParseECPrivateKey(b.Bytes)
			} else {
				k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
			}
		case "ENCRYPTED PRIVATE KEY":
			k, err = parseEncrypted(b.Bytes, pass)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key of type %T cannot sign", k)
		}
		return s, nil
	}
}

// MarshalPEM returns key as a PEM PKCS#8 block.
func MarshalPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ErrNoPKCS11 is returned for PKCS#11 URIs by a binary built without cgo.
var ErrNoPKCS11 = errors.New("estd was built without cgo; PKCS#11 needs cgo")

// Options says where the secrets of Load and Generate come from.
type Options struct {
	// Passphrase decrypts an encrypted key file; nil if there is none.
	Passphrase Passphrase
	// PIN is the PKCS#11 user PIN for a URI with neither pin-source nor
	// pin-value (e.g. PassphraseFromEnv("ESTD_HSM_PIN")).
	PIN Passphrase
	// Logger receives warnings (a PIN written into the URI, a token key
	// that can be exported); nil means slog.Default().
	Logger *slog.Logger
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// IsPKCS11 reports whether ref is a PKCS#11 URI rather than a file path.
func IsPKCS11(ref string) bool {
	return len(ref) >= len("pkcs11:") && strings.EqualFold(ref[:len("pkcs11:")], "pkcs11:")
}

// Load returns the signer ref names: a PKCS#11 URI (RFC 7512, see
// ParsePKCS11URI) or else the path of a PEM key file. Close the io.Closer
// when the signer is no longer used; for a token it ends the session and
// logs out, for a file it does nothing. ctx bounds only the start: PKCS#11
// calls themselves cannot be cancelled.
func Load(ctx context.Context, ref string, opts Options) (crypto.Signer, io.Closer, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if !IsPKCS11(ref) {
		s, err := LoadFileWithPassphrase(ref, opts.Passphrase)
		if err != nil {
			return nil, nil, err
		}
		return s, nopCloser{}, nil
	}
	u, err := ParsePKCS11URI(ref)
	if err != nil {
		return nil, nil, err
	}
	return loadPKCS11(ctx, u, opts)
}

// Generate creates a key pair of type kt inside the PKCS#11 token that uri
// names, labelled with the URI's object (and id, if given; else a random
// CKA_ID), and returns its signer. The private key is generated on the
// token as sensitive and not extractable, so it never leaves it; Generate
// checks that the token honoured this. It refuses to create a second key
// with the same label or id. Key types: P-256, P-384, RSA 2048/3072/4096.
func Generate(ctx context.Context, uri string, kt ca.KeyType, opts Options) (crypto.Signer, io.Closer, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	u, err := ParsePKCS11URI(uri)
	if err != nil {
		return nil, nil, err
	}
	switch kt {
	case ca.P256, ca.P384, ca.RSA2048, ca.RSA3072, ca.RSA4096:
	default:
		return nil, nil, fmt.Errorf("pkcs11: cannot generate key type %q in a token (want p256, p384, rsa2048, rsa3072 or rsa4096)", kt)
	}
	return generatePKCS11(ctx, u, kt, opts)
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
