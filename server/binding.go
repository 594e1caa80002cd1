package server

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
)

// oidSerialNumber is the X.520 serialNumber attribute (2.5.4.5).
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// checkBinding enforces the profile's ManufacturerBinding on req from who:
// a device authenticated by a certificate, its factory certificate or one
// this CA issued it, gets a certificate for the identity of that
// certificate only, so that one device's key cannot enroll in another
// device's name. The subject is bound as the profile says, and the
// subjectAltNames must be among the authenticating certificate's. A
// registration authority the label allows (AllowRA) enrolls for others and
// is not bound; nor are Basic users. A certificate of another label proves
// no identity here. Renewals are not checked here: checkRenewal keeps their
// subject and subjectAltNames (RFC 7030 4.2.2).
func checkBinding(req *x509.CertificateRequest, p *label, who auth.Identity) error {
	if p.ManufacturerBinding == ca.BindNone || (who.Method != auth.Manufacturer && who.Method != auth.Issued) {
		return nil
	}
	if p.AllowRA && isRA(who) {
		return nil
	}
	cert := who.Cert
	if cert == nil {
		return est.Errorf(est.ErrForbidden, "this label binds a device to its certificate, and none is known")
	}
	what := "factory certificate"
	if who.Method == auth.Issued {
		// A certificate of another label says only what that label let
		// its requester ask for (a password user may have asked for any
		// serial number there): it proves no device identity here.
		if who.Profile != p.Name {
			return est.Errorf(est.ErrForbidden, "this label binds a device to its factory certificate or to a certificate issued under this label, and this one was issued under label %q", who.Profile)
		}
		what = "certificate"
	}
	switch p.ManufacturerBinding {
	case ca.BindSubject:
		if len(cert.Subject.Names) == 0 {
			return est.Errorf(est.ErrForbidden, "this label binds a device to the subject of its %s, and that subject is empty", what)
		}
		if !est.SameName(req.RawSubject, cert.RawSubject) {
			return est.Errorf(est.ErrForbidden, "this label issues a device only the subject of its %s, %q; the CSR asks for %q", what, cert.Subject, req.Subject)
		}
	case ca.BindSerialNumber:
		want := serialNumbers(cert.Subject)
		if len(want) == 0 {
			return est.Errorf(est.ErrForbidden, "this label binds a device to the serialNumber of its %s's subject, and %q has none", what, cert.Subject)
		}
		if got := serialNumbers(req.Subject); !slices.Equal(got, want) {
			return est.Errorf(est.ErrForbidden, "this label issues a device only the serialNumber of its %s, %q; the CSR's subject %q does not carry exactly that", what, want[0], req.Subject)
		}
	default:
		return fmt.Errorf("server: unknown manufacturer binding %q", p.ManufacturerBinding)
	}
	if extra := sansNotIn(req, cert); extra != "" {
		return est.Errorf(est.ErrForbidden, "this label issues a device only subjectAltNames its %s has; the CSR also asks for %s", what, extra)
	}
	return nil
}

// serialNumbers returns the serialNumber attribute values of a name, in
// order.
func serialNumbers(n pkix.Name) []string {
	var out []string
	for _, a := range n.Names {
		if a.Type.Equal(oidSerialNumber) {
			out = append(out, fmt.Sprint(a.Value))
		}
	}
	return out
}

// sansNotIn returns the first subjectAltName of req that cert does not
// have, as "kind:value", or "" when cert has them all. DNS names compare
// without regard to case.
func sansNotIn(req *x509.CertificateRequest, cert *x509.Certificate) string {
	for _, d := range req.DNSNames {
		if !slices.ContainsFunc(cert.DNSNames, func(c string) bool { return strings.EqualFold(c, d) }) {
			return "dns:" + d
		}
	}
	for _, ip := range req.IPAddresses {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			return "ip:" + ip.String()
		}
	}
	for _, e := range req.EmailAddresses {
		if !slices.Contains(cert.EmailAddresses, e) {
			return "email:" + e
		}
	}
	for _, u := range req.URIs {
		if !slices.ContainsFunc(cert.URIs, func(c *url.URL) bool { return c.String() == u.String() }) {
			return "uri:" + u.String()
		}
	}
	return ""
}
