package est

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// This file is the key part of an encrypted /serverkeygen response
// (RFC 7030 section 4.4.2): the private key, as an AsymmetricKeyPackage
// (RFC 5958), in a CMS SignedData signed by whoever generated it, in a CMS
// EnvelopedData for the key the request named (section 4.4.1.1: a shared
// symmetric key, KEKRecipientInfo; section 4.4.1.2: the key of a
// certificate, KeyTransRecipientInfo for RSA, KeyAgreeRecipientInfo for EC).

// OIDKeyPackage is id-ct-KP-aKeyPackage, the content type of an
// AsymmetricKeyPackage (RFC 5958 section 3).
var OIDKeyPackage = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 2, 1, 2, 78, 5}

var (
	oidCMSData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidCMSSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidCMSEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
	oidSHA1             = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidAES128CBC        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC        = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES128Wrap       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 5}
	oidAES192Wrap       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 25}
	oidAES256Wrap       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 45}
	oidRSAESOAEP        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 7}
	oidMGF1             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	// dhSinglePass-stdDH-sha*kdf-scheme (RFC 5753 section 7.1.4, SEC 1).
	oidECDHSHA1KDF   = asn1.ObjectIdentifier{1, 3, 133, 16, 840, 63, 0, 2}
	oidECDHSHA256KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 1}
	oidECDHSHA384KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 2}
	oidECDHSHA512KDF = asn1.ObjectIdentifier{1, 3, 132, 1, 11, 3}
)

// KeyRecipient is whom a server-generated private key is encrypted for:
// the holder of a shared symmetric key (KEK and KeyID) or of the private key
// of Certificate.
type KeyRecipient struct {
	// KEK is a shared AES key of 16, 24 or 32 bytes (RFC 7030 4.4.1.1): the
	// content-encryption key is wrapped with it (KEKRecipientInfo, AES key
	// wrap of RFC 3394), under the identifier KeyID, the request's
	// DecryptKeyIdentifier.
	KEK, KeyID []byte
	// Certificate is the recipient's certificate (RFC 7030 4.4.1.2): an RSA
	// key gets the content-encryption key by RSAES-OAEP with SHA-256
	// (KeyTransRecipientInfo, RFC 8017); an ECDSA key by ephemeral-static
	// ECDH with the X9.63 KDF over SHA-256 and AES-256 key wrap
	// (KeyAgreeRecipientInfo, RFC 5753). The recipient is identified by the
	// certificate's subject key identifier extension, or by its issuer and
	// serial number when it has none, so that any CMS implementation finds
	// its key.
	Certificate *x509.Certificate
}

// EncryptServerKey returns the key part of an encrypted /serverkeygen
// response (RFC 7030 4.4.2): a CMS ContentInfo of EnvelopedData for r,
// whose content, encrypted with AES-256-CBC, is a SignedData made by signer
// (chain[0] is its certificate, the rest are sent with it) over an
// AsymmetricKeyPackage (RFC 5958) holding the PKCS#8 key pkcs8. signer may
// be an ECDSA, RSA or Ed25519 key; the digest follows it as in
// EncodeSignedData.
func EncryptServerKey(pkcs8 []byte, r KeyRecipient, signer crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	signed, err := signKeyPackage(pkcs8, signer, chain)
	if err != nil {
		return nil, err
	}
	return envelope(signed, oidCMSSignedData, r)
}

func algID(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, params func(*cryptobyte.Builder)) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if params != nil {
			params(b)
		}
	})
}

var (
	tag0 = cbasn1.Tag(0).ContextSpecific().Constructed()
	tag1 = cbasn1.Tag(1).ContextSpecific().Constructed()
	tag2 = cbasn1.Tag(2).ContextSpecific().Constructed()
	// tag0Prim is [0] IMPLICIT of a primitive type (OCTET STRING).
	tag0Prim = cbasn1.Tag(0).ContextSpecific()
)

