package est

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// ServerKeyGenResponse is the content of a /serverkeygen response
// (RFC 7030 4.4.2): the private key and the certificate issued for it.
type ServerKeyGenResponse struct {
	// Key is the private key: DER PKCS#8 (application/pkcs8), or the DER of CMS
	// EnvelopedData when KeyEncrypted is set.
	Key []byte
	// KeyEncrypted marks Key as an encrypted CMS (smime-type=server-generated-key).
	KeyEncrypted bool
	// Certs holds the DER of a certs-only PKCS#7 with the issued certificate.
	Certs []byte
}

// WriteServerKeyGen encodes r as multipart/mixed with the key part first and
// returns the Content-Type (with the boundary) and the body.
func WriteServerKeyGen(r *ServerKeyGenResponse) (contentType string, body []byte, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	if err := mw.SetBoundary("est-" + hex.EncodeToString(b[:])); err != nil {
		return "", nil, err
	}
	keyType := MediaPKCS8
	if r.KeyEncrypted {
		keyType = MediaServerKey
	}
	for _, p := range []struct {
		ctype string
		der   []byte
	}{{keyType, r.Key}, {MediaCertsOnly, r.Certs}} {
		h := textproto.MIMEHeader{}
		h.Set("Content-Type", p.ctype)
		h.Set("Content-Transfer-Encoding", "base64")
		pw, err := mw.CreatePart(h)
		if err != nil {
			return "", nil, err
		}
		if _, err := pw.Write(EncodeBase64(p.der)); err != nil {
			return "", nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return "", nil, err
	}
	return MediaMultipartMixed + "; boundary=" + mw.Boundary(), buf.Bytes(), nil
}

// maxParts bounds how many parts ParseServerKeyGen reads.
const maxParts = 8

// maxPartSize bounds the size of one part, base64 included.
const maxPartSize = 1 << 20

// ParseServerKeyGen parses a multipart/mixed /serverkeygen response body. The
// parts may come in either order; base64 parts are decoded whether or not they
// carry Content-Transfer-Encoding (RFC 8951). A key part labelled
// application/pkcs8 is returned as is (it may hold PKCS#1, as some servers
// send). Parts of other types are ignored; a second key or certificate part,
// more than maxParts parts or a part over maxPartSize bytes is refused.
// Errors are of kind ErrBadRequest.
func ParseServerKeyGen(contentType string, body []byte) (*ServerKeyGenResponse, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != MediaMultipartMixed || params["boundary"] == "" {
		return nil, Errorf(ErrBadRequest, "expected multipart/mixed with a boundary, got %q", truncate(contentType))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out ServerKeyGenResponse
	for i := 0; ; i++ {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Wrap(ErrBadRequest, err, "malformed multipart body")
		}
		if i == maxParts {
			return nil, Errorf(ErrBadRequest, "too many parts in multipart body")
		}
		// Read one byte more than allowed so that an oversized part is refused
		// rather than silently truncated (and possibly still decoded).
		data, err := io.ReadAll(io.LimitReader(p, maxPartSize+1))
		if err != nil {
			return nil, Wrap(ErrBadRequest, err, "malformed multipart body")
		}
		if len(data) > maxPartSize {
			return nil, Errorf(ErrBadRequest, "multipart part larger than %d bytes", maxPartSize)
		}
		ptype, pparams, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return nil, Errorf(ErrBadRequest, "part without a valid Content-Type")
		}
		smime := strings.ToLower(pparams["smime-type"])
		var dst *[]byte
		encrypted := false
		switch {
		case ptype == MediaPKCS8:
			dst = &out.Key
		case ptype == MediaPKCS7 && smime == "server-generated-key":
			dst, encrypted = &out.Key, true
		case ptype == MediaPKCS7:
			dst = &out.Certs
		default:
			continue // a part of another type is ignored, whatever its encoding
		}
		if *dst != nil {
			what := "key"
			if dst == &out.Certs {
				what = "certificate"
			}
			return nil, Errorf(ErrBadRequest, "multipart body has two %s parts", what)
		}
		der, err := DecodeBase64(data)
		if err != nil {
			return nil, err
		}
		*dst = der
		if dst == &out.Key {
			out.KeyEncrypted = encrypted
		}
	}
	if out.Key == nil || out.Certs == nil {
		return nil, Errorf(ErrBadRequest, "multipart body lacks the key or the certificate part")
	}
	return &out, nil
}
