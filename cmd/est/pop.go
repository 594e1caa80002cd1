package main

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"strings"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// popFlags link the CSR to the TLS connection (RFC 7030 3.5) and ask for
// an encrypted server-generated key (RFC 7030 4.4.1.1, 4.4.1.2).
type popFlags struct {
	link bool
	// kekID and kekFile name a symmetric key shared with the server;
	// encryptToCert asks for the key encrypted to -cert's key.
	kekID, kekFile string
	encryptToCert  bool
}

func (p *popFlags) register(fs *flag.FlagSet, serverKeyGen bool) {
	fs.BoolVar(&p.link, "link", false, "link the CSR to the TLS connection (RFC 7030 3.5: tls-unique or tls-exporter in challengePassword); automatic when the server's csrattrs ask for challengePassword")
	if serverKeyGen {
		fs.StringVar(&p.kekID, "kek-id", "", "ask for the key encrypted with the symmetric key shared with the server under this `HEX` identifier (DecryptKeyIdentifier); needs -kek-file")
		fs.StringVar(&p.kekFile, "kek-file", "", "`file` holding that shared AES key in hex (16, 24 or 32 bytes)")
		fs.BoolVar(&p.encryptToCert, "encrypt-to-cert", false, "ask for the key encrypted to -cert's key (AsymmetricDecryptKeyIdentifier); est decrypts it with -key")
	}
}

// encrypt adds to csr the attribute that asks for the server-generated key
// encrypted, and sets up c to decrypt it. key is csr's key, nil when csr was
// read from a file.
func (p *popFlags) encrypt(c *client.Client, csr []byte, key crypto.Signer) ([]byte, error) {
	var attr est.Attribute
	switch {
	case p.kekID != "" && p.encryptToCert:
		return nil, usageErrorf("-kek-id and -encrypt-to-cert exclude each other")
	case (p.kekID == "") != (p.kekFile == ""):
		return nil, usageErrorf("-kek-id and -kek-file go together")
	case p.kekID != "":
		id, err := hex.DecodeString(p.kekID)
		if err != nil || len(id) == 0 {
			return nil, usageErrorf("-kek-id: want a hex identifier")
		}
		data, err := os.ReadFile(p.kekFile)
		if err != nil {
			return nil, err
		}
		kek, err := hex.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || (len(kek) != 16 && len(kek) != 24 && len(kek) != 32) {
			return nil, usageErrorf("-kek-file: want an AES key of 16, 24 or 32 bytes in hex")
		}
		c.KeyEncryptionKey = kek
		attr = est.KeyIDAttribute(est.OIDDecryptKeyID, id)
	case p.encryptToCert:
		if c.Certificate == nil {
			return nil, usageErrorf("-encrypt-to-cert needs -cert and -key: the key is encrypted to that certificate")
		}
		attr = est.KeyIDAttribute(est.OIDAsymmDecryptKeyID, est.SubjectKeyID(c.Certificate.Leaf))
	default:
		return csr, nil
	}
	if key == nil {
		return nil, usageErrorf("asking for an encrypted key adds to the CSR, which est must make: drop -csr")
	}
	return est.SetRequestAttributes(csr, key, attr)
}

// send sends csr for op, linked to its TLS connection when -link was given
// or the server's csrattrs asked for it (asked).
func (p *popFlags) send(ctx context.Context, c *client.Client, op est.Operation, csr []byte, key crypto.Signer, asked bool) (*client.Enrollment, error) {
	if !p.link && !asked {
		switch op {
		case est.OpServerKeyGen:
			return c.ServerKeyGen(ctx, csr)
		case est.OpSimpleReenroll:
			return c.Reenroll(ctx, csr)
		}
		return c.Enroll(ctx, csr)
	}
	if key == nil {
		return nil, usageErrorf("linking the CSR to the TLS connection (RFC 7030 3.5) signs it again, so est must make it: drop -csr")
	}
	switch op {
	case est.OpServerKeyGen:
		return c.ServerKeyGenLinked(ctx, csr, key)
	case est.OpSimpleReenroll:
		return c.ReenrollLinked(ctx, csr, key)
	}
	return c.EnrollLinked(ctx, csr, key)
}

// errEncryptedKey explains a server-generated key est could not decrypt.
var errEncryptedKey = errors.New("the server returned an encrypted key that est cannot decrypt: ask for one with -kek-id and -kek-file, or -encrypt-to-cert")
