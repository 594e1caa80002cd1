package server

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/estkit/estkit/auth"
	"github.com/estkit/estkit/ca"
	"github.com/estkit/estkit/store"
)

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
