// Package auth decides who is asking an EST request (RFC 7030 3.3 and 3.2.3):
// a TLS client certificate chaining to a configured manufacturer trust anchor
// (a factory certificate), a certificate this CA issued that is still valid and
// not revoked, or HTTP Basic credentials checked against a hashed users file.
package auth

import (
	"crypto/x509"
	"net/http"
)

// Method is how a requester authenticated.
type Method string

// The authentication methods estd knows.
const (
	// Basic is HTTP Basic against the users file (RFC 7030 3.2.3), only over TLS.
	Basic Method = "basic"
	// Manufacturer is a TLS client certificate chaining to a manufacturer anchor.
	Manufacturer Method = "manufacturer-cert"
	// Issued is a TLS client certificate this CA issued, unexpired and not revoked.
	Issued Method = "issued-cert"
)

// Methods lists every Method.
var Methods = []Method{Basic, Manufacturer, Issued}

// Valid reports whether m is a known method.
func (m Method) Valid() bool {
	for _, x := range Methods {
		if x == m {
			return true
		}
	}
	return false
}

// Identity is an authenticated requester.
type Identity struct {
	Method Method
	// Name is the user name for Basic, the certificate subject otherwise.
	Name string
	// Cert is the verified TLS client certificate for certificate methods.
	Cert *x509.Certificate
	// Profile is the label the certificate was issued under, for Issued.
	Profile string
}

// Authenticator finds out who sent r. It returns an *est.Error of kind
// ErrUnauthorized when r carries no usable credentials and ErrForbidden when
// the credentials it carries are refused.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}