// signKeyPackage returns the DER of a SignedData (without a ContentInfo
// around it: the EnvelopedData names its type) over the
// AsymmetricKeyPackage holding pkcs8, signed by signer, whose certificate
// is chain[0]; the whole chain goes with it.
func signKeyPackage(pkcs8 []byte, signer crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("est: signing the key package needs the signer's certificate")
	}
	// AsymmetricKeyPackage ::= SEQUENCE SIZE (1..MAX) OF OneAsymmetricKey;
	// a PKCS#8 PrivateKeyInfo is a OneAsymmetricKey of version 1 (0).
	var pkg cryptobyte.Builder
	pkg.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(pkcs8) })
	content, err := pkg.Bytes()
	if err != nil {
		return nil, err
	}
	ci, err := EncodeSignedData(OIDKeyPackage, content, CMSSigner{Key: signer, Certificate: chain[0]}, chain...)
	if err != nil {
		return nil, fmt.Errorf("est: signing the key package: %w", err)
	}
	in := cryptobyte.String(ci)
	var seq, explicit, sd cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!seq.ReadASN1(&explicit, tag0) || !explicit.ReadASN1Element(&sd, cbasn1.SEQUENCE) {
		return nil, errors.New("est: signing the key package: unexpected ContentInfo")
	}
	return sd, nil
}

// envelope returns a ContentInfo of EnvelopedData holding content (of type
// contentType) for r.
func envelope(content []byte, contentType asn1.ObjectIdentifier, r KeyRecipient) ([]byte, error) {
	cek := make([]byte, 32)
	iv := make([]byte, aes.BlockSize)
	if _, err := rand.Read(cek); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	pad := aes.BlockSize - len(content)%aes.BlockSize
	ct := append(append([]byte(nil), content...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	ri, err := recipientInfo(cek, r)
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidCMSEnvelopedData)
		b.AddASN1(tag0, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				// RFC 5652 6.1: 0 when the only recipient info is of
				// version 0 (key transport to an issuer and serial), else 2.
				if ri[0] == 0x30 && len(r.Certificate.SubjectKeyId) == 0 {
					b.AddASN1Int64(0)
				} else {
					b.AddASN1Int64(2)
				}
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(ri) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(contentType)
					algID(b, oidAES256CBC, func(b *cryptobyte.Builder) { b.AddASN1OctetString(iv) })
					b.AddASN1(tag0Prim, func(b *cryptobyte.Builder) { b.AddBytes(ct) })
				})
			})
		})
	})
	return b.Bytes()
}

