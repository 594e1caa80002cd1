package keys

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
)

// Encrypted PKCS#8 (RFC 5958 section 3, EncryptedPrivateKeyInfo) with PBES2
// (RFC 8018 section 6.2): PBKDF2 with HMAC-SHA-1/256/384/512 and AES-CBC.
// That covers `openssl pkcs8 -topk8 -v2 aes-256-cbc` and
// `openssl genpkey -aes256` of OpenSSL 1.1 and 3.

var (
	// ErrPassphraseRequired is returned for an encrypted key when no
	// passphrase source was given.
	ErrPassphraseRequired = errors.New("the private key is encrypted: a passphrase is required")
	// ErrWrongPassphrase is returned when an encrypted key does not decrypt.
	ErrWrongPassphrase = errors.New("wrong passphrase (or a corrupt encrypted key)")
)

// EncryptIterations is the PBKDF2-HMAC-SHA256 iteration count of
// MarshalEncryptedPEM (OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256).
const EncryptIterations = 600_000

// maxIterations bounds the work a key file can ask for.
const maxIterations = 10_000_000

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidPKCS5PBES1 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5}
	oidPKCS12PBE  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1}

	oidHMACWithSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// encryptedPrivateKeyInfo is RFC 5958 EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// pbes2Params is RFC 8018 PBES2-params.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// pbkdf2Params is RFC 8018 PBKDF2-params with the salt as an OCTET STRING
// (the "specified" choice, the only one defined).
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

func prfHash(prf pkix.AlgorithmIdentifier) (func() hash.Hash, error) {
	switch {
	case len(prf.Algorithm) == 0, prf.Algorithm.Equal(oidHMACWithSHA1):
		return sha1.New, nil // the DEFAULT of RFC 8018
	case prf.Algorithm.Equal(oidHMACWithSHA256):
		return sha256.New, nil
	case prf.Algorithm.Equal(oidHMACWithSHA384):
		return sha512.New384, nil
	case prf.Algorithm.Equal(oidHMACWithSHA512):
		return sha512.New, nil
	}
	return nil, fmt.Errorf("unsupported PBKDF2 pseudo-random function %v", prf.Algorithm)
}

func aesKeyLen(alg asn1.ObjectIdentifier) int {
	switch {
	case alg.Equal(oidAES128CBC):
		return 16
	case alg.Equal(oidAES192CBC):
		return 24
	case alg.Equal(oidAES256CBC):
		return 32
	}
	return 0
}

// unmarshalStrict decodes one DER value that fills all of der.
func unmarshalStrict(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("trailing data")
	}
	return nil
}

// decryptPKCS8 returns the PKCS#8 PrivateKeyInfo inside an
// EncryptedPrivateKeyInfo.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if err := unmarshalStrict(der, &info); err != nil {
		return nil, fmt.Errorf("malformed encrypted PKCS#8 key: %v", err)
	}
	alg := info.Algorithm.Algorithm
	switch {
	case alg.Equal(oidPBES2):
	case len(alg) == len(oidPKCS5PBES1)+1 && alg[:len(oidPKCS5PBES1)].Equal(oidPKCS5PBES1),
		len(alg) == len(oidPKCS12PBE)+1 && alg[:len(oidPKCS12PBE)].Equal(oidPKCS12PBE):
		return nil, fmt.Errorf("the key is encrypted with a legacy PBES1/PKCS#12 scheme (%v); re-encrypt it with 'openssl pkcs8 -topk8 -v2 aes-256-cbc'", alg)
	default:
		return nil, fmt.Errorf("unsupported key encryption scheme %v (want PBES2)", alg)
	}
	var params pbes2Params
	if err := unmarshalStrict(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return nil, fmt.Errorf("malformed PBES2 parameters: %v", err)
	}
	kdf := params.KeyDerivationFunc
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
	case kdf.Algorithm.Equal(oidScrypt):
		return nil, errors.New("keys encrypted with scrypt are not supported; re-encrypt with 'openssl pkcs8 -topk8 -v2 aes-256-cbc'")
	default:
		return nil, fmt.Errorf("unsupported key derivation function %v (want PBKDF2)", kdf.Algorithm)
	}
	var kp pbkdf2Params
	if err := unmarshalStrict(kdf.Parameters.FullBytes, &kp); err != nil {
		return nil, fmt.Errorf("malformed PBKDF2 parameters: %v", err)
	}
	if kp.IterationCount < 1 || kp.IterationCount > maxIterations {
		return nil, fmt.Errorf("PBKDF2 iteration count %d out of range [1, %d]", kp.IterationCount, maxIterations)
	}
	h, err := prfHash(kp.PRF)
	if err != nil {
		return nil, err
	}
	enc := params.EncryptionScheme
	keyLen := aesKeyLen(enc.Algorithm)
	if keyLen == 0 {
		return nil, fmt.Errorf("unsupported key encryption cipher %v (want AES-CBC)", enc.Algorithm)
	}
	if kp.KeyLength != 0 && kp.KeyLength != keyLen {
		return nil, fmt.Errorf("PBKDF2 key length %d does not fit the cipher's %d", kp.KeyLength, keyLen)
	}
	var iv []byte
	if err := unmarshalStrict(enc.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return nil, errors.New("malformed AES-CBC parameters: want a 16-octet IV")
	}
	ct := info.EncryptedData
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("malformed encrypted PKCS#8 key: ciphertext is not whole AES blocks")
	}
	key, err := pbkdf2.Key(h, string(passphrase), kp.Salt, kp.IterationCount, keyLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pt, ok := unpad(pt)
	if !ok {
		return nil, ErrWrongPassphrase
	}
	return pt, nil
}

