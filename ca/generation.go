package ca

import (
	"crypto/x509"
	"regexp"
	"strconv"
)

// generationSuffix matches the generation suffix of an issuing CA's common
// name: the CAs that rollovers make (estd ca rollover) are " G2", " G3", ...
var generationSuffix = regexp.MustCompile(` G([0-9]+)$`)

// Generation is the generation of an issuing CA made by estd: 1 for the
// first, n for the one a rollover named "... Gn". Its certificates' CRL
// distribution point depends on it: the first generation's name the CRL
// URL as configured, later ones that URL with the CA's key identifier
// appended, so that each CA's certificates name its own CRL.
func Generation(c *x509.Certificate) int {
	if m := generationSuffix.FindStringSubmatch(c.Subject.CommonName); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n >= 2 {
			return n
		}
	}
	return 1
}

// GenerationStem is the common name of c without its generation suffix.
func GenerationStem(c *x509.Certificate) string {
	return generationSuffix.ReplaceAllString(c.Subject.CommonName, "")
}