// recipientInfo returns the DER of the RecipientInfo that gives r the
// content-encryption key cek.
func recipientInfo(cek []byte, r KeyRecipient) ([]byte, error) {
	var b cryptobyte.Builder
	if r.Certificate == nil {
		if len(r.KeyID) == 0 {
			return nil, errors.New("est: a key recipient needs a key identifier")
		}
		wrap, err := wrapOID(len(r.KEK))
		if err != nil {
			return nil, err
		}
		enc, err := aesKeyWrap(r.KEK, cek)
		if err != nil {
			return nil, err
		}
		b.AddASN1(tag2, func(b *cryptobyte.Builder) { // kekri [2] KEKRecipientInfo
			b.AddASN1Int64(4)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1OctetString(r.KeyID) })
			algID(b, wrap, nil)
			b.AddASN1OctetString(enc)
		})
		return b.Bytes()
	}
	// The recipient is identified by the certificate's subjectKeyIdentifier
	// when it has one, else by issuerAndSerialNumber.
	ski := r.Certificate.SubjectKeyId
	issuerSerial := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(r.Certificate.RawIssuer)
			b.AddASN1BigInt(r.Certificate.SerialNumber)
		})
	}
	switch pub := r.Certificate.PublicKey.(type) {
	case *rsa.PublicKey:
		enc, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil)
		if err != nil {
			return nil, fmt.Errorf("est: encrypting to the RSA key: %w", err)
		}
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // ktri KeyTransRecipientInfo
			if len(ski) > 0 {
				b.AddASN1Int64(2)
				b.AddASN1(tag0Prim, func(b *cryptobyte.Builder) { b.AddBytes(ski) }) // subjectKeyIdentifier [0]
			} else {
				b.AddASN1Int64(0)
				issuerSerial(b)
			}
			algID(b, oidRSAESOAEP, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { // RSAES-OAEP-params (RFC 4055)
					b.AddASN1(tag0, func(b *cryptobyte.Builder) { algID(b, oidSHA256, nil) })
					b.AddASN1(tag1, func(b *cryptobyte.Builder) {
						algID(b, oidMGF1, func(b *cryptobyte.Builder) { algID(b, oidSHA256, nil) })
					})
				})
			})
			b.AddASN1OctetString(enc)
		})
	case *ecdsa.PublicKey:
		peer, err := pub.ECDH()
		if err != nil {
			return nil, fmt.Errorf("est: cannot encrypt to this EC key: %w", err)
		}
		eph, err := peer.Curve().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		z, err := eph.ECDH(peer)
		if err != nil {
			return nil, err
		}
		kek := x963KDF(crypto.SHA256, z, sharedInfo(oidAES256Wrap, nil, 32), 32)
		enc, err := aesKeyWrap(kek, cek)
		if err != nil {
			return nil, err
		}
		b.AddASN1(tag1, func(b *cryptobyte.Builder) { // kari [1] KeyAgreeRecipientInfo
			b.AddASN1Int64(3)
			b.AddASN1(tag0, func(b *cryptobyte.Builder) { // originator [0] EXPLICIT
				b.AddASN1(tag1, func(b *cryptobyte.Builder) { // originatorKey [1] OriginatorPublicKey
					algID(b, OIDECPublicKey, nil)
					b.AddASN1BitString(eph.PublicKey().Bytes())
				})
			})
			algID(b, oidECDHSHA256KDF, func(b *cryptobyte.Builder) { algID(b, oidAES256Wrap, nil) })
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					if len(ski) > 0 {
						b.AddASN1(tag0, func(b *cryptobyte.Builder) { // rKeyId [0] RecipientKeyIdentifier
							b.AddASN1OctetString(ski)
						})
					} else {
						issuerSerial(b)
					}
					b.AddASN1OctetString(enc)
				})
			})
		})
	default:
		return nil, fmt.Errorf("est: cannot encrypt to a %T key: use an RSA or ECDSA certificate, or a symmetric key", r.Certificate.PublicKey)
	}
	return b.Bytes()
}

func wrapOID(kekLen int) (asn1.ObjectIdentifier, error) {
	switch kekLen {
	case 16:
		return oidAES128Wrap, nil
	case 24:
		return oidAES192Wrap, nil
	case 32:
		return oidAES256Wrap, nil
	}
	return nil, fmt.Errorf("est: a key-encryption key must be 16, 24 or 32 bytes, not %d", kekLen)
}

// sharedInfo is the DER of ECC-CMS-SharedInfo (RFC 5753 section 7.2) for
// the key wrap algorithm wrap, the user keying material ukm and a key of
// keyLen bytes.
func sharedInfo(wrap asn1.ObjectIdentifier, ukm []byte, keyLen int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		algID(b, wrap, nil) // AES key wrap: parameters absent
		if ukm != nil {
			b.AddASN1(tag0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(ukm) })
		}
		b.AddASN1(tag2, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(binary.BigEndian.AppendUint32(nil, uint32(keyLen*8)))
		})
	})
	return b.BytesOrPanic()
}

// x963KDF is the key derivation function of ANSI X9.63 (SEC 1 3.6.1).
func x963KDF(h crypto.Hash, z, info []byte, n int) []byte {
	var out []byte
	for counter := uint32(1); len(out) < n; counter++ {
		d := h.New()
		d.Write(z)
		d.Write(binary.BigEndian.AppendUint32(nil, counter))
		d.Write(info)
		out = d.Sum(out)
	}
	return out[:n]
}