// unpad removes PKCS#7 padding, in constant time over the last block.
func unpad(b []byte) ([]byte, bool) {
	n := int(b[len(b)-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, n)
		good &= subtle.ConstantTimeSelect(inPad, subtle.ConstantTimeByteEq(b[len(b)-i], byte(n)), 1)
	}
	if good != 1 {
		return nil, false
	}
	return b[:len(b)-n], true
}

// parseEncrypted decrypts and parses an ENCRYPTED PRIVATE KEY block.
func parseEncrypted(der []byte, pass Passphrase) (any, error) {
	if pass == nil {
		return nil, ErrPassphraseRequired
	}
	p, err := pass()
	if err != nil {
		return nil, fmt.Errorf("reading the key passphrase: %w", err)
	}
	defer clear(p)
	pt, err := decryptPKCS8(der, p)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	k, err := x509.ParsePKCS8PrivateKey(pt)
	if err != nil {
		// Valid padding by chance (about 1 in 256) under a wrong passphrase.
		return nil, ErrWrongPassphrase
	}
	return k, nil
}

// MarshalEncryptedPEM returns key as an ENCRYPTED PRIVATE KEY PEM block:
// PKCS#8 under PBES2 with PBKDF2-HMAC-SHA256 (EncryptIterations rounds, a
// random 16-octet salt) and AES-256-CBC with a random IV. OpenSSL reads it
// ('openssl pkey -in key.pem').
func MarshalEncryptedPEM(key crypto.Signer, passphrase []byte) ([]byte, error) {
	return marshalEncryptedPEM(key, passphrase, EncryptIterations)
}

func marshalEncryptedPEM(key crypto.Signer, passphrase []byte, iterations int) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	pt, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	salt := make([]byte, 16)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	dk, err := pbkdf2.Key(sha256.New, string(passphrase), salt, iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(dk)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(pt)%aes.BlockSize
	padded := append(bytes.Clone(pt), bytes.Repeat([]byte{byte(n)}, n)...)
	defer clear(padded)
	ct := make([]byte, len(padded))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, padded)

	kdfParams, err := asn1.Marshal(pbkdf2Params{
		Salt:           salt,
		IterationCount: iterations,
		PRF:            pkix.AlgorithmIdentifier{Algorithm: oidHMACWithSHA256, Parameters: asn1.NullRawValue},
	})
	if err != nil {
		return nil, err
	}
	ivDER, err := asn1.Marshal(iv)
	if err != nil {
		return nil, err
	}
	pbes2, err := asn1.Marshal(pbes2Params{
		KeyDerivationFunc: pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdfParams}},
		EncryptionScheme:  pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivDER}},
	})
	if err != nil {
		return nil, err
	}
	der, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: pbes2}},
		EncryptedData: ct,
	})
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}
