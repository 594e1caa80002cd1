package server

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/store"
)

// SameName reports whether two DER Names are the same name: the same RDNs
// with the same attribute types and values in the same order, whatever
// string type encodes each value (PrintableString and UTF8String compare
// equal, as RFC 5280 7.1 allows after normalisation).
func SameName(a, b []byte) bool {
	var ra, rb pkix.RDNSequence
	if rest, err := asn1.Unmarshal(a, &ra); err != nil || len(rest) > 0 {
		return false
	}
	if rest, err := asn1.Unmarshal(b, &rb); err != nil || len(rest) > 0 {
		return false
	}
	if len(ra) != len(rb) {
		return false
	}
	for i := range ra {
		if len(ra[i]) != len(rb[i]) {
			return false
		}
		for j := range ra[i] {
			x, y := ra[i][j], rb[i][j]
			if !x.Type.Equal(y.Type) || fmt.Sprint(x.Value) != fmt.Sprint(y.Value) {
				return false
			}
		}
	}
	return true
}

// SameSANs reports whether the CSR asks for exactly the subjectAltNames the
// certificate has, as sets.
func SameSANs(req *x509.CertificateRequest, cert *x509.Certificate) bool {
	return slices.Equal(sanList(req.DNSNames, req.IPAddresses, req.EmailAddresses, req.URIs),
		sanList(cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs))
}

// SANs returns a certificate's subjectAltNames as the store records them.
func SANs(cert *x509.Certificate) []string {
	return sanList(cert.DNSNames, cert.IPAddresses, cert.EmailAddresses, cert.URIs)
}

func sanList[U fmt.Stringer](dns []string, ips []net.IP, emails []string, uris []U) []string {
	var out []string
	for _, d := range dns {
		out = append(out, "dns:"+strings.ToLower(d))
	}
	for _, ip := range ips {
		out = append(out, "ip:"+ip.String())
	}
	for _, e := range emails {
		out = append(out, "email:"+e)
	}
	for _, u := range uris {
		out = append(out, "uri:"+u.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Record returns the store record of a certificate issued under profile to who.
func Record(cert *x509.Certificate, profile string, who auth.Identity, issuedAt time.Time) *store.Record {
	kt, err := ca.KeyTypeOf(cert.PublicKey)
	alg := kt.Algorithm()
	if err != nil {
		alg = cert.PublicKeyAlgorithm.String()
	}
	return &store.Record{
		Serial:       cert.SerialNumber,
		Subject:      cert.Subject.String(),
		SANs:         SANs(cert),
		NotBefore:    cert.NotBefore.UTC(),
		NotAfter:     cert.NotAfter.UTC(),
		KeyAlgorithm: alg,
		Profile:      profile,
		Requester:    who.Name,
		AuthMethod:   string(who.Method),
		IssuedAt:     issuedAt.UTC(),
		DER:          cert.Raw,
	}
}