// DecryptedKey is an encrypted server-generated key opened by
// DecryptServerKey.
type DecryptedKey struct {
	// Key is the private key: the first OneAsymmetricKey of the package,
	// which is DER PKCS#8 when its version is 1 (0).
	Key []byte
	// Signer is the certificate whose key signed the key package, and
	// Certificates all those the SignedData carried, to verify Signer with.
	Signer       *x509.Certificate
	Certificates []*x509.Certificate
}

func malformedKey(what string) error {
	return Errorf(ErrBadRequest, "malformed encrypted key: %s", what)
}

// DecryptServerKey opens the key part of an encrypted /serverkeygen
// response (RFC 7030 4.4.2), as EncryptServerKey makes it: with kek, the
// shared symmetric key of a DecryptKeyIdentifier request, or priv, the
// private key of the certificate an AsymmetricDecryptKeyIdentifier named
// (RSA as a crypto.Decrypter for key transport with RSAES-OAEP or PKCS #1
// v1.5; *ecdsa.PrivateKey or *ecdh.PrivateKey for key agreement). The
// content may be encrypted with AES-128, -192 or -256 in CBC mode. It
// checks the SignedData's signature with the signer's certificate; whether
// that certificate is to be trusted is for the caller to decide. A key part
// that does not parse is an error of kind ErrBadRequest. The encoding must
// be DER.
func DecryptServerKey(der []byte, kek []byte, priv crypto.PrivateKey) (*DecryptedKey, error) {
	ctype, content, err := openEnvelope(der, kek, priv)
	if err != nil {
		return nil, err
	}
	// Some encoders (openssl cms -encrypt) label any content id-data; what
	// it holds must still be the SignedData.
	if !ctype.Equal(oidCMSSignedData) && !ctype.Equal(oidCMSData) {
		return nil, malformedKey(fmt.Sprintf("the enveloped content is %v, not SignedData", ctype))
	}
	return verifyKeyPackage(content)
}

// openEnvelope decrypts a ContentInfo of EnvelopedData and returns the
// type and the bytes of its content.
func openEnvelope(der []byte, kek []byte, priv crypto.PrivateKey) (asn1.ObjectIdentifier, []byte, error) {
	in := cryptobyte.String(der)
	var ci, env, ed cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, cbasn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&ctype) || !ci.ReadASN1(&env, tag0) || !ci.Empty() {
		return nil, nil, malformedKey("not a DER CMS ContentInfo")
	}
	if !ctype.Equal(oidCMSEnvelopedData) {
		return nil, nil, malformedKey(fmt.Sprintf("content type %v, not EnvelopedData", ctype))
	}
	var version int64
	var ris, eci cryptobyte.String
	if !env.ReadASN1(&ed, cbasn1.SEQUENCE) || !env.Empty() || !ed.ReadASN1Integer(&version) ||
		!ed.SkipOptionalASN1(tag0) || !ed.ReadASN1(&ris, cbasn1.SET) || !ed.ReadASN1(&eci, cbasn1.SEQUENCE) {
		return nil, nil, malformedKey("EnvelopedData")
	}
	var inner asn1.ObjectIdentifier
	var alg, iv, ct cryptobyte.String
	var algOID asn1.ObjectIdentifier
	if !eci.ReadASN1ObjectIdentifier(&inner) || !eci.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) || !eci.ReadASN1(&ct, tag0Prim) {
		return nil, nil, malformedKey("EncryptedContentInfo (a constructed or absent encryptedContent is not supported)")
	}
	var keyLen int
	switch {
	case algOID.Equal(oidAES128CBC):
		keyLen = 16
	case algOID.Equal(oidAES192CBC):
		keyLen = 24
	case algOID.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return nil, nil, fmt.Errorf("est: unsupported content encryption %v (want AES-CBC)", algOID)
	}
	if !alg.ReadASN1(&iv, cbasn1.OCTET_STRING) || len(iv) != aes.BlockSize {
		return nil, nil, malformedKey("AES-CBC parameters")
	}
	var cek []byte
	var tried []string
	for !ris.Empty() {
		var ri cryptobyte.String
		var tag cbasn1.Tag
		if !ris.ReadAnyASN1(&ri, &tag) {
			return nil, nil, malformedKey("RecipientInfo")
		}
		k, what, err := recipientKey(ri, tag, kek, priv)
		if what != "" {
			tried = append(tried, what)
		}
		if err != nil {
			return nil, nil, err
		}
		if k != nil {
			cek = k
			break
		}
	}
	if cek == nil {
		if len(tried) == 0 {
			return nil, nil, errors.New("est: the key is encrypted for a recipient this key cannot open (none of its recipient infos fits)")
		}
		return nil, nil, fmt.Errorf("est: could not decrypt the key (%s)", tried[0])
	}
	if len(cek) != keyLen {
		return nil, nil, errors.New("est: the content-encryption key has the wrong length")
	}
	block, _ := aes.NewCipher(cek)
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, nil, malformedKey("ciphertext length")
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize || !bytes.Equal(pt[len(pt)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, nil, errors.New("est: could not decrypt the key (bad padding)")
	}
	return inner, pt[:len(pt)-pad], nil
}

