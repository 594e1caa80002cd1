package est

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// Fuzz targets for the parsers of linked CSRs and encrypted server keys.
//
//	go test -run '^$' -fuzz '^FuzzDecryptServerKey$' -fuzztime 30s .

func FuzzRequestAttributes(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "x"}, DNSNames: []string{"x.example"}}, key)
	linked, _ := SetRequestAttributes(csr, key, ChallengePasswordAttribute("bGluaw=="), KeyIDAttribute(OIDDecryptKeyID, []byte{1}))
	for _, der := range [][]byte{csr, linked} {
		req, _ := x509.ParseCertificateRequest(der)
		f.Add(req.RawTBSCertificateRequest)
	}
	f.Fuzz(func(t *testing.T, tbs []byte) {
		req := &x509.CertificateRequest{RawTBSCertificateRequest: tbs}
		if _, err := RequestAttributes(req); err != nil {
			checkBadRequest(t, err)
		}
		if _, _, err := ChallengePassword(req); err != nil {
			checkBadRequest(t, err)
		}
		if _, _, err := RequestKeyID(req, OIDAsymmDecryptKeyID); err != nil {
			checkBadRequest(t, err)
		}
	})
}

func FuzzDecryptServerKey(f *testing.F) {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: pkix.Name{CommonName: "s"}, NotBefore: nowMinusHour(), NotAfter: nowPlusHour(), SubjectKeyId: []byte{1}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	cert, _ := x509.ParseCertificate(der)
	p8, _ := x509.MarshalPKCS8PrivateKey(signer)
	kek := bytes.Repeat([]byte{9}, 16)
	for _, r := range []KeyRecipient{{KEK: kek, KeyID: []byte("k")}, {Certificate: cert}} {
		env, err := EncryptServerKey(p8, r, signer, []*x509.Certificate{cert})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	f.Fuzz(func(t *testing.T, env []byte) {
		got, err := DecryptServerKey(env, kek, signer)
		if err == nil && (len(got.Key) == 0 || got.Signer == nil) {
			t.Fatal("DecryptServerKey succeeded without a key or a signer")
		}
	})
}
