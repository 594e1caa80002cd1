package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/estkit/estkit"
	"github.com/estkit/estkit/client"
)

// Bootstrap trust in a server the first time (RFC 7030 4.1.1): fetch the CA
// certificates without authenticating the server, compare the root's
// fingerprint with the one the operator published (estd prints it on first
// start), and only then keep the root as the trust anchor.
func ExampleClient_Bootstrap() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &client.Client{Server: "est.example.com:8443"}
	res, err := c.Bootstrap(ctx)
	if err != nil {
		log.Fatal(err)
	}
	const published = "5E:2B:9C:..." // read out of band: a web page, a label, a phone call
	if !res.Matches(published) {
		log.Fatalf("root fingerprint %s is not the published one: do not trust this server", res.Fingerprint)
	}
	c.TrustAnchors = res.Anchors()
	// Keep the root for next time.
	if err := os.WriteFile("est-root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: res.Root.Raw}), 0o644); err != nil {
		log.Fatal(err)
	}
	// From now on the server is authenticated.
	certs, err := c.CACerts(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("CA certificates:", len(certs))
}

// Enroll for a certificate with HTTP Basic credentials, honouring the
// server's CSR attributes and waiting, up to ten minutes, for a request that
// needs manual approval.
func ExampleClient_Enroll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &client.Client{
		Server:       "est.example.com:8443",
		Label:        "tls-server",
		TrustAnchors: loadRoots("est-root.pem"),
		Username:     "estuser",
		Password:     os.Getenv("EST_PASSWORD"),
		OnWait: func(op est.Operation, d time.Duration, reason string) {
			log.Printf("%s: %s; asking again in %v", op, reason, d)
		},
	}
	attrs, err := c.CSRAttrs(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, oid := range attrs.OIDs() {
		log.Printf("the server asks for %v", oid) // estd's tls-server: ECDSA with SHA-256, P-256
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "www.example.com"},
		DNSNames: []string{"www.example.com"},
	}, key)
	if err != nil {
		log.Fatal(err)
	}
	e, err := c.Enroll(ctx, csr)
	switch {
	case errors.Is(err, est.ErrUnauthorized):
		log.Fatal("wrong user name or password: ", err)
	case errors.Is(err, client.ErrRejected):
		log.Fatal("refused: ", err) // the server's reason is in the message
	case err != nil:
		log.Fatal(err) // a network failure, a 5xx, or the deadline
	}
	fmt.Println("issued", e.Certificate.Subject, "until", e.Certificate.NotAfter)
}

// Enroll a device with its manufacturer (factory) certificate for TLS client
// authentication; the key may be any crypto.Signer, such as one in a TPM.
func ExampleClient_Enroll_manufacturerCertificate() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	factory, err := tls.LoadX509KeyPair("idevid.pem", "idevid-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	c := &client.Client{Server: "est.example.com:8443", TrustAnchors: loadRoots("est-root.pem"), Certificate: &factory}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "SN-0001"}}, key)
	if err != nil {
		log.Fatal(err)
	}
	e, err := c.Enroll(ctx, csr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("operational certificate", e.Certificate.SerialNumber)
}

// Renew a certificate before it expires (RFC 7030 4.2.2), authenticated by
// that certificate, with the same key or, as here, a new one.
func ExampleClient_Reenroll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	current, err := tls.LoadX509KeyPair("device.pem", "device-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	c := &client.Client{Server: "est.example.com:8443", TrustAnchors: loadRoots("est-root.pem"), Certificate: &current}
	newKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	csr, err := client.RenewalCSR(current.Leaf, newKey) // same subject and subjectAltName
	if err != nil {
		log.Fatal(err)
	}
	e, err := c.Reenroll(ctx, csr)
	if err != nil {
		log.Fatal(err)
	}
	// The renewed certificate authenticates the next renewal.
	c.Certificate = e.TLSCertificate(newKey)
	fmt.Println("renewed until", e.Certificate.NotAfter)
}

// Let the server generate the key pair (RFC 7030 4.4), for a device that
// cannot; the request only names the subject.
func ExampleClient_ServerKeyGen() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &client.Client{
		Server:       "est.example.com:8443",
		TrustAnchors: loadRoots("est-root.pem"),
		Username:     "estuser",
		Password:     os.Getenv("EST_PASSWORD"),
	}
	// A throw-away key signs the request; the server generates a key of
	// the same type (estd) and certifies that one.
	throwAway, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-17"}}, throwAway)
	if err != nil {
		log.Fatal(err)
	}
	e, err := c.ServerKeyGen(ctx, csr)
	if err != nil {
		log.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(e.Key)
	if err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile("sensor-17-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		log.Fatal(err)
	}
	fmt.Println("certificate for the generated key:", e.Certificate.Subject)
}

// loadRoots reads a PEM bundle of trust anchors.
func loadRoots(path string) *x509.CertPool {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		log.Fatalf("%s: no certificate", path)
	}
	return pool
}