// recipientKey returns the content-encryption key from one RecipientInfo,
// nil when it is not for kek or priv. what names an attempt that failed.
func recipientKey(ri cryptobyte.String, tag cbasn1.Tag, kek []byte, priv crypto.PrivateKey) (cek []byte, what string, err error) {
	var version int64
	switch {
	case tag == tag2 && kek != nil: // KEKRecipientInfo
		var kekid, alg, enc cryptobyte.String
		var wrap asn1.ObjectIdentifier
		if !ri.ReadASN1Integer(&version) || !ri.ReadASN1(&kekid, cbasn1.SEQUENCE) || !ri.ReadASN1(&alg, cbasn1.SEQUENCE) ||
			!alg.ReadASN1ObjectIdentifier(&wrap) || !ri.ReadASN1(&enc, cbasn1.OCTET_STRING) {
			return nil, "", malformedKey("KEKRecipientInfo")
		}
		want, err := wrapOID(len(kek))
		if err != nil {
			return nil, "", err
		}
		if !wrap.Equal(want) {
			return nil, fmt.Sprintf("the key is wrapped with %v, not AES key wrap of a %d-byte key", wrap, len(kek)), nil
		}
		k, err := aesKeyUnwrap(kek, enc)
		if err != nil {
			return nil, "wrong symmetric key", nil
		}
		return k, "", nil
	case tag == cbasn1.SEQUENCE && priv != nil: // KeyTransRecipientInfo
		dec, ok := priv.(crypto.Decrypter)
		if !ok {
			return nil, "", nil
		}
		if _, ok := dec.Public().(*rsa.PublicKey); !ok {
			return nil, "", nil
		}
		var alg, enc cryptobyte.String
		var algOID asn1.ObjectIdentifier
		var rid cryptobyte.String
		var ridTag cbasn1.Tag
		if !ri.ReadASN1Integer(&version) || !ri.ReadAnyASN1(&rid, &ridTag) || !ri.ReadASN1(&alg, cbasn1.SEQUENCE) ||
			!alg.ReadASN1ObjectIdentifier(&algOID) || !ri.ReadASN1(&enc, cbasn1.OCTET_STRING) {
			return nil, "", malformedKey("KeyTransRecipientInfo")
		}
		var opts crypto.DecrypterOpts
		switch {
		case algOID.Equal(OIDRSAEncryption):
			// openssl cms encrypts with PKCS #1 v1.5 by default; estd itself
			// sends RSAES-OAEP. The client only decrypts here, to interoperate.
			//lint:ignore SA1019 decrypting what other servers send, never encrypting
			opts = &rsa.PKCS1v15DecryptOptions{}
		case algOID.Equal(oidRSAESOAEP):
			h, mgf, err := oaepParams(alg)
			if err != nil {
				return nil, "", err
			}
			opts = &rsa.OAEPOptions{Hash: h, MGFHash: mgf}
		default:
			return nil, fmt.Sprintf("unsupported key transport %v", algOID), nil
		}
		k, err := dec.Decrypt(rand.Reader, enc, opts)
		if err != nil {
			return nil, "the RSA key does not decrypt it", nil
		}
		return k, "", nil
	case tag == tag1 && priv != nil: // KeyAgreeRecipientInfo
		return agreeKey(ri, priv)
	}
	return nil, "", nil
}

