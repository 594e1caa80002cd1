package est

import (
	"regexp"
	"strings"
)

// Operation is one EST operation, named as its path segment (RFC 7030 3.2.2).
type Operation string

// The EST operations of RFC 7030 section 3.2.2.
const (
	OpCACerts        Operation = "cacerts"
	OpSimpleEnroll   Operation = "simpleenroll"
	OpSimpleReenroll Operation = "simplereenroll"
	OpFullCMC        Operation = "fullcmc"
	OpServerKeyGen   Operation = "serverkeygen"
	OpCSRAttrs       Operation = "csrattrs"
)

// Operations lists every operation in the order of RFC 7030 section 3.2.2.
var Operations = []Operation{OpCACerts, OpSimpleEnroll, OpSimpleReenroll, OpFullCMC, OpServerKeyGen, OpCSRAttrs}

// Valid reports whether op is one of the operations of RFC 7030.
func (op Operation) Valid() bool {
	for _, o := range Operations {
		if o == op {
			return true
		}
	}
	return false
}

// Method is the HTTP method the operation uses: GET for cacerts and csrattrs,
// POST for the others.
func (op Operation) Method() string {
	if op == OpCACerts || op == OpCSRAttrs {
		return "GET"
	}
	return "POST"
}

// WellKnownPrefix is the path under which every EST operation lives (RFC 7030 3.2.2).
const WellKnownPrefix = "/.well-known/est/"

// Media types used by EST (RFC 7030 section 3.2.4, 4.x; RFC 8951).
const (
	MediaPKCS10         = "application/pkcs10"
	MediaPKCS7          = "application/pkcs7-mime"
	MediaCertsOnly      = "application/pkcs7-mime; smime-type=certs-only"
	MediaCMCRequest     = "application/pkcs7-mime; smime-type=CMC-request"
	MediaCMCResponse    = "application/pkcs7-mime; smime-type=CMC-response"
	MediaServerKey      = "application/pkcs7-mime; smime-type=server-generated-key"
	MediaPKCS8          = "application/pkcs8"
	MediaCSRAttrs       = "application/csrattrs"
	MediaMultipartMixed = "multipart/mixed"
)

// labelRE is the label syntax: RFC 7030 3.2.2 allows any path segment other
// than an operation name; we accept the conservative set operators use.
var labelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$`)

// ValidLabel reports whether label can name a CA label: a non-empty path
// segment of letters, digits and ._~- that is not itself an operation name.
func ValidLabel(label string) bool {
	return labelRE.MatchString(label) && !Operation(label).Valid()
}

// Path returns the well-known path of op under label ("" for none).
func Path(label string, op Operation) string {
	if label == "" {
		return WellKnownPrefix + string(op)
	}
	return WellKnownPrefix + label + "/" + string(op)
}

// ParsePath splits an EST request path into its label ("" for none) and
// operation. It returns an error of kind ErrNotFound for anything else.
func ParsePath(path string) (label string, op Operation, err error) {
	rest, ok := strings.CutPrefix(path, WellKnownPrefix)
	if !ok {
		return "", "", Errorf(ErrNotFound, "not an EST path")
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		op = Operation(parts[0])
	case 2:
		label, op = parts[0], Operation(parts[1])
		if !ValidLabel(label) {
			return "", "", Errorf(ErrNotFound, "invalid label %q", truncate(label))
		}
	default:
		return "", "", Errorf(ErrNotFound, "not an EST path")
	}
	if !op.Valid() {
		return "", "", Errorf(ErrNotFound, "unknown operation %q", truncate(string(op)))
	}
	return label, op, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
