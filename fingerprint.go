package est

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
)

// Fingerprint returns the SHA-256 fingerprint of cert as colon-separated
// upper-case hex, the form `openssl x509 -fingerprint -sha256` prints; an EST
// client compares it out of band when it bootstraps trust (RFC 7030 4.1.1).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