// oaepParams reads RSAES-OAEP-params (RFC 4055 section 4.1).
func oaepParams(params cryptobyte.String) (h, mgf crypto.Hash, err error) {
	h, mgf = crypto.SHA1, crypto.SHA1
	if params.Empty() {
		return h, mgf, nil
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return 0, 0, malformedKey("RSAES-OAEP parameters")
	}
	var hashAlg, mgfAlg cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&hashAlg, &present, tag0) {
		return 0, 0, malformedKey("RSAES-OAEP parameters")
	}
	if present {
		if h, err = hashOf(hashAlg); err != nil {
			return 0, 0, err
		}
	}
	if !seq.ReadOptionalASN1(&mgfAlg, &present, tag1) {
		return 0, 0, malformedKey("RSAES-OAEP parameters")
	}
	if present {
		var a cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !mgfAlg.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) || !oid.Equal(oidMGF1) {
			return 0, 0, malformedKey("RSAES-OAEP mask generation function")
		}
		if mgf, err = hashOf(a); err != nil {
			return 0, 0, err
		}
	}
	return h, mgf, nil
}

// hashOf reads a digest AlgorithmIdentifier.
func hashOf(s cryptobyte.String) (crypto.Hash, error) {
	var a cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) {
		return 0, malformedKey("digest algorithm")
	}
	switch {
	case oid.Equal(oidSHA1):
		return crypto.SHA1, nil
	case oid.Equal(oidSHA256):
		return crypto.SHA256, nil
	case oid.Equal(oidSHA384):
		return crypto.SHA384, nil
	case oid.Equal(oidSHA512):
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("est: unsupported digest algorithm %v", oid)
}

// agreeKey returns the content-encryption key of a KeyAgreeRecipientInfo
// (RFC 5753: ephemeral-static ECDH, X9.63 KDF, AES key wrap).
func agreeKey(ri cryptobyte.String, priv crypto.PrivateKey) ([]byte, string, error) {
	var own *ecdh.PrivateKey
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		var err error
		if own, err = k.ECDH(); err != nil {
			return nil, "", nil
		}
	case *ecdh.PrivateKey:
		own = k
	default:
		return nil, "", nil
	}
	var version int64
	var orig, origKey, origAlg, kea, wrapAlg, reks cryptobyte.String
	var point asn1.BitString
	var ukm cryptobyte.String
	var hasUKM bool
	var kdfOID, wrap asn1.ObjectIdentifier
	if !ri.ReadASN1Integer(&version) || !ri.ReadASN1(&orig, tag0) || !orig.ReadASN1(&origKey, tag1) ||
		!origKey.ReadASN1(&origAlg, cbasn1.SEQUENCE) || !origKey.ReadASN1BitString(&point) ||
		!ri.ReadOptionalASN1(&ukm, &hasUKM, tag1) || !ri.ReadASN1(&kea, cbasn1.SEQUENCE) ||
		!kea.ReadASN1ObjectIdentifier(&kdfOID) || !kea.ReadASN1(&wrapAlg, cbasn1.SEQUENCE) ||
		!wrapAlg.ReadASN1ObjectIdentifier(&wrap) || !ri.ReadASN1(&reks, cbasn1.SEQUENCE) {
		return nil, "", malformedKey("KeyAgreeRecipientInfo (only an originator public key is supported)")
	}
	var h crypto.Hash
	switch {
	case kdfOID.Equal(oidECDHSHA1KDF):
		h = crypto.SHA1
	case kdfOID.Equal(oidECDHSHA256KDF):
		h = crypto.SHA256
	case kdfOID.Equal(oidECDHSHA384KDF):
		h = crypto.SHA384
	case kdfOID.Equal(oidECDHSHA512KDF):
		h = crypto.SHA512
	default:
		return nil, fmt.Sprintf("unsupported key agreement %v", kdfOID), nil
	}
	var keyLen int
	switch {
	case wrap.Equal(oidAES128Wrap):
		keyLen = 16
	case wrap.Equal(oidAES192Wrap):
		keyLen = 24
	case wrap.Equal(oidAES256Wrap):
		keyLen = 32
	default:
		return nil, fmt.Sprintf("unsupported key wrap %v", wrap), nil
	}
	peer, err := own.Curve().NewPublicKey(point.RightAlign())
	if err != nil {
		return nil, "the originator key is not on the curve of this key", nil
	}
	z, err := own.ECDH(peer)
	if err != nil {
		return nil, "key agreement failed", nil
	}
	var ukmBytes []byte
	if hasUKM {
		var u cryptobyte.String
		if !ukm.ReadASN1(&u, cbasn1.OCTET_STRING) {
			return nil, "", malformedKey("user keying material")
		}
		ukmBytes = append([]byte{}, u...)
	}
	kek := x963KDF(h, z, sharedInfo(wrap, ukmBytes, keyLen), keyLen)
	for !reks.Empty() {
		var rek, rid, enc cryptobyte.String
		var ridTag cbasn1.Tag
		if !reks.ReadASN1(&rek, cbasn1.SEQUENCE) || !rek.ReadAnyASN1(&rid, &ridTag) || !rek.ReadASN1(&enc, cbasn1.OCTET_STRING) {
			return nil, "", malformedKey("RecipientEncryptedKey")
		}
		if k, err := aesKeyUnwrap(kek, enc); err == nil {
			return k, "", nil
		}
	}
	return nil, "the EC key does not decrypt it", nil
}

