package conformance

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"

	"github.com/estkit/estkit"
)

var (
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
)

// contentInfo, signedData and encapContentInfo are RFC 5652 3 and 5.1-5.2,
// with the parts a certs-only message must leave empty kept raw.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      asn1.RawValue
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"optional,explicit,tag:0"`
}

// certsOnlyStructure checks that der is a certs-only ("degenerate") CMS
// SignedData (RFC 7030 4.1.3, RFC 5272 4.1, RFC 5652 5.1): content type
// signedData, encapsulated content id-data without content, at least one
// certificate, no signers. It returns the certificates. A BER encoding,
// which CMS allows, is accepted on the strength of est.ParseCertsOnly, and
// note says so.
func certsOnlyStructure(der []byte) (certs []*x509.Certificate, note string, err error) {
	var ci contentInfo
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		certs, perr := est.ParseCertsOnly(der)
		if perr != nil {
			return nil, "", fmt.Errorf("not a certs-only PKCS#7: %s", est.Detail(perr))
		}
		return certs, " (BER encoding)", nil
	}
	if len(rest) > 0 {
		return nil, "", fmt.Errorf("%d bytes of trailing data after the PKCS#7", len(rest))
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, "", fmt.Errorf("PKCS#7 content type %v, want signedData", ci.ContentType)
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) > 0 {
		return nil, "", fmt.Errorf("malformed PKCS#7 SignedData")
	}
	if !sd.EncapContentInfo.EContentType.Equal(oidData) {
		return nil, "", fmt.Errorf("encapsulated content type %v, want id-data", sd.EncapContentInfo.EContentType)
	}
	if len(sd.EncapContentInfo.EContent.FullBytes) > 0 {
		return nil, "", fmt.Errorf("the SignedData carries content: a certs-only message has none")
	}
	if sd.SignerInfos.Tag != asn1.TagSet || len(sd.SignerInfos.Bytes) > 0 {
		return nil, "", fmt.Errorf("the SignedData has signers: a certs-only message has none")
	}
	if len(sd.Certificates.Bytes) == 0 {
		return nil, "", fmt.Errorf("the PKCS#7 holds no certificate")
	}
	for b := sd.Certificates.Bytes; len(b) > 0; {
		var raw asn1.RawValue
		if b, err = asn1.Unmarshal(b, &raw); err != nil {
			return nil, "", fmt.Errorf("malformed certificate in the PKCS#7")
		}
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, "", fmt.Errorf("certificate %d in the PKCS#7: %v", len(certs)+1, strings.TrimPrefix(err.Error(), "x509: "))
		}
		certs = append(certs, c)
	}
	return certs, "", nil
}

// sanList returns the subjectAltNames of c, normalised and sorted.
func sanList(c *x509.Certificate) []string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+strings.ToLower(d))
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	slices.Sort(out)
	return out
}

func sanSet(c *x509.Certificate) map[string]bool {
	m := map[string]bool{}
	for _, s := range sanList(c) {
		m[s] = true
	}
	return m
}
