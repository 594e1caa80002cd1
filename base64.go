package est

import (
	"encoding/base64"
	"fmt"
)

// DecodeBase64 decodes an EST body (RFC 8951 section 3.1): base64 of RFC 4648
// section 4, with or without line breaks and other white space, padding optional.
// Any other character is an error of kind ErrBadRequest.
func DecodeBase64(body []byte) ([]byte, error) {
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		clean = append(clean, c)
	}
	for len(clean) > 0 && clean[len(clean)-1] == '=' {
		clean = clean[:len(clean)-1]
	}
	if len(clean) == 0 {
		return nil, Errorf(ErrBadRequest, "empty body")
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil {
		return nil, Wrap(ErrBadRequest, err, fmt.Sprintf("malformed base64: %v", err))
	}
	return out[:n], nil
}

// EncodeBase64 encodes der as an EST body: standard base64 with padding and
// no line breaks, as RFC 8951 section 3.1 asks (RFC 4648 section 4; section
// 3.1 there forbids adding line feeds). Some clients, strongSwan's among them,
// cannot decode bodies with line breaks.
func EncodeBase64(der []byte) []byte {
	out := make([]byte, base64.StdEncoding.EncodedLen(len(der)))
	base64.StdEncoding.Encode(out, der)
	return out
}
