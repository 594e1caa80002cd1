package est

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"strings"
	"testing"
)

// goCSR makes a PKCS#10 request signed by the fixture key in testdata/keyFile.
func goCSR(t *testing.T, keyFile string, alg x509.SignatureAlgorithm) []byte {
	t.Helper()
	_, k := fixtureKey(t, keyFile)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:            pkix.Name{CommonName: "go-device"},
		DNSNames:           []string{"go-device.example"},
		SignatureAlgorithm: alg,
	}, k.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// goodCSRs are well-formed, correctly signed requests of every key type.
func goodCSRs(t *testing.T) []struct {
	name   string
	der    []byte
	cn     string
	keyAlg x509.PublicKeyAlgorithm
	sigAlg x509.SignatureAlgorithm
} {
	return []struct {
		name   string
		der    []byte
		cn     string
		keyAlg x509.PublicKeyAlgorithm
		sigAlg x509.SignatureAlgorithm
	}{
		{"openssl RSA", pemBlock(t, "csr-rsa.pem", "CERTIFICATE REQUEST"), "rsa-device", x509.RSA, x509.SHA256WithRSA},
		{"openssl ECDSA P-384", pemBlock(t, "csr-ecdsa.pem", "CERTIFICATE REQUEST"), "ecdsa-device", x509.ECDSA, x509.ECDSAWithSHA384},
		{"openssl Ed25519", pemBlock(t, "csr-ed25519.pem", "CERTIFICATE REQUEST"), "ed25519-device", x509.Ed25519, x509.PureEd25519},
		{"Go RSA", goCSR(t, "rsa-key.pem", x509.SHA256WithRSA), "go-device", x509.RSA, x509.SHA256WithRSA},
		{"Go RSA-PSS", goCSR(t, "rsa-key.pem", x509.SHA256WithRSAPSS), "go-device", x509.RSA, x509.SHA256WithRSAPSS},
		{"Go ECDSA P-256", goCSR(t, "leaf-key.pem", x509.ECDSAWithSHA256), "go-device", x509.ECDSA, x509.ECDSAWithSHA256},
		{"Go ECDSA P-384", goCSR(t, "ecdsa-key.pem", x509.ECDSAWithSHA384), "go-device", x509.ECDSA, x509.ECDSAWithSHA384},
		{"Go Ed25519", goCSR(t, "ed25519-key.pem", x509.PureEd25519), "go-device", x509.Ed25519, x509.PureEd25519},
	}
}

func TestParseCSR(t *testing.T) {
	for _, tt := range goodCSRs(t) {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseCSR(tt.der)
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			if req.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q; want %q", req.Subject.CommonName, tt.cn)
			}
			if req.PublicKeyAlgorithm != tt.keyAlg {
				t.Errorf("PublicKeyAlgorithm = %v; want %v", req.PublicKeyAlgorithm, tt.keyAlg)
			}
			if req.SignatureAlgorithm != tt.sigAlg {
				t.Errorf("SignatureAlgorithm = %v; want %v", req.SignatureAlgorithm, tt.sigAlg)
			}
			if !bytes.Equal(req.Raw, tt.der) {
				t.Error("Raw is not the input")
			}
			switch req.PublicKey.(type) {
			case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Errorf("PublicKey is a %T", req.PublicKey)
			}
		})
	}
}

func TestParseCSRRejects(t *testing.T) {
	rsaCSR := pemBlock(t, "csr-rsa.pem", "CERTIFICATE REQUEST")
	tests := []struct {
		name string
		der  []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"garbage", []byte("hello, world")},
		{"zero bytes", make([]byte, 64)},
		{"empty sequence", []byte{0x30, 0x00}},
		{"PEM instead of DER", readTestdata(t, "csr-rsa.pem")},
		{"base64 instead of DER", EncodeBase64(rsaCSR)},
		{"certificate", pemBlock(t, "leaf.pem", "CERTIFICATE")},
		{"PKCS#7", readTestdata(t, "openssl-certs-only.p7b")},
		{"truncated", rsaCSR[:len(rsaCSR)-10]},
		{"trailing data", append(bytes.Clone(rsaCSR), 0x00)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseCSR(tt.der)
			if err == nil {
				t.Fatalf("ParseCSR accepted it: %v", req.Subject)
			}
			if req != nil {
				t.Error("ParseCSR returned a request with its error")
			}
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v is not of kind ErrBadRequest", err)
			}
		})
	}
}

