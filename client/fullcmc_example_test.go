package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log"
	"math/big"
	"os"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// Enroll with a Full PKI Request (RFC 7030 4.3) signed by the new key
// itself: the CSR declares its subject key identifier, which names the
// signer (RFC 5272 3.2.1.3.1). A failure comes back as a *CMCError with the
// server's CMCFailInfo.
func ExampleClient_FullCMC() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &client.Client{
		Server:       "est.example.com:8443",
		TrustAnchors: loadRoots("est-root.pem"),
		Username:     "estuser",
		Password:     os.Getenv("EST_PASSWORD"),
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	ski, _ := est.KeyID(spki)
	skiExt, _ := asn1.Marshal(ski)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: "device-42"},
		ExtraExtensions: []pkix.Extension{{Id: est.OIDSubjectKeyIdentifier, Value: skiExt}},
	}, key)
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.FullCMC(ctx, &client.CMCRequest{CSR: csr, Key: key})
	var ce *client.CMCError
	if errors.As(err, &ce) && ce.FailInfo != nil {
		log.Fatalf("refused (%s): %s", ce.FailInfo, ce.StatusString)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("issued", res.Certificate.Subject, "serial", res.Certificate.SerialNumber.Text(16))
}

// Revoke a certificate as a registration authority: the RA certificate
// (EKU id-kp-cmcRA) authenticates the TLS connection and signs the request.
func ExampleClient_FullCMC_revoke() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ra, err := tls.LoadX509KeyPair("ra.pem", "ra.key")
	if err != nil {
		log.Fatal(err)
	}
	c := &client.Client{Server: "est.example.com:8443", Label: "fleet", TrustAnchors: loadRoots("est-root.pem"), Certificate: &ra}
	caCerts, err := c.CACerts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	serial, _ := new(big.Int).SetString("4f1c0de5", 16)
	_, err = c.FullCMC(ctx, &client.CMCRequest{
		Key:         ra.PrivateKey.(crypto.Signer),
		Certificate: ra.Leaf,
		Revoke:      []est.RevokeRequest{{Issuer: caCerts[0].RawSubject, Serial: serial, Reason: est.CRLReasons["keyCompromise"]}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("revoked", serial.Text(16))
}
