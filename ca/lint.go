package ca

import (
	"crypto/x509"
	"fmt"
	"net/mail"
	"strings"

	"github.com/estkit/estkit"
)

// lint checks a certificate template before it is signed, so that a CSR
// cannot smuggle into a certificate what RFC 5280 forbids or what relying
// parties would misread. Failures are ErrPolicy with the reason.
func lint(tmpl, issuer *x509.Certificate) error {
	if tmpl.SerialNumber == nil || tmpl.SerialNumber.Sign() <= 0 || len(tmpl.SerialNumber.Bytes()) > 20 {
		return est.Errorf(est.ErrInternal, "serial out of range")
	}
	if !tmpl.NotAfter.After(tmpl.NotBefore) || tmpl.NotAfter.After(issuer.NotAfter) {
		return est.Errorf(est.ErrInternal, "validity outside the issuer's")
	}
	if n := len(tmpl.RawSubject); n > maxSubjectBytes {
		return est.Errorf(est.ErrPolicy, "the CSR's subject is %d bytes; at most %d are issued", n, maxSubjectBytes)
	}
	if n := len(tmpl.DNSNames) + len(tmpl.IPAddresses) + len(tmpl.EmailAddresses) + len(tmpl.URIs); n > maxSANs {
		return est.Errorf(est.ErrPolicy, "the CSR asks for %d subjectAltNames; at most %d are issued", n, maxSANs)
	}
	for _, d := range tmpl.DNSNames {
		if err := checkDNSName(d); err != nil {
			return est.Errorf(est.ErrPolicy, "subjectAltName DNS name %q: %v", clip(d), err)
		}
	}
	for _, e := range tmpl.EmailAddresses {
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			return est.Errorf(est.ErrPolicy, "subjectAltName email %q is not a plain address", clip(e))
		}
	}
	for _, u := range tmpl.URIs {
		if !u.IsAbs() || u.Opaque == "" && u.Host == "" && u.Path == "" {
			return est.Errorf(est.ErrPolicy, "subjectAltName URI %q is not an absolute URI", clip(u.String()))
		}
	}
	return nil
}

// maxSANs bounds the subjectAltNames of a certificate, as Let's Encrypt's
// 100, and maxSubjectBytes its DER subject (RFC 5280's upper bounds keep a
// real one far below): a CSR must not turn into a certificate of tens of
// kilobytes that every relying party has to parse.
const (
	maxSANs         = 100
	maxSubjectBytes = 1024
)

// checkDNSName accepts an LDH host name of RFC 1123 (lowercase or not, with
// a trailing label that is not all digits); wildcards are refused.
func checkDNSName(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("empty or over 253 characters")
	}
	if strings.HasPrefix(d, "*.") {
		return fmt.Errorf("wildcards are not issued")
	}
	labels := strings.Split(strings.TrimSuffix(d, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("empty label or label over 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label starts or ends with a hyphen")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("character %q not allowed", c)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("looks like an IP address; use an IP subjectAltName")
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
