package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/estkit/estkit"
)

// decodeBody returns the DER in an EST body: base64 with or without line
// breaks (RFC 8951 3.1), whatever Content-Transfer-Encoding says; failing
// that, PEM or binary DER, which servers predating RFC 8951 sent.
func decodeBody(body []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, errors.New("empty body")
	}
	der, err := est.DecodeBase64(trimmed)
	if err == nil {
		return der, nil
	}
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN ")) {
		if b, _ := pem.Decode(trimmed); b != nil {
			return b.Bytes, nil
		}
	}
	// Not base64, and it opens like a DER SEQUENCE: binary, as the
	// structure's parser will tell.
	if len(body) > 2 && body[0] == 0x30 {
		return body, nil
	}
	return nil, fmt.Errorf("neither base64 nor DER: %s", est.Detail(err))
}

// describe names the Content-Type of a response for an error message.
func (r *response) describe() string {
	if ct := r.header.Get("Content-Type"); ct != "" {
		return fmt.Sprintf("Content-Type %q", ct)
	}
	return "no Content-Type"
}

// certsOnly parses a certs-only PKCS#7 body.
func certsOnly(op est.Operation, r *response) ([]*x509.Certificate, error) {
	der, err := decodeBody(r.body)
	if err != nil {
		return nil, malformed(op, "%s (%s)", err, r.describe())
	}
	certs, err := est.ParseCertsOnly(der)
	if err != nil {
		return nil, malformed(op, "%s (%s)", est.Detail(err), r.describe())
	}
	return certs, nil
}

// publicKey is what every public key of the standard library implements.
type publicKey interface {
	Equal(crypto.PublicKey) bool
}

// pickLeaf returns the certificate for pub among certs, and the others in
// order; whose names pub in the error. With pub nil it picks the first
// certificate that is not a CA.
func pickLeaf(certs []*x509.Certificate, pub crypto.PublicKey, whose string) (*x509.Certificate, []*x509.Certificate, error) {
	i := -1
	if pub != nil {
		pk, ok := pub.(publicKey)
		if !ok {
			return nil, nil, fmt.Errorf("unsupported public key type %T", pub)
		}
		for j, c := range certs {
			if pk.Equal(c.PublicKey) {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, nil, fmt.Errorf("none of the %d certificates returned is for %s", len(certs), whose)
		}
	} else {
		for j, c := range certs {
			if !c.IsCA {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, nil, fmt.Errorf("the %d certificates returned are all CA certificates", len(certs))
		}
	}
	extra := make([]*x509.Certificate, 0, len(certs)-1)
	extra = append(extra, certs[:i]...)
	extra = append(extra, certs[i+1:]...)
	return certs[i], extra, nil
}

// parsePrivateKey parses a DER private key as PKCS#8, PKCS#1 or SEC 1:
// servers label all three application/pkcs8 (libest sends PKCS#1).
func parsePrivateKey(der []byte) (crypto.Signer, error) {
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if k, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
			key, err = k, nil
		} else if k, err2 := x509.ParseECPrivateKey(der); err2 == nil {
			key, err = k, nil
		}
	}
	if err != nil {
		return nil, errors.New("the key is not PKCS#8, PKCS#1 or SEC 1 DER")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// multipartType returns the Content-Type to parse a serverkeygen body with:
// r's own when it is multipart with a boundary, else one built from the
// boundary the body opens with (for servers that send no or a wrong type).
func multipartType(r *response) string {
	ct := r.header.Get("Content-Type")
	if mt, params, err := mime.ParseMediaType(ct); err == nil && strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		if mt == est.MediaMultipartMixed {
			return ct
		}
		return mime.FormatMediaType(est.MediaMultipartMixed, map[string]string{"boundary": params["boundary"]})
	}
	body := bytes.TrimLeft(r.body, "\r\n \t")
	line, _, _ := bytes.Cut(body, []byte("\n"))
	b, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r \t"), []byte("--"))
	if !ok || len(b) == 0 || len(b) > 70 {
		return ct
	}
	return mime.FormatMediaType(est.MediaMultipartMixed, map[string]string{"boundary": string(b)})
}