// TestParseCSRTampered checks that a request whose signature no longer covers
// its content is refused, for every key type.
func TestParseCSRTampered(t *testing.T) {
	for _, tt := range goodCSRs(t) {
		// The last byte of a CSR is the last byte of its signature.
		sig := bytes.Clone(tt.der)
		sig[len(sig)-1] ^= 0x01

		// Changing the subject keeps the DER well-formed but breaks the signature.
		subj := bytes.Clone(tt.der)
		i := bytes.Index(subj, []byte(tt.cn))
		if i < 0 {
			t.Fatalf("%s: CN not found in the DER", tt.name)
		}
		subj[i] ^= 0x20 // change the case of the first letter

		for what, der := range map[string][]byte{"signature": sig, "subject": subj} {
			t.Run(tt.name+"/"+what, func(t *testing.T) {
				if _, err := x509.ParseCertificateRequest(der); err != nil {
					t.Fatalf("the tampered CSR does not even parse (%v); the test is void", err)
				}
				_, err := ParseCSR(der)
				if err == nil {
					t.Fatal("ParseCSR accepted a tampered CSR")
				}
				if !errors.Is(err, ErrBadRequest) || KindOf(err) != ErrBadRequest {
					t.Fatalf("error %v is not of kind ErrBadRequest", err)
				}
				var e *Error
				if !errors.As(err, &e) || e.Err == nil {
					t.Fatalf("error %v does not keep the verification failure as its cause", err)
				}
				if d := Detail(err); !strings.Contains(d, "signature") || strings.Contains(d, e.Err.Error()) {
					t.Errorf("Detail = %q", d)
				}
			})
		}
	}
}

// TestParseCSRUnsupportedAlgorithm checks that a request signed with an
// algorithm Go does not know is refused with a detail that says so.
func TestParseCSRUnsupportedAlgorithm(t *testing.T) {
	der := bytes.Clone(pemBlock(t, "csr-rsa.pem", "CERTIFICATE REQUEST"))
	sha256WithRSA := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}
	i := bytes.LastIndex(der, sha256WithRSA)
	if i < 0 {
		t.Fatal("signature algorithm not found")
	}
	der[i+len(sha256WithRSA)-1] = 0x7f // 1.2.840.113549.1.1.127: no such algorithm
	_, err := ParseCSR(der)
	if !errors.Is(err, ErrBadRequest) {
		t.Fatalf("ParseCSR = %v; want ErrBadRequest", err)
	}
	if !errors.Is(err, x509.ErrUnsupportedAlgorithm) {
		t.Errorf("error %v does not keep x509.ErrUnsupportedAlgorithm as its cause", err)
	}
	if d := Detail(err); d != "unsupported CSR signature algorithm" {
		t.Errorf("Detail = %q", d)
	}
}

// TestParseCSRSHA1 records how a SHA-1 signed request is treated: crypto/x509
// still verifies SHA-1 self-signatures of requests, so ParseCSR may accept it
// (refusing weak algorithms is then the CA profile's job), but it must then
// report the algorithm truthfully; if it refuses, the kind is ErrBadRequest.
func TestParseCSRSHA1(t *testing.T) {
	req, err := ParseCSR(pemBlock(t, "csr-rsa-sha1.pem", "CERTIFICATE REQUEST"))
	switch {
	case err == nil:
		if req.SignatureAlgorithm != x509.SHA1WithRSA {
			t.Errorf("SignatureAlgorithm = %v; want SHA1-RSA", req.SignatureAlgorithm)
		}
	case !errors.Is(err, ErrBadRequest):
		t.Errorf("ParseCSR = %v; want nil or ErrBadRequest", err)
	}
}
