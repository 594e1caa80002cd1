package server

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
)

// oidSerialNumber is the X.520 serialNumber attribute (2.5.4.5).
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// checkBinding enforces the profile's ManufacturerBinding on req from who:
// a device authenticated by its factory certificate gets a certificate for
// its own identity only, so that one device's factory key cannot enroll in
// another device's name. A registration authority the label allows
// (AllowRA) enrolls for others and is not bound.
func checkBinding(req *x509.CertificateRequest, p *label, who auth.Identity) error {
	if p.ManufacturerBinding == ca.BindNone || who.Method != auth.Manufacturer || who.Cert == nil {
		return nil
	}
	if p.AllowRA && isRA(who) {
		return nil
	}
	switch p.ManufacturerBinding {
	case ca.BindSubject:
		if !est.SameName(req.RawSubject, who.Cert.RawSubject) {
			return est.Errorf(est.ErrForbidden, "this label issues a device only its factory certificate's subject %q; the CSR asks for %q", who.Cert.Subject, req.Subject)
		}
	case ca.BindSerialNumber:
		want := serialNumbers(who.Cert.Subject)
		if len(want) == 0 {
			return est.Errorf(est.ErrForbidden, "this label binds a device to the serialNumber of its factory certificate's subject, and %q has none", who.Cert.Subject)
		}
		if got := serialNumbers(req.Subject); !slices.Equal(got, want) {
			return est.Errorf(est.ErrForbidden, "this label issues a device only its factory certificate's serialNumber %q; the CSR's subject %q does not carry exactly that", want[0], req.Subject)
		}
	default:
		return fmt.Errorf("server: unknown manufacturer binding %q", p.ManufacturerBinding)
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
