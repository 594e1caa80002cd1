package conformance

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// revocationTimeout bounds one CRL download or OCSP query.
const revocationTimeout = 15 * time.Second

// revocation asks the CRL distribution points and OCSP responders that cert
// names whether it is revoked. desc says what was asked ("" when cert names
// neither); an error means its status could not be found out.
func (s *session) revocation(ctx context.Context, label string, cert *x509.Certificate) (revoked bool, desc string, err error) {
	if len(cert.CRLDistributionPoints) == 0 && len(cert.OCSPServer) == 0 {
		return false, "", nil
	}
	issuer, err := s.issuerOf(ctx, label, cert)
	if err != nil {
		return false, "", err
	}
	hc := &http.Client{
		Timeout: revocationTimeout,
		Transport: &http.Transport{
			TLSClientConfig:   s.tlsConfig(nil),
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{}).DialContext,
		},
	}
	var parts []string
	for _, u := range cert.CRLDistributionPoints {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			continue // ldap: and others are not fetched
		}
		listed, err := crlLists(ctx, hc, u, cert, issuer)
		if err != nil {
			return false, "", fmt.Errorf("CRL %s: %v", u, err)
		}
		if listed {
			return true, "listed on the CRL " + u, nil
		}
		parts = append(parts, "not on the CRL")
	}
	for _, u := range cert.OCSPServer {
		status, err := ocspStatus(ctx, hc, u, cert, issuer)
		if err != nil {
			return false, "", fmt.Errorf("OCSP %s: %v", u, err)
		}
		if status == ocsp.Revoked {
			return true, "OCSP responder " + u + " says revoked", nil
		}
		parts = append(parts, "OCSP "+map[int]string{ocsp.Good: "good", ocsp.Unknown: "unknown"}[status])
	}
	return false, strings.Join(parts, ", "), nil
}

// issuerOf finds the CA certificate of label that signed cert.
func (s *session) issuerOf(ctx context.Context, label string, cert *x509.Certificate) (*x509.Certificate, error) {
	certs, err := s.cacerts(ctx, label)
	if err != nil {
		return nil, fmt.Errorf("fetching /cacerts: %s", errText(err))
	}
	for _, c := range certs {
		if bytes.Equal(c.RawSubject, cert.RawIssuer) && cert.CheckSignatureFrom(c) == nil {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no CA certificate from /cacerts signed %s", cert.Subject)
}

func fetch(ctx context.Context, hc *http.Client, req *http.Request) ([]byte, error) {
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

// crlLists fetches the CRL at u, checks its issuer's signature and whether
// it lists cert.
func crlLists(ctx context.Context, hc *http.Client, u string, cert, issuer *x509.Certificate) (bool, error) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	der, err := fetch(ctx, hc, req)
	if err != nil {
		return false, err
	}
	if b, _ := pem.Decode(der); b != nil {
		der = b.Bytes
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return false, err
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		return false, fmt.Errorf("not signed by %s: %v", issuer.Subject, err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true, nil
		}
	}
	return false, nil
}

// ocspStatus asks the OCSP responder at u (RFC 6960) about cert.
func ocspStatus(ctx context.Context, hc *http.Client, u string, cert, issuer *x509.Certificate) (int, error) {
	body, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	der, err := fetch(ctx, hc, req)
	if err != nil {
		return 0, err
	}
	resp, err := ocsp.ParseResponseForCert(der, cert, issuer)
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}