// verifyKeyPackage parses a SignedData (without a ContentInfo) over an
// AsymmetricKeyPackage and checks its signature with the certificate in it
// that its signer names.
func verifyKeyPackage(der []byte) (*DecryptedKey, error) {
	var ci cryptobyte.Builder
	ci.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidCMSSignedData)
		b.AddASN1(tag0, func(b *cryptobyte.Builder) { b.AddBytes(der) })
	})
	wrapped, err := ci.Bytes()
	if err != nil {
		return nil, malformedKey("SignedData")
	}
	sd, err := ParseSignedData(wrapped)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, "malformed encrypted key")
	}
	if !sd.ContentType.Equal(OIDKeyPackage) {
		return nil, malformedKey(fmt.Sprintf("the signed content is %v, not an AsymmetricKeyPackage", sd.ContentType))
	}
	if sd.Content == nil {
		return nil, malformedKey("the SignedData holds no key")
	}
	if len(sd.Signers) == 0 {
		return nil, malformedKey("the SignedData has no signer")
	}
	si := sd.Signers[0]
	signer := sd.SignerCertificate(si)
	if signer == nil {
		return nil, malformedKey("the key package's signer certificate is not in it")
	}
	if err := sd.Verify(si, signer.PublicKey); err != nil {
		return nil, fmt.Errorf("est: the key package's signature does not verify: %w", err)
	}
	content := cryptobyte.String(sd.Content)
	var pkg, first cryptobyte.String
	if !content.ReadASN1(&pkg, cbasn1.SEQUENCE) || !content.Empty() || !pkg.ReadASN1Element(&first, cbasn1.SEQUENCE) {
		return nil, malformedKey("AsymmetricKeyPackage")
	}
	return &DecryptedKey{Key: append([]byte(nil), first...), Signer: signer, Certificates: sd.Certificates}, nil
}

// SubjectKeyID returns the subject key identifier of cert: its extension,
// or, when it has none, the SHA-1 hash of its subjectPublicKey (RFC 5280
// section 4.2.1.2, method 1). AsymmetricDecryptKeyIdentifier names a
// certificate by it (RFC 7030 4.4.1.2).
func SubjectKeyID(cert *x509.Certificate) []byte {
	if len(cert.SubjectKeyId) > 0 {
		return cert.SubjectKeyId
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil
	}
	sum := sha1.Sum(spki.PublicKey.Bytes)
	return sum[:]
}
